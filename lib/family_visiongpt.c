/* family_visiongpt.c - the published Vision-GPT (model-spec.md): torchvision
 * ViT-B/16 keys under vision.encoder.model., the Perceiver resampler as the
 * bridge, GPT-2 blocks with separate cross-attention blocks in trf_blocks,
 * its config.json, ImageNet normalisation, <|endoftext|> as BOS and EOS.
 *
 * Nothing about the layout is hard-coded beyond the key names: depths are
 * found by probing keys, widths by shapes, and every tensor's shape is
 * checked before it is used, so a checkpoint of the wrong model fails with
 * the tensor's name and the expected shape. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "family.h"
#include "model_bind.h"

#define VIT "vision.encoder.model."
#define VITL VIT "encoder.layers.encoder_layer_%d"

static void bind_vit_layer(vgpt_binder *b, vgpt_vit_layer *L, int i, int D) {
    char p[192], q[256];
    snprintf(p, sizeof p, VITL, i);
    vgpt_bind_ln(b, &L->ln1, D, p, "ln_1.weight", "ln_1.bias");
    vgpt_bind_ln(b, &L->ln2, D, p, "ln_2.weight", "ln_2.bias");
    L->qkv.in = D;
    L->qkv.out = 3 * D;
    vgpt_bind_matrix(b, &L->qkv.w, 3 * D, D, "%s.self_attention.in_proj_weight", p);
    L->qkv.b = vgpt_bind_get1(b, 3 * D, "%s.self_attention.in_proj_bias", p);
    snprintf(q, sizeof q, "%s.self_attention.out_proj", p);
    vgpt_bind_lin(b, &L->proj, D, D, 1, q);
    /* older torchvision releases name the MLP linear_1 / linear_2 */
    int old = vgpt_bind_has(b, "%s.mlp.linear_1.weight", p);
    snprintf(q, sizeof q, old ? "%s.mlp.linear_1" : "%s.mlp.0", p);
    int hidden = vgpt_bind_rows(b, q);
    vgpt_bind_lin(b, &L->fc1, hidden ? hidden : 4 * D, D, 1, q);
    snprintf(q, sizeof q, old ? "%s.mlp.linear_2" : "%s.mlp.3", p);
    vgpt_bind_lin(b, &L->fc2, D, L->fc1.out, 1, q);
}

static void bind_vit(vgpt_binder *b, const vgpt_config *cfg) {
    vgpt_vit *v = &b->m->vit;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    const vgpt_tensor *conv = vgpt_bind_find(b, VIT "conv_proj.weight");
    const vgpt_tensor *pos = vgpt_bind_find(b, VIT "encoder.pos_embedding");
    if (!conv || conv->ndim != 4 || conv->shape[1] != 3 || conv->shape[2] != conv->shape[3]) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensor " VIT "conv_proj.weight is missing or not [width,3,P,P]", path);
        return;
    }
    v->width = (int)conv->shape[0];
    v->patch = (int)conv->shape[2];
    int D = v->width;
    int64_t n_pos = pos && pos->ndim == 3 && pos->shape[0] == 1 && pos->shape[2] == D ? pos->shape[1] : 0;
    v->grid = 0;
    while ((int64_t)(v->grid + 1) * (v->grid + 1) + 1 <= n_pos) v->grid++;
    if (n_pos == 0 || (int64_t)v->grid * v->grid + 1 != n_pos) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensor " VIT "encoder.pos_embedding is missing or not [1,1+G*G,%d]", path, D);
        return;
    }
    v->image = v->grid * v->patch;
    v->n_heads = cfg->vision_num_heads > 0 ? cfg->vision_num_heads : D / 64;
    if (v->n_heads <= 0 || D % v->n_heads) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: vision width %d is not divisible into %d heads (set vision_num_heads in config.json)",
                     path, D, v->n_heads);
        return;
    }
    /* [D,3,P,P] row-major is exactly (D, 3*P*P): the conv becomes one GEMM over im2col patches */
    v->patch_embed.in = 3 * v->patch * v->patch;
    v->patch_embed.out = D;
    v->patch_embed.w = vgpt_bind_materialize(b, conv);
    v->patch_embed.b = vgpt_bind_get1(b, D, VIT "conv_proj.bias");
    v->class_token = vgpt_bind_numel(b, VIT "class_token", D, "[1,1,width]");
    v->pos_embed = vgpt_bind_materialize(b, pos);
    v->n_layers = 0;
    while (v->n_layers < VGPT_MAX_LAYERS && vgpt_bind_has(b, VITL ".ln_1.weight", v->n_layers)) v->n_layers++;
    if (v->n_layers == 0) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: missing tensor " VITL ".ln_1.weight (no ViT layers)", path, 0);
        return;
    }
    for (int i = 0; i < v->n_layers && !b->failed; i++) bind_vit_layer(b, &v->layers[i], i, D);
    vgpt_bind_ln(b, &v->ln_final, D, VIT "encoder.ln", "weight", "bias");
}

#define RS "vision.resampler."

static int bind_heads(vgpt_binder *b, const vgpt_config *cfg, int q_rows) {
    vgpt_resampler *r = &b->m->rs;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    r->n_heads = cfg->perceiver_heads;
    r->head_dim = cfg->perceiver_dim_head;
    if (r->n_heads <= 0 && r->head_dim <= 0) r->head_dim = 64;
    if (r->n_heads <= 0 && r->head_dim > 0) r->n_heads = q_rows / r->head_dim;
    if (r->head_dim <= 0 && r->n_heads > 0) r->head_dim = q_rows / r->n_heads;
    if (r->n_heads <= 0 || r->head_dim <= 0 || r->n_heads * r->head_dim != q_rows) {
        b->failed = 1;
        /* say which setting is missing and where it would come from, never "-1" */
        if (cfg->perceiver_heads <= 0 && cfg->perceiver_dim_head <= 0)
            return vgpt_err_set(b->err, "%s: cannot tell the resampler's attention heads: " RS "to_q.0.weight has %d "
                                "rows, not a multiple of the default head size 64, and perceiver_heads and "
                                "perceiver_dim_head are not set (%s)", path, q_rows,
                                cfg->path[0] ? "config.json sets neither" : "there is no config.json beside the checkpoint");
        char h[24] = "not set", d[24] = "not set";
        if (cfg->perceiver_heads > 0) snprintf(h, sizeof h, "%d", cfg->perceiver_heads);
        if (cfg->perceiver_dim_head > 0) snprintf(d, sizeof d, "%d", cfg->perceiver_dim_head);
        return vgpt_err_set(b->err, "%s: " RS "to_q.0.weight has %d rows, not perceiver_heads x perceiver_dim_head (%s x %s)",
                            path, q_rows, h, d);
    }
    return 0;
}

static void bind_resampler(vgpt_binder *b, const vgpt_config *cfg) {
    vgpt_resampler *r = &b->m->rs;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    const vgpt_tensor *lat = vgpt_bind_find(b, RS "latents");
    if (!lat || lat->ndim != 2) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensor " RS "latents is missing or not [latents,width]", path);
        return;
    }
    r->n_latents = (int)lat->shape[0];
    r->width = (int)lat->shape[1];
    r->latents = vgpt_bind_materialize(b, lat);
    int D = r->width;
    r->depth = 0;
    while (r->depth < 8 && vgpt_bind_has(b, RS "to_q.%d.weight", r->depth)) r->depth++;
    if (r->depth == 0) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: missing tensor " RS "to_q.0.weight (no resampler layers)", path);
        return;
    }
    if (bind_heads(b, cfg, vgpt_bind_rows(b, RS "to_q.0"))) return;
    int inner = r->n_heads * r->head_dim;
    for (int d = 0; d < r->depth && !b->failed; d++) {
        vgpt_resampler_layer *L = &r->layers[d];
        char p[128];
        snprintf(p, sizeof p, RS "norms_latent.%d", d);
        vgpt_bind_ln(b, &L->norm_latent, D, p, "weight", "bias");
        snprintf(p, sizeof p, RS "norms_media.%d", d);
        vgpt_bind_ln(b, &L->norm_media, D, p, "weight", "bias");
        snprintf(p, sizeof p, RS "to_q.%d", d);
        vgpt_bind_lin(b, &L->to_q, inner, D, 0, p);
        snprintf(p, sizeof p, RS "to_kv.%d", d);
        vgpt_bind_lin(b, &L->to_kv, 2 * inner, D, 0, p);
        snprintf(p, sizeof p, RS "proj_out.%d", d);
        vgpt_bind_lin(b, &L->proj_out, D, inner, 0, p);
        snprintf(p, sizeof p, RS "mlp.%d.0", d);
        vgpt_bind_ln(b, &L->mlp_ln, D, p, "weight", "bias");
        snprintf(p, sizeof p, RS "mlp.%d.1", d);
        int hidden = vgpt_bind_rows(b, p);
        vgpt_bind_lin(b, &L->fc1, hidden ? hidden : 4 * D, D, 1, p);
        snprintf(p, sizeof p, RS "mlp.%d.3", d);
        vgpt_bind_lin(b, &L->fc2, D, L->fc1.out, 1, p);
    }
}

/* Optional Linear between ViT and resampler when their widths differ. */
static void bind_project(vgpt_binder *b) {
    vgpt_model *m = b->m;
    if (!vgpt_bind_has(b, "vision.project.proj.weight")) {
        if (m->vit.width != m->rs.width && !b->failed) {
            b->failed = 1;
            vgpt_err_set(b->err, "%s: vision width %d != resampler width %d and tensor vision.project.proj.weight is missing",
                         vgpt_ckpt_path(m->ckpt), m->vit.width, m->rs.width);
        }
        return;
    }
    vgpt_bind_lin(b, &m->project, m->rs.width, m->vit.width, vgpt_bind_has(b, "vision.project.proj.bias"), "vision.project.proj");
}

static void bind_block(vgpt_binder *b, vgpt_block *blk, int j, int C) {
    char p[64], q[96];
    snprintf(p, sizeof p, "trf_blocks.%d", j);
    blk->is_cross = vgpt_bind_has(b, "%s.attn_norm.scale", p) && !vgpt_bind_has(b, "%s.ff.layers.0.weight", p);
    if (blk->is_cross) {
        vgpt_bind_ln(b, &blk->ln1, C, p, "attn_norm.scale", "attn_norm.shift");
    } else {
        vgpt_bind_ln(b, &blk->ln1, C, p, "norm1.scale", "norm1.shift");
        vgpt_bind_ln(b, &blk->ln2, C, p, "norm2.scale", "norm2.shift");
        snprintf(q, sizeof q, "%s.ff.layers.0", p);
        int hidden = vgpt_bind_rows(b, q);
        vgpt_bind_lin(b, &blk->fc1, hidden ? hidden : 4 * C, C, 1, q);
        snprintf(q, sizeof q, "%s.ff.layers.2", p);
        vgpt_bind_lin(b, &blk->fc2, C, blk->fc1.out, 1, q);
    }
    snprintf(q, sizeof q, "%s.att.W_query", p);
    vgpt_bind_lin(b, &blk->q, C, C, 1, q);
    snprintf(q, sizeof q, "%s.att.W_key", p);
    vgpt_bind_lin(b, &blk->k, C, C, 1, q);
    snprintf(q, sizeof q, "%s.att.W_value", p);
    vgpt_bind_lin(b, &blk->v, C, C, 1, q);
    snprintf(q, sizeof q, "%s.att.out_proj", p);
    vgpt_bind_lin(b, &blk->proj, C, C, 1, q);
}

/* The context is the causal mask's size, else config.json's context_length,
 * else pos_emb's rows (model-spec.md, pos_emb).  The published model has more
 * pos_emb rows (1024) than context (256): extra rows are never an error; a
 * context larger than pos_emb is, and so are masks that disagree. */
static int context_of(const vgpt_ckpt *ck, const vgpt_config *cfg, int *context, vgpt_err *err) {
    const char *path = vgpt_ckpt_path(ck);
    const vgpt_tensor *pe = vgpt_ckpt_find(ck, "pos_emb.weight");
    if (!pe || pe->ndim != 2)
        return vgpt_err_set(err, "%s: tensor pos_emb.weight [rows,C] is missing or not 2-D", path);
    int rows = (int)pe->shape[0], mask = -1;
    char name[64], first[64] = "";
    for (int j = 0; j < VGPT_MAX_LAYERS; j++) {
        snprintf(name, sizeof name, "trf_blocks.%d.att.mask", j);
        const vgpt_tensor *t = vgpt_ckpt_find(ck, name);
        if (!t) continue;
        if (t->ndim != 2 || t->shape[0] != t->shape[1] || t->shape[0] < 1)
            return vgpt_err_set(err, "%s: tensor %s is not a square [P,P] causal mask", path, name);
        if (mask < 0) {
            mask = (int)t->shape[0];
            snprintf(first, sizeof first, "%s", name);
        } else if (t->shape[0] != mask) {
            return vgpt_err_set(err, "%s: tensor %s is [%lld,%lld] but %s is [%d,%d]: the blocks disagree on the "
                                "context length", path, name, (long long)t->shape[0], (long long)t->shape[1], first,
                                mask, mask);
        }
    }
    if (mask > 0 && cfg->context_length > 0 && cfg->context_length != mask)
        return vgpt_err_set(err, "%s: config.json says context_length = %d but the causal mask %s is [%d,%d]; "
                            "refusing to load", path, cfg->context_length, first, mask, mask);
    int ctx = mask > 0 ? mask : cfg->context_length > 0 ? cfg->context_length : rows;
    if (ctx > rows)
        return vgpt_err_set(err, "%s: the context is %d tokens (%s) but pos_emb.weight has only %d rows", path, ctx,
                            mask > 0 ? first : "config.json context_length", rows);
    *context = ctx;
    return 0;
}

static void bind_gpt(vgpt_binder *b, const vgpt_config *cfg) {
    vgpt_gpt *g = &b->m->gpt;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    const vgpt_tensor *te = vgpt_bind_find(b, "tok_emb.weight"), *pe = vgpt_bind_find(b, "pos_emb.weight");
    if (!te || te->ndim != 2 || !pe || pe->ndim != 2) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensors tok_emb.weight [V,C] and pos_emb.weight [P,C] are required", path);
        return;
    }
    g->vocab = (int)te->shape[0];
    g->width = (int)te->shape[1];
    g->pos_rows = (int)pe->shape[0];
    if (context_of(b->m->ckpt, cfg, &g->context, b->err)) {
        b->failed = 1;
        return;
    }
    int C = g->width;
    g->n_heads = cfg->n_heads > 0 ? cfg->n_heads : C / 64;
    if (g->n_heads <= 0 || C % g->n_heads) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: text width %d is not divisible into %d heads (n_heads in config.json)", path, C, g->n_heads);
        return;
    }
    vgpt_bind_matrix(b, &g->tok_emb, g->vocab, C, "tok_emb.weight");
    g->pos_emb = vgpt_bind_get2(b, g->pos_rows, C, "pos_emb.weight");
    const vgpt_tensor *oh = vgpt_bind_find(b, "out_head.weight");
    b->m->tied = !oh || (oh->storage_key && te->storage_key && !strcmp(oh->storage_key, te->storage_key) &&
                         oh->data == te->data);
    if (b->m->tied)
        g->out_head = g->tok_emb; /* NULL while tok_emb is deferred: vgpt_model_pack_decoder widens it */
    else
        vgpt_bind_matrix(b, &g->out_head, g->vocab, C, "out_head.weight");
    g->n_blocks = g->n_layers = g->n_cross = 0;
    while (g->n_blocks < VGPT_MAX_LAYERS && vgpt_bind_has(b, "trf_blocks.%d.att.W_query.weight", g->n_blocks)) {
        vgpt_block *blk = &g->blocks[g->n_blocks];
        bind_block(b, blk, g->n_blocks, C);
        g->n_cross += blk->is_cross;
        g->n_layers += !blk->is_cross;
        g->n_blocks++;
    }
    if (g->n_layers == 0 && !b->failed) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: missing tensor trf_blocks.0.att.W_query.weight (no transformer blocks)", path);
        return;
    }
    vgpt_bind_ln(b, &g->ln_final, C, "final_norm", "scale", "shift");
}

static int mismatch(vgpt_binder *b, const char *key, int cfg_val, int actual) {
    b->failed = 1;
    return vgpt_err_set(b->err, "%s: config.json says %s = %d but the checkpoint's shapes give %d; refusing to load",
                        vgpt_ckpt_path(b->m->ckpt), key, cfg_val, actual);
}

/* The informational config.json keys must agree with the shapes. */
static int check_config(vgpt_binder *b, const vgpt_config *cfg, int parts) {
    const vgpt_model *m = b->m;
    if (parts & VGPT_LOAD_DECODER) {
        const vgpt_gpt *g = &m->gpt;
        if (cfg->vocab_size > 0 && cfg->vocab_size != g->vocab) return mismatch(b, "vocab_size", cfg->vocab_size, g->vocab);
        if (cfg->emb_dim > 0 && cfg->emb_dim != g->width) return mismatch(b, "emb_dim", cfg->emb_dim, g->width);
        if (cfg->n_layers > 0 && cfg->n_layers != g->n_layers) return mismatch(b, "n_layers", cfg->n_layers, g->n_layers);
        if (cfg->n_cross_pos >= 0) {
            int k = 0, tb = 0;
            for (int j = 0; j < g->n_blocks; j++) {
                if (!g->blocks[j].is_cross) {
                    tb++;
                    continue;
                }
                if (k >= cfg->n_cross_pos || cfg->cross_pos[k] != tb)
                    return mismatch(b, "cross_attention_pos[i]", k < cfg->n_cross_pos ? cfg->cross_pos[k] : -1, tb);
                k++;
            }
            if (k != cfg->n_cross_pos) return mismatch(b, "len(cross_attention_pos)", cfg->n_cross_pos, k);
        }
    }
    if (parts & VGPT_LOAD_ENCODER) {
        if (cfg->perceiver_num_latents > 0 && cfg->perceiver_num_latents != m->rs.n_latents)
            return mismatch(b, "perceiver_num_latents", cfg->perceiver_num_latents, m->rs.n_latents);
        if (cfg->perceiver_depth > 0 && cfg->perceiver_depth != m->rs.depth)
            return mismatch(b, "perceiver_depth", cfg->perceiver_depth, m->rs.depth);
    }
    return 0;
}

static int detect(const vgpt_ckpt *ck) {
    return vgpt_ckpt_find(ck, "tok_emb.weight") || vgpt_ckpt_find(ck, RS "latents");
}

static int bind(vgpt_model *m, int parts, vgpt_err *err) {
    vgpt_config cfg;
    if (vgpt_config_load(vgpt_ckpt_path(m->ckpt), &cfg, err)) return -1;
    vgpt_binder b = {.m = m, .err = err, .failed = 0};
    if (parts & VGPT_LOAD_ENCODER) {
        bind_vit(&b, &cfg);
        if (!b.failed) bind_resampler(&b, &cfg);
        if (!b.failed) bind_project(&b);
    }
    if ((parts & VGPT_LOAD_DECODER) && !b.failed) bind_gpt(&b, &cfg);
    if (!b.failed && parts == VGPT_LOAD_ALL && m->rs.width != m->gpt.width)
        vgpt_bind_fail(&b, "%s: visual tokens are %d wide but the text model is %d wide", vgpt_ckpt_path(m->ckpt),
                       m->rs.width, m->gpt.width);
    if (!b.failed) check_config(&b, &cfg, parts);
    return b.failed ? -1 : 0;
}

static int context(const vgpt_ckpt *ck, int *out, vgpt_err *err) {
    vgpt_config cfg;
    if (vgpt_config_load(vgpt_ckpt_path(ck), &cfg, err)) return -1;
    return context_of(ck, &cfg, out, err);
}

const vgpt_family vgpt_family_visiongpt = {
    .name = "vision-gpt",
    .detect = detect,
    .bind = bind,
    .context = context,
    .bridge = VGPT_BRIDGE_RESAMPLER,
    .cross = VGPT_CROSS_BLOCKS,
    .mean = {0.485f, 0.456f, 0.406f},
    .std = {0.229f, 0.224f, 0.225f},
    .bos = 50256,
    .eos = 50256,
};
