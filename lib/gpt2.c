/* gpt2.c - GPT-2 blocks (LayerNorm eps 1e-5, tanh GELU, causal attention
 * over a KV cache) interleaved with cross blocks that attend to the visual
 * tokens, in checkpoint order; or (HF GPT-2 with add_cross_attention) each
 * block attending to them itself between its self-attention and its MLP.
 * All B captions share every GEMM. */
#include "gpt2.h"

#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "kernels.h"
#include "linear.h"
#include "packed.h"
#include "pool.h"

#define GPT_EPS 1e-5f

/* n fp32 values into element i of a K/V buffer of the given kind. */
static void kv_store(void *dst, size_t i, const float *src, size_t n, int bf16) {
    if (bf16)
        vgpt_float_to_bf16_n(src, (uint16_t *)dst + i, n);
    else
        memcpy((float *)dst + i, src, n * sizeof(float));
}


int vgpt_gpt_run_init(vgpt_gpt_run *d, const vgpt_model *m, int threads, vgpt_err *err) {
    memset(d, 0, sizeof *d);
    if (!m->gpt.n_layers) return vgpt_err_set(err, "decoder: the model was loaded without its text part");
    d->m = m;
    d->pool = vgpt_pool_new(threads);
    if (!d->pool) return vgpt_err_set(err, "decoder: cannot start %d threads", threads);
    return 0;
}

void vgpt_gpt_run_free(vgpt_gpt_run *d) {
    vgpt_buf *bufs[] = {&d->h, &d->xn, &d->qkv, &d->att, &d->hidden, &d->scratch, &d->xvis};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) vgpt_buf_free(bufs[i]);
    vgpt_pool_free(d->pool);
    d->pool = NULL;
}

/* N images' cross K/V into out[0..N-1], one product per weight for all. */
static void cross_kv_pass(vgpt_gpt_run *d, const float *vis, int N, int L, vgpt_xkv *out, float *tmp) {
    // vis is (N,L,C); tmp is (2,N,L,C)
    const vgpt_gpt *g = &d->m->gpt;
    size_t per = (size_t)L * g->width;
    for (int j = 0, x = 0; j < g->n_blocks; j++) {
        const vgpt_block *blk = &g->blocks[j];
        if (!blk->is_cross && !blk->in_cross) continue;
        vgpt_lin_forward(tmp, vis, blk->is_cross ? &blk->k : &blk->xk, N * L, 0);
        vgpt_lin_forward(tmp + (size_t)N * per, vis, blk->is_cross ? &blk->v : &blk->xv, N * L, 0);
        for (int n = 0; n < N; n++) {
            kv_store(out[n].kv, (size_t)x * 2 * per, tmp + n * per, per, out[n].bf16);
            kv_store(out[n].kv, ((size_t)x * 2 + 1) * per, tmp + (size_t)N * per + n * per, per, out[n].bf16);
        }
        x++;
    }
}

int vgpt_gpt_run_cross_kv(vgpt_gpt_run *d, const float *vis, int N, int L, vgpt_xkv *out, vgpt_err *err) {
    // vis is (N,L,C); each out[n].kv is (n_cross, 2, L, C)
    const vgpt_gpt *g = &d->m->gpt;
    size_t per = (size_t)L * g->width;
    int bf16 = d->m->precision == VGPT_BF16;
    int pass = vgpt_precision_images_per_pass(d->m->precision, N); /* bf16: one */
    float *tmp = vgpt_buf_get(&d->xvis, 2 * (size_t)pass * per);
    if (!tmp) return vgpt_err_set(err, "decoder: out of memory for cross K/V of %d images", N);
    for (int n = 0; n < N; n++) {
        out[n] = (vgpt_xkv){.kv = malloc(g->n_cross * 2 * per * vgpt_kv_elem_size(bf16)), .n_cross = g->n_cross, .L = L,
                            .C = g->width, .bf16 = bf16};
        if (!out[n].kv) {
            for (int i = 0; i < n; i++) vgpt_xkv_free(&out[i]);
            return vgpt_err_set(err, "decoder: out of memory for cross K/V of %d images", N);
        }
    }
    for (int n = 0; n < N; n += pass) cross_kv_pass(d, vis + n * per, N - n < pass ? N - n : pass, L, out + n, tmp);
    return d->m->mm_ctx ? vgpt_mm_ctx_check(d->m->mm_ctx, err) : 0;
}

void vgpt_xkv_free(vgpt_xkv *x) {
    free(x->kv);
    x->kv = NULL;
}

int vgpt_kv_alloc(vgpt_kv *kv, const vgpt_model *m, int cap) {
    const vgpt_gpt *g = &m->gpt;
    int bf16 = m->precision == VGPT_BF16;
    size_t n = (size_t)g->n_layers * cap * g->width * vgpt_kv_elem_size(bf16);
    *kv = (vgpt_kv){.k = malloc(n), .v = malloc(n), .pos = 0, .cap = cap, .n_layers = g->n_layers, .C = g->width,
                    .bf16 = bf16};
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
    size_t es = vgpt_kv_elem_size(src->bf16), row = (size_t)src->C * es;
    for (int l = 0; l < src->n_layers; l++) {
        size_t off = (size_t)l * src->cap * src->C * es, doff = (size_t)l * dst->cap * dst->C * es;
        memcpy((char *)dst->k + doff, (const char *)src->k + off, src->pos * row);
        memcpy((char *)dst->v + doff, (const char *)src->v + off, src->pos * row);
    }
    dst->pos = src->pos;
}

/* The new token's attention for every caption, captions split across the
 * pool (each thread with its own scratch row).  Self-attention (xkv NULL)
 * reads layer l of each caption's cache, which already holds the token;
 * cross-attention reads block x of each image's K/V. */
typedef struct attend_job {
    vgpt_gpt_run *d;
    const float *q; /* (B, ldq) */
    int ldq, B, l, x;
    vgpt_kv *const *kv;
    const vgpt_xkv *const *xkv;
} attend_job;

/* Caption b's keys and values for this job, their count and kind. */
static void cache_of(const attend_job *j, int b, const char **k, const char **v, int *T, int *bf16) {
    int C = j->d->m->gpt.width;
    if (j->xkv) {
        const vgpt_xkv *xv = j->xkv[b];
        *bf16 = xv->bf16;
        *k = (const char *)xv->kv + (size_t)j->x * 2 * xv->L * C * vgpt_kv_elem_size(*bf16);
        *v = *k + (size_t)xv->L * C * vgpt_kv_elem_size(*bf16);
        *T = xv->L;
    } else {
        const vgpt_kv *c = j->kv[b];
        *bf16 = c->bf16;
        *k = (const char *)c->k + (size_t)j->l * c->cap * C * vgpt_kv_elem_size(*bf16);
        *v = (const char *)c->v + (size_t)j->l * c->cap * C * vgpt_kv_elem_size(*bf16);
        *T = c->pos + 1; /* the new token is the last row, so no mask is needed */
    }
}

static void attend_part(void *arg, int part, int n_parts) {
    const attend_job *j = arg;
    int C = j->d->m->gpt.width, H = j->d->m->gpt.n_heads;
    float *scratch = j->d->scratch.p + (size_t)part * j->d->scratch_row;
    for (int b = part; b < j->B; b += n_parts) {
        const char *k, *v;
        int T, bf16;
        if (b + n_parts < j->B) { /* the next caption's first keys come in while this one is attended */
            cache_of(j, b + n_parts, &k, &v, &T, &bf16);
            vgpt_attention_prefetch(k, C, T, C, bf16);
        }
        cache_of(j, b, &k, &v, &T, &bf16);
        vgpt_attention_one(j->d->att.p + (size_t)b * C, j->q + (size_t)b * j->ldq, k, C, v, C, T, H, C / H, bf16,
                           scratch);
    }
}

// h is (B,C): h = h + proj(MHA(q = W_q(LN(h)), k/v = the image's cross K/V number x))
static void cross_attend(vgpt_gpt_run *d, const vgpt_ln *ln, const vgpt_packed *wq, const vgpt_packed *proj, int x,
                         int B, const vgpt_xkv *const *xkv) {
    int C = d->m->gpt.width;
    vgpt_layernorm(d->xn.p, d->h.p, ln->scale, ln->shift, B, C, GPT_EPS);
    vgpt_linear_packed(d->qkv.p, d->xn.p, wq, B, 0, d->pool); /* (B,C): q */
    attend_job j = {.d = d, .q = d->qkv.p, .ldq = C, .B = B, .x = x, .xkv = xkv};
    vgpt_pool_run(B > 1 ? d->pool : NULL, attend_part, &j); /* one caption: not worth a wake-up */
    vgpt_linear_packed(d->h.p, d->att.p, proj, B, VGPT_ACCUMULATE, d->pool);
}

static void cross_block(vgpt_gpt_run *d, const vgpt_block *blk, int x, int B, const vgpt_xkv *const *xkv) {
    cross_attend(d, &blk->ln1, &blk->packed_qkv, &blk->packed_proj, x, B, xkv);
}

// h is (B,C): causal self-attention over each caption's cache, the block's
// own cross-attention (in_cross, cross K/V number x), then the MLP
static void self_block(vgpt_gpt_run *d, const vgpt_block *blk, int l, int x, int B, vgpt_kv *const *kv,
                       const vgpt_xkv *const *xkv) {
    int C = d->m->gpt.width;
    vgpt_layernorm(d->xn.p, d->h.p, blk->ln1.scale, blk->ln1.shift, B, C, GPT_EPS);
    vgpt_linear_packed(d->qkv.p, d->xn.p, &blk->packed_qkv, B, 0, d->pool); /* (B,3C): q | k | v */
    for (int b = 0; b < B; b++) {
        vgpt_kv *c = kv[b];
        const float *qkv = d->qkv.p + (size_t)b * 3 * C;
        kv_store(c->k, ((size_t)l * c->cap + c->pos) * C, qkv + C, C, c->bf16);
        kv_store(c->v, ((size_t)l * c->cap + c->pos) * C, qkv + 2 * C, C, c->bf16);
    }
    attend_job j = {.d = d, .q = d->qkv.p, .ldq = 3 * C, .B = B, .l = l, .kv = kv};
    vgpt_pool_run(B > 1 ? d->pool : NULL, attend_part, &j); /* one caption: not worth a wake-up */
    vgpt_linear_packed(d->h.p, d->att.p, &blk->packed_proj, B, VGPT_ACCUMULATE, d->pool);
    if (blk->in_cross) cross_attend(d, &blk->ln_cross, &blk->packed_xq, &blk->packed_xproj, x, B, xkv);
    vgpt_layernorm(d->xn.p, d->h.p, blk->ln2.scale, blk->ln2.shift, B, C, GPT_EPS);
    vgpt_linear_packed(d->hidden.p, d->xn.p, &blk->packed_fc1, B, VGPT_GELU_TANH, d->pool);
    vgpt_linear_packed(d->h.p, d->hidden.p, &blk->packed_fc2, B, VGPT_ACCUMULATE, d->pool);
}

static int reserve(vgpt_gpt_run *d, int B, int max_ctx) {
    const vgpt_gpt *g = &d->m->gpt;
    size_t BC = (size_t)B * g->width;
    int hidden = 4 * g->width;
    for (int j = 0; j < g->n_blocks; j++)
        if (!g->blocks[j].is_cross && g->blocks[j].fc1.out > hidden) hidden = g->blocks[j].fc1.out;
    return vgpt_buf_get(&d->h, BC) && vgpt_buf_get(&d->xn, BC) && vgpt_buf_get(&d->qkv, 3 * BC) &&
           vgpt_buf_get(&d->att, BC) &&
           vgpt_buf_get(&d->hidden, (size_t)B * hidden) &&
           vgpt_buf_get(&d->scratch, (size_t)vgpt_pool_size(d->pool) * (d->scratch_row = g->n_heads * max_ctx));
}

int vgpt_gpt_run_step(vgpt_gpt_run *d, int B, const int32_t *token, vgpt_kv *const *kv,
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
        const float *pe = g->pos_emb + (size_t)kv[b]->pos * C;
        float *h = d->h.p + (size_t)b * C;
        vgpt_model_token_row(d->m, h, token[b]);
        for (int i = 0; i < C; i++) h[i] += pe[i];
    }
    int l = 0, x = 0;
    for (int j = 0; j < g->n_blocks; j++) {
        if (g->blocks[j].is_cross)
            cross_block(d, &g->blocks[j], x++, B, xkv);
        else
            self_block(d, &g->blocks[j], l++, g->blocks[j].in_cross ? x++ : x, B, kv, xkv);
    }
    for (int b = 0; b < B; b++) kv[b]->pos++;
    vgpt_layernorm(d->xn.p, d->h.p, g->ln_final.scale, g->ln_final.shift, B, C, GPT_EPS);
    vgpt_linear_packed(logits, d->xn.p, &g->packed_head, B, 0, d->pool);
    return d->m->mm_ctx ? vgpt_mm_ctx_check(d->m->mm_ctx, err) : 0;
}
