/* kern_avx2.c - the kernels for AVX2 + FMA hosts (target attributes
 * avx2 + fma + f16c; only called when the CPU has all three, kern.c).  Sixteen ymm
 * registers: a tile is 6 rows x 16 columns (12 accumulators, 2 weight
 * vectors, 1 broadcast input), so a 48-column panel is taken in three
 * strips; fp16 and bf16 panels (packed.h) are widened as they are read
 * (F16C; a bf16 value is the top half of its fp32).  The encoder's many-row
 * bf16 products (rows_bf16) use the same tile on a slice of the weight
 * widened once for all the rows.
 * 4 x 24 tiles would need all 16 registers and GCC spills the
 * accumulators to the stack on every k (measured: 4.5x the compute floor). */
#include <immintrin.h>
#include <string.h>

#include "kern.h"
#include "kernels.h"

/* Every function carries its target (no per-file flags: any compiler and
 * build, the fuzzers' included, builds this file the same way). */
#define TARGET __attribute__((target("avx2,fma,f16c")))
#define INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

#define STRIP 16 /* columns of a tile: two ymm vectors */
#define ROWS 6   /* rows of a full tile */
enum { FP32, FP16, BF16 }; /* what a panel holds */

#ifndef PREFETCH
#define PREFETCH 64 /* rows of k ahead (4 KB): the first row group reads the strip from memory */
#endif

/* Row k of a strip: 16 weights, fp32 or (half: FP16, BF16) widened exactly. */
INLINE __m256 bf16_wide(const char *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_load_si128((const __m128i *)p)), 16));
}

INLINE void strip_row(const char *pw, int half, __m256 *w0, __m256 *w1) {
    if (half == FP16) {
        *w0 = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)pw));
        *w1 = _mm256_cvtph_ps(_mm_load_si128((const __m128i *)pw + 1));
    } else if (half == BF16) {
        *w0 = bf16_wide(pw);
        *w1 = bf16_wide(pw + 16);
    } else {
        *w0 = _mm256_load_ps((const float *)pw);
        *w1 = _mm256_load_ps((const float *)pw + 8);
    }
}

/* Where strip s of panel pn begins, in a weight of C inputs. */
INLINE const char *strip_at(const vgpt_packed *w, int pn, int s) {
    size_t at = ((size_t)pn * VGPT_PANEL + (size_t)s * STRIP) * w->C;
    return w->h ? (const char *)(w->h + at) : (const char *)(w->p + at);
}

/* Rows m0..m0+R-1 against columns s*16.. of panel pn; R and half are
 * compile-time constants after inlining, so the accumulators live in
 * registers.  Also prefetched: this strip's rows PREFETCH ahead when it is
 * the first group (for the first strip of a range), and share `part` of
 * `parts` of the next strip into L2. */
INLINE void tile(const vgpt_panel_job *j, int pn, int s, int m0, int R, int half, const char *next, int part,
                 int parts) {
    int C = j->w->C, OC = j->w->OC, o0 = pn * VGPT_PANEL + s * STRIP;
    size_t row = STRIP * (half ? 2 : 4); /* bytes of one k-row of a strip */
    const char *pw = strip_at(j->w, pn, s);
    const float *x = j->inp + (size_t)m0 * C;
    const char *own = m0 == 0 ? pw + PREFETCH * row : NULL;
    const char *nx = next ? next + (size_t)(part * C / parts) * row : NULL;
    __m256 acc[ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int k = 0, tick = 0; k < C; k++, pw += row) {
        if (own) _mm_prefetch(own + (size_t)k * row, _MM_HINT_T0);
        if (nx) {
            _mm_prefetch(nx, _MM_HINT_T1);
            if (++tick == parts) tick = 0, nx += row;
        }
        __m256 w0, w1;
        strip_row(pw, half, &w0, &w1);
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
 * break and the arithmetic overlaps it (Zen 3, 16 rows, 768 -> 3072, best of
 * 5: 88 -> 100 GFLOP/s).  next: NULL at the end of the range. */
INLINE void strip_all_rows(const vgpt_panel_job *j, int pn, int s, int half, const char *next) {
    int parts = (j->M + ROWS - 1) / ROWS, m0 = 0, part = 0;
    for (; m0 + ROWS <= j->M; m0 += ROWS, part++) tile(j, pn, s, m0, ROWS, half, next, part, parts);
    switch (j->M - m0) {
    case 5: tile(j, pn, s, m0, 5, half, next, part, parts); break;
    case 4: tile(j, pn, s, m0, 4, half, next, part, parts); break;
    case 3: tile(j, pn, s, m0, 3, half, next, part, parts); break;
    case 2: tile(j, pn, s, m0, 2, half, next, part, parts); break;
    case 1: tile(j, pn, s, m0, 1, half, next, part, parts); break;
    default: break;
    }
}

INLINE void all_panels(const vgpt_panel_job *j, int pn0, int pn1, int half) {
    const int per = VGPT_PANEL / STRIP;
    for (int pn = pn0; pn < pn1; pn++)
        for (int s = 0; s < per && pn * VGPT_PANEL + s * STRIP < j->w->OC; s++) {
            int npn = s + 1 < per ? pn : pn + 1, ns = s + 1 < per ? s + 1 : 0;
            strip_all_rows(j, pn, s, half, npn < pn1 ? strip_at(j->w, npn, ns) : NULL);
        }
}

TARGET static void panels(const vgpt_panel_job *j, int pn0, int pn1) {
    if (!j->w->h) all_panels(j, pn0, pn1, FP32);
    else if (j->w->h_bf16) all_panels(j, pn0, pn1, BF16);
    else all_panels(j, pn0, pn1, FP16);
}

/* The many-row products (rows_bf16, kern.h).  R rows x one strip of out
 * (rows ldo apart) += x (R rows ldx apart) . wide (kc, 16): each sum
 * starts from out's value and runs over k in order, whatever R. */
INLINE void rows_tile(float *out, int ldo, const float *x, int ldx, const float *wide, int kc, int R) {
    __m256 acc[ROWS][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        acc[r][0] = _mm256_loadu_ps(out + (size_t)r * ldo);
        acc[r][1] = _mm256_loadu_ps(out + (size_t)r * ldo + 8);
    }
    for (int k = 0; k < kc; k++) {
        __m256 w0 = _mm256_load_ps(wide + (size_t)k * STRIP), w1 = _mm256_load_ps(wide + (size_t)k * STRIP + 8);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_broadcast_ss(x + (size_t)r * ldx + k);
            acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        _mm256_storeu_ps(out + (size_t)r * ldo, acc[r][0]);
        _mm256_storeu_ps(out + (size_t)r * ldo + 8, acc[r][1]);
    }
}

/* R a constant in each call, so that the accumulators stay in registers;
 * a strip that ends past OC goes through a copy of its rows, 16 wide. */
INLINE void rows_strip(float *out, int ldo, int cols, const float *x, int ldx, const float *wide, int kc, int R) {
    float t[ROWS * STRIP];
    float *o = cols < STRIP ? t : out;
    int ld = cols < STRIP ? STRIP : ldo;
    if (o == t) {
        memset(t, 0, sizeof t);
        for (int r = 0; r < R; r++) memcpy(t + r * STRIP, out + (size_t)r * ldo, (size_t)cols * sizeof *t);
    }
    switch (R) {
    case 6: rows_tile(o, ld, x, ldx, wide, kc, 6); break;
    case 5: rows_tile(o, ld, x, ldx, wide, kc, 5); break;
    case 4: rows_tile(o, ld, x, ldx, wide, kc, 4); break;
    case 3: rows_tile(o, ld, x, ldx, wide, kc, 3); break;
    case 2: rows_tile(o, ld, x, ldx, wide, kc, 2); break;
    default: rows_tile(o, ld, x, ldx, wide, kc, 1); break;
    }
    if (o == t)
        for (int r = 0; r < R; r++) memcpy(out + (size_t)r * ldo, t + r * STRIP, (size_t)cols * sizeof *t);
}

/* Inputs k0..k0+kc-1 of strips g0..g1-1 (counted across panels) widened
 * exactly into wide, (kc, 16) per strip. */
INLINE void rows_widen(const vgpt_packed *w, int g0, int g1, int k0, int kc, float *wide) {
    const int per = VGPT_PANEL / STRIP;
    for (int g = g0; g < g1; g++) {
        const char *src = strip_at(w, g / per, g % per) + (size_t)k0 * STRIP * 2;
        float *d = wide + (size_t)(g - g0) * kc * STRIP;
        for (int k = 0; k < kc; k++, src += STRIP * 2) {
            _mm256_store_ps(d + (size_t)k * STRIP, bf16_wide(src));
            _mm256_store_ps(d + (size_t)k * STRIP + 8, bf16_wide(src + 16));
        }
    }
}

/* Rows per block (48): their slice of x stays in L2 while the strips pass. */
#define ROWS_BLOCK (8 * ROWS)

/* A slice of k at a time, widened once for every row (1 / M of the work),
 * then each block of rows against each strip (Zen 3, 1576 rows, the
 * ViT's four product shapes, two threads: 135-166 GFLOP/s, OpenBLAS's
 * sgemm 118-144 in the same runs). */
TARGET static void rows_bf16(float *out, const float *x, const vgpt_packed *w, int M, int pn0, int pn1, float *wide) {
    // out is (M,OC), x is (M,C), w->h holds (OC,C) as bf16 panels; wide: 12 strips of (VGPT_ROWS_K, 16)
    int C = w->C, OC = w->OC, o1 = pn1 * VGPT_PANEL < OC ? pn1 * VGPT_PANEL : OC;
    int g0 = pn0 * (VGPT_PANEL / STRIP), g1 = (o1 + STRIP - 1) / STRIP;
    for (int k0 = 0; k0 < C; k0 += VGPT_ROWS_K) {
        int kc = C - k0 < VGPT_ROWS_K ? C - k0 : VGPT_ROWS_K;
        rows_widen(w, g0, g1, k0, kc, wide);
        for (int m0 = 0; m0 < M; m0 += ROWS_BLOCK)
            for (int g = g0; g < g1; g++)
                for (int m = m0; m < m0 + ROWS_BLOCK && m < M; m += ROWS)
                    rows_strip(out + (size_t)m * OC + g * STRIP, OC, OC - g * STRIP < STRIP ? OC - g * STRIP : STRIP,
                               x + (size_t)m * C + k0, C, wide + (size_t)(g - g0) * kc * STRIP, kc,
                               M - m < ROWS ? M - m : ROWS);
    }
}

/* 8 keys' / values' elements from element i of x: fp32, or bf16 widened. */
INLINE __m256 load8(const void *x, size_t i, int bf16) {
    if (!bf16) return _mm256_loadu_ps((const float *)x + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)x + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

INLINE void scores_any(float *s, const float *q, const void *k, int ldk, int n, int hd, float scale, int bf16) {
    for (int t = 0; t < n; t++) {
        size_t kt = (size_t)t * ldk;
        __m256 acc = _mm256_setzero_ps();
        int i = 0;
        for (; i + 8 <= hd; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8(k, kt + i, bf16), acc);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        float sum = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
        for (; i < hd; i++) sum += q[i] * vgpt_kern_elem(k, kt + i, bf16);
        s[t] = scale * sum;
    }
}

/* 32 columns of out at a time, in four ymm accumulators over every key. */
INLINE void mix_any(float *out, const float *p, const void *v, int ldv, int n, int hd, int bf16) {
    int i0 = 0;
    for (; i0 + 32 <= hd; i0 += 32) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int t = 0; t < n; t++) {
            __m256 pt = _mm256_set1_ps(p[t]);
            size_t vt = (size_t)t * ldv + i0;
            for (int c = 0; c < 4; c++) acc[c] = _mm256_fmadd_ps(pt, load8(v, vt + 8 * c, bf16), acc[c]);
        }
        for (int c = 0; c < 4; c++) _mm256_storeu_ps(out + i0 + 8 * c, _mm256_add_ps(_mm256_loadu_ps(out + i0 + 8 * c), acc[c]));
    }
    for (int i = i0; i < hd; i++) {
        float acc = 0.0f;
        for (int t = 0; t < n; t++) acc += p[t] * vgpt_kern_elem(v, (size_t)t * ldv + i, bf16);
        out[i] += acc;
    }
}

VGPT_KERN_ATTENTION_ENTRIES(TARGET)

const vgpt_kernels vgpt_kernels_avx2 = {"avx2", STRIP, panels, scores, mix, scores_bf16, mix_bf16, rows_bf16};
