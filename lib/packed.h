/* packed.h - decoder weights packed once for the few-row products of a
 * decoding step (see packed.c for why). */
#ifndef VGPT_PACKED_H
#define VGPT_PACKED_H

#include <stdint.h>

struct vgpt_pool;
struct vgpt_mm;

#define VGPT_PANEL 48 /* output columns per panel: three AVX-512 vectors */

/* An (OC,C) nn.Linear weight as panels of VGPT_PANEL output columns, each
 * panel VGPT_PANEL / strip strips of (C, strip) (strip: the kernels', kern.h),
 * with its bias (OC) or NULL; or, with --precision bf16, mm (mm.h) alone. */
typedef struct vgpt_packed {
    float *p, *bias;
    uint16_t *h; /* instead of p: the same panels in fp16 (vgpt_pack_narrow), or */
    int h_bf16;  /* in bf16 (vgpt_pack_bf16) */
    int C, OC;
    struct vgpt_mm *mm;
} vgpt_packed;

/* Packs n weights w[i] (rows[i], C), stacked in that order into one
 * (sum rows, C) weight, with biases b[i] (b NULL = no bias).
 * Returns -1 when out of memory. */
int vgpt_pack(vgpt_packed *dst, int C, int n, const float *const *w, const float *const *b, const int *rows);
/* The same from w alone, in w's own memory (taken over: freed with dst):
 * w is 64-byte aligned with room for ceil(OC/VGPT_PANEL)*VGPT_PANEL rows.
 * A large widened weight is then held once, not twice while packing. */
int vgpt_pack_in_place(vgpt_packed *dst, int C, float *w, const float *b, int OC);
/* Replaces w's fp32 panels by fp16 ones when every value is exactly an fp16
 * number (an fp16 checkpoint's weights, widened at load): the kernels widen
 * them again as they stream them, so every result is bit for bit the same,
 * from half the bytes.  1 narrowed, 0 left as it was, -1 out of memory. */
int vgpt_pack_narrow(vgpt_packed *w);
/* As vgpt_pack, straight into bf16 panels (round to nearest even), for the
 * bf16 products of hosts where oneDNN has none (mm_own.c); done(arg, o) is
 * told, now and then, that rows 0..o-1 of the stacked weight are packed
 * (their source pages may go).  -1 when out of memory. */
int vgpt_pack_bf16(vgpt_packed *dst, int C, int n, const float *const *w, const float *const *b, const int *rows,
                   void (*done)(void *arg, int o), void *arg);
/* Columns o0..o0+n-1 of a bf16-panelled weight (vgpt_pack_bf16), widened
 * exactly to fp32 as dst (C, n), rows ldd floats apart: the operand of the
 * many-row products' sgemm (mm_own.c).  o0 is a multiple of VGPT_PANEL. */
void vgpt_packed_widen_columns(const vgpt_packed *w, int o0, int n, float *dst, int ldd);
void vgpt_packed_free(vgpt_packed *w);

enum {
    VGPT_ACCUMULATE = 1, /* out += the product (a residual connection) */
    VGPT_GELU_TANH = 2,  /* out = GELU(product), GPT-2's tanh form */
    VGPT_GELU_ERF = 4,   /* out = GELU(product), the exact (erf) form of the ViT and
                          * resampler: vgpt_lin_forward and mm.h only (in bf16,
                          * oneDNN's post-op: one pass over the hidden state less) */
};

/* out (M,OC) = inp (M,C) @ W^T + bias, any M, then what flags ask for.
 * Split across the pool's threads. */
void vgpt_linear_packed(float *out, const float *inp, const vgpt_packed *w, int M, int flags, struct vgpt_pool *pool);

#endif
