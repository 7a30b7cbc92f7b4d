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

static inline __attribute__((always_inline)) const char *panel_base(const vgpt_panel_job *j, int pn, int half) {
    size_t at = (size_t)pn * j->w->C * VGPT_PANEL;
    return half ? (const char *)(j->w->h + at) : (const char *)(j->w->p + at);
}

/* Rows m0..m0+R-1 against one panel; R is a compile-time constant after
 * inlining, so the accumulator array lives in registers.  The panel is
 * prefetched PREFETCH rows of k ahead: with 8 rows the loop is busy enough
 * that the hardware prefetcher alone falls behind. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void panel_rows(const vgpt_panel_job *j, int pn, int m0, int R,
                                                                                    int half, const char *ahead) {
    int C = j->w->C, OC = j->w->OC, o0 = pn * VGPT_PANEL;
    size_t row = VGPT_PANEL * (half ? 2 : 4); /* bytes of one k-row of the panel */
    const char *pw = panel_base(j, pn, half);
    const float *x = j->inp + (size_t)m0 * C;
    __m512 acc[8][3];
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
    for (int k = 0; k < C; k++, pw += row) {
        for (size_t b = 0; b < row; b += 64) _mm_prefetch(pw + PREFETCH * row + b, _MM_HINT_T0);
        if (ahead)
            for (size_t b = 0; b < row; b += 64) _mm_prefetch(ahead + (size_t)k * row + b, _MM_HINT_T1);
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
                                                                                        int pn1, int half) {
    const char *next = pn + 1 < pn1 ? panel_base(j, pn + 1, half) : NULL;
    int m0 = 0;
    for (; m0 + 8 <= j->M; m0 += 8) panel_rows(j, pn, m0, 8, half, m0 == 8 ? next : NULL);
    if (m0 != 8) next = NULL;
    switch (j->M - m0) {
    case 7: panel_rows(j, pn, m0, 7, half, next); break;
    case 6: panel_rows(j, pn, m0, 6, half, next); break;
    case 5: panel_rows(j, pn, m0, 5, half, next); break;
    case 4: panel_rows(j, pn, m0, 4, half, next); break;
    case 3: panel_rows(j, pn, m0, 3, half, next); break;
    case 2: panel_rows(j, pn, m0, 2, half, next); break;
    case 1: panel_rows(j, pn, m0, 1, half, next); break;
    default: break;
    }
}

TARGET static void panels(const vgpt_panel_job *j, int pn0, int pn1) {
    for (int pn = pn0; pn < pn1; pn++) {
        if (!j->w->h) panel_all_rows(j, pn, pn1, FP32);
        else if (j->w->h_bf16) panel_all_rows(j, pn, pn1, BF16);
        else panel_all_rows(j, pn, pn1, FP16);
    }
}

/* Lane t of the result is the sum of a[t]'s 16 lanes: pairs of vectors
 * folded into one at each of four levels (halves, quarters, pairs within
 * a 128-bit lane, then single floats), so 16 keys cost 15 adds, not 16
 * horizontal sums.  The folding leaves key 4p + L at element 4L + p. */
static inline __attribute__((always_inline, target("avx512f"))) __m512 sum16(__m512 a[16]) {
    __m512 b[8], c[4], d[2];
    for (int j = 0; j < 8; j++)
        b[j] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * j], a[2 * j + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * j], a[2 * j + 1], 0xee));
    for (int j = 0; j < 4; j++)
        c[j] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * j], b[2 * j + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * j], b[2 * j + 1], 0xdd));
    for (int j = 0; j < 2; j++)
        d[j] = _mm512_add_ps(_mm512_unpacklo_ps(c[2 * j], c[2 * j + 1]), _mm512_unpackhi_ps(c[2 * j], c[2 * j + 1]));
    __m512 e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x44), _mm512_shuffle_ps(d[0], d[1], 0xee));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_ps(order, e);
}

#define INLINE static inline __attribute__((always_inline, target("avx512f,fma")))

/* 16 key / value elements from element i of x: fp32, or bf16 widened. */
INLINE __m512 load16(const void *x, size_t i, int bf16) {
    if (!bf16) return _mm512_loadu_ps((const float *)x + i);
    __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)x + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The lanes of mask m: fp32 masked; bf16 only ever asks for all or none
 * (a masked 16-bit load needs AVX512BW, which the target does not assume). */
INLINE __m512 load16m(__mmask16 m, const void *x, size_t i, int bf16) {
    if (!bf16) return _mm512_maskz_loadu_ps(m, (const float *)x + i);
    return m ? load16(x, i, 1) : _mm512_setzero_ps();
}

INLINE float dot_any(const float *a, const void *b, size_t off, int n, int bf16) {
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load16(b, off + i, bf16), acc);
    float tail = 0.0f;
    if (i < n && !bf16) {
        __mmask16 mask = (__mmask16)((1u << (n - i)) - 1);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, (const float *)b + off + i), acc);
    }
    for (; bf16 && i < n; i++) tail += a[i] * vgpt_kern_elem(b, off + i, 1);
    return _mm512_reduce_add_ps(acc) + tail;
}

/* GPT-2's heads are 64 wide: q in four registers, 16 keys at a time (the
 * last block short: a decoding step's self-attention has 1..20 keys, which
 * would otherwise each take a horizontal sum of their own); other widths
 * one dot product per key. */
INLINE void scores_any(float *s, const float *q, const void *k, int ldk, int n, int hd, float scale, int bf16) {
    int t = 0;
    if (hd == 64) {
        __m512 q0 = _mm512_loadu_ps(q), q1 = _mm512_loadu_ps(q + 16), q2 = _mm512_loadu_ps(q + 32),
               q3 = _mm512_loadu_ps(q + 48);
        for (; t < n; t += 16) { /* the last block short: its missing keys are zeros, not stored */
            int keys = n - t < 16 ? n - t : 16;
            __m512 a[16];
            for (int j = 0; j < 16; j++) {
                size_t kt = (size_t)(t + j) * ldk;
                if (j >= keys) {
                    a[j] = _mm512_setzero_ps();
                    continue;
                }
                __m512 acc = _mm512_mul_ps(q0, load16(k, kt, bf16));
                acc = _mm512_fmadd_ps(q1, load16(k, kt + 16, bf16), acc);
                acc = _mm512_fmadd_ps(q2, load16(k, kt + 32, bf16), acc);
                a[j] = _mm512_fmadd_ps(q3, load16(k, kt + 48, bf16), acc);
            }
            _mm512_mask_storeu_ps(s + t, (__mmask16)((1u << keys) - 1), _mm512_mul_ps(_mm512_set1_ps(scale), sum16(a)));
        }
    }
    for (; t < n; t++) s[t] = scale * dot_any(q, k, (size_t)t * ldk, hd, bf16);
}

/* 64 columns of out at a time, in two sets of four accumulators (even
 * and odd keys: two chains, so the adds do not wait on each other).  bf16
 * takes whole vectors only; its last hd % 16 columns are summed one by one. */
INLINE void mix_any(float *out, const float *p, const void *v, int ldv, int n, int hd, int bf16) {
    int vec = bf16 ? hd / 16 * 16 : hd;
    for (int i0 = 0; i0 < vec; i0 += 64) {
        __mmask16 m[4];
        for (int c = 0; c < 4; c++) {
            int left = vec - i0 - 16 * c;
            m[c] = left >= 16 ? (__mmask16)0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
        }
        __m512 even[4], odd[4];
        for (int c = 0; c < 4; c++) even[c] = odd[c] = _mm512_setzero_ps();
        int t = 0;
        for (; t + 2 <= n; t += 2) {
            __m512 p0 = _mm512_set1_ps(p[t]), p1 = _mm512_set1_ps(p[t + 1]);
            size_t v0 = (size_t)t * ldv + i0, v1 = v0 + ldv;
            for (int c = 0; c < 4; c++) {
                even[c] = _mm512_fmadd_ps(p0, load16m(m[c], v, v0 + 16 * c, bf16), even[c]);
                odd[c] = _mm512_fmadd_ps(p1, load16m(m[c], v, v1 + 16 * c, bf16), odd[c]);
            }
        }
        if (t < n) {
            __m512 p0 = _mm512_set1_ps(p[t]);
            size_t v0 = (size_t)t * ldv + i0;
            for (int c = 0; c < 4; c++) even[c] = _mm512_fmadd_ps(p0, load16m(m[c], v, v0 + 16 * c, bf16), even[c]);
        }
        for (int c = 0; c < 4; c++) {
            __m512 sum = _mm512_add_ps(even[c], odd[c]);
            _mm512_mask_storeu_ps(out + i0 + 16 * c, m[c], _mm512_add_ps(_mm512_maskz_loadu_ps(m[c], out + i0 + 16 * c), sum));
        }
    }
    for (int i = vec; i < hd; i++) {
        float acc = 0.0f;
        for (int t = 0; t < n; t++) acc += p[t] * vgpt_kern_elem(v, (size_t)t * ldv + i, 1);
        out[i] += acc;
    }
}

VGPT_KERN_ATTENTION_ENTRIES(TARGET)

const vgpt_kernels vgpt_kernels_avx512 = {"avx512", VGPT_PANEL, panels, scores, mix, scores_bf16, mix_bf16,
                                        NULL /* rows_bf16: OpenBLAS (mm_own.c) */};
