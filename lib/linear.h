/* linear.h - a bound Linear layer applied in whichever form its weight is
 * held: fp32 (OpenBLAS, kernels.h) or bf16 (mm.h). */
#ifndef VGPT_LINEAR_H
#define VGPT_LINEAR_H

#include "model.h"

/* out (N,l->out) = inp (N,l->in) @ W^T + b; flags: VGPT_ACCUMULATE,
 * VGPT_GELU_ERF (packed.h). */
void vgpt_lin_forward(float *out, const float *inp, const vgpt_lin *l, int N, int flags);

/* An MLP: hidden (N, fc1->out) = fc1(inp) with flags1, then out = fc2(hidden)
 * with flags2; in bf16 the hidden state is handed over in bf16 (mm.h). */
void vgpt_lin_mlp(float *out, const float *inp, const vgpt_lin *fc1, const vgpt_lin *fc2, float *hidden, int N,
                  int flags1, int flags2);

/* 1 if the layer exists (bound, in either form). */
static inline int vgpt_lin_present(const vgpt_lin *l) {
    return l->w || l->mm;
}

#endif
