/* kern_avx2.c - the kernels for AVX2 + FMA hosts (target attributes
 * avx2 + fma; only called when the CPU has both, kern.c).  Sixteen ymm
 * registers: a tile is 6 rows x 16 columns (12 accumulators, 2 weight
 * vectors, 1 broadcast input), so a 48-column panel is taken in three
 * strips.  4 x 24 tiles would need all 16 registers and GCC spills the
 * accumulators to the stack on every k (measured: 4.5x the compute floor). */
#include <immintrin.h>

#include "kern.h"
#include "kernels.h"

/* Every function carries its target (no per-file flags: any compiler and
 * build, the fuzzers' included, builds this file the same way). */
#define TARGET __attribute__((target("avx2,fma")))

#define STRIP 16 /* columns of a tile: two ymm vectors */
#define ROWS 6   /* rows of a full tile */

#ifndef PREFETCH
#define PREFETCH 64 /* rows of k ahead (4 KB): the first row group reads the strip from memory */
#endif

/* Rows m0..m0+R-1 against columns s*16.. of panel pn; R is a compile-time
 * constant after inlining, so the accumulators live in registers.  Also
 * prefetched: this strip's rows PREFETCH ahead when it is the first group
 * (for the first strip of a range), and share `part` of `parts` of the next
 * strip into L2 (one k-row of a strip is one cache line). */
static inline __attribute__((always_inline, target("avx2,fma"))) void tile(const vgpt_panel_job *j, int pn, int s,
                                                                             int m0, int R, const float *next,
                                                                             int part, int parts) {
    int C = j->w->C, OC = j->w->OC, o0 = pn * VGPT_PANEL + s * STRIP;
    const float *pw = j->w->p + ((size_t)pn * VGPT_PANEL + (size_t)s * STRIP) * C, *x = j->inp + (size_t)m0 * C;
    const float *own = m0 == 0 ? pw + PREFETCH * STRIP : NULL;
    const float *nx = next ? next + (size_t)(part * C / parts) * STRIP : NULL;
    __m256 acc[ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int k = 0, tick = 0; k < C; k++, pw += STRIP) {
        if (own) _mm_prefetch((const char *)(own + (size_t)k * STRIP), _MM_HINT_T0);
        if (nx) {
            _mm_prefetch((const char *)nx, _MM_HINT_T1);
            if (++tick == parts) tick = 0, nx += STRIP;
        }
        __m256 w0 = _mm256_load_ps(pw), w1 = _mm256_load_ps(pw + 8);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_broadcast_ss(x + (size_t)r * C + k);
            acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
        }
    }
    /* out of registers before any call (GELU): a call clobbers every ymm,
     * and accumulators live across one would be kept on the stack throughout */
    float y[ROWS][STRIP];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) _mm256_storeu_ps(y[r], acc[r][0]), _mm256_storeu_ps(y[r] + 8, acc[r][1]);
    int n = OC - o0 < STRIP ? OC - o0 : STRIP;
    for (int r = 0; r < R; r++) {
        float *dst = j->out + (size_t)(m0 + r) * OC + o0;
        for (int c = 0; c < n; c++) {
            float v = y[r][c] + (j->w->bias ? j->w->bias[o0 + c] : 0.0f);
            dst[c] = j->flags & VGPT_ACCUMULATE ? dst[c] + v : v;
        }
        if (j->flags & VGPT_GELU_TANH) vgpt_gelu_tanh(dst, (size_t)n);
    }
}

/* Every row against one strip, in groups of 6.  The first group reads the
 * strip from memory, the others find it in L2; all of them stream the next
 * strip into L2 meanwhile, a share each, so that memory is busy without a
 * break and the arithmetic overlaps it (Zen 3: from 7.5 to 10.5 GB/s at 16
 * rows).  next: NULL at the end of the range. */
TARGET static void strip_all_rows(const vgpt_panel_job *j, int pn, int s, const float *next) {
    int parts = (j->M + ROWS - 1) / ROWS, m0 = 0, part = 0;
    for (; m0 + ROWS <= j->M; m0 += ROWS, part++) tile(j, pn, s, m0, ROWS, next, part, parts);
    switch (j->M - m0) {
    case 5: tile(j, pn, s, m0, 5, next, part, parts); break;
    case 4: tile(j, pn, s, m0, 4, next, part, parts); break;
    case 3: tile(j, pn, s, m0, 3, next, part, parts); break;
    case 2: tile(j, pn, s, m0, 2, next, part, parts); break;
    case 1: tile(j, pn, s, m0, 1, next, part, parts); break;
    default: break;
    }
}

TARGET static void panels(const vgpt_panel_job *j, int pn0, int pn1) {
    const int per = VGPT_PANEL / STRIP;
    for (int pn = pn0; pn < pn1; pn++)
        for (int s = 0; s < per && pn * VGPT_PANEL + s * STRIP < j->w->OC; s++) {
            int npn = s + 1 < per ? pn : pn + 1, ns = s + 1 < per ? s + 1 : 0;
            const float *next = npn < pn1 ? j->w->p + ((size_t)npn * VGPT_PANEL + (size_t)ns * STRIP) * j->w->C : NULL;
            strip_all_rows(j, pn, s, next);
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

const vgpt_kernels vgpt_kernels_avx2 = {"avx2", STRIP, panels, dot};
