/* mm_ctx.h - what the bf16 products share: oneDNN's (mm_dnnl.c, and the
 * attention, mm_attention.c) and vgpt's own where oneDNN has none
 * (mm_own.c): the context, the weight and a few helpers.  Private to those
 * files; the rest of vgpt sees mm.h. */
#ifndef VGPT_MM_CTX_H
#define VGPT_MM_CTX_H

#include <dnnl.h>
#include <pthread.h>
#include <stdint.h>

#include "arena.h"
#include "kernels.h"
#include "mm.h"

#define VGPT_MM_ATT_SHAPES 4

typedef struct vgpt_mm_att_shape {
    int N, Tq, Tk, H, hd, ldo;
    int ldqk; /* q and k's row stride: H*hd packed, 3*H*hd inside a bf16 qkv (v is always packed) */
    unsigned long used;
    dnnl_primitive_t scores, mix; /* q k^T * scale, then p v */
} vgpt_mm_att_shape;

struct vgpt_mm_ctx {
    int own; /* the products run on vgpt's kernels (mm_own.c): oneDNN has no bf16 matmul here */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    pthread_mutex_t lock;
    vgpt_buf rows;               /* a product's input rows in bf16 (own: rounded, in fp32) */
    vgpt_buf wide;               /* own: a slice of a weight widened (rows_bf16, per thread; or for sgemm) */
    vgpt_buf q, k, v, p, scores; /* attention's operands */
    vgpt_mm_att_shape att[VGPT_MM_ATT_SHAPES];
    unsigned long tick;
    char isa[64];
    int failed;
    vgpt_err first;
    void (*release)(void *arg, const float *p, size_t n); /* vgpt_mm_ctx_set_release */
    void *release_arg;
};

#define MM_SHAPES 8 /* primitives kept per weight */
/* A flag beside packed.h's, private to these files: the product's result
 * is rounded to bf16 (after bias and post-ops) for the next product. */
#define MM_DST_BF16 0x100

typedef struct mm_shape {
    int M, flags;
    unsigned long used;
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst;
} mm_shape;

struct vgpt_mm {
    vgpt_mm_ctx *c;
    int C, OC;
    vgpt_packed own;        /* c->own: the weight as bf16 panels; else: */
    dnnl_memory_desc_t wmd; /* the bf16 weight's layout */
    dnnl_memory_t wmem, bmem;
    void *wdata;            /* wmem's bytes, on huge pages (hugemem.h) */
    int gemv;               /* vgpt_mm_gemv_usable: few-row products in mm_gemv.c */
    float *bias;
    unsigned long tick;
    mm_shape shapes[MM_SHAPES];
};

/* mm_dnnl.c: out (M,OC) = inp (M,C) @ W^T + bias with flags (MM_DST_BF16:
 * out is bf16), inp bf16 already when bf16_in; the caller holds c->lock. */
int vgpt_mm_run_typed(vgpt_mm *w, void *out, const void *inp, int bf16_in, int M, int flags);

/* mm_own.c: the same calls as mm.h's, on vgpt's kernels. */
int vgpt_mm_own_setup(vgpt_mm *w, int n, const float *const *src, const float *const *b, const int *rows);
int vgpt_mm_own_run(vgpt_mm *w, float *out, const float *inp, int M, int flags, struct vgpt_pool *pool);
int vgpt_mm_own_attention(vgpt_mm_ctx *c, float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                          const float *v, int ldv, int N, int Tq, int Tk, int H, int hd);

/* mm_gemv.c: products of up to VGPT_MM_GEMV_ROWS rows (a decoding step;
 * more, the encoder's, go to oneDNN) on oneDNN's weight, split across the
 * caller's pool (AVX512-BF16 hosts, where the layout is the one it reads). */
#define VGPT_MM_GEMV_ROWS 16
int vgpt_mm_gemv_usable(const vgpt_mm *w);
int vgpt_mm_gemv_run(vgpt_mm *w, float *out, const float *inp, int M, int flags, struct vgpt_pool *pool);

void vgpt_mm_md2(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, dnnl_data_type_t t, dnnl_format_tag_t tag);
/* Round to nearest even, as PyTorch and oneDNN convert; a NaN stays NaN. */
void vgpt_mm_to_bf16(uint16_t *dst, const float *src, size_t n);
/* bytes of b (grown as needed), NULL when out of memory. */
void *vgpt_mm_scratch(vgpt_buf *b, size_t bytes);
void vgpt_mm_attention_free(vgpt_mm_ctx *c);

#endif
