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
 * batches stay compute-bound on the FMA units instead of the load ports.
 * The accumulators are named scalars, not an array: GCC spills an array of
 * vectors to the stack on every iteration. */
#define TILE_STEP(mask)                                                                                   \
    do {                                                                                                  \
        __m512 w0 = _mm512_maskz_loadu_ps(mask, w[0] + k), w1 = _mm512_maskz_loadu_ps(mask, w[1] + k);    \
        __m512 w2 = _mm512_maskz_loadu_ps(mask, w[2] + k), w3 = _mm512_maskz_loadu_ps(mask, w[3] + k);    \
        __m512 x0 = _mm512_maskz_loadu_ps(mask, x[0] + k), x1 = _mm512_maskz_loadu_ps(mask, x[1] + k);    \
        __m512 x2 = _mm512_maskz_loadu_ps(mask, x[2] + k), x3 = _mm512_maskz_loadu_ps(mask, x[3] + k);    \
        a00 = _mm512_fmadd_ps(w0, x0, a00); a01 = _mm512_fmadd_ps(w0, x1, a01);                           \
        a02 = _mm512_fmadd_ps(w0, x2, a02); a03 = _mm512_fmadd_ps(w0, x3, a03);                           \
        a10 = _mm512_fmadd_ps(w1, x0, a10); a11 = _mm512_fmadd_ps(w1, x1, a11);                           \
        a12 = _mm512_fmadd_ps(w1, x2, a12); a13 = _mm512_fmadd_ps(w1, x3, a13);                           \
        a20 = _mm512_fmadd_ps(w2, x0, a20); a21 = _mm512_fmadd_ps(w2, x1, a21);                           \
        a22 = _mm512_fmadd_ps(w2, x2, a22); a23 = _mm512_fmadd_ps(w2, x3, a23);                           \
        a30 = _mm512_fmadd_ps(w3, x0, a30); a31 = _mm512_fmadd_ps(w3, x1, a31);                           \
        a32 = _mm512_fmadd_ps(w3, x2, a32); a33 = _mm512_fmadd_ps(w3, x3, a33);                           \
    } while (0)

static void tile4x4(const skinny_job *j, int o, int m0) {
    const float *w[4], *x[4];
    for (int r = 0; r < 4; r++) {
        w[r] = j->w + (size_t)(o + r) * j->C;
        x[r] = j->inp + (size_t)(m0 + r) * j->C;
    }
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    __m512 a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    int k = 0;
    if (m0 == 0) {
        /* first pass over this W block (4 contiguous rows): pull the next
         * block towards L2 meanwhile, so DRAM streaming overlaps the FMAs */
        const float *next = j->w + (size_t)(o + 4) * j->C;
        for (; k + 16 <= j->C; k += 16) {
            for (int p = 0; p < 64; p += 16) _mm_prefetch((const char *)(next + 4 * k + p), _MM_HINT_T1);
            TILE_STEP((__mmask16)0xffff);
        }
    }
    for (; k + 16 <= j->C; k += 16) TILE_STEP((__mmask16)0xffff);
    if (k < j->C) TILE_STEP((__mmask16)((1u << (j->C - k)) - 1));
    store(j, m0 + 0, o + 0, _mm512_reduce_add_ps(a00)); store(j, m0 + 1, o + 0, _mm512_reduce_add_ps(a01));
    store(j, m0 + 2, o + 0, _mm512_reduce_add_ps(a02)); store(j, m0 + 3, o + 0, _mm512_reduce_add_ps(a03));
    store(j, m0 + 0, o + 1, _mm512_reduce_add_ps(a10)); store(j, m0 + 1, o + 1, _mm512_reduce_add_ps(a11));
    store(j, m0 + 2, o + 1, _mm512_reduce_add_ps(a12)); store(j, m0 + 3, o + 1, _mm512_reduce_add_ps(a13));
    store(j, m0 + 0, o + 2, _mm512_reduce_add_ps(a20)); store(j, m0 + 1, o + 2, _mm512_reduce_add_ps(a21));
    store(j, m0 + 2, o + 2, _mm512_reduce_add_ps(a22)); store(j, m0 + 3, o + 2, _mm512_reduce_add_ps(a23));
    store(j, m0 + 0, o + 3, _mm512_reduce_add_ps(a30)); store(j, m0 + 1, o + 3, _mm512_reduce_add_ps(a31));
    store(j, m0 + 2, o + 3, _mm512_reduce_add_ps(a32)); store(j, m0 + 3, o + 3, _mm512_reduce_add_ps(a33));
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
