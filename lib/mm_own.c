/* mm_own.c - the bf16 products on vgpt's own kernels, for hosts where
 * oneDNN 2.6 has no bf16 matmul (below AVX-512, e.g. AMD Zen 2/3; or when
 * VGPT_ISA lowers the kernels, so that tests prove this path anywhere).
 *
 * The arithmetic is the same as oneDNN's: both operands rounded to bf16,
 * their products (exact in fp32: 8-bit by 8-bit significands) summed in
 * fp32.  These CPUs have no bf16 instruction, so a bf16 weight is widened
 * as it is used: by the packed kernels as they stream its bf16 panels (a
 * decoding step's few rows: half the bytes of fp32, and the step is bound
 * by memory), or slice by slice into a scratch matrix for OpenBLAS's
 * sgemm (the encoder's hundreds of rows: bound by arithmetic, where the
 * slice's widening costs little beside the product).  The weight is held
 * once, as bf16: half the memory of fp32, as with oneDNN. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "half.h"
#include "kernels.h"
#include "mm_ctx.h"

/* From this many rows up a product goes to sgemm (Zen 3: the 64 latents of
 * the resampler and cross K/V already run at sgemm speed there). */
#define OWN_SGEMM_ROWS 64
/* Panels widened per sgemm call: 1008 columns, 3 MB of fp32 at C = 768. */
#define OWN_SLICE_PANELS 21

typedef struct own_release {
    vgpt_mm_ctx *c;
    int C, n, released; /* rows 0..released-1 of the stacked weight gone */
    const float *const *src;
    const int *rows;
} own_release;

/* The packer has packed rows 0..o-1 of the stacked weight: their source
 * pages go back (mm.h's release hook), the head's in slices. */
static void own_packed(void *arg, int o) {
    own_release *r = arg;
    if (!r->c->release) return;
    for (int i = 0, start = 0; i < r->n && r->released < o; start += r->rows[i++]) {
        int end = start + r->rows[i];
        int from = r->released > start ? r->released : start, to = o < end ? o : end;
        if (to <= from) continue;
        r->c->release(r->c->release_arg, r->src[i] + (size_t)(from - start) * r->C, (size_t)(to - from) * r->C);
        r->released = to;
    }
}

int vgpt_mm_own_setup(vgpt_mm *w, int n, const float *const *src, const float *const *b, const int *rows) {
    own_release r = {.c = w->c, .C = w->C, .n = n, .src = src, .rows = rows};
    return vgpt_pack_bf16(&w->own, w->C, n, src, b, rows, own_packed, &r);
}

/* Each value rounded to bf16 and held in fp32: what the product multiplies. */
VGPT_MM_CLONES static void round_run(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = vgpt_float_to_bits(src[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x400000u; /* NaN stays NaN, quiet */
        else u += 0x7fffu + ((u >> 16) & 1u);
        dst[i] = vgpt_bits_to_float(u & 0xffff0000u);
    }
}

/* rows x cols of src (row stride lds) -> rounded, row stride ldd; on
 * OpenMP's threads when large (each value rounds alone). */
static void round_rows(float *dst, int ldd, const float *src, int lds, size_t rows, int cols) {
    if (rows * (size_t)cols < (1 << 16)) {
        for (size_t r = 0; r < rows; r++) round_run(dst + r * ldd, src + r * lds, (size_t)cols);
        return;
    }
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++) round_run(dst + (size_t)r * ldd, src + (size_t)r * lds, (size_t)cols);
}

/* Columns o0..o0+n-1 of out (M, OC) = x @ those columns of W^T (wide,
 * (C, n) with row stride ld), plus the bias, then the flags; accumulate
 * adds to out as it was, the bias once, as the packed kernels do. */
static void sgemm_slice(const vgpt_mm *w, float *out, const float *x, const float *wide, int ld, int M, int o0, int n,
                        int flags) {
    float beta = flags & VGPT_ACCUMULATE ? 1.0f : 0.0f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, n, w->C, 1.0f, x, w->C, wide, ld, beta, out + o0, w->OC);
    for (int m = 0; m < M; m++) {
        float *o = out + (size_t)m * w->OC + o0;
        if (w->own.bias)
            for (int i = 0; i < n; i++) o[i] += w->own.bias[o0 + i];
        if (flags & VGPT_GELU_TANH) vgpt_gelu_tanh(o, (size_t)n);
    }
}

static int sgemm_run(vgpt_mm *w, float *out, const float *x, int M, int flags) {
    int n_panels = (w->OC + VGPT_PANEL - 1) / VGPT_PANEL;
    int slice = n_panels < OWN_SLICE_PANELS ? n_panels : OWN_SLICE_PANELS, ld = slice * VGPT_PANEL;
    float *wide = vgpt_buf_get(&w->c->wide, (size_t)w->C * ld);
    if (!wide) return vgpt_err_set(&w->c->first, "bf16: out of memory widening a (%d,%d) weight", w->OC, w->C);
    for (int pn0 = 0; pn0 < n_panels; pn0 += slice) {
        int np = n_panels - pn0 < slice ? n_panels - pn0 : slice, o0 = pn0 * VGPT_PANEL;
#pragma omp parallel for schedule(static)
        for (int i = 0; i < np; i++) vgpt_packed_widen(&w->own, pn0 + i, wide + i * VGPT_PANEL, ld);
        sgemm_slice(w, out, x, wide, ld, M, o0, w->OC - o0 < np * VGPT_PANEL ? w->OC - o0 : np * VGPT_PANEL, flags);
    }
    return 0;
}

int vgpt_mm_own_run(vgpt_mm *w, float *out, const float *inp, int M, int flags) {
    // inp is (M,C), w->own packs (OC,C) in bf16, out is (M,OC)
    float *x = vgpt_buf_get(&w->c->rows, (size_t)M * w->C);
    if (!x) return vgpt_err_set(&w->c->first, "bf16: out of memory for %d input rows", M);
    round_rows(x, w->C, inp, w->C, (size_t)M, w->C);
    if (M >= OWN_SGEMM_ROWS) return sgemm_run(w, out, x, M, flags);
    vgpt_linear_packed_omp(out, x, &w->own, M, flags);
    return 0;
}

int vgpt_mm_own_attention(vgpt_mm_ctx *c, float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                          const float *v, int ldv, int N, int Tq, int Tk, int H, int hd) {
    // per sequence n: q (Tq, H*hd), k and v (Tk, H*hd), out (Tq, H*hd); heads side by side
    int HD = H * hd;
    size_t nq = (size_t)N * Tq * HD, nk = (size_t)N * Tk * HD;
    float *bq = vgpt_buf_get(&c->q, nq), *bk = vgpt_buf_get(&c->k, nk), *bv = vgpt_buf_get(&c->v, nk);
    float *p = vgpt_buf_get(&c->p, (size_t)Tq * Tk);
    if (!bq || !bk || !bv || !p) return vgpt_err_set(&c->first, "bf16: out of memory for the attention of %d sequences", N);
    round_rows(bq, HD, q, ldq, (size_t)N * Tq, HD);
    round_rows(bk, HD, k, ldk, (size_t)N * Tk, HD);
    round_rows(bv, HD, v, ldv, (size_t)N * Tk, HD);
    float scale = 1.0f / sqrtf((float)hd);
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++) {
            const float *qh = bq + (size_t)n * Tq * HD + h * hd, *kh = bk + (size_t)n * Tk * HD + h * hd;
            const float *vh = bv + (size_t)n * Tk * HD + h * hd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, Tk, hd, scale, qh, HD, kh, HD, 0.0f, p, Tk);
            vgpt_softmax_rows(p, Tq, Tk, -1);
            round_run(p, p, (size_t)Tq * Tk); /* the mix multiplies bf16 probabilities, as oneDNN's */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, hd, Tk, 1.0f, p, Tk, vh, HD, 0.0f,
                        out + (size_t)n * Tq * ldo + h * hd, ldo);
        }
    return 0;
}
