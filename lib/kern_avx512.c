/* kern_avx512.c - the kernels for AVX-512 hosts (target attributes
 * avx512f + fma; only called when the CPU has them, kern.c).  A panel's 48
 * columns are three zmm vectors: 8 rows x 3 vectors = 24 accumulators in
 * registers, one broadcast input per row and k, no horizontal sums. */
#include <immintrin.h>

#include "kern.h"
#include "kernels.h"

/* Every function carries its target (no per-file flags: any compiler and
 * build, the fuzzers' included, builds this file the same way). */
#define TARGET __attribute__((target("avx512f,fma")))

#ifndef PREFETCH
#define PREFETCH 16
#endif

enum { FP32, FP16, BF16 }; /* what a panel holds */

static inline __attribute__((always_inline, target("avx512f,fma"))) __m512 bf16_wide(const char *p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_load_si256((const __m256i *)p)), 16));
}

/* Rows m0..m0+R-1 against one panel; R is a compile-time constant after
 * inlining, so the accumulator array lives in registers.  The panel is
 * prefetched PREFETCH rows of k ahead: with 8 rows the loop is busy enough
 * that the hardware prefetcher alone falls behind. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void panel_rows(const vgpt_panel_job *j, int pn, int m0, int R,
                                                                                    int half) {
    int C = j->w->C, OC = j->w->OC, o0 = pn * VGPT_PANEL;
    size_t row = VGPT_PANEL * (half ? 2 : 4); /* bytes of one k-row of the panel */
    const char *pw = half ? (const char *)(j->w->h + (size_t)pn * C * VGPT_PANEL)
                          : (const char *)(j->w->p + (size_t)pn * C * VGPT_PANEL);
    const float *x = j->inp + (size_t)m0 * C;
    __m512 acc[8][3];
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
    for (int k = 0; k < C; k++, pw += row) {
        for (size_t b = 0; b < row; b += 64) _mm_prefetch(pw + PREFETCH * row + b, _MM_HINT_T0);
        __m512 w0, w1, w2;
        if (half == FP16) { /* fp16 panels (packed.h): widened exactly as they are read */
            w0 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)pw));
            w1 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)pw + 1));
            w2 = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)pw + 2));
        } else if (half == BF16) { /* a bf16 value is the top half of its fp32 */
            w0 = bf16_wide(pw);
            w1 = bf16_wide(pw + 32);
            w2 = bf16_wide(pw + 64);
        } else {
            w0 = _mm512_load_ps((const float *)pw);
            w1 = _mm512_load_ps((const float *)pw + 16);
            w2 = _mm512_load_ps((const float *)pw + 32);
        }
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_set1_ps(x[(size_t)r * C + k]);
            acc[r][0] = _mm512_fmadd_ps(xv, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(xv, w1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(xv, w2, acc[r][2]);
        }
    }
    for (int v = 0; v < 3; v++) {
        int o = o0 + 16 * v;
        if (o >= OC) break;
        __mmask16 mask = OC - o >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (OC - o)) - 1);
        __m512 b = j->w->bias ? _mm512_maskz_loadu_ps(mask, j->w->bias + o) : _mm512_setzero_ps();
        for (int r = 0; r < R; r++) {
            float *dst = j->out + (size_t)(m0 + r) * OC + o;
            __m512 y = _mm512_add_ps(acc[r][v], b);
            if (j->flags & VGPT_ACCUMULATE) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, dst));
            _mm512_mask_storeu_ps(dst, mask, y);
            if (j->flags & VGPT_GELU_TANH) vgpt_gelu_tanh(dst, OC - o >= 16 ? 16 : (size_t)(OC - o));
        }
    }
}

/* Groups of 8 rows, each a whole pass over the panel: the first reads it
 * from memory, the next find it in L2 (a panel is C x 192 bytes, or 96 in
 * fp16). */
static inline __attribute__((always_inline, target("avx512f,fma"))) void panel_all_rows(const vgpt_panel_job *j, int pn,
                                                                                        int half) {
    int m0 = 0;
    for (; m0 + 8 <= j->M; m0 += 8) panel_rows(j, pn, m0, 8, half);
    switch (j->M - m0) {
    case 7: panel_rows(j, pn, m0, 7, half); break;
    case 6: panel_rows(j, pn, m0, 6, half); break;
    case 5: panel_rows(j, pn, m0, 5, half); break;
    case 4: panel_rows(j, pn, m0, 4, half); break;
    case 3: panel_rows(j, pn, m0, 3, half); break;
    case 2: panel_rows(j, pn, m0, 2, half); break;
    case 1: panel_rows(j, pn, m0, 1, half); break;
    default: break;
    }
}

TARGET static void panels(const vgpt_panel_job *j, int pn0, int pn1) {
    for (int pn = pn0; pn < pn1; pn++) {
        if (!j->w->h) panel_all_rows(j, pn, FP32);
        else if (j->w->h_bf16) panel_all_rows(j, pn, BF16);
        else panel_all_rows(j, pn, FP16);
    }
}

TARGET static float dot(const float *a, const float *b, int n) {
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
    if (i < n) {
        __mmask16 mask = (__mmask16)((1u << (n - i)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

const vgpt_kernels vgpt_kernels_avx512 = {"avx512", VGPT_PANEL, panels, dot};
