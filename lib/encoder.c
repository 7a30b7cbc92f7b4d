/* encoder.c - ViT -> (projection) -> resampler (or no bridge: the ViT's
 * tokens themselves, HF ViT-GPT2), batched over N images. */
#include "encoder.h"

#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "linear.h"
#include "resampler.h"
#include "vit.h"

struct vgpt_encoder {
    const vgpt_model *m;
    vgpt_vit_ws vit_ws;
    vgpt_resampler_ws rs_ws;
    vgpt_buf media, projected;
};

int vgpt_encoder_new(const vgpt_model *m, vgpt_encoder **out, vgpt_err *err) {
    if (!m->vit.n_layers) return vgpt_err_set(err, "encoder: the model was loaded without its vision part");
    *out = calloc(1, sizeof **out);
    if (!*out) return vgpt_err_set(err, "encoder: out of memory");
    (*out)->m = m;
    return 0;
}

void vgpt_encoder_free(vgpt_encoder *e) {
    if (!e) return;
    vgpt_vit_ws_free(&e->vit_ws);
    vgpt_resampler_ws_free(&e->rs_ws);
    vgpt_buf_free(&e->media);
    vgpt_buf_free(&e->projected);
    free(e);
}

int vgpt_encoder_image_size(const vgpt_encoder *e) { return e->m->vit.image; }
/* Without a bridge the tokens are the ViT's (through the projection, if any). */
static int vit_tokens(const vgpt_vit *v) { return v->grid * v->grid + (v->keep_class != 0); }
static int no_bridge(const vgpt_model *m) { return m->family->bridge == VGPT_BRIDGE_NONE; }

int vgpt_encoder_n_tokens(const vgpt_encoder *e) { return no_bridge(e->m) ? vit_tokens(&e->m->vit) : e->m->rs.n_latents; }
int vgpt_encoder_width(const vgpt_encoder *e) {
    const vgpt_model *m = e->m;
    if (!no_bridge(m)) return m->rs.width;
    return vgpt_lin_present(&m->project) ? m->project.out : m->vit.width;
}

/* N images' pixels -> their tokens; bf16 takes one image a pass
 * (vgpt_precision_images_per_pass: its tokens are its own, bit for bit). */
static int encode_pass(vgpt_encoder *e, const float *pixels, int N, float *tokens) {
    const vgpt_model *m = e->m;
    int M = vit_tokens(&m->vit), Dv = m->vit.width, D = vgpt_encoder_width(e);
    float *media = vgpt_buf_get(&e->media, (size_t)N * M * Dv);
    if (!media || vgpt_vit_forward(&m->vit, pixels, N, media, &e->vit_ws)) return -1;
    if (vgpt_lin_present(&m->project)) {
        float *p = vgpt_buf_get(&e->projected, (size_t)N * M * D);
        if (!p) return -1;
        vgpt_lin_forward(p, media, &m->project, N * M, 0);
        media = p;
    }
    if (no_bridge(m)) { /* the tokens are the (projected) ViT states */
        memcpy(tokens, media, (size_t)N * M * D * sizeof(float));
        return 0;
    }
    return vgpt_resampler_forward(&m->rs, media, N, M, tokens, &e->rs_ws);
}

int vgpt_encode(vgpt_encoder *e, const float *pixels, int N, float *tokens, vgpt_err *err) {
    const vgpt_model *m = e->m;
    size_t plane = (size_t)3 * m->vit.image * m->vit.image;
    size_t per = (size_t)vgpt_encoder_n_tokens(e) * vgpt_encoder_width(e);
    for (int n = 0, pass = vgpt_precision_images_per_pass(m->precision, N); n < N; n += pass)
        if (encode_pass(e, pixels + n * plane, N - n < pass ? N - n : pass, tokens + n * per))
            return vgpt_err_set(err, "encoder: out of memory for a batch of %d images", N);
    return m->mm_ctx ? vgpt_mm_ctx_check(m->mm_ctx, err) : 0;
}
