/* kern_generic.c - the kernels in plain C, for any x86-64 (and the
 * reference the vector versions are tested against): the same sequential
 * sum over k per output as the vector kernels. */
#include "kern.h"

#include "half.h"
#include "kernels.h"

/* Element i of the panels, fp32, fp16 or bf16 (packed.h), widened exactly. */
static float weight(const vgpt_packed *w, size_t i) {
    return !w->h ? w->p[i] : w->h_bf16 ? vgpt_bf16_to_float(w->h[i]) : vgpt_half_to_float(w->h[i]);
}

static void panels(const vgpt_panel_job *j, int pn0, int pn1) {
    int C = j->w->C, OC = j->w->OC;
    for (int pn = pn0; pn < pn1; pn++) {
        size_t at = (size_t)pn * C * VGPT_PANEL;
        for (int m = 0; m < j->M; m++) {
            const float *x = j->inp + (size_t)m * C;
            for (int c = 0; c < VGPT_PANEL && pn * VGPT_PANEL + c < OC; c++) {
                int o = pn * VGPT_PANEL + c;
                float acc = 0.0f;
                for (int k = 0; k < C; k++) acc += x[k] * weight(j->w, at + (size_t)k * VGPT_PANEL + c);
                acc += j->w->bias ? j->w->bias[o] : 0.0f;
                float *dst = j->out + (size_t)m * OC + o;
                *dst = j->flags & VGPT_ACCUMULATE ? *dst + acc : acc;
                if (j->flags & VGPT_GELU_TANH) vgpt_gelu_tanh(dst, 1);
            }
        }
    }
}

static inline void scores_any(float *s, const float *q, const void *k, int ldk, int n, int hd, float scale, int bf16) {
    for (int t = 0; t < n; t++) {
        float acc = 0.0f;
        for (int i = 0; i < hd; i++) acc += q[i] * vgpt_kern_elem(k, (size_t)t * ldk + i, bf16);
        s[t] = scale * acc;
    }
}

static inline void mix_any(float *out, const float *p, const void *v, int ldv, int n, int hd, int bf16) {
    for (int i = 0; i < hd; i++) {
        float acc = 0.0f;
        for (int t = 0; t < n; t++) acc += p[t] * vgpt_kern_elem(v, (size_t)t * ldv + i, bf16);
        out[i] += acc;
    }
}

VGPT_KERN_ATTENTION_ENTRIES()

const vgpt_kernels vgpt_kernels_generic = {"generic", VGPT_PANEL, panels, scores, mix, scores_bf16, mix_bf16,
                                        NULL /* rows_bf16: OpenBLAS (mm_own.c) */};
