/* gpt2.h - GPT-2 with cross-attention blocks: one decoding step for a batch
 * of independent captions, each with its own self-attention KV cache and its
 * image's cross-attention K/V (computed once per image).
 *
 * Batching policy lives with the callers (generate.c in-process, decoderd's
 * continuous batching): this file only advances whatever set it is given. */
#ifndef VGPT_GPT2_H
#define VGPT_GPT2_H

#include <stdint.h>

#include "arena.h"
#include "err.h"
#include "model.h"

/* K and V are held as the model's products take their operands: fp32, or
 * with --precision bf16 as bf16 (uint16_t, rounded to nearest even once,
 * when they are made), which halves what attention reads per step. */

/* Cross-attention K and V of one image: (n_cross, 2, L, C). */
typedef struct vgpt_xkv {
    void *kv;
    int n_cross, L, C;
    int bf16; /* elements are bf16, not fp32 */
} vgpt_xkv;

/* Self-attention cache of one caption: k, v are (n_layers, cap, C). */
typedef struct vgpt_kv {
    void *k, *v;
    int pos, cap, n_layers, C;
    int bf16; /* elements are bf16, not fp32 */
} vgpt_kv;

struct vgpt_pool;

typedef struct vgpt_gpt_run {
    const vgpt_model *m;
    struct vgpt_pool *pool; /* threads for the step's matrix products */
    vgpt_buf h, xn, qkv, att, hidden, scratch, xvis;
    int scratch_row; /* floats of scratch per thread: every head's scores over the longest context */
} vgpt_gpt_run;

/* threads: cores for the step's matrix products (the caller is one of them). */
int vgpt_gpt_run_init(vgpt_gpt_run *d, const vgpt_model *m, int threads, vgpt_err *err);
void vgpt_gpt_run_free(vgpt_gpt_run *d);

/* vis (N,L,C) visual tokens -> out[0..N-1] (allocated here; free with vgpt_xkv_free). */
int vgpt_gpt_run_cross_kv(vgpt_gpt_run *d, const float *vis, int N, int L, vgpt_xkv *out, vgpt_err *err);
void vgpt_xkv_free(vgpt_xkv *x);

int vgpt_kv_alloc(vgpt_kv *kv, const vgpt_model *m, int cap);
void vgpt_kv_free(vgpt_kv *kv);
/* dst takes src's first src->pos positions (beam search reordering). */
void vgpt_kv_copy(vgpt_kv *dst, const vgpt_kv *src);

/* One step for B captions: token[b] enters at position kv[b]->pos, which is
 * then advanced; logits (B,V) are the next-token logits. */
int vgpt_gpt_run_step(vgpt_gpt_run *d, int B, const int32_t *token, vgpt_kv *const *kv,
                      const vgpt_xkv *const *xkv, float *logits, vgpt_err *err);

#endif
