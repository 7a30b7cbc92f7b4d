/* gpt2.c - GPT-2 blocks (LayerNorm eps 1e-5, tanh GELU, causal attention
 * over a KV cache) interleaved with cross blocks that attend to the visual
 * tokens, in checkpoint order.  All B captions share every GEMM. */
#include "gpt2.h"

#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "pool.h"

#define GPT_EPS 1e-5f

int vgpt_decoder_init(vgpt_decoder *d, const vgpt_model *m, int threads, vgpt_err *err) {
    memset(d, 0, sizeof *d);
    if (!m->gpt.n_layers) return vgpt_err_set(err, "decoder: the model was loaded without its text part");
    d->m = m;
    d->pool = vgpt_pool_new(threads);
    if (!d->pool) return vgpt_err_set(err, "decoder: cannot start %d threads", threads);
    return 0;
}

/* out (B,OC) = inp (B,C) @ W^T + b: the skinny kernel in blocks of up to
 * 16 rows (the weight streams once per block), sgemm for large batches. */
static void dec_linear(vgpt_decoder *d, float *out, const float *inp, const float *w, const float *b, int B, int C,
                       int OC, int accumulate) {
    if (B > 4 * VGPT_SKINNY_MAX) {
        vgpt_linear(out, inp, w, b, B, C, OC, accumulate);
        return;
    }
    for (int r = 0; r < B; r += VGPT_SKINNY_MAX) {
        int n = B - r < VGPT_SKINNY_MAX ? B - r : VGPT_SKINNY_MAX;
        vgpt_linear_skinny(out + (size_t)r * OC, inp + (size_t)r * C, w, b, n, C, OC, accumulate, d->pool);
    }
}

void vgpt_decoder_release(vgpt_decoder *d) {
    vgpt_buf *bufs[] = {&d->h, &d->xn, &d->q, &d->k, &d->v, &d->att, &d->hidden, &d->scratch, &d->xvis};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vgpt_buf_free(bufs[i]);
    vgpt_pool_free(d->pool);
    d->pool = NULL;
}

int vgpt_decoder_cross_kv(vgpt_decoder *d, const float *vis, int N, int L, vgpt_xkv *out, vgpt_err *err) {
    // vis is (N,L,C); each out[n].kv is (n_cross, 2, L, C)
    const vgpt_gpt *g = &d->m->gpt;
    int C = g->width;
    size_t per = (size_t)L * C;
    float *tmp = vgpt_buf_get(&d->xvis, 2 * (size_t)N * per);
    if (!tmp) return vgpt_err_set(err, "decoder: out of memory for cross K/V of %d images", N);
    for (int n = 0; n < N; n++) {
        out[n] = (vgpt_xkv){.kv = malloc(g->n_cross * 2 * per * sizeof(float)), .n_cross = g->n_cross, .L = L, .C = C};
        if (!out[n].kv) {
            for (int i = 0; i < n; i++) vgpt_xkv_free(&out[i]);
            return vgpt_err_set(err, "decoder: out of memory for cross K/V of %d images", N);
        }
    }
    int x = 0;
    for (int j = 0; j < g->n_blocks; j++) {
        const vgpt_block *blk = &g->blocks[j];
        if (!blk->is_cross) continue;
        vgpt_linear(tmp, vis, blk->k.w, blk->k.b, N * L, C, C, 0);
        vgpt_linear(tmp + (size_t)N * per, vis, blk->v.w, blk->v.b, N * L, C, C, 0);
        for (int n = 0; n < N; n++) {
            float *dst = out[n].kv + (size_t)x * 2 * per;
            memcpy(dst, tmp + n * per, per * sizeof(float));
            memcpy(dst + per, tmp + (size_t)N * per + n * per, per * sizeof(float));
        }
        x++;
    }
    return 0;
}

void vgpt_xkv_free(vgpt_xkv *x) {
    free(x->kv);
    x->kv = NULL;
}

int vgpt_kv_alloc(vgpt_kv *kv, const vgpt_model *m, int cap) {
    const vgpt_gpt *g = &m->gpt;
    size_t n = (size_t)g->n_layers * cap * g->width;
    *kv = (vgpt_kv){.k = malloc(n * sizeof(float)), .v = malloc(n * sizeof(float)), .pos = 0, .cap = cap,
                    .n_layers = g->n_layers, .C = g->width};
    if (kv->k && kv->v) return 0;
    vgpt_kv_free(kv);
    return -1;
}

void vgpt_kv_free(vgpt_kv *kv) {
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
}

void vgpt_kv_copy(vgpt_kv *dst, const vgpt_kv *src) {
    size_t row = (size_t)src->C * sizeof(float);
    for (int l = 0; l < src->n_layers; l++) {
        size_t off = (size_t)l * src->cap * src->C, doff = (size_t)l * dst->cap * dst->C;
        memcpy(dst->k + doff, src->k + off, src->pos * row);
        memcpy(dst->v + doff, src->v + off, src->pos * row);
    }
    dst->pos = src->pos;
}

// h is (B,C): h = h + out_proj(MHA(q = W_query(LN(h)), k/v = the image's cross K/V))
static void cross_block(vgpt_decoder *d, const vgpt_block *blk, int x, int B, const vgpt_xkv *const *xkv) {
    const vgpt_gpt *g = &d->m->gpt;
    int C = g->width, H = g->n_heads;
    vgpt_layernorm(d->xn.p, d->h.p, blk->ln1.scale, blk->ln1.shift, B, C, GPT_EPS);
    dec_linear(d, d->q.p, d->xn.p, blk->q.w, blk->q.b, B, C, C, 0);
    for (int b = 0; b < B; b++) {
        const vgpt_xkv *xv = xkv[b];
        const float *k = xv->kv + (size_t)x * 2 * xv->L * C, *v = k + (size_t)xv->L * C;
        vgpt_attention(d->att.p + (size_t)b * C, C, d->q.p + (size_t)b * C, C, k, C, v, C, 1, xv->L, H, C / H, -1,
                       d->scratch.p);
    }
    dec_linear(d, d->h.p, d->att.p, blk->proj.w, blk->proj.b, B, C, C, 1);
}

// h is (B,C): causal self-attention over each caption's cache, then the MLP
static void self_block(vgpt_decoder *d, const vgpt_block *blk, int l, int B, vgpt_kv *const *kv) {
    const vgpt_gpt *g = &d->m->gpt;
    int C = g->width, H = g->n_heads;
    vgpt_layernorm(d->xn.p, d->h.p, blk->ln1.scale, blk->ln1.shift, B, C, GPT_EPS);
    dec_linear(d, d->q.p, d->xn.p, blk->q.w, blk->q.b, B, C, C, 0);
    dec_linear(d, d->k.p, d->xn.p, blk->k.w, blk->k.b, B, C, C, 0);
    dec_linear(d, d->v.p, d->xn.p, blk->v.w, blk->v.b, B, C, C, 0);
    for (int b = 0; b < B; b++) {
        vgpt_kv *c = kv[b];
        float *kc = c->k + (size_t)l * c->cap * C, *vc = c->v + (size_t)l * c->cap * C;
        memcpy(kc + (size_t)c->pos * C, d->k.p + (size_t)b * C, C * sizeof(float));
        memcpy(vc + (size_t)c->pos * C, d->v.p + (size_t)b * C, C * sizeof(float));
        /* the new token is the last row, so no mask is needed: it sees the whole cache */
        vgpt_attention(d->att.p + (size_t)b * C, C, d->q.p + (size_t)b * C, C, kc, C, vc, C, 1, c->pos + 1, H, C / H,
                       -1, d->scratch.p);
    }
    dec_linear(d, d->h.p, d->att.p, blk->proj.w, blk->proj.b, B, C, C, 1);
    vgpt_layernorm(d->xn.p, d->h.p, blk->ln2.scale, blk->ln2.shift, B, C, GPT_EPS);
    dec_linear(d, d->hidden.p, d->xn.p, blk->fc1.w, blk->fc1.b, B, C, blk->fc1.out, 0);
    vgpt_gelu_tanh(d->hidden.p, (size_t)B * blk->fc1.out);
    dec_linear(d, d->h.p, d->hidden.p, blk->fc2.w, blk->fc2.b, B, blk->fc1.out, C, 1);
}

static int reserve(vgpt_decoder *d, int B, int max_ctx) {
    const vgpt_gpt *g = &d->m->gpt;
    size_t BC = (size_t)B * g->width;
    int hidden = 4 * g->width;
    for (int j = 0; j < g->n_blocks; j++)
        if (!g->blocks[j].is_cross && g->blocks[j].fc1.out > hidden) hidden = g->blocks[j].fc1.out;
    return vgpt_buf_get(&d->h, BC) && vgpt_buf_get(&d->xn, BC) && vgpt_buf_get(&d->q, BC) &&
           vgpt_buf_get(&d->k, BC) && vgpt_buf_get(&d->v, BC) && vgpt_buf_get(&d->att, BC) &&
           vgpt_buf_get(&d->hidden, (size_t)B * hidden) && vgpt_buf_get(&d->scratch, (size_t)max_ctx);
}

int vgpt_decoder_step(vgpt_decoder *d, int B, const int32_t *token, vgpt_kv *const *kv,
                      const vgpt_xkv *const *xkv, float *logits, vgpt_err *err) {
    // token is (B), logits is (B,V)
    const vgpt_gpt *g = &d->m->gpt;
    int C = g->width, max_ctx = 1;
    for (int b = 0; b < B; b++) {
        if (token[b] < 0 || token[b] >= g->vocab)
            return vgpt_err_set(err, "decoder: token id %d outside the vocabulary (0..%d)", token[b], g->vocab - 1);
        if (kv[b]->pos >= kv[b]->cap || kv[b]->pos >= g->context)
            return vgpt_err_set(err, "decoder: caption reached %d tokens, the limit (context %d)", kv[b]->pos,
                                g->context);
        if (kv[b]->pos + 1 > max_ctx) max_ctx = kv[b]->pos + 1;
        if (xkv[b]->L > max_ctx) max_ctx = xkv[b]->L;
    }
    if (!reserve(d, B, max_ctx)) return vgpt_err_set(err, "decoder: out of memory for a batch of %d", B);
    for (int b = 0; b < B; b++) {
        const float *te = g->tok_emb + (size_t)token[b] * C, *pe = g->pos_emb + (size_t)kv[b]->pos * C;
        float *h = d->h.p + (size_t)b * C;
        for (int i = 0; i < C; i++) h[i] = te[i] + pe[i];
    }
    int l = 0, x = 0;
    for (int j = 0; j < g->n_blocks; j++) {
        if (g->blocks[j].is_cross)
            cross_block(d, &g->blocks[j], x++, B, xkv);
        else
            self_block(d, &g->blocks[j], l++, B, kv);
    }
    for (int b = 0; b < B; b++) kv[b]->pos++;
    vgpt_layernorm(d->xn.p, d->h.p, g->ln_final.scale, g->ln_final.shift, B, C, GPT_EPS);
    dec_linear(d, logits, d->xn.p, g->out_head, NULL, B, C, g->vocab, 0);
    return 0;
}
