/* kern_avx2.c - the kernels for AVX2 + FMA hosts (target attributes
 * avx2 + fma; only called when the CPU has both, kern.c).  Sixteen ymm
 * registers hold 4 rows x 3 vectors of accumulators, so a panel is taken
 * in two halves of 24 columns. */
#include <immintrin.h>

#include "kern.h"
#include "kernels.h"

/* Every function carries its target (no per-file flags: any compiler and
 * build, the fuzzers' included, builds this file the same way). */
#define TARGET __attribute__((target("avx2,fma")))

#define HALF (VGPT_PANEL / 2)

/* Rows m0..m0+R-1 against columns h*24.. of panel pn. */
static inline __attribute__((always_inline, target("avx2,fma"))) void half_rows(const vgpt_panel_job *j, int pn, int h, int m0, int R) {
    int C = j->w->C, OC = j->w->OC, o0 = pn * VGPT_PANEL + h * HALF;
    const float *pw = j->w->p + (size_t)pn * C * VGPT_PANEL + h * HALF, *x = j->inp + (size_t)m0 * C;
    __m256 acc[4][3];
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = acc[r][2] = _mm256_setzero_ps();
    for (int k = 0; k < C; k++, pw += VGPT_PANEL) {
        __m256 w0 = _mm256_load_ps(pw), w1 = _mm256_load_ps(pw + 8), w2 = _mm256_load_ps(pw + 16);
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_broadcast_ss(x + (size_t)r * C + k);
            acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
            acc[r][2] = _mm256_fmadd_ps(xv, w2, acc[r][2]);
        }
    }
    for (int r = 0; r < R; r++) {
        float y[HALF];
        for (int v = 0; v < 3; v++) _mm256_storeu_ps(y + 8 * v, acc[r][v]);
        float *dst = j->out + (size_t)(m0 + r) * OC + o0;
        int n = OC - o0 < HALF ? OC - o0 : HALF;
        for (int c = 0; c < n; c++) {
            float s = y[c] + (j->w->bias ? j->w->bias[o0 + c] : 0.0f);
            dst[c] = j->flags & VGPT_ACCUMULATE ? dst[c] + s : s;
        }
        if (j->flags & VGPT_GELU_TANH && n > 0) vgpt_gelu_tanh(dst, (size_t)n);
    }
}

TARGET static void panels(const vgpt_panel_job *j, int pn0, int pn1) {
    for (int pn = pn0; pn < pn1; pn++)
        for (int h = 0; h < 2 && pn * VGPT_PANEL + h * HALF < j->w->OC; h++) {
            int m0 = 0;
            for (; m0 + 4 <= j->M; m0 += 4) half_rows(j, pn, h, m0, 4);
            switch (j->M - m0) {
            case 3: half_rows(j, pn, h, m0, 3); break;
            case 2: half_rows(j, pn, h, m0, 2); break;
            case 1: half_rows(j, pn, h, m0, 1); break;
            default: break;
            }
        }
}

TARGET static float dot(const float *a, const float *b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float t[8], s = 0.0f;
    _mm256_storeu_ps(t, acc);
    for (int k = 0; k < 8; k++) s += t[k];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

const vgpt_kernels vgpt_kernels_avx2 = {"avx2", panels, dot};
