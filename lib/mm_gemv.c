/* mm_gemv.c - bf16 products of a decoding step's few rows (batch 1 to 16)
 * on CPUs with AVX512-BF16, read straight from the weight oneDNN holds.
 *
 * oneDNN's matmul at these sizes ran a batch-1 token in 12.5 ms and a
 * batch-16 step in 22.6 ms on Zen 4 (its per-call set-up and OpenMP team
 * beside the decoder's pool; its passes over a block wait on memory).  The
 * weight stays in oneDNN's layout (held once): for its blocked form
 * BA16a64b2a each block of 64 output columns is C/2 rows of 64 (k, k+1)
 * pairs, exactly what vdpbf16ps takes; 4 input rows per pass over a block,
 * and each pass streams a share of the next block into L2.  Zen 4: 9.6 ms
 * per batch-1 token, 16.3 ms per batch-16 step.  The same arithmetic as
 * oneDNN's: bf16 operands, fp32 sums. */
#include <immintrin.h>
#include <stdint.h>

#include "kernels.h"
#include "mm_ctx.h"
#include "pool.h"

#define TARGET __attribute__((target("avx512f,avx512bf16")))
#define BLOCK 64 /* output columns per block of the layout */
#define GROUP 4 /* rows per pass over a block: 4 x 4 accumulators in registers (blocks()'s cases) */
#ifndef AHEAD
#define AHEAD 32 /* pair rows of 256 bytes the prefetch runs ahead (Zen 4, batch 1: 32 beat 16 and 64) */
#endif

int vgpt_mm_gemv_usable(const vgpt_mm *w) {
    if (w->C % 32 || !__builtin_cpu_supports("avx512bf16")) return 0;
    dnnl_memory_desc_t want;
    dnnl_dims_t dims = {w->C, w->OC};
    if (dnnl_memory_desc_init_by_tag(&want, 2, dims, dnnl_bf16, dnnl_BA16a64b2a) != dnnl_success) return 0;
    return dnnl_memory_desc_equal(&want, &w->wmd);
}

typedef struct gemv_job {
    const vgpt_mm *w;
    const uint16_t *wb; /* the weight, oneDNN's BA16a64b2a */
    const uint32_t *x;  /* (M, C/2) input pairs, bf16 */
    float *out;
    int M, flags;
} gemv_job;

// rows m0..m0+R-1 of out against block nb: out[m][nb*64 .. +64) (fewer at the
// end); R is a constant after inlining, so acc stays in registers.  Pass g of
// G over the block streams a 1/G share of the next block (next, or NULL) into
// L2, so that memory stays busy while the later passes compute.  A single
// pass (G 1) needs no such share: the blocks lie one after another, so the
// prefetch ahead runs on into the next (Zen 4, batch 1: 5-10% more bandwidth).
static inline __attribute__((always_inline)) TARGET void block_rows(const gemv_job *j, int nb, int m0, int R,
                                                                    const uint16_t *next, int g, int G) {
    int C2 = j->w->C / 2, OC = j->w->OC, n0 = nb * BLOCK, cols = OC - n0 < BLOCK ? OC - n0 : BLOCK;
    int share = (4 + G - 1) / G; /* of the 4 lines of a pair row, per step */
    const uint16_t *wb = j->wb + (size_t)nb * C2 * 2 * BLOCK;
    __m512 acc[GROUP][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
    for (int p = 0; p < C2; p++) {
        const uint16_t *row = wb + (size_t)p * 2 * BLOCK;
        if (g == 0)
            for (int l = 0; l < 4; l++) _mm_prefetch((const char *)(row + AHEAD * 2 * BLOCK + 32 * l), _MM_HINT_T0);
        for (int l = 0, at = (g * C2 + p) * share; G > 1 && next && l < share && at + l < 4 * C2; l++)
            _mm_prefetch((const char *)(next + (size_t)(at + l) * 32), _MM_HINT_T1);
        __m512bh wv[4];
        for (int v = 0; v < 4; v++) wv[v] = (__m512bh)_mm512_loadu_si512(row + 32 * v);
        for (int r = 0; r < R; r++) {
            __m512bh xb = (__m512bh)_mm512_set1_epi32((int)j->x[(size_t)(m0 + r) * C2 + p]);
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], wv[v], xb);
        }
    }
    for (int r = 0; r < R; r++) { /* out's value (residual or 0) + the sum + the bias, in that order */
        float *o = j->out + (size_t)(m0 + r) * OC + n0;
        for (int v = 0; v < 4 && 16 * v < cols; v++) {
            __mmask16 k = cols - 16 * v >= 16 ? 0xffff : (__mmask16)((1u << (cols - 16 * v)) - 1);
            __m512 y = j->flags & VGPT_ACCUMULATE ? _mm512_add_ps(_mm512_maskz_loadu_ps(k, o + 16 * v), acc[r][v])
                                                  : acc[r][v];
            _mm512_mask_storeu_ps(o + 16 * v, k, _mm512_add_ps(y, _mm512_maskz_loadu_ps(k, j->w->bias + n0 + 16 * v)));
        }
        if (j->flags & VGPT_GELU_TANH) vgpt_gelu_tanh(o, (size_t)cols);
        if (j->flags & VGPT_GELU_ERF) vgpt_gelu_erf(o, (size_t)cols);
    }
}

TARGET static void blocks(void *arg, int part, int n_parts) {
    const gemv_job *j = arg;
    int nblocks = (j->w->OC + BLOCK - 1) / BLOCK;
    int b0 = (int)((long)nblocks * part / n_parts), b1 = (int)((long)nblocks * (part + 1) / n_parts);
    int G = (j->M + GROUP - 1) / GROUP;
    size_t stride = (size_t)j->w->C * BLOCK; /* one block, in bf16 values */
    for (int nb = b0; nb < b1; nb++) {
        const uint16_t *next = nb + 1 < b1 ? j->wb + (nb + 1) * stride : NULL;
        for (int g = 0, m0 = 0; g < G; g++, m0 += GROUP) switch (j->M - m0) {
            case 1: block_rows(j, nb, m0, 1, next, g, G); break;
            case 2: block_rows(j, nb, m0, 2, next, g, G); break;
            case 3: block_rows(j, nb, m0, 3, next, g, G); break;
            default: block_rows(j, nb, m0, GROUP, next, g, G); break;
            }
    }
}

int vgpt_mm_gemv_run(vgpt_mm *w, float *out, const float *inp, int M, int flags, struct vgpt_pool *pool) {
    // inp is (M,C) with M <= VGPT_MM_GEMV_ROWS, w->wmem (C,OC) bf16, out is (M,OC)
    uint16_t *x = vgpt_mm_scratch(&w->c->rows, (size_t)M * w->C * sizeof *x);
    void *wb = NULL;
    if (!x) return vgpt_err_set(&w->c->first, "bf16: out of memory for %d input rows", M);
    if (dnnl_memory_get_data_handle(w->wmem, &wb) != dnnl_success || !wb)
        return vgpt_err_set(&w->c->first, "bf16: oneDNN lost a (%d,%d) weight", w->OC, w->C);
    vgpt_mm_to_bf16(x, inp, (size_t)M * w->C);
    gemv_job j = {.w = w, .wb = wb, .x = (const uint32_t *)x, .out = out, .M = M, .flags = flags};
    vgpt_pool_run(pool, blocks, &j);
    return 0;
}
