/* pool.h - a tiny fork-join thread pool for the decoder's matrix products.
 *
 * OpenBLAS is slow for the decoder's few-row products (1..16 rows against a
 * 768x50257 weight), so vgpt runs its own kernel there (packed.c), split
 * across cores by this pool.  Idle workers sleep on a futex; they spin
 * briefly between the ~100 jobs of a decoding step only when the pool has
 * no more threads than the CPUs the process may use, and a job wakes no
 * more workers than those CPUs can run, so --threads above the CPU count
 * (or a taskset / cgroup limit) costs little instead of spinning. */
#ifndef VGPT_POOL_H
#define VGPT_POOL_H

typedef struct vgpt_pool vgpt_pool;

/* fn(arg, part, n_parts) is called once for each part in 0..n_parts-1. */
typedef void (*vgpt_pool_fn)(void *arg, int part, int n_parts);

/* n_threads counts the caller; 1 = no threads. */
vgpt_pool *vgpt_pool_new(int n_threads);
void vgpt_pool_free(vgpt_pool *p);
int vgpt_pool_size(const vgpt_pool *p);
/* Runs fn for parts 0..vgpt_pool_size-1 (each part once, on whichever
 * thread claims it; the caller takes part in it) and returns when all are
 * done.  NULL pool = inline. */
void vgpt_pool_run(vgpt_pool *p, vgpt_pool_fn fn, void *arg);

/* The CPUs this process may run on: its affinity mask (taskset, cpuset),
 * lowered to the cgroup CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us, on this
 * process's cgroup and its parents) rounded up; at least 1.  The default
 * thread count of every vgpt program. */
int vgpt_cpu_count(void);

/* The smallest CPU quota (rounded up; 0 = none) from the cgroup directory
 * mnt+rel up to mnt, the hierarchy's mount (a parent's limit binds its
 * children): v2 reads cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us.
 * Exposed so that tests can walk a fake hierarchy. */
int vgpt_cpu_quota_walk(const char *mnt, const char *rel, int v2);

#endif
