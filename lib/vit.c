/* vit.c - ViT-B/16 forward pass: patch GEMM, 12 pre-norm layers, final LN.
 * Exact (erf) GELU; LayerNorm eps 1e-6 as torchvision builds it, or the
 * model's own (HF ViT: 1e-12).  HF's ViTModel is the same graph; its
 * decoder reads every token, the class token included (v->keep_class). */
#include "vit.h"

#include <string.h>

#include "kernels.h"
#include "linear.h"

#define VIT_EPS 1e-6f

static float eps_of(const vgpt_vit *v) { return v->eps > 0 ? v->eps : VIT_EPS; }

/* pixels (N,3,S,S) -> patches (N*G*G, 3*P*P), each row in the conv weight's
 * (c, ky, kx) order so the convolution is one GEMM. */
static void im2col(float *patches, const float *pixels, int N, int G, int P) {
    int S = G * P;
    for (int n = 0; n < N; n++)
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++) {
                float *row = patches + ((size_t)(n * G + gy) * G + gx) * 3 * P * P;
                for (int c = 0; c < 3; c++)
                    for (int ky = 0; ky < P; ky++) {
                        const float *src = pixels + (((size_t)n * 3 + c) * S + gy * P + ky) * S + gx * P;
                        memcpy(row + (c * P + ky) * P, src, P * sizeof(float));
                    }
            }
}

// x is (N*T, D): x = x + MHA(ln_1(x)); x = x + MLP(ln_2(x))
static void vit_layer(const vgpt_vit *v, const vgpt_vit_layer *L, float *x, int N, int T, vgpt_vit_ws *ws) {
    int D = v->width, H = v->n_heads, hd = D / H, rows = N * T;
    float *xn = ws->xn.p, *qkv = ws->wide.p, *att = ws->att.p, *hid = ws->wide.p; /* q/k/v are spent when hid is written */
    vgpt_layernorm(xn, x, L->ln1.scale, L->ln1.shift, rows, D, eps_of(v));
    if (L->qkv.mm) { /* bf16: q, k, v go from the product to the attention in bf16 */
        vgpt_mm_self_attention(L->qkv.mm, att, D, xn, qkv, N, T, H, hd);
    } else {
        vgpt_lin_forward(qkv, xn, &L->qkv, rows, 0);
        for (int n = 0; n < N; n++) {
            const float *q = qkv + (size_t)n * T * 3 * D;
            vgpt_attention(att + (size_t)n * T * D, D, q, 3 * D, q + D, 3 * D, q + 2 * D, 3 * D, T, T, H, hd, -1,
                           ws->scratch.p);
        }
    }
    vgpt_lin_forward(x, att, &L->proj, rows, VGPT_ACCUMULATE);
    vgpt_layernorm(xn, x, L->ln2.scale, L->ln2.shift, rows, D, eps_of(v));
    vgpt_lin_mlp(x, xn, &L->fc1, &L->fc2, hid, rows, VGPT_GELU_ERF, VGPT_ACCUMULATE);
}

static int reserve(const vgpt_vit *v, int N, vgpt_vit_ws *ws) {
    int D = v->width, GG = v->grid * v->grid, T = GG + 1;
    size_t rows = (size_t)N * T;
    size_t wide = rows * (v->layers[0].fc1.out > 3 * D ? v->layers[0].fc1.out : 3 * D);
    if ((size_t)N * GG * v->patch_embed.in > wide) wide = (size_t)N * GG * v->patch_embed.in;
    return vgpt_buf_get(&ws->x, rows * D) && vgpt_buf_get(&ws->xn, rows * D) && vgpt_buf_get(&ws->wide, wide) &&
           vgpt_buf_get(&ws->att, rows * D) && vgpt_buf_get(&ws->scratch, (size_t)T * T);
}

int vgpt_vit_forward(const vgpt_vit *v, const float *pixels, int N, float *out, vgpt_vit_ws *ws) {
    // pixels is (N,3,S,S), out is (N,G*G,D), or (N,1+G*G,D) with keep_class
    int D = v->width, GG = v->grid * v->grid, T = GG + 1, K = v->keep_class ? T : GG;
    if (!reserve(v, N, ws)) return -1;
    float *x = ws->x.p, *emb = ws->xn.p;
    im2col(ws->wide.p, pixels, N, v->grid, v->patch);
    vgpt_lin_forward(emb, ws->wide.p, &v->patch_embed, N * GG, 0);
    for (int n = 0; n < N; n++) {
        float *xs = x + (size_t)n * T * D;
        for (int i = 0; i < D; i++) xs[i] = v->class_token[i] + v->pos_embed[i];
        for (int p = 0; p < GG; p++) {
            const float *e = emb + ((size_t)n * GG + p) * D, *pe = v->pos_embed + (size_t)(1 + p) * D;
            float *o = xs + (size_t)(1 + p) * D;
            for (int i = 0; i < D; i++) o[i] = e[i] + pe[i];
        }
    }
    for (int l = 0; l < v->n_layers; l++) vit_layer(v, &v->layers[l], x, N, T, ws);
    for (int n = 0; n < N; n++)
        vgpt_layernorm(out + (size_t)n * K * D, x + ((size_t)n * T + T - K) * D, v->ln_final.scale,
                       v->ln_final.shift, K, D, eps_of(v));
    return 0;
}

void vgpt_vit_ws_free(vgpt_vit_ws *ws) {
    vgpt_buf *bufs[] = {&ws->x, &ws->xn, &ws->wide, &ws->att, &ws->scratch};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vgpt_buf_free(bufs[i]);
}
