/* activations.c - GELU (both variants) and softmax.
 *
 * Built with -ffast-math (see Makefile) for one reason: it lets GCC call
 * glibc's vectorised erff / tanhf / expf (libmvec, <= 4 ulp), which makes
 * the ViT's 12 x 3072-wide GELUs ~10x cheaper than scalar libm calls.
 * Nothing here may rely on inf or NaN semantics. */
#include "kernels.h"

#include <float.h>
#include <math.h>

void vgpt_gelu_erf(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void vgpt_gelu_tanh(float *x, size_t n) {
    const float s = 0.7978845608028654f; /* sqrt(2/pi) */
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(s * (v + 0.044715f * v * v * v)));
    }
}

void vgpt_softmax_rows(float *x, int rows, int cols, const int *valid) {
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * cols;
        int n = valid ? valid[r] : cols;
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

