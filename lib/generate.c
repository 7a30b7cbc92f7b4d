/* generate.c - greedy, sampling and beam-search generation (see decode.h). */
#include "generate.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "generate_job.h"
#include "kernels.h"

void vgpt_caption_free(vgpt_caption *c) {
    free(c->tokens);
    c->tokens = NULL;
    c->n_tokens = 0;
}

/* The first index of the largest value (NaNs never win; a NaN x[0], or no
 * value above -inf, gives 0), as the plain loop `if (x[i] > x[best])`
 * would; but that loop waits on each comparison before the next (~3
 * cycles a logit: 0.75 ms of a 16-caption step over 50257 logits, Zen 4),
 * so 16 lanes (GCC vectors: one zmm, two ymm or four xmm, per clone) keep
 * their own first maximum, merged at the end. */
typedef float argmax_f __attribute__((vector_size(64)));
typedef int32_t argmax_i __attribute__((vector_size(64)));

VGPT_CLONES int vgpt_argmax(const float *x, int n) {
    enum { LANES = 16 };
    if (n <= 0 || x[0] != x[0]) return 0;
    argmax_f m;
    argmax_i at, idx;
    for (int l = 0; l < LANES; l++) m[l] = -INFINITY, at[l] = -1, idx[l] = l;
    int i = 0;
    for (; i + LANES <= n; i += LANES, idx += LANES) {
        argmax_f v;
        memcpy(&v, x + i, sizeof v);
        argmax_i more = v > m; /* -1 where the lane's value is larger */
        m = (argmax_f)(((argmax_i)v & more) | ((argmax_i)m & ~more));
        at = (idx & more) | (at & ~more);
    }
    int best = -1;
    for (int l = 0; l < LANES; l++)
        if (at[l] >= 0 && (best < 0 || m[l] > x[best] || (m[l] == x[best] && at[l] < best))) best = at[l];
    for (; i < n; i++)
        if (x[i] > (best < 0 ? -INFINITY : x[best])) best = i;
    return best < 0 ? 0 : best;
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

/* The published filter, in its order (model-spec.md, "Generation as
 * published"): logits / max(T, 1e-8); top-k keeps every logit >= the k-th
 * largest (ties survive); top-p on the softmax of what top-k kept, dropping
 * tokens once the cumulative probability before them exceeds p, the most
 * likely always kept; then the survivors' softmax. */
int vgpt_sample_dist(const float *logits, int V, const vgpt_gen_opts *o, vgpt_cand *out) {
    float t = o->temperature > 1e-8f ? o->temperature : 1e-8f;
    float *scaled = malloc((size_t)V * sizeof *scaled);
    cand *top = o->top_k > 0 && o->top_k < V ? malloc((size_t)o->top_k * sizeof *top) : NULL;
    if (!scaled || (o->top_k > 0 && o->top_k < V && !top)) {
        free(scaled);
        free(top);
        return -1;
    }
    for (int i = 0; i < V; i++) scaled[i] = logits[i] / t;
    float kth = -INFINITY; /* fewer than k finite logits: top-k keeps them all */
    if (top && vgpt_top_k(scaled, V, o->top_k, top) == o->top_k) kth = top[o->top_k - 1].v;
    free(top);
    for (int i = 0; i < V; i++) out[i] = (cand){scaled[i], i};
    free(scaled);
    int n = 0;
    for (int i = 0; i < V; i++)
        if (out[i].v != -INFINITY && out[i].v >= kth) out[n++] = out[i];
    if (n == 0) return 0;
    qsort(out, n, sizeof *out, cand_desc);
    double mx = out[0].v, sum = 0.0;
    for (int i = 0; i < n; i++) sum += exp((double)out[i].v - mx);
    int keep = n;
    if (o->top_p < 1.0f) {
        double cum = 0.0;
        for (int i = 0; i < n - 1; i++) {
            cum += exp((double)out[i].v - mx) / sum;
            if (cum > o->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    double kept = 0.0;
    for (int i = 0; i < keep; i++) kept += exp((double)out[i].v - mx);
    for (int i = 0; i < keep; i++) out[i].v = (float)(exp((double)out[i].v - mx) / kept);
    return keep;
}

int vgpt_sample_token(float *logits, int V, const vgpt_gen_opts *o, uint64_t *rng) {
    cand *c = malloc((size_t)V * sizeof *c);
    int n = c ? vgpt_sample_dist(logits, V, o, c) : -1;
    if (n <= 0) { /* out of memory, or every token banned: nothing better than the raw argmax */
        free(c);
        return vgpt_argmax(logits, V);
    }
    double u = (double)(splitmix64(rng) >> 11) * 0x1.0p-53;
    int tok = c[n - 1].id;
    for (int i = 0; i < n; i++) {
        u -= c[i].v;
        if (u < 0) {
            tok = c[i].id;
            break;
        }
    }
    free(c);
    return tok;
}

int vgpt_max_new(const vgpt_model *m, const vgpt_gen_opts *o) {
    int ctx = m->gpt.context;
    return o->max_tokens < ctx ? o->max_tokens : ctx;
}

double vgpt_log_softmax_at(const float *x, int V, int id) {
    float mx = x[vgpt_argmax(x, V)];
    double s = 0.0;
    for (int i = 0; i < V; i++) s += exp((double)(x[i] - mx));
    return (double)(x[id] - mx) - log(s);
}

int vgpt_finish_caption(vgpt_caption *c, const vgpt_hyp *h, double score) {
    c->n_tokens = h->len - 1;
    c->tokens = malloc((c->n_tokens ? c->n_tokens : 1) * sizeof *c->tokens);
    if (!c->tokens) return -1;
    memcpy(c->tokens, h->seq + 1, c->n_tokens * sizeof *c->tokens);
    c->score = (float)score;
    return 0;
}

vgpt_job *vgpt_job_new(const vgpt_model *m, const vgpt_xkv *xkv, const vgpt_gen_opts *o, vgpt_err *err) {
    /* the engine's own gate: every caller (client, decoderd, tools) gets the same limits */
    if (vgpt_gen_opts_check(o, err)) return NULL;
    vgpt_job *j = calloc(1, sizeof *j);
    if (!j) goto oom;
    *j = (vgpt_job){.o = *o, .m = m, .xkv = xkv, .V = m->gpt.vocab, .T = vgpt_max_new(m, o)};
    if (o->mode == VGPT_BEAM) {
        if (vgpt_beam_start(j)) goto oom;
        return j;
    }
    j->h.seq = malloc((j->T + 1) * sizeof *j->h.seq);
    if (!j->h.seq || vgpt_kv_alloc(&j->h.kv, m, j->T > 0 ? j->T : 1)) goto oom;
    j->h.seq[0] = m->family->bos;
    j->h.len = 1;
    j->h.rng = o->seed;
    j->done = j->T <= 0;
    return j;
oom:
    vgpt_job_free(j);
    vgpt_err_set(err, "decoder: out of memory starting a caption");
    return NULL;
}

int vgpt_job_n_live(const vgpt_job *j) {
    if (j->done) return 0;
    return j->b ? vgpt_beam_n_live(j) : 1;
}

int vgpt_job_done(const vgpt_job *j) { return vgpt_job_n_live(j) == 0; }

void vgpt_job_collect(vgpt_job *j, int32_t *tok, vgpt_kv **kv, const vgpt_xkv **xkv) {
    int n = vgpt_job_n_live(j);
    for (int i = 0; i < n; i++) xkv[i] = j->xkv;
    if (j->b) {
        vgpt_beam_collect(j, tok, kv);
        return;
    }
    if (n) {
        tok[0] = j->h.seq[j->h.len - 1];
        kv[0] = &j->h.kv;
    }
}

int vgpt_job_advance(vgpt_job *j, float *logits, vgpt_err *err) {
    if (j->b) {
        if (vgpt_beam_advance(j, logits)) return vgpt_err_set(err, "decoder: out of memory in beam search");
        return 0;
    }
    vgpt_hyp *h = &j->h;
    vgpt_ban_repeated_ngrams(logits, h->seq, h->len, j->o.no_repeat_ngram);
    int t = j->o.mode == VGPT_SAMPLE ? vgpt_sample_token(logits, j->V, &j->o, &h->rng) : vgpt_argmax(logits, j->V);
    h->sum += vgpt_log_softmax_at(logits, j->V, t);
    h->seq[h->len++] = t;
    j->done = t == j->m->family->eos || h->len - 1 >= j->T;
    return 0;
}

int vgpt_job_result(const vgpt_job *j, vgpt_caption *out, vgpt_err *err) {
    memset(out, 0, sizeof *out);
    int rc = j->b ? vgpt_beam_result(j, out) : vgpt_finish_caption(out, &j->h, j->h.sum);
    return rc ? vgpt_err_set(err, "decoder: out of memory copying a caption") : 0;
}

void vgpt_job_free(vgpt_job *j) {
    if (!j) return;
    if (j->b) vgpt_beam_free(j);
    free(j->h.seq);
    vgpt_kv_free(&j->h.kv);
    free(j);
}

/* Steps every live sequence of the jobs together until all are done. */
int vgpt_generate(vgpt_gpt_run *d, const vgpt_xkv *xkv, int N, const vgpt_gen_opts *o, vgpt_caption *out,
                  vgpt_err *err) {
    memset(out, 0, N * sizeof *out);
    int K = o->mode == VGPT_BEAM && o->beams > 1 ? o->beams : 1, V = d->m->gpt.vocab, rc = -1;
    size_t B = (size_t)N * K;
    vgpt_job **jobs = calloc(N, sizeof *jobs);
    int32_t *tok = malloc(B * sizeof *tok);
    vgpt_kv **kvp = malloc(B * sizeof *kvp);
    const vgpt_xkv **xp = malloc(B * sizeof *xp);
    float *logits = malloc(B * V * sizeof *logits);
    if (!jobs || !tok || !kvp || !xp || !logits) {
        vgpt_err_set(err, "decoder: out of memory generating %d captions", N);
        goto done;
    }
    for (int i = 0; i < N; i++)
        if (!(jobs[i] = vgpt_job_new(d->m, &xkv[i], o, err))) goto done;
    for (;;) {
        int nb = 0;
        for (int i = 0; i < N; i++) {
            vgpt_job_collect(jobs[i], tok + nb, kvp + nb, xp + nb);
            nb += vgpt_job_n_live(jobs[i]);
        }
        if (nb == 0) break;
        if (vgpt_gpt_run_step(d, nb, tok, kvp, xp, logits, err)) goto done;
        float *rows = logits;
        for (int i = 0; i < N; i++) {
            int n = vgpt_job_n_live(jobs[i]);
            if (n && vgpt_job_advance(jobs[i], rows, err)) goto done;
            rows += (size_t)n * V;
        }
    }
    for (int i = 0; i < N; i++)
        if (vgpt_job_result(jobs[i], &out[i], err)) goto done;
    rc = 0;
done:
    for (int i = 0; jobs && i < N; i++) vgpt_job_free(jobs[i]);
    if (rc)
        for (int i = 0; i < N; i++) vgpt_caption_free(&out[i]);
    free(jobs); free(tok); free(kvp); free(xp); free(logits);
    return rc;
}
