/* generate_beam.c - length-normalised beam search, batched across images.
 *
 * Each image keeps K live beams and the K best finished hypotheses.  A beam
 * that emits 50256 is finished only if it ranks among the top K candidates
 * of its step (as in transformers' generate()); an image is done at
 * max_tokens, or by the early_stopping rule (gen_opts.h).  Scores are
 * sum(log p) / n_tokens^length_penalty, n_tokens counting the final 50256. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "generate_job.h"

typedef struct finished {
    int32_t *seq;
    int len;
    double score;
} finished;

typedef struct beam_cand {
    double score;
    int parent, token;
} beam_cand;

struct vgpt_image_beams {
    int K;
    int eos;         /* the model family's end token */
    vgpt_hyp *cur, *next; /* K each; seq buffers and KV caches owned here */
    int n_cur;
    finished *fin;   /* K best, unsorted */
    int n_fin, done;
    beam_cand *bc;   /* scratch: K * 2K candidates of a step */
    vgpt_cand *top;  /* scratch: 2K best tokens of one beam */
};

static int bc_desc(const void *a, const void *b) {
    const beam_cand *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    if (x->parent != y->parent) return x->parent - y->parent;
    return x->token - y->token;
}

static double norm_score(double sum, int n_tokens, float lp) {
    return sum / pow(n_tokens > 0 ? n_tokens : 1, lp);
}

/* Keeps the K best finished hypotheses: parent's tokens and `token`. */
static int add_finished(vgpt_image_beams *ib, int K, const vgpt_hyp *parent, int token, double score) {
    int slot = ib->n_fin;
    if (ib->n_fin == K) {
        slot = 0;
        for (int i = 1; i < K; i++)
            if (ib->fin[i].score < ib->fin[slot].score) slot = i;
        if (ib->fin[slot].score >= score) return 0;
        free(ib->fin[slot].seq);
    } else {
        ib->n_fin++;
    }
    finished *f = &ib->fin[slot];
    f->len = parent->len + 1;
    f->seq = malloc(f->len * sizeof *f->seq);
    if (!f->seq) return -1;
    memcpy(f->seq, parent->seq, parent->len * sizeof *f->seq);
    f->seq[parent->len] = token;
    f->score = score;
    return 0;
}

static int alloc_image(vgpt_image_beams *ib, const vgpt_model *m, int K, int T) {
    ib->cur = calloc(K, sizeof *ib->cur);
    ib->next = calloc(K, sizeof *ib->next);
    ib->fin = calloc(K, sizeof *ib->fin);
    ib->bc = malloc((size_t)K * 2 * K * sizeof *ib->bc);
    ib->top = malloc((size_t)2 * K * sizeof *ib->top);
    if (!ib->cur || !ib->next || !ib->fin || !ib->bc || !ib->top) return -1;
    for (int k = 0; k < 2 * K; k++) {
        vgpt_hyp *h = k < K ? &ib->cur[k] : &ib->next[k - K];
        h->seq = malloc((T + 1) * sizeof *h->seq);
        if (!h->seq || vgpt_kv_alloc(&h->kv, m, T > 0 ? T : 1)) return -1;
    }
    ib->cur[0].seq[0] = m->family->bos;
    ib->eos = m->family->eos;
    ib->cur[0].len = 1;
    ib->n_cur = 1;
    return 0;
}

static void free_image(vgpt_image_beams *ib, int K) {
    for (int k = 0; k < K; k++) {
        if (ib->cur) free(ib->cur[k].seq), vgpt_kv_free(&ib->cur[k].kv);
        if (ib->next) free(ib->next[k].seq), vgpt_kv_free(&ib->next[k].kv);
        if (ib->fin) free(ib->fin[k].seq);
    }
    free(ib->cur);
    free(ib->next);
    free(ib->fin);
    free(ib->bc);
    free(ib->top);
}

/* Ranks the candidates of one step for one image.  rows is (n_cur, V). */
static int collect(vgpt_image_beams *ib, float *rows, int V, int K, const vgpt_gen_opts *o, beam_cand *bc,
                   vgpt_cand *top) {
    int n = 0;
    for (int b = 0; b < ib->n_cur; b++) {
        vgpt_hyp *h = &ib->cur[b];
        float *row = rows + (size_t)b * V;
        vgpt_ban_repeated_ngrams(row, h->seq, h->len, o->no_repeat_ngram);
        int m = vgpt_top_k(row, V, 2 * K, top);
        if (m == 0) continue;
        double lse_base = vgpt_log_softmax_at(row, V, top[0].id) - top[0].v; /* = -logsumexp(row) */
        for (int i = 0; i < m; i++) bc[n++] = (beam_cand){h->sum + top[i].v + lse_base, b, top[i].id};
    }
    qsort(bc, n, sizeof *bc, bc_desc);
    return n;
}

/* Whether the search of an image may end after a step that left `gen`
 * generated tokens: transformers' early_stopping rules (see gen_opts.h). */
static int search_over(const vgpt_image_beams *ib, int K, int gen, int T, const vgpt_gen_opts *o) {
    if (ib->n_cur == 0 || gen >= T) return 1;
    if (ib->n_fin < K) return 0;
    if (o->early_stopping == VGPT_STOP_FULL) return 1;
    double worst = ib->fin[0].score;
    for (int i = 1; i < K; i++) worst = ib->fin[i].score < worst ? ib->fin[i].score : worst;
    int reach = o->early_stopping == VGPT_STOP_NEVER && o->length_penalty > 0 ? T : gen;
    return worst >= norm_score(ib->cur[0].sum, reach, o->length_penalty);
}

/* One step: a candidate that ends its caption (50256, or the last token
 * allowed) is finished only if it ranks among the K best of the step; the K
 * best that do not end live on.  With early_stopping true nothing is added
 * once K are finished. */
static int advance(vgpt_image_beams *ib, float *rows, int V, int K, int T, const vgpt_gen_opts *o, beam_cand *bc,
                   vgpt_cand *top) {
    int n = collect(ib, rows, V, K, o, bc, top);
    int gen = ib->cur[0].len; /* generated tokens after this step */
    int last = gen >= T, may_add = !(ib->n_fin == K && o->early_stopping == VGPT_STOP_FULL);
    int n_next = 0;
    for (int r = 0; r < n && n_next < K; r++) {
        const vgpt_hyp *p = &ib->cur[bc[r].parent];
        if (bc[r].token == ib->eos || last) {
            if (r < K && may_add && add_finished(ib, K, p, bc[r].token, norm_score(bc[r].score, gen, o->length_penalty)))
                return -1;
            continue;
        }
        vgpt_hyp *h = &ib->next[n_next++];
        memcpy(h->seq, p->seq, p->len * sizeof *h->seq);
        h->seq[p->len] = bc[r].token;
        h->len = p->len + 1;
        h->sum = bc[r].score;
        vgpt_kv_copy(&h->kv, &p->kv);
    }
    vgpt_hyp *t = ib->cur;
    ib->cur = ib->next;
    ib->next = t;
    ib->n_cur = n_next;
    ib->done = search_over(ib, K, gen, T, o);
    return 0;
}

static int best_caption(const vgpt_image_beams *ib, vgpt_caption *c) {
    if (ib->n_fin == 0) {
        c->tokens = malloc(sizeof *c->tokens);
        return c->tokens ? 0 : -1;
    }
    int best = 0;
    for (int i = 1; i < ib->n_fin; i++)
        if (ib->fin[i].score > ib->fin[best].score) best = i;
    vgpt_hyp h = {.seq = ib->fin[best].seq, .len = ib->fin[best].len};
    return vgpt_finish_caption(c, &h, ib->fin[best].score);
}

int vgpt_beam_start(vgpt_job *j) {
    int K = j->o.beams > 0 ? j->o.beams : 1;
    j->b = calloc(1, sizeof *j->b);
    if (!j->b) return -1;
    j->b->K = K;
    if (alloc_image(j->b, j->m, K, j->T)) return -1;
    j->b->done = j->T <= 0;
    return 0;
}

int vgpt_beam_n_live(const vgpt_job *j) { return j->b->done ? 0 : j->b->n_cur; }

void vgpt_beam_collect(vgpt_job *j, int32_t *tok, vgpt_kv **kv) {
    for (int b = 0; b < vgpt_beam_n_live(j); b++) {
        vgpt_hyp *h = &j->b->cur[b];
        tok[b] = h->seq[h->len - 1];
        kv[b] = &h->kv;
    }
}

int vgpt_beam_advance(vgpt_job *j, float *logits) {
    vgpt_image_beams *ib = j->b;
    return advance(ib, logits, j->V, ib->K, j->T, &j->o, ib->bc, ib->top);
}

int vgpt_beam_result(const vgpt_job *j, vgpt_caption *out) { return best_caption(j->b, out); }

void vgpt_beam_free(vgpt_job *j) {
    free_image(j->b, j->b->K);
    free(j->b);
    j->b = NULL;
}
