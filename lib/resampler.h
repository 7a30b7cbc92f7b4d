/* resampler.h - the Perceiver resampler: 196 media tokens -> L visual tokens. */
#ifndef VGPT_RESAMPLER_H
#define VGPT_RESAMPLER_H

#include "arena.h"
#include "model.h"

typedef struct vgpt_resampler_ws {
    vgpt_buf mn, kv, xn, q, att, hidden, scratch;
} vgpt_resampler_ws;

/* media (N,M,D) -> out (N,L,D).  Returns -1 only when scratch memory runs out. */
int vgpt_resampler_forward(const vgpt_resampler *r, const float *media, int N, int M, float *out,
                           vgpt_resampler_ws *ws);
void vgpt_resampler_ws_free(vgpt_resampler_ws *ws);

#endif
