/* model.c - loading a captioning model (see model.h): open the checkpoint,
 * let its family bind the tensors (family.h), fingerprint it, pack the
 * decoder's weights. */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family.h"
#include "half.h"
#include "linear.h"

/* FNV-1a over every tensor's name, dtype, shape and a sample of its bytes:
 * cheap, stable, and different for any two checkpoints that matter.  Each
 * tensor's pages go back once sampled: the kernel maps 64 KiB or more around
 * every sampled byte (fault-around, large folios), which at 64 samples a
 * tensor made the whole file resident, the load's peak (Zen 4, Linux 6.18). */
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
        vgpt_ckpt_drop_pages(m->ckpt, t->data, bytes);
    }
    snprintf(m->fingerprint, sizeof m->fingerprint, "%016llx", (unsigned long long)h);
}

void vgpt_model_mix_fingerprint(vgpt_model *m, const void *bytes, size_t n) {
    uint64_t h = strtoull(m->fingerprint, NULL, 16);
    for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)bytes)[i]) * 1099511628211ull;
    snprintf(m->fingerprint, sizeof m->fingerprint, "%016llx", (unsigned long long)h);
}

void vgpt_model_drop_weight(vgpt_model *m, const float **w, size_t n) {
    if (vgpt_model_free_owned(m, *w))
        *w = NULL;
    else
        vgpt_ckpt_drop_pages(m->ckpt, *w, n * sizeof(float));
}

void vgpt_model_copy_weights(const vgpt_model *m, float *dst, const float *src, size_t n) {
    if (m->ckpt)
        vgpt_ckpt_copy(m->ckpt, dst, src, n * sizeof(float));
    else
        memcpy(dst, src, n * sizeof(float));
}

/* A converted slice's pages in the checkpoint's mapping go back at once
 * (a widened copy is freed whole afterwards, by vgpt_model_drop_weight). */
static void release_source(void *arg, const float *p, size_t n) {
    const vgpt_model *m = arg;
    if (m->ckpt) vgpt_ckpt_drop_pages(m->ckpt, p, n * sizeof(float));
}

void vgpt_model_token_row(const vgpt_model *m, float *dst, int token) {
    const vgpt_gpt *g = &m->gpt;
    size_t C = (size_t)g->width;
    if (g->tok_emb) {
        vgpt_model_copy_weights(m, dst, g->tok_emb + (size_t)token * C, C);
        return;
    }
    const vgpt_tensor *t = m->tok_rows;
    const uint16_t *row = (const uint16_t *)t->data + (size_t)token * C;
    uint16_t raw[2048]; /* one read for every GPT-2 width */
    for (size_t i = 0; i < C; i += 2048) {
        size_t n = C - i < 2048 ? C - i : 2048;
        vgpt_ckpt_copy(m->ckpt, raw, row + i, n * sizeof *raw);
        if (t->dtype == VGPT_DT_F16)
            vgpt_half_to_float_n(raw, dst + i, n);
        else
            for (size_t k = 0; k < n; k++) dst[i + k] = vgpt_bf16_to_float(raw[k]);
    }
}

int vgpt_model_load(const char *path, int flags, vgpt_model **out, vgpt_err *err) {
    *out = NULL;
    int parts = flags & VGPT_LOAD_ALL;
    vgpt_model *m = calloc(1, sizeof *m);
    if (!m) return vgpt_err_set(err, "%s: out of memory", path);
    m->precision = flags & VGPT_LOAD_BF16 ? VGPT_BF16 : VGPT_FP32;
    if (m->precision == VGPT_BF16 && vgpt_mm_ctx_new(&m->mm_ctx, err)) {
        free(m);
        return -1;
    }
    if (m->mm_ctx) vgpt_mm_ctx_set_release(m->mm_ctx, release_source, m);
    if (vgpt_ckpt_open(path, &m->ckpt, err)) {
        vgpt_model_free(m);
        return -1;
    }
    /* Before binding (it reads a few bytes of every tensor, which read-ahead
     * turns into most of the file): those pages are dropped at once, so the
     * file is never resident beside the widened / packed / bf16 copies; each
     * tensor converted is then read and dropped in turn. */
    fingerprint(m);
    vgpt_ckpt_drop_all(m->ckpt);
    if ((m->family = vgpt_family_detect(m->ckpt, err))) {
        memcpy(m->mean, m->family->mean, sizeof m->mean); /* bind may take the folder's own */
        memcpy(m->std, m->family->std, sizeof m->std);
    }
    if (!m->family || m->family->bind(m, parts, err)) {
        vgpt_model_free(m);
        return -1;
    }
    /* The decoder first: its head is the largest matrix (see model_pack.c);
     * what is still deferred then (the fp32 encoder's weights) is widened. */
    if (((parts & VGPT_LOAD_DECODER) && vgpt_model_pack_decoder(m, err)) ||
        (m->precision == VGPT_BF16 && vgpt_model_to_bf16(m, parts, err)) || vgpt_model_widen_all(m, err)) {
        vgpt_model_free(m);
        return -1;
    }
    vgpt_ckpt_drop_all(m->ckpt); /* what read-ahead brought in beyond what was converted */
    *out = m;
    return 0;
}

int vgpt_model_peek_context(const char *path, int *context, vgpt_err *err) {
    vgpt_ckpt *ck;
    if (vgpt_ckpt_open(path, &ck, err)) return -1;
    const vgpt_family *f = vgpt_family_detect(ck, err);
    int rc = f ? f->context(ck, context, err) : -1;
    vgpt_ckpt_free(ck);
    return rc;
}

int vgpt_model_peek_gen(const char *path, vgpt_gen_opts *o, vgpt_err *err) {
    vgpt_ckpt *ck;
    if (vgpt_ckpt_open(path, &ck, err)) return -1;
    const vgpt_family *f = vgpt_family_detect(ck, err);
    int rc = !f ? -1 : f->gen_defaults ? f->gen_defaults(ck, o, err) : 0;
    vgpt_ckpt_free(ck);
    return rc;
}

void vgpt_model_free(vgpt_model *m) {
    if (!m) return;
    vgpt_model_unpack_decoder(m);
    vgpt_model_free_bf16(m);
    vgpt_mm_ctx_free(m->mm_ctx);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->deferred);
    vgpt_ckpt_free(m->ckpt);
    free(m);
}

void vgpt_model_describe(const vgpt_model *m, char *buf, int len) {
    const vgpt_vit *v = &m->vit;
    const vgpt_resampler *r = &m->rs;
    const vgpt_gpt *g = &m->gpt;
    int n = 0;
    buf[0] = 0;
    if (v->n_layers && n < len && m->family->bridge == VGPT_BRIDGE_NONE)
        n += snprintf(buf + n, len - n, "%s: ViT %dpx/%d w%d L%d H%d eps %g, all %d tokens%s; ", m->family->name,
                      v->image, v->patch, v->width, v->n_layers, v->n_heads, v->eps, v->grid * v->grid + 1,
                      vgpt_lin_present(&m->project) ? " projected" : "");
    else if (v->n_layers && n < len)
        n += snprintf(buf + n, len - n, "ViT %dpx/%d w%d L%d H%d; resampler %dx%d depth %d H%dx%d; ", v->image,
                      v->patch, v->width, v->n_layers, v->n_heads, r->n_latents, r->width, r->depth, r->n_heads,
                      r->head_dim);
    if (g->n_layers && n < len) {
        n += snprintf(buf + n, len - n, "GPT w%d L%d H%d ctx %d (pos_emb %d rows) vocab %d %s head, cross@",
                      g->width, g->n_layers, g->n_heads, g->context, g->pos_rows, g->vocab,
                      m->tied ? "tied" : "untied");
        int tb = 0, first = 1;
        if (m->family->cross == VGPT_CROSS_IN_BLOCK && n < len) n += snprintf(buf + n, len - n, "every block");
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
