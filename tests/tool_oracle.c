/* tool_oracle.c - checks the C engine against the PyTorch reference's outputs.
 *
 *   tool_oracle CKPT DIR [REL_TOL [--no-sampling]]
 *   tool_oracle CKPT DIR --fidelity fp32|bf16
 *
 * DIR holds what `vgpt_ref.py run` wrote: pixels.f32 (N,3,S,S), vis.f32
 * (N,L,C), logits0.f32 (N,V), greedy.i32 (N,K), margin.f32 (N,K) and
 * logits_steps.f32 (N,K,V), and for sampling sample_in.f32 (M,V) with
 * sample_cases.json (the author's filter's drawable tokens and probabilities
 * per row and setting).  Prints PASS/FAIL lines for tests/run.sh.
 *
 * --fidelity measures instead of checking (bf16 cannot meet 1e-4): one JSON
 * line with the visual tokens' and the teacher-forced logits' worst
 * relative error, and how often the engine's top token equals the
 * reference's greedy token on the steps whose top-2 margin exceeds 0.1;
 * tests and `make bench` judge the figures. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "generate.h"
#include "encoder.h"
#include "generate_job.h"
#include "gpt2.h"
#include "json.h"
#include "kern.h"
#include "kernels.h"
#include "model.h"

static void *slurp(const char *dir, const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    void *p = check_slurp(path, len);
    if (!p) {
        fprintf(stderr, "tool_oracle: cannot read %s\n", path);
        exit(2);
    }
    return p;
}

/* max |a-b| / max |b|: error relative to the tensor's scale. */
static double rel_err(const float *a, const float *b, size_t n) {
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = d; /* NaN propagates as a failure */
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0 ? md / mb : md;
}

static double max_abs(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

typedef struct ref {
    float *pixels, *vis, *logits0, *margin, *steps;
    int32_t *greedy;
    int N, K, L, C, V;
} ref;

static void load_ref(ref *r, const char *dir, const vgpt_model *m) {
    size_t n;
    int S = m->vit.image;
    vgpt_encoder *e;
    vgpt_err err;
    if (vgpt_encoder_new(m, &e, &err)) {
        fprintf(stderr, "tool_oracle: %s\n", err.msg);
        exit(2);
    }
    r->L = vgpt_encoder_n_tokens(e);
    r->C = vgpt_encoder_width(e);
    vgpt_encoder_free(e);
    r->V = m->gpt.vocab;
    r->pixels = slurp(dir, "pixels.f32", &n);
    r->N = (int)(n / (sizeof(float) * 3 * S * S));
    r->vis = slurp(dir, "vis.f32", &n);
    r->logits0 = slurp(dir, "logits0.f32", &n);
    r->greedy = slurp(dir, "greedy.i32", &n);
    r->K = (int)(n / (sizeof(int32_t) * r->N));
    r->margin = slurp(dir, "margin.f32", &n);
    r->steps = slurp(dir, "logits_steps.f32", &n);
}

static void check_encoder(check_state *st, vgpt_encoder *enc, const ref *r, float *vis, double tol) {
    vgpt_err err;
    size_t per = (size_t)r->L * r->C;
    int rc = vgpt_encode(enc, r->pixels, r->N, vis, &err);
    CHECK(st, rc == 0, "encoder ran on %d images%s%s", r->N, rc ? ": " : "", rc ? err.msg : "");
    for (int n = 0; n < r->N; n++) {
        double e = rel_err(vis + n * per, r->vis + n * per, per);
        CHECK(st, e <= tol, "visual tokens of image %d: rel err %.3g <= %.0e (batch %d)", n, e, tol, r->N);
    }
    float *one = malloc(per * sizeof(float));
    vgpt_encode(enc, r->pixels, 1, one, &err);
    double e = rel_err(one, r->vis, per);
    CHECK(st, e <= tol, "visual tokens of image 0 encoded alone: rel err %.3g <= %.0e", e, tol);
    free(one);
}

/* Called with each image's logits at each teacher-forced step, beside the
 * reference's (want) and its top-2 margin there. */
typedef void (*step_fn)(void *arg, int s, int n, const float *logits, const float *want, float margin, int32_t greedy);

/* Feeds the reference's greedy tokens for every step, decoding from xkv;
 * -1 with err set when a step fails. */
static int teacher_forced(vgpt_gpt_run *d, const vgpt_model *m, const ref *r, const vgpt_xkv *xkv, step_fn fn,
                          void *arg, vgpt_err *err) {
    float *logits = malloc((size_t)r->N * r->V * sizeof(float));
    vgpt_kv *kv = calloc(r->N, sizeof *kv);
    vgpt_kv **kvp = calloc(r->N, sizeof *kvp);
    const vgpt_xkv **xp = calloc(r->N, sizeof *xp);
    int32_t *tok = calloc(r->N, sizeof *tok);
    for (int n = 0; n < r->N; n++) {
        vgpt_kv_alloc(&kv[n], m, r->K);
        kvp[n] = &kv[n];
        xp[n] = &xkv[n];
    }
    int rc = 0;
    for (int s = 0; s < r->K && !rc; s++) {
        for (int n = 0; n < r->N; n++) tok[n] = s == 0 ? m->family->bos : r->greedy[n * r->K + s - 1];
        rc = vgpt_gpt_run_step(d, r->N, tok, kvp, xp, logits, err);
        for (int n = 0; n < r->N && !rc; n++) {
            const float *want = s == 0 ? r->logits0 + (size_t)n * r->V : r->steps + ((size_t)n * r->K + s) * r->V;
            fn(arg, s, n, logits + (size_t)n * r->V, want, r->margin[n * r->K + s], r->greedy[n * r->K + s]);
        }
    }
    for (int n = 0; n < r->N; n++) vgpt_kv_free(&kv[n]);
    free(logits); free(kv); free(kvp); free(xp); free(tok);
    return rc;
}

typedef struct forced_check {
    check_state *st;
    int V;
    double tol, worst;
} forced_check;

static void forced_check_step(void *arg, int s, int n, const float *logits, const float *want, float margin,
                              int32_t greedy) {
    (void)margin, (void)greedy;
    forced_check *c = arg;
    double e = rel_err(logits, want, c->V);
    if (s == 0) CHECK(c->st, e <= c->tol, "first-step logits of image %d: rel err %.3g <= %.0e", n, e, c->tol);
    c->worst = e > c->worst || e != e ? e : c->worst;
}

/* Feeds the reference's greedy tokens and compares the logits at every step. */
static void check_teacher_forced(check_state *st, vgpt_gpt_run *d, const vgpt_model *m, const ref *r,
                                 const vgpt_xkv *xkv, double tol) {
    vgpt_err err;
    forced_check c = {.st = st, .V = r->V, .tol = tol};
    if (teacher_forced(d, m, r, xkv, forced_check_step, &c, &err)) CHECK(st, 0, "decoder step: %s", err.msg);
    CHECK(st, c.worst <= tol, "logits at all %d teacher-forced steps (KV cache): worst rel err %.3g <= %.0e", r->K,
          c.worst, tol);
}

/* Free-running greedy decoding must follow the reference until the first
 * step whose top-2 margin is within the logit tolerance (a tie at fp32). */
static void check_greedy(check_state *st, vgpt_gpt_run *d, const ref *r, const vgpt_xkv *xkv, double tol) {
    vgpt_err err;
    vgpt_gen_opts o;
    vgpt_gen_opts_default(&o);
    o.mode = VGPT_GREEDY;
    o.no_repeat_ngram = 0;
    o.max_tokens = r->K;
    vgpt_caption *caps = calloc(r->N, sizeof *caps);
    int rc = vgpt_generate(d, xkv, r->N, &o, caps, &err);
    CHECK(st, rc == 0, "greedy generation%s%s", rc ? ": " : "", rc ? err.msg : "");
    for (int n = 0; rc == 0 && n < r->N; n++) {
        int compared = 0, ok = 1;
        for (int s = 0; s < r->K; s++) {
            const float *lg = s == 0 ? r->logits0 + (size_t)n * r->V : r->steps + ((size_t)n * r->K + s) * r->V;
            double tol_logit = tol * max_abs(lg, r->V);
            if (r->margin[n * r->K + s] <= tol_logit) break;
            compared++;
            if (s >= caps[n].n_tokens || caps[n].tokens[s] != r->greedy[n * r->K + s]) {
                ok = 0;
                break;
            }
            if (r->greedy[n * r->K + s] == 50256) break; /* the reference's EOS */
        }
        CHECK(st, ok && compared > 0, "greedy tokens of image %d equal the reference over %d decisive steps", n,
              compared);
        vgpt_caption_free(&caps[n]);
    }
    free(caps);
}

/* One case: the same drawable set as the author's filter, probabilities within 1e-5. */
static int sample_case_ok(const vgpt_json *c, const float *row, int V, vgpt_cand *out, double *worst) {
    const vgpt_json *ids = vgpt_json_get(c, "ids"), *probs = vgpt_json_get(c, "probs");
    vgpt_gen_opts o;
    vgpt_gen_opts_sample(&o);
    o.temperature = (float)vgpt_json_get(c, "temperature")->num;
    o.top_k = (int)vgpt_json_get(c, "top_k")->i;
    o.top_p = (float)vgpt_json_get(c, "top_p")->num;
    int n = vgpt_sample_dist(row, V, &o, out);
    if (n != (int)ids->n) return 0;
    for (size_t i = 0; i < ids->n; i++) {
        int found = 0;
        for (int j = 0; j < n && !found; j++) {
            if (out[j].id != ids->kids[i].i) continue;
            double d = fabs(out[j].v - probs->kids[i].num);
            *worst = d > *worst ? d : *worst;
            found = d <= 1e-5;
        }
        if (!found) return 0;
    }
    return 1;
}

static void check_sampling(check_state *st, const char *dir, int V) {
    char path[4096];
    snprintf(path, sizeof path, "%s/sample_cases.json", dir);
    vgpt_json_doc *doc;
    vgpt_err err;
    if (vgpt_json_parse_file(path, &doc, &err)) {
        CHECK(st, 0, "sampling cases: %s", err.msg);
        return;
    }
    size_t len;
    float *rows = slurp(dir, "sample_in.f32", &len);
    vgpt_cand *out = malloc((size_t)V * sizeof *out);
    const vgpt_json *cases = vgpt_json_root(doc);
    int bad = 0, ties = 0;
    double worst = 0;
    for (size_t i = 0; i < cases->n; i++) {
        const vgpt_json *c = &cases->kids[i];
        int r = (int)vgpt_json_get(c, "row")->i;
        ties += (int)vgpt_json_get(c, "ids")->n > vgpt_json_get(c, "top_k")->i && vgpt_json_get(c, "top_k")->i > 0;
        if (!sample_case_ok(c, rows + (size_t)r * V, V, out, &worst)) {
            if (!bad) fprintf(stderr, "tool_oracle: sampling case %zu (row %d) differs from the reference\n", i, r);
            bad++;
        }
    }
    CHECK(st, cases->n > 0 && bad == 0 && ties > 0,
          "sampling: drawable tokens and probabilities equal the author's filter in %zu cases (%d with top-k ties; "
          "worst prob diff %.2g <= 1e-5; %d differ)", cases->n, ties, worst, bad);
    free(out);
    free(rows);
    vgpt_json_free(doc);
}

typedef struct fidelity_sums {
    int V, decisive, agree;
    double worst;
} fidelity_sums;

/* Worst logits error, and top-token agreement on the steps whose
 * reference top-2 margin exceeds 0.1. */
static void fidelity_step(void *arg, int s, int n, const float *logits, const float *want, float margin,
                          int32_t greedy) {
    (void)s, (void)n;
    fidelity_sums *f = arg;
    double e = rel_err(logits, want, f->V);
    f->worst = e > f->worst || e != e ? e : f->worst;
    if (margin <= 0.1) return;
    f->decisive++;
    f->agree += vgpt_argmax(logits, f->V) == greedy;
}

/* 1 when the batch's last image, encoded alone, gets the batch's visual
 * tokens bit for bit: a caption must not depend on its batch-mates, however
 * many images the encoder's products take per call
 * (vgpt_precision_images_per_pass). */
static int batch_free(vgpt_encoder *enc, const ref *r, const float *vis, int S) {
    size_t per = (size_t)r->L * r->C, plane = (size_t)3 * S * S;
    float *one = malloc(per * sizeof(float));
    vgpt_err err;
    int same = one && r->N > 0 && !vgpt_encode(enc, r->pixels + (r->N - 1) * plane, 1, one, &err) &&
               !memcmp(one, vis + (r->N - 1) * per, per * sizeof(float));
    free(one);
    return same;
}

/* The same for the decoder's cross K/V, made from the reference's tokens. */
static int cross_kv_batch_free(vgpt_gpt_run *d, const ref *r, const vgpt_xkv *xkv) {
    if (r->N < 1) return 0;
    const vgpt_xkv *last = &xkv[r->N - 1];
    vgpt_xkv one = {0};
    vgpt_err err;
    size_t bytes = (size_t)last->n_cross * 2 * last->L * last->C * vgpt_kv_elem_size(last->bf16);
    int same = last->kv && !vgpt_gpt_run_cross_kv(d, r->vis + (size_t)(r->N - 1) * r->L * r->C, 1, r->L, &one, &err) &&
               !memcmp(one.kv, last->kv, bytes);
    vgpt_xkv_free(&one);
    return same;
}

static int fidelity(const char *ckpt, const char *dir, const char *precision) {
    vgpt_precision p;
    if (vgpt_precision_parse(precision, &p)) {
        fprintf(stderr, "tool_oracle: --fidelity takes fp32 or bf16, not %s\n", precision);
        return 2;
    }
    vgpt_err err;
    vgpt_model *m;
    vgpt_set_threads(2);
    if (vgpt_model_load(ckpt, VGPT_LOAD_ALL | (p == VGPT_BF16 ? VGPT_LOAD_BF16 : 0), &m, &err)) {
        fprintf(stderr, "tool_oracle: %s\n", err.msg);
        return 1;
    }
    ref r;
    load_ref(&r, dir, m);
    vgpt_encoder *enc;
    vgpt_gpt_run d;
    vgpt_encoder_new(m, &enc, &err);
    vgpt_gpt_run_init(&d, m, 2, &err);
    float *vis = malloc((size_t)r.N * r.L * r.C * sizeof(float));
    double vis_err = vgpt_encode(enc, r.pixels, r.N, vis, &err) ? INFINITY : rel_err(vis, r.vis, (size_t)r.N * r.L * r.C);
    int alone_same = batch_free(enc, &r, vis, m->vit.image);
    vgpt_xkv *xkv = calloc(r.N, sizeof *xkv);
    vgpt_gpt_run_cross_kv(&d, r.vis, r.N, r.L, xkv, &err);
    alone_same = alone_same && cross_kv_batch_free(&d, &r, xkv);
    fidelity_sums f = {.V = r.V};
    if (teacher_forced(&d, m, &r, xkv, fidelity_step, &f, &err)) {
        fprintf(stderr, "tool_oracle: %s\n", err.msg);
        f.worst = INFINITY;
    }
    double logit_err = f.worst;
    int decisive = f.decisive, agree = f.agree;
    printf("{\"precision\":\"%s\",\"images\":%d,\"vis_rel_err\":%.3g,\"logits_rel_err\":%.3g,"
           "\"decisive_steps\":%d,\"agree\":%d,\"agreement\":%.4f,\"alone_identical\":%s}\n",
           precision, r.N, vis_err, logit_err, decisive, agree, decisive ? (double)agree / decisive : 0.0,
           alone_same ? "true" : "false");
    for (int n = 0; n < r.N; n++) vgpt_xkv_free(&xkv[n]);
    free(xkv); free(vis);
    free(r.pixels); free(r.vis); free(r.logits0); free(r.greedy); free(r.margin); free(r.steps);
    vgpt_encoder_free(enc);
    vgpt_gpt_run_free(&d);
    vgpt_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tool_oracle CKPT DIR [REL_TOL]\n       tool_oracle CKPT DIR --fidelity fp32|bf16\n");
        return 2;
    }
    if (argc > 4 && !strcmp(argv[3], "--fidelity")) return fidelity(argv[1], argv[2], argv[4]);
    double tol = argc > 3 ? atof(argv[3]) : 1e-4;
    int sampling = !(argc > 4 && !strcmp(argv[4], "--no-sampling")); /* HF fixtures: no author's filter */
    check_state st = {0};
    vgpt_err err;
    vgpt_model *m;
    vgpt_set_threads(2);
    const char *isa = getenv("VGPT_ISA");
    if (isa && *isa)
        CHECK(&st, !strcmp(vgpt_kernels_get()->name, isa), "VGPT_ISA=%s runs the %s kernels", isa,
              vgpt_kernels_get()->name);
    int rc = vgpt_model_load(argv[1], VGPT_LOAD_ALL, &m, &err);
    CHECK(&st, rc == 0, "load %s%s%s", argv[1], rc ? ": " : "", rc ? err.msg : "");
    if (rc) return 1;
    ref r;
    load_ref(&r, argv[2], m);
    vgpt_encoder *enc;
    vgpt_gpt_run d;
    vgpt_encoder_new(m, &enc, &err);
    vgpt_gpt_run_init(&d, m, 2, &err);
    float *vis = malloc((size_t)r.N * r.L * r.C * sizeof(float));
    check_encoder(&st, enc, &r, vis, tol);
    vgpt_xkv *xkv = calloc(r.N, sizeof *xkv);
    /* decode from the reference's visual tokens so decoder errors are measured alone */
    vgpt_gpt_run_cross_kv(&d, r.vis, r.N, r.L, xkv, &err);
    check_teacher_forced(&st, &d, m, &r, xkv, tol);
    check_greedy(&st, &d, &r, xkv, tol);
    if (sampling) check_sampling(&st, argv[2], r.V);
    for (int n = 0; n < r.N; n++) vgpt_xkv_free(&xkv[n]);
    free(xkv); free(vis);
    free(r.pixels); free(r.vis); free(r.logits0); free(r.greedy); free(r.margin); free(r.steps);
    vgpt_encoder_free(enc);
    vgpt_gpt_run_free(&d);
    vgpt_model_free(m);
    printf("%d passed, %d failed\n", st.passed, st.failed);
    return check_exit(&st);
}
