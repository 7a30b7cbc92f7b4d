/* pool.h - a tiny fork-join thread pool for the decoder's matrix products.
 *
 * OpenBLAS is slow for the decoder's few-row products (1..16 rows against a
 * 768x50257 weight), so vgpt runs its own kernel there (packed.c), split
 * across cores by this pool.  Workers spin briefly between the ~100 jobs of
 * a decoding step, then sleep on a futex: no thread keeps a core busy
 * between batches (the oversubscription trap on small machines). */
#ifndef VGPT_POOL_H
#define VGPT_POOL_H

typedef struct vgpt_pool vgpt_pool;

/* fn(arg, part, n_parts) is called once for each part in 0..n_parts-1. */
typedef void (*vgpt_pool_fn)(void *arg, int part, int n_parts);

/* n_threads counts the caller, which always takes part 0; 1 = no threads. */
vgpt_pool *vgpt_pool_new(int n_threads);
void vgpt_pool_free(vgpt_pool *p);
int vgpt_pool_size(const vgpt_pool *p);
/* Runs fn on every thread and returns when all parts are done.  NULL pool = inline. */
void vgpt_pool_run(vgpt_pool *p, vgpt_pool_fn fn, void *arg);

#endif
