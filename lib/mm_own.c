/* mm_own.c - the bf16 products on vgpt's own kernels, for hosts where
 * oneDNN 2.6 has no bf16 matmul (below AVX-512, e.g. AMD Zen 2/3; or when
 * VGPT_ISA lowers the kernels, so that tests prove this path anywhere).
 *
 * The arithmetic is the same as oneDNN's: both operands rounded to bf16,
 * their products (exact in fp32: 8-bit by 8-bit significands) summed in
 * fp32.  These CPUs have no bf16 instruction, so a bf16 weight is held
 * once, as bf16 panels (packed.h: half the memory of fp32, as with
 * oneDNN).  A decoding step's few rows (the calls with a pool) run on the
 * packed kernels, which widen the panels as they stream them: half the
 * bytes of fp32 for a step bound by memory.  The encoder's hundreds of
 * rows (the calls without) run on the kernels' rows_bf16 (AVX2: a slice
 * of the weight widened at a time and met by every row), or, in a set
 * without one, on OpenBLAS's sgemm (own_sgemm).  Which of these a call
 * takes depends on its caller and the kernel set, never on its number of
 * rows, so that a caption does not depend on its batch-mates. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "half.h"
#include "kern.h"
#include "kernels.h"
#include "mm_ctx.h"

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
VGPT_CLONES static void round_run(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = vgpt_bf16_to_float(vgpt_float_to_bf16(src[i]));
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

/* out = bias (+ out): the value the products' sums start from. */
static void own_start(const vgpt_mm *w, float *out, int M, int flags) {
    for (int m = 0; m < M; m++) {
        float *o = out + (size_t)m * w->OC;
        for (int i = 0; i < w->OC; i++) o[i] = (flags & VGPT_ACCUMULATE ? o[i] : 0.0f) + w->bias[i];
    }
}

static void own_finish(const vgpt_mm *w, float *out, int M, int flags) {
    if (flags & VGPT_GELU_TANH) vgpt_gelu_tanh(out, (size_t)M * w->OC);
    if (flags & VGPT_GELU_ERF) vgpt_gelu_erf(out, (size_t)M * w->OC);
}

/* The encoder's hundreds of rows (and the decoder's cross K/V) on the
 * kernels' rows_bf16 (AVX2): each slice of the weight widened once per
 * call and met by every row, each output's sum in the same order whatever
 * M.  OpenMP's threads take VGPT_ROWS_PANELS panels at a time, each its
 * own share of the scratch (a thread never splits a sum). */
static int own_rows(vgpt_mm *w, float *out, const float *x, int M, int flags, const vgpt_kernels *k) {
    // x is (M,C) rounded, w->own packs (OC,C) in bf16, out is (M,OC)
    int threads = omp_get_max_threads(), panels = (w->OC + VGPT_PANEL - 1) / VGPT_PANEL;
    float *wide = vgpt_buf_get(&w->c->wide, (size_t)threads * VGPT_ROWS_WIDE);
    if (!wide) return vgpt_err_set(&w->c->first, "bf16: out of memory widening a (%d,%d) weight", w->OC, w->C);
    own_start(w, out, M, flags);
#pragma omp parallel for schedule(dynamic)
    for (int p = 0; p < panels; p += VGPT_ROWS_PANELS)
        k->rows_bf16(out, x, &w->own, M, p, p + VGPT_ROWS_PANELS < panels ? p + VGPT_ROWS_PANELS : panels,
                     wide + (size_t)omp_get_thread_num() * VGPT_ROWS_WIDE);
    own_finish(w, out, M, flags);
    return 0;
}

/* Output columns widened per sgemm call: the scratch stays small (768 x
 * 3072 fp32, 9 MB, for GPT-2 / ViT-B) whatever the weight. */
#define WIDE_COLS (16 * VGPT_PANEL)

/* The same where the kernels have no rows_bf16 (the generic set; the
 * AVX-512 set when oneDNN has no bf16 matmul): each slice of the weight
 * widened once per call (1 / M of the product's work) and multiplied by
 * OpenBLAS's sgemm (Zen 3, ViT-B/16 batch 8, vgpt-bench: 2.06 img/s on
 * the packed kernels, 2.17-2.50 this way, fp32 3.09-3.22).
 * sgemm's sums are not the same for every M (Zen 3, OpenBLAS 0.3.21: 1.7-4.6%
 * of a 197-row product's outputs move in the last bit when it is part of
 * a 788-row one, on one thread or two), so the encoder and the cross K/V
 * call it with one image's rows at a time (vgpt_precision_images_per_pass):
 * a caption does not depend on its batch-mates. */
static int own_sgemm(vgpt_mm *w, float *out, const float *x, int M, int flags) {
    // x is (M,C) rounded, w->own packs (OC,C) in bf16, out is (M,OC)
    int C = w->C, OC = w->OC, cols = OC < WIDE_COLS ? OC : WIDE_COLS;
    float *wide = vgpt_buf_get(&w->c->wide, (size_t)C * cols);
    if (!wide) return vgpt_err_set(&w->c->first, "bf16: out of memory widening a (%d,%d) weight", OC, C);
    own_start(w, out, M, flags);
    for (int o0 = 0; o0 < OC; o0 += WIDE_COLS) {
        int n = OC - o0 < WIDE_COLS ? OC - o0 : WIDE_COLS;
        vgpt_packed_widen_columns(&w->own, o0, n, wide, n);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, n, C, 1.0f, x, C, wide, n, 1.0f, out + o0, OC);
    }
    own_finish(w, out, M, flags);
    return 0;
}

int vgpt_mm_own_run(vgpt_mm *w, float *out, const float *inp, int M, int flags, struct vgpt_pool *pool) {
    // inp is (M,C), w->own packs (OC,C) in bf16, out is (M,OC)
    float *x = vgpt_buf_get(&w->c->rows, (size_t)M * w->C);
    if (!x) return vgpt_err_set(&w->c->first, "bf16: out of memory for %d input rows", M);
    round_rows(x, w->C, inp, w->C, (size_t)M, w->C);
    if (!pool) { /* the encoder's calls: many rows */
        const vgpt_kernels *k = vgpt_kernels_get();
        return k->rows_bf16 ? own_rows(w, out, x, M, flags, k) : own_sgemm(w, out, x, M, flags);
    }
    /* a decoding step's few rows: the packed kernels read half fp32's bytes */
    vgpt_linear_packed(out, x, &w->own, M, flags & ~VGPT_GELU_ERF, pool);
    if (flags & VGPT_GELU_ERF) vgpt_gelu_erf(out, (size_t)M * w->OC);
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
