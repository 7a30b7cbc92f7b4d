/* family_hf.c - Hugging Face's VisionEncoderDecoderModel with a ViT encoder
 * and a GPT-2 decoder (nlpconnect/vit-gpt2-image-captioning and its
 * fine-tunes), as transformers computes it: the ViT's 197 final-norm'd
 * tokens (class token kept, no resampler; enc_to_dec_proj when the widths
 * differ) are what every GPT-2 block cross-attends to, between its
 * self-attention and its MLP (ln_1, attn, ln_cross_attn, crossattention,
 * ln_2, mlp; the state dict lists ln_2 first, key order is not execution
 * order).  GPT-2's Conv1D weights are [in,out] and are transposed once here
 * into (out,in) copies the model owns; the ViT's Linears are (out,in)
 * already.  The mask buffers (attn.bias, attn.masked_bias, also under
 * crossattention) are never bound.  Sizes and options come from the
 * folder's config.json (hf_config.h), shapes are checked against them. */
#include <stdio.h>
#include <string.h>

#include "family.h"
#include "hf_config.h"
#include "model_bind.h"

#define EMB "encoder.embeddings."
#define VL "encoder.encoder.layer.%d"
#define TR "decoder.transformer."

static void bind_vit_layer(vgpt_binder *b, vgpt_vit_layer *L, int i, int D, int hidden) {
    char p[96], q[160], k[160], v[160];
    snprintf(p, sizeof p, VL, i);
    snprintf(q, sizeof q, "%s.attention.attention.query", p);
    snprintf(k, sizeof k, "%s.attention.attention.key", p);
    snprintf(v, sizeof v, "%s.attention.attention.value", p);
    const char *qkv[3] = {q, k, v};
    vgpt_bind_ln(b, &L->ln1, D, p, "layernorm_before.weight", "layernorm_before.bias");
    vgpt_bind_ln(b, &L->ln2, D, p, "layernorm_after.weight", "layernorm_after.bias");
    vgpt_bind_stack(b, &L->qkv, 3, D, D, qkv);
    snprintf(q, sizeof q, "%s.attention.output.dense", p);
    vgpt_bind_lin(b, &L->proj, D, D, 1, q);
    snprintf(q, sizeof q, "%s.intermediate.dense", p);
    vgpt_bind_lin(b, &L->fc1, hidden, D, 1, q);
    snprintf(q, sizeof q, "%s.output.dense", p);
    vgpt_bind_lin(b, &L->fc2, D, hidden, 1, q);
}

static void bind_vit(vgpt_binder *b, const vgpt_hf_config *c) {
    vgpt_vit *v = &b->m->vit;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    int D = c->vit_width, P = c->patch_size;
    if (c->image_size % P || D % c->vit_heads || c->vit_layers > VGPT_MAX_LAYERS) {
        vgpt_bind_fail(b, "%s: encoder: image_size %d is not a multiple of patch_size %d, hidden_size %d of "
                       "num_attention_heads %d, or num_hidden_layers %d > %d", c->path, c->image_size, P, D,
                       c->vit_heads, c->vit_layers, VGPT_MAX_LAYERS);
        return;
    }
    *v = (vgpt_vit){.width = D, .n_layers = c->vit_layers, .n_heads = c->vit_heads, .patch = P,
                    .grid = c->image_size / P, .image = c->image_size, .eps = (float)c->vit_eps, .keep_class = 1};
    const vgpt_tensor *conv = vgpt_bind_find(b, EMB "patch_embeddings.projection.weight");
    if (!conv || conv->ndim != 4 || conv->shape[0] != D || conv->shape[1] != 3 || conv->shape[2] != P ||
        conv->shape[3] != P) {
        vgpt_bind_fail(b, "%s: tensor " EMB "patch_embeddings.projection.weight is missing or not [%d,3,%d,%d] "
                       "(hidden_size, patch_size in config.json)", path, D, P, P);
        return;
    }
    v->patch_embed = (vgpt_lin){.in = 3 * P * P, .out = D};
    v->patch_embed.w = vgpt_bind_numel(b, EMB "patch_embeddings.projection.weight", (int64_t)D * 3 * P * P, "");
    v->patch_embed.b = vgpt_bind_get1(b, D, EMB "patch_embeddings.projection.bias");
    v->class_token = vgpt_bind_numel(b, EMB "cls_token", D, "[1,1,hidden_size]");
    char want[64];
    snprintf(want, sizeof want, "[1,%d,%d]", 1 + v->grid * v->grid, D);
    v->pos_embed = vgpt_bind_numel(b, EMB "position_embeddings", (int64_t)(1 + v->grid * v->grid) * D, want);
    for (int i = 0; i < v->n_layers && !b->failed; i++) bind_vit_layer(b, &v->layers[i], i, D, c->vit_mlp);
    vgpt_bind_ln(b, &v->ln_final, D, "encoder.layernorm", "weight", "bias");
}

/* enc_to_dec_proj: present exactly when the widths differ (as transformers builds it). */
static void bind_project(vgpt_binder *b, const vgpt_hf_config *c) {
    vgpt_model *m = b->m;
    if (vgpt_bind_has(b, "enc_to_dec_proj.weight"))
        vgpt_bind_lin(b, &m->project, c->n_embd, c->vit_width, 1, "enc_to_dec_proj");
    else if (c->vit_width != c->n_embd)
        vgpt_bind_fail(b, "%s: encoder.hidden_size %d != decoder.n_embd %d and tensor enc_to_dec_proj.weight is "
                       "missing", vgpt_ckpt_path(m->ckpt), c->vit_width, c->n_embd);
}

static void bind_block(vgpt_binder *b, vgpt_block *blk, int i, int C, int inner) {
    char p[64], q[128];
    snprintf(p, sizeof p, TR "h.%d", i);
    *blk = (vgpt_block){.in_cross = 1};
    vgpt_bind_ln(b, &blk->ln1, C, p, "ln_1.weight", "ln_1.bias");
    vgpt_bind_ln(b, &blk->ln_cross, C, p, "ln_cross_attn.weight", "ln_cross_attn.bias");
    vgpt_bind_ln(b, &blk->ln2, C, p, "ln_2.weight", "ln_2.bias");
    snprintf(q, sizeof q, "%s.attn.c_attn", p); /* [C,3C]: q | k | v */
    vgpt_bind_conv1d(b, &blk->q, C, 3 * C, 0, C, q);
    vgpt_bind_conv1d(b, &blk->k, C, 3 * C, C, C, q);
    vgpt_bind_conv1d(b, &blk->v, C, 3 * C, 2 * C, C, q);
    snprintf(q, sizeof q, "%s.attn.c_proj", p);
    vgpt_bind_conv1d(b, &blk->proj, C, C, 0, C, q);
    snprintf(q, sizeof q, "%s.crossattention.q_attn", p);
    vgpt_bind_conv1d(b, &blk->xq, C, C, 0, C, q);
    snprintf(q, sizeof q, "%s.crossattention.c_attn", p); /* [C,2C]: k | v */
    vgpt_bind_conv1d(b, &blk->xk, C, 2 * C, 0, C, q);
    vgpt_bind_conv1d(b, &blk->xv, C, 2 * C, C, C, q);
    snprintf(q, sizeof q, "%s.crossattention.c_proj", p);
    vgpt_bind_conv1d(b, &blk->xproj, C, C, 0, C, q);
    snprintf(q, sizeof q, "%s.mlp.c_fc", p);
    vgpt_bind_conv1d(b, &blk->fc1, C, inner, 0, inner, q);
    snprintf(q, sizeof q, "%s.mlp.c_proj", p);
    vgpt_bind_conv1d(b, &blk->fc2, inner, C, 0, C, q);
}

static int context_of(const vgpt_ckpt *ck, const vgpt_hf_config *c, int *rows, vgpt_err *err) {
    const vgpt_tensor *pe = vgpt_ckpt_find(ck, TR "wpe.weight");
    if (!pe || pe->ndim != 2 || pe->shape[1] != c->n_embd)
        return vgpt_err_set(err, "%s: tensor " TR "wpe.weight is missing or not [n_positions,%d]", vgpt_ckpt_path(ck),
                            c->n_embd);
    *rows = (int)pe->shape[0];
    if (c->n_positions > *rows)
        return vgpt_err_set(err, "%s: decoder.n_positions is %d but " TR "wpe.weight has %d rows", c->path,
                            c->n_positions, *rows);
    return 0;
}

static void bind_gpt(vgpt_binder *b, const vgpt_hf_config *c) {
    vgpt_gpt *g = &b->m->gpt;
    int C = c->n_embd;
    if (C % c->n_head || c->n_layer > VGPT_MAX_LAYERS) {
        vgpt_bind_fail(b, "%s: decoder.n_embd %d is not a multiple of decoder.n_head %d, or n_layer %d > %d", c->path,
                       C, c->n_head, c->n_layer, VGPT_MAX_LAYERS);
        return;
    }
    *g = (vgpt_gpt){.width = C, .n_heads = c->n_head, .vocab = c->vocab_size, .context = c->n_positions};
    if (context_of(b->m->ckpt, c, &g->pos_rows, b->err)) {
        b->failed = 1;
        return;
    }
    vgpt_bind_matrix(b, &g->tok_emb, g->vocab, C, TR "wte.weight");
    g->pos_emb = vgpt_bind_get2(b, g->pos_rows, C, TR "wpe.weight");
    b->m->tied = c->tied; /* transformers ties lm_head to wte whatever the file holds */
    if (c->tied)
        g->out_head = g->tok_emb; /* NULL while tok_emb is deferred: vgpt_model_pack_decoder widens it */
    else
        vgpt_bind_matrix(b, &g->out_head, g->vocab, C, "decoder.lm_head.weight");
    for (int i = 0; i < c->n_layer && !b->failed; i++) bind_block(b, &g->blocks[i], i, C, c->n_inner);
    g->n_blocks = g->n_layers = g->n_cross = c->n_layer;
    vgpt_bind_ln(b, &g->ln_final, C, TR "ln_f", "weight", "bias");
    if (!b->failed && vgpt_bind_has(b, TR "h.%d.ln_1.weight", c->n_layer))
        vgpt_bind_fail(b, "%s: decoder.n_layer is %d but the weights have block %d too", c->path, c->n_layer,
                       c->n_layer);
}

/* Preprocessing and generation defaults travel with the model; the
 * preprocessing is folded into the fingerprint (the token cache's key). */
static void take_settings(vgpt_model *m, const vgpt_hf_config *c) {
    memcpy(m->mean, c->mean, sizeof m->mean);
    memcpy(m->std, c->std, sizeof m->std);
    float prep[7] = {c->mean[0], c->mean[1], c->mean[2], c->std[0], c->std[1], c->std[2], (float)c->image_size};
    vgpt_model_mix_fingerprint(m, prep, sizeof prep);
}

/* generate()'s settings from the folder: beam search with num_beams (greedy
 * for 1), max_length - 1 new tokens (it counts the start token), the
 * n-gram ban, length penalty and early_stopping as given (HF's defaults:
 * off, 1.0, false). */
static int gen_defaults(const vgpt_ckpt *ck, vgpt_gen_opts *o, vgpt_err *err) {
    vgpt_hf_config c;
    if (vgpt_hf_config_load(vgpt_ckpt_path(ck), &c, err)) return -1;
    if (c.gen_unsupported[0]) return -1 + vgpt_err_set(err, "%s", c.gen_unsupported);
    o->mode = c.num_beams > 1 ? VGPT_BEAM : VGPT_GREEDY;
    o->beams = c.num_beams;
    o->max_tokens = c.max_length - 1;
    o->no_repeat_ngram = c.no_repeat_ngram_size;
    o->length_penalty = (float)c.length_penalty;
    o->early_stopping = c.early_stopping;
    return 1;
}

static int detect(const vgpt_ckpt *ck) {
    return vgpt_ckpt_find(ck, TR "wte.weight") || vgpt_hf_config_present(vgpt_ckpt_path(ck));
}

static int bind(vgpt_model *m, int parts, vgpt_err *err) {
    vgpt_hf_config c;
    if (vgpt_hf_config_load(vgpt_ckpt_path(m->ckpt), &c, err)) return -1;
    vgpt_binder b = {.m = m, .err = err, .failed = 0};
    if (parts & VGPT_LOAD_ENCODER) {
        bind_vit(&b, &c);
        if (!b.failed) bind_project(&b, &c);
    }
    if ((parts & VGPT_LOAD_DECODER) && !b.failed) bind_gpt(&b, &c);
    if (!b.failed) take_settings(m, &c);
    return b.failed ? -1 : 0;
}

static int context(const vgpt_ckpt *ck, int *out, vgpt_err *err) {
    vgpt_hf_config c;
    int rows;
    if (vgpt_hf_config_load(vgpt_ckpt_path(ck), &c, err) || context_of(ck, &c, &rows, err)) return -1;
    *out = c.n_positions;
    return 0;
}

const vgpt_family vgpt_family_hf_vit_gpt2 = {
    .name = "hf-vit-gpt2",
    .detect = detect,
    .bind = bind,
    .context = context,
    .gen_defaults = gen_defaults,
    .bridge = VGPT_BRIDGE_NONE,
    .cross = VGPT_CROSS_IN_BLOCK,
    .mean = {0.5f, 0.5f, 0.5f},
    .std = {0.5f, 0.5f, 0.5f},
    .bos = 50256,
    .eos = 50256,
};
