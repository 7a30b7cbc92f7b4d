/* model.c - bind checkpoint tensors to the Vision-GPT structure (see model.h).
 *
 * Nothing about the layout is hard-coded beyond the key names of the
 * published checkpoint: depths are found by probing keys, widths by shapes,
 * and every tensor's shape is checked before it is used, so a checkpoint of
 * the wrong model fails with the tensor's name and the expected shape. */
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "half.h"

typedef struct binder {
    vgpt_model *m;
    vgpt_err *err;
    int failed;
} binder;

#define ANY (-1)

static int has(const binder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int has(const binder *b, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return vgpt_ckpt_find(b->m->ckpt, name) != NULL;
}

static void *own(binder *b, size_t bytes) {
    vgpt_model *m = b->m;
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, cap * sizeof *p);
        if (!p) return NULL;
        m->owned = p;
        m->cap_owned = cap;
    }
    void *mem = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (mem) m->owned[m->n_owned++] = mem;
    return mem;
}

int vgpt_model_free_owned(vgpt_model *m, const void *p) {
    for (int i = 0; i < m->n_owned; i++)
        if (m->owned[i] == p) {
            free(m->owned[i]);
            m->owned[i] = m->owned[--m->n_owned];
            return 1;
        }
    return 0;
}

static float load_elem(const vgpt_tensor *t, int64_t idx) {
    switch (t->dtype) {
    case VGPT_DT_F32: return ((const float *)t->data)[idx];
    case VGPT_DT_F16: return vgpt_half_to_float(((const uint16_t *)t->data)[idx]);
    default: return vgpt_bf16_to_float(((const uint16_t *)t->data)[idx]);
    }
}

/* fp32 contiguous tensors are returned in place; anything else is widened
 * (and gathered through its strides) into an owned buffer. */
static const float *materialize(binder *b, const vgpt_tensor *t) {
    if (t->dtype == VGPT_DT_F32 && t->contiguous) return t->data;
    float *dst = own(b, (size_t)t->numel * sizeof(float));
    if (!dst) return NULL;
    int64_t idx[VGPT_MAX_DIMS] = {0};
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        dst[i] = load_elem(t, off);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    /* the narrow original is not read again: its pages leave the resident set */
    if (t->contiguous) vgpt_ckpt_drop_pages(b->m->ckpt, t->data, (size_t)t->numel * vgpt_dtype_size(t->dtype));
    return dst;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t n = snprintf(buf, len, "[");
    for (int d = 0; d < ndim && n < len; d++)
        n += snprintf(buf + n, len - n, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

/* Looks up a tensor, checks its rank and every dimension given (ANY = free),
 * and returns fp32 data.  On failure records the first error and returns NULL. */
static const float *getv(binder *b, const int64_t *want, int ndim, const char *fmt, va_list ap) {
    char name[256];
    vsnprintf(name, sizeof name, fmt, ap);
    if (b->failed) return NULL;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    const vgpt_tensor *t = vgpt_ckpt_find(b->m->ckpt, name);
    if (!t) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: missing tensor %s", path, name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = want[d] == ANY || want[d] == t->shape[d];
    if (!ok) {
        char got[128], exp[128];
        int64_t shown[VGPT_MAX_DIMS];
        for (int d = 0; d < ndim; d++) shown[d] = want[d];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(exp, sizeof exp, ndim, shown);
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensor %s has shape %s, expected %s (-1 = any)", path, name, got, exp);
        return NULL;
    }
    if (t->dtype == VGPT_DT_OTHER || !t->data) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensor %s has dtype %s; vgpt reads float32, float16 and bfloat16",
                     path, name, vgpt_dtype_name(t->dtype));
        return NULL;
    }
    const float *p = materialize(b, t);
    if (!p) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: out of memory widening tensor %s", path, name);
    }
    return p;
}

static const float *get1(binder *b, int64_t d0, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const float *get1(binder *b, int64_t d0, const char *fmt, ...) {
    int64_t want[1] = {d0};
    va_list ap;
    va_start(ap, fmt);
    const float *p = getv(b, want, 1, fmt, ap);
    va_end(ap);
    return p;
}

static const float *get2(binder *b, int64_t d0, int64_t d1, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static const float *get2(binder *b, int64_t d0, int64_t d1, const char *fmt, ...) {
    int64_t want[2] = {d0, d1};
    va_list ap;
    va_start(ap, fmt);
    const float *p = getv(b, want, 2, fmt, ap);
    va_end(ap);
    return p;
}

static const vgpt_tensor *find(const binder *b, const char *name) {
    return vgpt_ckpt_find(b->m->ckpt, name);
}

/* prefix.weight (out,in) and, when with_bias, prefix.bias (out). */
static void get_lin(binder *b, vgpt_lin *l, int out, int in, int with_bias, const char *prefix) {
    l->in = in;
    l->out = out;
    l->w = get2(b, out, in, "%s.weight", prefix);
    l->b = with_bias ? get1(b, out, "%s.bias", prefix) : NULL;
}

static void get_ln(binder *b, vgpt_ln *ln, int C, const char *prefix, const char *w, const char *s) {
    ln->scale = get1(b, C, "%s.%s", prefix, w);
    ln->shift = get1(b, C, "%s.%s", prefix, s);
}

#define VIT "vision.encoder.model."
#define VITL VIT "encoder.layers.encoder_layer_%d"

/* A tensor the binder needs whole (not via get1/get2) with a shape check by numel. */
static const float *get_numel(binder *b, const char *name, int64_t numel, const char *expect) {
    const vgpt_tensor *t = find(b, name);
    if (b->failed) return NULL;
    if (!t || t->numel != numel) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensor %s %s, expected %s", vgpt_ckpt_path(b->m->ckpt), name,
                     t ? "has the wrong shape" : "is missing", expect);
        return NULL;
    }
    if (t->dtype == VGPT_DT_OTHER || !t->data) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensor %s has dtype %s; vgpt reads float32, float16 and bfloat16",
                     vgpt_ckpt_path(b->m->ckpt), name, vgpt_dtype_name(t->dtype));
        return NULL;
    }
    return materialize(b, t);
}

/* Rows of prefix.weight, i.e. a Linear's output width (0 when absent). */
static int rows_of(const binder *b, const char *prefix) {
    char name[300];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const vgpt_tensor *t = find(b, name);
    return t && t->ndim == 2 ? (int)t->shape[0] : 0;
}

static void bind_vit_layer(binder *b, vgpt_vit_layer *L, int i, int D) {
    char p[192], q[256];
    snprintf(p, sizeof p, VITL, i);
    get_ln(b, &L->ln1, D, p, "ln_1.weight", "ln_1.bias");
    get_ln(b, &L->ln2, D, p, "ln_2.weight", "ln_2.bias");
    L->qkv.in = D;
    L->qkv.out = 3 * D;
    L->qkv.w = get2(b, 3 * D, D, "%s.self_attention.in_proj_weight", p);
    L->qkv.b = get1(b, 3 * D, "%s.self_attention.in_proj_bias", p);
    snprintf(q, sizeof q, "%s.self_attention.out_proj", p);
    get_lin(b, &L->proj, D, D, 1, q);
    /* older torchvision releases name the MLP linear_1 / linear_2 */
    int old = has(b, "%s.mlp.linear_1.weight", p);
    snprintf(q, sizeof q, old ? "%s.mlp.linear_1" : "%s.mlp.0", p);
    int hidden = rows_of(b, q);
    get_lin(b, &L->fc1, hidden ? hidden : 4 * D, D, 1, q);
    snprintf(q, sizeof q, old ? "%s.mlp.linear_2" : "%s.mlp.3", p);
    get_lin(b, &L->fc2, D, L->fc1.out, 1, q);
}

static void bind_vit(binder *b, const vgpt_config *cfg) {
    vgpt_vit *v = &b->m->vit;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    const vgpt_tensor *conv = find(b, VIT "conv_proj.weight");
    const vgpt_tensor *pos = find(b, VIT "encoder.pos_embedding");
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
    v->patch_embed.w = materialize(b, conv);
    v->patch_embed.b = get1(b, D, VIT "conv_proj.bias");
    v->class_token = get_numel(b, VIT "class_token", D, "[1,1,width]");
    v->pos_embed = materialize(b, pos);
    v->n_layers = 0;
    while (v->n_layers < VGPT_MAX_LAYERS && has(b, VITL ".ln_1.weight", v->n_layers)) v->n_layers++;
    if (v->n_layers == 0) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: missing tensor " VITL ".ln_1.weight (no ViT layers)", path, 0);
        return;
    }
    for (int i = 0; i < v->n_layers && !b->failed; i++) bind_vit_layer(b, &v->layers[i], i, D);
    get_ln(b, &v->ln_final, D, VIT "encoder.ln", "weight", "bias");
}

#define RS "vision.resampler."

static int bind_heads(binder *b, const vgpt_config *cfg, int q_rows) {
    vgpt_resampler *r = &b->m->rs;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    r->n_heads = cfg->perceiver_heads;
    r->head_dim = cfg->perceiver_dim_head;
    if (r->n_heads <= 0 && r->head_dim <= 0) r->head_dim = 64;
    if (r->n_heads <= 0 && r->head_dim > 0) r->n_heads = q_rows / r->head_dim;
    if (r->head_dim <= 0 && r->n_heads > 0) r->head_dim = q_rows / r->n_heads;
    if (r->n_heads <= 0 || r->head_dim <= 0 || r->n_heads * r->head_dim != q_rows) {
        b->failed = 1;
        return vgpt_err_set(b->err, "%s: " RS "to_q.0.weight has %d rows, not perceiver_heads x perceiver_dim_head (%d x %d)",
                            path, q_rows, cfg->perceiver_heads, cfg->perceiver_dim_head);
    }
    return 0;
}

static void bind_resampler(binder *b, const vgpt_config *cfg) {
    vgpt_resampler *r = &b->m->rs;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    const vgpt_tensor *lat = find(b, RS "latents");
    if (!lat || lat->ndim != 2) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensor " RS "latents is missing or not [latents,width]", path);
        return;
    }
    r->n_latents = (int)lat->shape[0];
    r->width = (int)lat->shape[1];
    r->latents = materialize(b, lat);
    int D = r->width;
    r->depth = 0;
    while (r->depth < 8 && has(b, RS "to_q.%d.weight", r->depth)) r->depth++;
    if (r->depth == 0) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: missing tensor " RS "to_q.0.weight (no resampler layers)", path);
        return;
    }
    if (bind_heads(b, cfg, rows_of(b, RS "to_q.0"))) return;
    int inner = r->n_heads * r->head_dim;
    for (int d = 0; d < r->depth && !b->failed; d++) {
        vgpt_resampler_layer *L = &r->layers[d];
        char p[128];
        snprintf(p, sizeof p, RS "norms_latent.%d", d);
        get_ln(b, &L->norm_latent, D, p, "weight", "bias");
        snprintf(p, sizeof p, RS "norms_media.%d", d);
        get_ln(b, &L->norm_media, D, p, "weight", "bias");
        snprintf(p, sizeof p, RS "to_q.%d", d);
        get_lin(b, &L->to_q, inner, D, 0, p);
        snprintf(p, sizeof p, RS "to_kv.%d", d);
        get_lin(b, &L->to_kv, 2 * inner, D, 0, p);
        snprintf(p, sizeof p, RS "proj_out.%d", d);
        get_lin(b, &L->proj_out, D, inner, 0, p);
        snprintf(p, sizeof p, RS "mlp.%d.0", d);
        get_ln(b, &L->mlp_ln, D, p, "weight", "bias");
        snprintf(p, sizeof p, RS "mlp.%d.1", d);
        int hidden = rows_of(b, p);
        get_lin(b, &L->fc1, hidden ? hidden : 4 * D, D, 1, p);
        snprintf(p, sizeof p, RS "mlp.%d.3", d);
        get_lin(b, &L->fc2, D, L->fc1.out, 1, p);
    }
}

/* Optional Linear between ViT and resampler when their widths differ. */
static void bind_project(binder *b) {
    vgpt_model *m = b->m;
    if (!has(b, "vision.project.proj.weight")) {
        if (m->vit.width != m->rs.width && !b->failed) {
            b->failed = 1;
            vgpt_err_set(b->err, "%s: vision width %d != resampler width %d and tensor vision.project.proj.weight is missing",
                         vgpt_ckpt_path(m->ckpt), m->vit.width, m->rs.width);
        }
        return;
    }
    get_lin(b, &m->project, m->rs.width, m->vit.width, has(b, "vision.project.proj.bias"), "vision.project.proj");
}

static void bind_block(binder *b, vgpt_block *blk, int j, int C) {
    char p[64], q[96];
    snprintf(p, sizeof p, "trf_blocks.%d", j);
    blk->is_cross = has(b, "%s.attn_norm.scale", p) && !has(b, "%s.ff.layers.0.weight", p);
    if (blk->is_cross) {
        get_ln(b, &blk->ln1, C, p, "attn_norm.scale", "attn_norm.shift");
    } else {
        get_ln(b, &blk->ln1, C, p, "norm1.scale", "norm1.shift");
        get_ln(b, &blk->ln2, C, p, "norm2.scale", "norm2.shift");
        snprintf(q, sizeof q, "%s.ff.layers.0", p);
        int hidden = rows_of(b, q);
        get_lin(b, &blk->fc1, hidden ? hidden : 4 * C, C, 1, q);
        snprintf(q, sizeof q, "%s.ff.layers.2", p);
        get_lin(b, &blk->fc2, C, blk->fc1.out, 1, q);
    }
    snprintf(q, sizeof q, "%s.att.W_query", p);
    get_lin(b, &blk->q, C, C, 1, q);
    snprintf(q, sizeof q, "%s.att.W_key", p);
    get_lin(b, &blk->k, C, C, 1, q);
    snprintf(q, sizeof q, "%s.att.W_value", p);
    get_lin(b, &blk->v, C, C, 1, q);
    snprintf(q, sizeof q, "%s.att.out_proj", p);
    get_lin(b, &blk->proj, C, C, 1, q);
}

/* The context is the causal mask's size, else config.json's context_length,
 * else pos_emb's rows (model-spec.md, pos_emb).  The published model has more
 * pos_emb rows (1024) than context (256): extra rows are never an error; a
 * context larger than pos_emb is, and so are masks that disagree. */
int vgpt_model_context_of(const vgpt_ckpt *ck, const vgpt_config *cfg, int *context, vgpt_err *err) {
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

int vgpt_model_peek_context(const char *path, int *context, vgpt_err *err) {
    vgpt_config cfg;
    vgpt_ckpt *ck;
    if (vgpt_config_load(path, &cfg, err) || vgpt_ckpt_open(path, &ck, err)) return -1;
    int rc = vgpt_model_context_of(ck, &cfg, context, err);
    vgpt_ckpt_free(ck);
    return rc;
}

static void bind_gpt(binder *b, const vgpt_config *cfg) {
    vgpt_gpt *g = &b->m->gpt;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    const vgpt_tensor *te = find(b, "tok_emb.weight"), *pe = find(b, "pos_emb.weight");
    if (!te || te->ndim != 2 || !pe || pe->ndim != 2) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensors tok_emb.weight [V,C] and pos_emb.weight [P,C] are required", path);
        return;
    }
    g->vocab = (int)te->shape[0];
    g->width = (int)te->shape[1];
    g->pos_rows = (int)pe->shape[0];
    if (vgpt_model_context_of(b->m->ckpt, cfg, &g->context, b->err)) {
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
    g->tok_emb = get2(b, g->vocab, C, "tok_emb.weight");
    g->pos_emb = get2(b, g->pos_rows, C, "pos_emb.weight");
    const vgpt_tensor *oh = find(b, "out_head.weight");
    b->m->tied = !oh || (oh->storage_key && te->storage_key && !strcmp(oh->storage_key, te->storage_key) &&
                         oh->data == te->data);
    g->out_head = b->m->tied ? g->tok_emb : get2(b, g->vocab, C, "out_head.weight");
    g->n_blocks = g->n_layers = g->n_cross = 0;
    while (g->n_blocks < VGPT_MAX_LAYERS && has(b, "trf_blocks.%d.att.W_query.weight", g->n_blocks)) {
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
    get_ln(b, &g->ln_final, C, "final_norm", "scale", "shift");
}

static int mismatch(binder *b, const char *key, int cfg_val, int actual) {
    b->failed = 1;
    return vgpt_err_set(b->err, "%s: config.json says %s = %d but the checkpoint's shapes give %d; refusing to load",
                        vgpt_ckpt_path(b->m->ckpt), key, cfg_val, actual);
}

/* The informational config.json keys must agree with the shapes. */
static int check_config(binder *b, const vgpt_config *cfg, int parts) {
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

/* FNV-1a over every tensor's name, dtype, shape and a sample of its bytes:
 * cheap, stable, and different for any two checkpoints that matter. */
static void fingerprint(vgpt_model *m) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < vgpt_ckpt_count(m->ckpt); i++) {
        const vgpt_tensor *t = vgpt_ckpt_at(m->ckpt, i);
        for (const char *c = t->name; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ull;
        h = (h ^ (uint64_t)t->dtype) * 1099511628211ull;
        for (int d = 0; d < t->ndim; d++) h = (h ^ (uint64_t)t->shape[d]) * 1099511628211ull;
        if (!t->data) continue;
        size_t bytes = (size_t)t->numel * vgpt_dtype_size(t->dtype);
        size_t step = bytes / 64 + 1;
        for (size_t o = 0; o < bytes; o += step) h = (h ^ ((const uint8_t *)t->data)[o]) * 1099511628211ull;
    }
    snprintf(m->fingerprint, sizeof m->fingerprint, "%016llx", (unsigned long long)h);
}

int vgpt_model_load(const char *path, int parts, vgpt_model **out, vgpt_err *err) {
    *out = NULL;
    vgpt_config cfg;
    if (vgpt_config_load(path, &cfg, err)) return -1;
    vgpt_model *m = calloc(1, sizeof *m);
    if (!m) return vgpt_err_set(err, "%s: out of memory", path);
    if (vgpt_ckpt_open(path, &m->ckpt, err)) {
        free(m);
        return -1;
    }
    binder b = {.m = m, .err = err, .failed = 0};
    if (parts & VGPT_LOAD_ENCODER) {
        bind_vit(&b, &cfg);
        if (!b.failed) bind_resampler(&b, &cfg);
        if (!b.failed) bind_project(&b);
    }
    if ((parts & VGPT_LOAD_DECODER) && !b.failed) bind_gpt(&b, &cfg);
    if (!b.failed && parts == VGPT_LOAD_ALL && m->rs.width != m->gpt.width) {
        b.failed = 1;
        vgpt_err_set(err, "%s: visual tokens are %d wide but the text model is %d wide", path, m->rs.width, m->gpt.width);
    }
    if (!b.failed) check_config(&b, &cfg, parts);
    if (b.failed) {
        vgpt_model_free(m);
        return -1;
    }
    fingerprint(m); /* before packing: it reads bytes of every tensor */
    if ((parts & VGPT_LOAD_DECODER) && vgpt_model_pack_decoder(m, err)) {
        vgpt_model_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

void vgpt_model_free(vgpt_model *m) {
    if (!m) return;
    vgpt_model_unpack_decoder(m);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    vgpt_ckpt_free(m->ckpt);
    free(m);
}

void vgpt_model_describe(const vgpt_model *m, char *buf, int len) {
    const vgpt_vit *v = &m->vit;
    const vgpt_resampler *r = &m->rs;
    const vgpt_gpt *g = &m->gpt;
    int n = 0;
    buf[0] = 0;
    if (v->n_layers && n < len)
        n += snprintf(buf + n, len - n, "ViT %dpx/%d w%d L%d H%d; resampler %dx%d depth %d H%dx%d; ", v->image,
                      v->patch, v->width, v->n_layers, v->n_heads, r->n_latents, r->width, r->depth, r->n_heads,
                      r->head_dim);
    if (g->n_layers && n < len) {
        n += snprintf(buf + n, len - n, "GPT w%d L%d H%d ctx %d (pos_emb %d rows) vocab %d %s head, cross@",
                      g->width, g->n_layers, g->n_heads, g->context, g->pos_rows, g->vocab,
                      m->tied ? "tied" : "untied");
        int tb = 0, first = 1;
        for (int j = 0; j < g->n_blocks && n < len; j++) {
            if (!g->blocks[j].is_cross) {
                tb++;
                continue;
            }
            n += snprintf(buf + n, len - n, first ? "%d" : ",%d", tb);
            first = 0;
        }
        if (n < len) n += snprintf(buf + n, len - n, "; ");
    }
    if (n < len) snprintf(buf + n, len - n, "fingerprint %s", m->fingerprint);
}
