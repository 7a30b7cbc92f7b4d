/* activations.c - the element-wise kernels: LayerNorm, GELU (both
 * variants) and softmax.
 *
 * Built with -ffast-math (see Makefile): it lets GCC call glibc's vectorised
 * erff / tanhf / expf (libmvec, <= 4 ulp), which makes the ViT's 12 x
 * 3072-wide GELUs ~10x cheaper than scalar libm calls, and lets it vectorise
 * the LayerNorm sums (reassociation; error ~1e-7 relative, as the tests and
 * the oracle check).  Nothing here may rely on inf or NaN semantics.
 *
 * The build has no -march (one binary for every x86-64 host), so each loop
 * is compiled three times (x86-64-v4 = AVX-512, v3 = AVX2 + FMA, baseline)
 * and the loader picks the clone the CPU runs: the wide libmvec variants
 * where the CPU has them. */
#include "kernels.h"

#include <float.h>
#include <math.h>
#include <stddef.h>

/* Large calls (the ViT's 1576-row batches) are split across OpenMP's
 * threads (vgpt_set_threads) by rows or chunks: each row or element is
 * computed exactly as it would be alone, so results do not depend on the
 * split.  Small calls (a decoding step's few rows, the packed kernels'
 * 16-wide GELUs on pool threads) stay on the calling thread. */
#define BIG (1 << 16) /* elements below which a call is not split */
#define CHUNK 4096    /* elements per GELU chunk */

VGPT_CLONES static void layernorm_rows(float *out, const float *inp, const float *scale, const float *shift,
                                       int n0, int n1, int C, float eps) {
    for (int n = n0; n < n1; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        /* two passes (mean, then squared deviations): no cancellation when
         * the mean is large; fast-math lets GCC vectorise the sums */
        float sum = 0.0f;
        for (int i = 0; i < C; i++) sum += x[i];
        float mean = sum / C;
        float var = 0.0f;
        for (int i = 0; i < C; i++) {
            float d = x[i] - mean;
            var += d * d;
        }
        float rstd = 1.0f / sqrtf(var / C + eps);
        for (int i = 0; i < C; i++) o[i] = (x[i] - mean) * rstd * scale[i] + shift[i];
    }
}

void vgpt_layernorm(float *out, const float *inp, const float *scale, const float *shift, int N, int C, float eps) {
    // inp, out are (N,C); scale, shift are (C)
    if ((size_t)N * C < BIG) {
        layernorm_rows(out, inp, scale, shift, 0, N, C, eps);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < (N + 15) / 16; b++)
        layernorm_rows(out, inp, scale, shift, 16 * b, 16 * b + 16 < N ? 16 * b + 16 : N, C, eps);
}

VGPT_CLONES static void gelu_erf_run(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

VGPT_CLONES static void gelu_tanh_run(float *x, size_t n) {
    const float s = 0.7978845608028654f; /* sqrt(2/pi) */
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(s * (v + 0.044715f * v * v * v)));
    }
}

VGPT_CLONES static void softmax_run(float *x, int r0, int r1, int cols, int causal_offset) {
    for (int r = r0; r < r1; r++) {
        float *row = x + (size_t)r * cols;
        int n = causal_offset >= 0 && causal_offset + r + 1 < cols ? causal_offset + r + 1 : cols;
        float mx = -FLT_MAX;
        for (int i = 0; i < n; i++) mx = row[i] > mx ? row[i] : mx;
        float sum = 0.0f;
        for (int i = 0; i < n; i++) {
            row[i] = expf(row[i] - mx);
            sum += row[i];
        }
        float inv = 1.0f / sum;
        for (int i = 0; i < n; i++) row[i] *= inv;
        for (int i = n; i < cols; i++) row[i] = 0.0f;
    }
}


/* fn over x in CHUNK pieces, split across threads when n is large. */
static void chunked(void (*fn)(float *, size_t), float *x, size_t n) {
    if (n < BIG) {
        fn(x, n);
        return;
    }
    long chunks = (long)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < chunks; c++) fn(x + (size_t)c * CHUNK, (size_t)c * CHUNK + CHUNK < n ? CHUNK : n - (size_t)c * CHUNK);
}

void vgpt_gelu_erf(float *x, size_t n) {
    chunked(gelu_erf_run, x, n);
}

void vgpt_gelu_tanh(float *x, size_t n) {
    chunked(gelu_tanh_run, x, n);
}

void vgpt_softmax_rows(float *x, int rows, int cols, int causal_offset) {
    if ((size_t)rows * cols < BIG) {
        softmax_run(x, 0, rows, cols, causal_offset);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int b = 0; b < (rows + 15) / 16; b++)
        softmax_run(x, 16 * b, 16 * b + 16 < rows ? 16 * b + 16 : rows, cols, causal_offset);
}
