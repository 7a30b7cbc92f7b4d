/* linear.c - vgpt_lin_forward (linear.h). */
#include "linear.h"

#include "kernels.h"

void vgpt_lin_forward(float *out, const float *inp, const vgpt_lin *l, int N, int flags) {
    if (l->mm) {
        vgpt_mm_run(l->mm, out, inp, N, flags);
        return;
    }
    vgpt_linear(out, inp, l->w, l->b, N, l->in, l->out, flags & VGPT_ACCUMULATE);
    if (flags & VGPT_GELU_ERF) vgpt_gelu_erf(out, (size_t)N * l->out);
}

void vgpt_lin_mlp(float *out, const float *inp, const vgpt_lin *fc1, const vgpt_lin *fc2, float *hidden, int N,
                  int flags1, int flags2) {
    if (fc1->mm && fc2->mm) {
        vgpt_mm_mlp(fc1->mm, fc2->mm, out, inp, hidden, N, flags1, flags2);
        return;
    }
    vgpt_lin_forward(hidden, inp, fc1, N, flags1);
    vgpt_lin_forward(out, hidden, fc2, N, flags2);
}
