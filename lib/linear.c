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
