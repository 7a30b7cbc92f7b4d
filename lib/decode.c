/* decode.c - greedy, sampling and beam-search generation (see decode.h). */
#include "decode.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decode_beam.h"

void vgpt_gen_opts_default(vgpt_gen_opts *o) {
    *o = (vgpt_gen_opts){.mode = VGPT_BEAM, .beams = 3, .max_tokens = 50, .no_repeat_ngram = 3,
                         .length_penalty = 1.0f, .temperature = 0.7f, .top_k = 50, .top_p = 0.9f, .seed = 0};
}

void vgpt_gen_opts_sample(vgpt_gen_opts *o) {
    vgpt_gen_opts_default(o);
    o->mode = VGPT_SAMPLE;
    o->no_repeat_ngram = 0;
}

void vgpt_caption_free(vgpt_caption *c) {
    free(c->tokens);
    c->tokens = NULL;
    c->n_tokens = 0;
}

int vgpt_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

void vgpt_ban_repeated_ngrams(float *logits, const int32_t *seq, int len, int n) {
    // seq is the caption so far (BOS first); bans every token that would close an n-gram seen before
    if (n <= 0 || len < n) return;
    const int32_t *prefix = seq + len - (n - 1);
    for (int i = 0; i + n <= len; i++) {
        if (memcmp(seq + i, prefix, (n - 1) * sizeof *seq) == 0) logits[seq[i + n - 1]] = -INFINITY;
    }
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef vgpt_cand cand;

static int cand_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return x->id - y->id;
}

int vgpt_top_k(const float *x, int V, int k, cand *out) {
    int n = 0;
    for (int i = 0; i < V; i++) {
        if (x[i] == -INFINITY) continue;
        if (n < k) {
            out[n++] = (cand){x[i], i};
            for (int j = n - 1; j > 0 && cand_desc(&out[j], &out[j - 1]) < 0; j--) {
                cand t = out[j]; out[j] = out[j - 1]; out[j - 1] = t;
            }
        } else if (x[i] > out[k - 1].v) {
            out[k - 1] = (cand){x[i], i};
            for (int j = k - 1; j > 0 && cand_desc(&out[j], &out[j - 1]) < 0; j--) {
                cand t = out[j]; out[j] = out[j - 1]; out[j - 1] = t;
            }
        }
    }
    return n;
}

int vgpt_sample_token(float *logits, int V, const vgpt_gen_opts *o, uint64_t *rng) {
    if (o->temperature <= 0.0f) return vgpt_argmax(logits, V);
    int k = o->top_k > 0 && o->top_k < V ? o->top_k : V;
    cand *c = malloc((size_t)k * sizeof *c);
    if (!c) return vgpt_argmax(logits, V);
    int n;
    if (k < V) {
        n = vgpt_top_k(logits, V, k, c);
    } else {
        n = 0;
        for (int i = 0; i < V; i++)
            if (logits[i] != -INFINITY) c[n++] = (cand){logits[i], i};
        qsort(c, n, sizeof *c, cand_desc);
    }
    if (n == 0) { /* every token banned: nothing better than the raw argmax */
        free(c);
        return vgpt_argmax(logits, V);
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        c[i].v = (float)exp((double)(c[i].v - c[0].v) / o->temperature);
        sum += c[i].v;
    }
    /* top-p: the smallest prefix whose probability reaches p (at least one token) */
    double cum = 0.0;
    int keep = n;
    for (int i = 0; i < n; i++) {
        cum += c[i].v / sum;
        if (o->top_p < 1.0f && cum >= o->top_p) {
            keep = i + 1;
            break;
        }
    }
    double kept = 0.0;
    for (int i = 0; i < keep; i++) kept += c[i].v;
    double u = (double)(splitmix64(rng) >> 11) * 0x1.0p-53 * kept;
    int tok = c[keep - 1].id;
    for (int i = 0; i < keep; i++) {
        u -= c[i].v;
        if (u < 0) {
            tok = c[i].id;
            break;
        }
    }
    free(c);
    return tok;
}

int vgpt_max_new(const vgpt_decoder *d, const vgpt_gen_opts *o) {
    int ctx = d->m->gpt.context;
    return o->max_tokens < ctx ? o->max_tokens : ctx;
}

double vgpt_log_softmax_at(const float *x, int V, int id) {
    float mx = x[vgpt_argmax(x, V)];
    double s = 0.0;
    for (int i = 0; i < V; i++) s += exp((double)(x[i] - mx));
    return (double)(x[id] - mx) - log(s);
}

int vgpt_finish_caption(vgpt_caption *c, const hyp *h, double score) {
    c->n_tokens = h->len - 1;
    c->tokens = malloc((c->n_tokens ? c->n_tokens : 1) * sizeof *c->tokens);
    if (!c->tokens) return -1;
    memcpy(c->tokens, h->seq + 1, c->n_tokens * sizeof *c->tokens);
    c->score = (float)score;
    return 0;
}

/* Greedy and sampling: one hypothesis per image, all stepped together. */
static int generate_simple(vgpt_decoder *d, const vgpt_xkv *xkv, int N, const vgpt_gen_opts *o, vgpt_caption *out,
                           vgpt_err *err) {
    int V = d->m->gpt.vocab, T = vgpt_max_new(d, o), rc = -1;
    hyp *h = calloc(N, sizeof *h);
    int *active = malloc(N * sizeof *active);
    int32_t *tok = malloc(N * sizeof *tok);
    vgpt_kv **kvp = malloc(N * sizeof *kvp);
    const vgpt_xkv **xp = malloc(N * sizeof *xp);
    float *logits = malloc((size_t)N * V * sizeof *logits);
    if (!h || !active || !tok || !kvp || !xp || !logits) goto oom;
    for (int i = 0; i < N; i++) {
        h[i].seq = malloc((T + 1) * sizeof *h[i].seq);
        if (!h[i].seq || vgpt_kv_alloc(&h[i].kv, d->m, T > 0 ? T : 1)) goto oom;
        h[i].seq[0] = VGPT_BOS;
        h[i].len = 1;
        h[i].rng = o->seed;
        active[i] = i;
    }
    int n_active = T > 0 ? N : 0;
    while (n_active > 0) {
        for (int a = 0; a < n_active; a++) {
            hyp *x = &h[active[a]];
            tok[a] = x->seq[x->len - 1];
            kvp[a] = &x->kv;
            xp[a] = &xkv[active[a]];
        }
        if (vgpt_decoder_step(d, n_active, tok, kvp, xp, logits, err)) goto done;
        int kept = 0;
        for (int a = 0; a < n_active; a++) {
            hyp *x = &h[active[a]];
            float *row = logits + (size_t)a * V;
            vgpt_ban_repeated_ngrams(row, x->seq, x->len, o->no_repeat_ngram);
            int t = o->mode == VGPT_SAMPLE ? vgpt_sample_token(row, V, o, &x->rng) : vgpt_argmax(row, V);
            x->sum += vgpt_log_softmax_at(row, V, t);
            x->seq[x->len++] = t;
            if (t != VGPT_EOS && x->len - 1 < T) active[kept++] = active[a];
        }
        n_active = kept;
    }
    for (int i = 0; i < N; i++)
        if (vgpt_finish_caption(&out[i], &h[i], h[i].sum)) goto oom;
    rc = 0;
    goto done;
oom:
    vgpt_err_set(err, "decoder: out of memory generating %d captions", N);
done:
    for (int i = 0; h && i < N; i++) {
        free(h[i].seq);
        vgpt_kv_free(&h[i].kv);
    }
    if (rc)
        for (int i = 0; i < N; i++) vgpt_caption_free(&out[i]);
    free(h); free(active); free(tok); free(kvp); free(xp); free(logits);
    return rc;
}


int vgpt_generate(vgpt_decoder *d, const vgpt_xkv *xkv, int N, const vgpt_gen_opts *o, vgpt_caption *out,
                  vgpt_err *err) {
    memset(out, 0, N * sizeof *out);
    if (o->mode == VGPT_BEAM && o->beams >= 1) return vgpt_generate_beam(d, xkv, N, o, out, err);
    return generate_simple(d, xkv, N, o, out, err);
}
