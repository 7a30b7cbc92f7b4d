/* mm.h - bf16 matrix products (--precision bf16).
 *
 * A weight is converted once, at load, from the checkpoint's fp32 (OC,C)
 * into bf16 and held only in that form: on AVX-512 hosts in the layout
 * oneDNN's matmul prefers on this CPU (AMX tiles, AVX512-BF16 pairs; oneDNN
 * picks the instruction set at run time), below AVX-512, where oneDNN 2.6
 * has no bf16 matmul, as bf16 panels for vgpt's own kernels (mm_own.c).
 * A decoding step's few rows (batch up to 16) on AVX512-BF16 read
 * oneDNN's weight with vgpt's own dot products on the decoder's pool
 * (mm_gemv.c).
 * Either way the fp32 input rows are rounded to bf16, multiplied with fp32
 * accumulation, and the fp32 result gets the bias, the residual sum and
 * GELU in fp32: one binary, the same arithmetic on every host. */
#ifndef VGPT_MM_H
#define VGPT_MM_H

#include <stddef.h>

#include "err.h"
#include "packed.h"
#include "precision.h"

struct vgpt_pool;

/* The oneDNN engine, stream and scratch one model's products share. */
typedef struct vgpt_mm_ctx vgpt_mm_ctx;
typedef struct vgpt_mm vgpt_mm;

/* Fails only when oneDNN cannot start or memory runs out: without oneDNN's
 * bf16 matmul (below AVX-512, or VGPT_ISA below avx512, kern.h) the
 * products are vgpt's own. */
int vgpt_mm_ctx_new(vgpt_mm_ctx **out, vgpt_err *err);
void vgpt_mm_ctx_free(vgpt_mm_ctx *c);
/* release(arg, p, n) is told when n fp32 source values at p have been
 * converted by vgpt_mm_new (a large weight in slices), so their pages can
 * be handed back before the rest is read. */
void vgpt_mm_ctx_set_release(vgpt_mm_ctx *c, void (*release)(void *arg, const float *p, size_t n), void *arg);
/* The implementation oneDNN chose for the products so far, e.g.
 * "brg:avx512_core_amx_bf16" ("none" before the first), or "vgpt:avx2"
 * (vgpt's own, on those kernels). */
const char *vgpt_mm_isa(const vgpt_mm_ctx *c);

/* A bf16 copy of n fp32 weights w[i] (rows[i], C) stacked into one
 * (sum rows, C) weight, with biases b[i] (b NULL or b[i] NULL = zeros). */
vgpt_mm *vgpt_mm_new(vgpt_mm_ctx *c, int C, int n, const float *const *w, const float *const *b,
                     const int *rows, vgpt_err *err);
void vgpt_mm_free(vgpt_mm *w);

/* out (M,OC) = inp (M,C) @ W^T + bias, then what flags ask for (packed.h's
 * VGPT_ACCUMULATE, VGPT_GELU_TANH).  A oneDNN failure (out of memory for a
 * new shape's primitive) leaves out unchanged and is kept in the context
 * for vgpt_mm_ctx_check: the layers above stay void, their callers check
 * once per forward pass. */
void vgpt_mm_run(const vgpt_mm *w, float *out, const float *inp, int M, int flags);
/* The same, where the caller has a pool (the decoder, packed.c): vgpt's own
 * products split across it, as fp32's are, instead of OpenMP's threads
 * (oneDNN's products ignore it). */
void vgpt_mm_run_pool(const vgpt_mm *w, float *out, const float *inp, int M, int flags, struct vgpt_pool *pool);
/* An MLP's two products: hidden (M, fc1's OC) = fc1(inp) with flags1,
 * then out (M, fc2's OC) = fc2(hidden) with flags2.  On oneDNN the hidden
 * state goes from one to the other in bf16, rounded once as oneDNN writes
 * it (the value fc2 would round an fp32 copy to): no fp32 pass between
 * them.  hidden has room for (M, fc1's OC) floats. */
void vgpt_mm_mlp(const vgpt_mm *fc1, const vgpt_mm *fc2, float *out, const float *inp, float *hidden, int M,
                 int flags1, int flags2);
/* For each of N sequences n: out_n (Tq, H*hd) = softmax(q_n k_n^T /
 * sqrt(hd)) v_n, heads side by side in columns, no mask; q_n = q +
 * n*Tq*ldq, k_n = k + n*Tk*ldk, v_n = v + n*Tk*ldv, out_n = out +
 * n*Tq*ldo.  Products in bf16, softmax in fp32; failures as vgpt_mm_run. */
void vgpt_mm_attention(vgpt_mm_ctx *c, float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                       const float *v, int ldv, int N, int Tq, int Tk, int H, int hd);
/* A ViT layer's self-attention from its normalised input: qkv (N*T, 3*H*hd)
 * = inp @ wqkv^T + bias, then vgpt_mm_attention over its thirds (q | k |
 * v), into out (N*T, ldo).  On oneDNN qkv is written in bf16, rounded once
 * as the attention would round an fp32 copy: the same values, without an
 * fp32 pass and a conversion between the two.  scratch holds N*T*3*H*hd
 * floats.  Failures as vgpt_mm_run. */
void vgpt_mm_self_attention(const vgpt_mm *wqkv, float *out, int ldo, const float *inp, float *scratch, int N, int T,
                            int H, int hd);
/* -1 with the first failure's message if any product failed since the last check. */
int vgpt_mm_ctx_check(vgpt_mm_ctx *c, vgpt_err *err);

#endif
