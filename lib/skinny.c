/* skinny.c - out (M,OC) = inp (M,C) @ W (OC,C)^T for M <= 16 rows.
 *
 * The decoder multiplies 1..16 hidden states by every weight matrix each
 * step: the product is bound by streaming W from memory, and OpenBLAS's
 * sgemm packs W first (3-8x slower at these shapes) while sgemv handles one
 * row only.  Here each W row is loaded once and multiplied into all M inputs
 * (which stay in L1/L2), and the OC rows are split across the pool. */
#include "kernels.h"

#include <immintrin.h>
#include <stdatomic.h>

#include "pool.h"

typedef struct skinny_job {
    float *out;
    const float *inp, *w, *bias;
    int M, C, OC, accumulate;
    _Atomic int next; /* next chunk of rows to take */
} skinny_job;

/* Rows per chunk: threads take chunks until none are left, so a thread that
 * starts late (or is descheduled by another process) costs little. */
#define CHUNK 64

#ifdef __AVX512F__
static inline void store(const skinny_job *j, int m, int o, float v) {
    float *dst = j->out + (size_t)m * j->OC + o;
    v += j->bias ? j->bias[o] : 0.0f;
    *dst = j->accumulate ? *dst + v : v;
}

/* One W row against inputs m0..m0+M-1; M is a compile-time constant after inlining. */
static inline __attribute__((always_inline)) void row_dot(const skinny_job *j, int o, int m0, int M) {
    __m512 acc[16];
    const float *wr = j->w + (size_t)o * j->C, *x = j->inp + (size_t)m0 * j->C;
    for (int m = 0; m < M; m++) acc[m] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= j->C; k += 16) {
        __m512 wv = _mm512_loadu_ps(wr + k);
        for (int m = 0; m < M; m++) acc[m] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + (size_t)m * j->C + k), acc[m]);
    }
    if (k < j->C) {
        __mmask16 mask = (__mmask16)((1u << (j->C - k)) - 1);
        __m512 wv = _mm512_maskz_loadu_ps(mask, wr + k);
        for (int m = 0; m < M; m++)
            acc[m] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(mask, x + (size_t)m * j->C + k), acc[m]);
    }
    for (int m = 0; m < M; m++) store(j, m0 + m, o, _mm512_reduce_add_ps(acc[m]));
}

/* 4 W rows x 4 inputs: 16 accumulators, 8 loads per 16 FMAs, so larger
 * batches stay compute-bound on the FMA units instead of the load ports. */
static void tile4x4(const skinny_job *j, int o, int m0) {
    __m512 acc[4][4];
    const float *w[4], *x[4];
    for (int r = 0; r < 4; r++) {
        w[r] = j->w + (size_t)(o + r) * j->C;
        x[r] = j->inp + (size_t)(m0 + r) * j->C;
        for (int i = 0; i < 4; i++) acc[r][i] = _mm512_setzero_ps();
    }
    int k = 0;
    __mmask16 mask = 0xffff;
    for (; k < j->C; k += 16) {
        if (k + 16 > j->C) mask = (__mmask16)((1u << (j->C - k)) - 1);
        __m512 wv[4], xv[4];
        for (int r = 0; r < 4; r++) wv[r] = _mm512_maskz_loadu_ps(mask, w[r] + k);
        for (int i = 0; i < 4; i++) xv[i] = _mm512_maskz_loadu_ps(mask, x[i] + k);
        for (int r = 0; r < 4; r++)
            for (int i = 0; i < 4; i++) acc[r][i] = _mm512_fmadd_ps(wv[r], xv[i], acc[r][i]);
    }
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 4; i++) store(j, m0 + i, o + r, _mm512_reduce_add_ps(acc[r][i]));
}

static void row_dot_any(const skinny_job *j, int o, int m0, int M) {
    switch (M) {
    case 1: row_dot(j, o, m0, 1); break;
    case 2: row_dot(j, o, m0, 2); break;
    case 3: row_dot(j, o, m0, 3); break;
    default:
        for (int m = m0; m < m0 + M; m += 4) row_dot_any(j, o, m, m0 + M - m < 4 ? m0 + M - m : 4);
        break;
    case 4: row_dot(j, o, m0, 4); break;
    }
}

static void rows(const skinny_job *j, int lo, int hi) {
    int M = j->M, M4 = M / 4 * 4, o = lo;
    if (M4 == 0) {
        for (; o < hi; o++) row_dot_any(j, o, 0, M);
        return;
    }
    for (; o + 4 <= hi; o += 4) {
        for (int m0 = 0; m0 < M4; m0 += 4) tile4x4(j, o, m0);
        for (int r = 0; r < 4 && M4 < M; r++) row_dot_any(j, o + r, M4, M - M4);
    }
    for (; o < hi; o++) row_dot_any(j, o, 0, M);
}
#else
/* Portable fallback: the compiler vectorises the inner dot product. */
static void rows(const skinny_job *j, int lo, int hi) {
    for (int o = lo; o < hi; o++) {
        const float *wr = j->w + (size_t)o * j->C;
        for (int m = 0; m < j->M; m++) {
            const float *x = j->inp + (size_t)m * j->C;
            float acc = j->bias ? j->bias[o] : 0.0f;
            for (int k = 0; k < j->C; k++) acc += wr[k] * x[k];
            float *dst = j->out + (size_t)m * j->OC + o;
            *dst = j->accumulate ? *dst + acc : acc;
        }
    }
}
#endif

static void skinny_part(void *arg, int part, int n_parts) {
    (void)part;
    (void)n_parts;
    skinny_job *j = arg;
    int lo;
    while ((lo = atomic_fetch_add_explicit(&j->next, CHUNK, memory_order_relaxed)) < j->OC)
        rows(j, lo, lo + CHUNK < j->OC ? lo + CHUNK : j->OC);
}

void vgpt_linear_skinny(float *out, const float *inp, const float *weight, const float *bias, int M, int C, int OC,
                        int accumulate, vgpt_pool *pool) {
    // inp is (M,C) with M <= 16, weight is (OC,C), out is (M,OC)
    skinny_job j = {out, inp, weight, bias, M, C, OC, accumulate, 0};
    if (OC <= CHUNK) pool = NULL; /* not worth waking anyone */
    vgpt_pool_run(pool, skinny_part, &j);
}
