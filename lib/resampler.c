/* resampler.c - Perceiver resampler forward (LayerNorm eps 1e-5, erf GELU).
 * Unlike Flamingo's original, the latents attend to the media only (the
 * media is not concatenated with the latents), and there is no final norm. */
#include "resampler.h"

#include <string.h>

#include "kernels.h"
#include "linear.h"

#define RS_EPS 1e-5f

// x is (N*L, D) latents, media is (N*M, D)
static void resampler_layer(const vgpt_resampler *r, const vgpt_resampler_layer *Ly, float *x, const float *media,
                            int N, int M, vgpt_resampler_ws *ws) {
    int D = r->width, L = r->n_latents, inner = r->n_heads * r->head_dim;
    float *mn = ws->mn.p, *kv = ws->kv.p, *xn = ws->xn.p, *q = ws->q.p, *att = ws->att.p, *hid = ws->hidden.p;
    vgpt_layernorm(mn, media, Ly->norm_media.scale, Ly->norm_media.shift, N * M, D, RS_EPS);
    vgpt_lin_forward(kv, mn, &Ly->to_kv, N * M, 0);
    vgpt_layernorm(xn, x, Ly->norm_latent.scale, Ly->norm_latent.shift, N * L, D, RS_EPS);
    vgpt_lin_forward(q, xn, &Ly->to_q, N * L, 0);
    if (r->mm_ctx)
        vgpt_mm_attention(r->mm_ctx, att, inner, q, inner, kv, 2 * inner, kv + inner, 2 * inner, N, L, M, r->n_heads,
                          r->head_dim);
    else
        for (int n = 0; n < N; n++) {
            const float *k = kv + (size_t)n * M * 2 * inner;
            vgpt_attention(att + (size_t)n * L * inner, inner, q + (size_t)n * L * inner, inner, k, 2 * inner,
                           k + inner, 2 * inner, L, M, r->n_heads, r->head_dim, -1, ws->scratch.p);
        }
    vgpt_lin_forward(x, att, &Ly->proj_out, N * L, VGPT_ACCUMULATE);
    vgpt_layernorm(xn, x, Ly->mlp_ln.scale, Ly->mlp_ln.shift, N * L, D, RS_EPS);
    vgpt_lin_mlp(x, xn, &Ly->fc1, &Ly->fc2, hid, N * L, VGPT_GELU_ERF, VGPT_ACCUMULATE);
}

int vgpt_resampler_forward(const vgpt_resampler *r, const float *media, int N, int M, float *out,
                           vgpt_resampler_ws *ws) {
    // media is (N,M,D), out is (N,L,D)
    int D = r->width, L = r->n_latents, inner = r->n_heads * r->head_dim;
    size_t NL = (size_t)N * L, NM = (size_t)N * M;
    if (!vgpt_buf_get(&ws->mn, NM * D) || !vgpt_buf_get(&ws->kv, NM * 2 * inner) ||
        !vgpt_buf_get(&ws->xn, NL * D) || !vgpt_buf_get(&ws->q, NL * inner) || !vgpt_buf_get(&ws->att, NL * inner) ||
        !vgpt_buf_get(&ws->hidden, NL * r->layers[0].fc1.out) || !vgpt_buf_get(&ws->scratch, (size_t)L * M))
        return -1;
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * L * D, r->latents, (size_t)L * D * sizeof(float));
    for (int d = 0; d < r->depth; d++) resampler_layer(r, &r->layers[d], out, media, N, M, ws);
    return 0;
}

void vgpt_resampler_ws_free(vgpt_resampler_ws *ws) {
    vgpt_buf *bufs[] = {&ws->mn, &ws->kv, &ws->xn, &ws->q, &ws->att, &ws->hidden, &ws->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vgpt_buf_free(bufs[i]);
}
