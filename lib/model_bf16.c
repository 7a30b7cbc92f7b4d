/* model_bf16.c - --precision bf16: every Linear of the encoder (and the
 * decoder's cross-attention K/V projections, which run once per image) is
 * converted into a bf16 weight (mm.h) at load, and its fp32 form dropped,
 * so the process holds each weight once, in half the bytes.  The decoder's
 * per-step weights are converted where they are packed (model_pack.c). */
#include "model.h"

/* The Linear as a bf16 weight; its fp32 form dropped. */
static int to_bf16(vgpt_model *m, vgpt_lin *l, const char *what, int i, vgpt_err *err) {
    if (vgpt_model_widen(m, &l->w, err)) return -1;
    if (!l->w) return 0; /* absent (an identity projection) */
    const float *w = l->w, *b = l->b;
    l->mm = vgpt_mm_new(m->mm_ctx, l->in, 1, &w, &b, &l->out, err);
    if (!l->mm) return vgpt_err_prefix(err, "%s: %s %d", vgpt_ckpt_path(m->ckpt), what, i);
    vgpt_model_drop_weight(m, &l->w, (size_t)l->out * l->in);
    return 0;
}

static int vit_to_bf16(vgpt_model *m, vgpt_err *err) {
    vgpt_vit *v = &m->vit;
    if (to_bf16(m, &v->patch_embed, "vision patch embedding", 0, err)) return -1;
    for (int l = 0; l < v->n_layers; l++) {
        vgpt_vit_layer *L = &v->layers[l];
        vgpt_lin *all[] = {&L->qkv, &L->proj, &L->fc1, &L->fc2};
        for (int i = 0; i < 4; i++)
            if (to_bf16(m, all[i], "vision layer", l, err)) return -1;
    }
    return to_bf16(m, &m->project, "vision projection", 0, err);
}

static int resampler_to_bf16(vgpt_model *m, vgpt_err *err) {
    for (int l = 0; l < m->rs.depth; l++) {
        vgpt_resampler_layer *L = &m->rs.layers[l];
        vgpt_lin *all[] = {&L->to_q, &L->to_kv, &L->proj_out, &L->fc1, &L->fc2};
        for (int i = 0; i < 5; i++)
            if (to_bf16(m, all[i], "resampler layer", l, err)) return -1;
    }
    return 0;
}

int vgpt_model_to_bf16(vgpt_model *m, int parts, vgpt_err *err) {
    if (parts & VGPT_LOAD_ENCODER) {
        m->vit.mm_ctx = m->rs.mm_ctx = m->mm_ctx;
        if (vit_to_bf16(m, err) || resampler_to_bf16(m, err)) return -1;
    }
    if (!(parts & VGPT_LOAD_DECODER)) return 0;
    for (int j = 0; j < m->gpt.n_blocks; j++) {
        vgpt_block *blk = &m->gpt.blocks[j];
        if (blk->is_cross && (to_bf16(m, &blk->k, "cross block", j, err) || to_bf16(m, &blk->v, "cross block", j, err)))
            return -1;
        if (blk->in_cross && (to_bf16(m, &blk->xk, "block cross-attention", j, err) ||
                              to_bf16(m, &blk->xv, "block cross-attention", j, err)))
            return -1;
    }
    return 0;
}

void vgpt_model_free_bf16(vgpt_model *m) {
    vgpt_lin *all[4 * VGPT_MAX_LAYERS + 8 * 5 + 2 + 4 * VGPT_MAX_LAYERS];
    int n = 0;
    all[n++] = &m->vit.patch_embed;
    all[n++] = &m->project;
    for (int l = 0; l < m->vit.n_layers; l++) {
        vgpt_vit_layer *L = &m->vit.layers[l];
        all[n++] = &L->qkv, all[n++] = &L->proj, all[n++] = &L->fc1, all[n++] = &L->fc2;
    }
    for (int l = 0; l < m->rs.depth; l++) {
        vgpt_resampler_layer *L = &m->rs.layers[l];
        all[n++] = &L->to_q, all[n++] = &L->to_kv, all[n++] = &L->proj_out, all[n++] = &L->fc1, all[n++] = &L->fc2;
    }
    for (int j = 0; j < m->gpt.n_blocks; j++) {
        vgpt_block *blk = &m->gpt.blocks[j];
        all[n++] = &blk->k, all[n++] = &blk->v, all[n++] = &blk->xk, all[n++] = &blk->xv;
    }
    for (int i = 0; i < n; i++) {
        vgpt_mm_free(all[i]->mm);
        all[i]->mm = NULL;
    }
}
