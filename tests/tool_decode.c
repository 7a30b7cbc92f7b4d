/* tool_decode.c - properties of the decoding strategies on a real (random
 * weight) checkpoint: tool_decode CKPT.  Each check can fail: they compare
 * strategies that must agree, or runs that must repeat exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "generate.h"
#include "gpt2.h"
#include "kernels.h"
#include "model.h"

#define N_IMG 3

static int same(const vgpt_caption *a, const vgpt_caption *b) {
    return a->n_tokens == b->n_tokens && !memcmp(a->tokens, b->tokens, a->n_tokens * sizeof *a->tokens);
}

static int run(vgpt_gpt_run *d, const vgpt_xkv *x, int n, const vgpt_gen_opts *o, vgpt_caption *out) {
    vgpt_err err;
    if (vgpt_generate(d, x, n, o, out, &err)) {
        printf("FAIL: generate: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void free_caps(vgpt_caption *c, int n) {
    for (int i = 0; i < n; i++) vgpt_caption_free(&c[i]);
}

static int has_repeat(const vgpt_caption *c, int n) {
    for (int i = 0; i + n <= c->n_tokens; i++)
        for (int j = i + 1; j + n <= c->n_tokens; j++)
            if (!memcmp(c->tokens + i, c->tokens + j, n * sizeof *c->tokens)) return 1;
    return 0;
}

static void checks(check_state *st, vgpt_gpt_run *d, const vgpt_xkv *x) {
    vgpt_gen_opts g, o;
    vgpt_caption greedy[N_IMG], a[N_IMG], b[N_IMG];
    vgpt_gen_opts_default(&g);
    g.mode = VGPT_GREEDY;
    g.no_repeat_ngram = 0;
    g.max_tokens = 12;
    if (run(d, x, N_IMG, &g, greedy)) return;
    if (!run(d, x + 1, 1, &g, a)) {
        CHECK(st, same(&a[0], &greedy[1]), "greedy caption of image 1 is the same alone and in a batch of %d", N_IMG);
        free_caps(a, 1);
    }
    o = g;
    o.mode = VGPT_BEAM;
    o.beams = 1;
    if (!run(d, x, N_IMG, &o, a)) {
        for (int i = 0; i < N_IMG; i++) CHECK(st, same(&a[i], &greedy[i]), "beam 1 == greedy (image %d)", i);
        free_caps(a, N_IMG);
    }
    o = g;
    o.mode = VGPT_SAMPLE;
    o.top_k = 1;
    o.top_p = 1.0f;
    o.temperature = 0.7f;
    if (!run(d, x, N_IMG, &o, a)) {
        for (int i = 0; i < N_IMG; i++) CHECK(st, same(&a[i], &greedy[i]), "top-k 1 == greedy (image %d)", i);
        free_caps(a, N_IMG);
    }
    vgpt_gen_opts_sample(&o);
    o.max_tokens = 12;
    o.seed = 42;
    o.temperature = 1.5f; /* flat enough that two seeds must differ somewhere */
    if (!run(d, x, N_IMG, &o, a) && !run(d, x, 1, &o, b)) {
        CHECK(st, same(&a[0], &b[0]), "same seed, same caption (batch of %d vs alone)", N_IMG);
        free_caps(b, 1);
        vgpt_caption c[N_IMG];
        o.seed = 43;
        if (!run(d, x, N_IMG, &o, c)) {
            int differ = 0;
            for (int i = 0; i < N_IMG; i++) differ |= !same(&a[i], &c[i]);
            CHECK(st, differ, "another seed gives other captions");
            free_caps(c, N_IMG);
        }
        free_caps(a, N_IMG);
    }
    vgpt_gen_opts_default(&o);
    o.max_tokens = 12;
    if (!run(d, x, N_IMG, &o, a)) {
        for (int i = 0; i < N_IMG; i++) {
            CHECK(st, !has_repeat(&a[i], 3), "beam 3 with no-repeat-3gram has no repeated 3-gram (image %d)", i);
        }
        free_caps(a, N_IMG);
    }
    free_caps(greedy, N_IMG);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tool_decode CKPT\n");
        return 2;
    }
    check_state st = {0};
    vgpt_err err;
    vgpt_model *m;
    vgpt_set_threads(1);
    if (vgpt_model_load(argv[1], VGPT_LOAD_DECODER, &m, &err)) {
        printf("FAIL: load: %s\n", err.msg);
        return 1;
    }
    vgpt_gpt_run d;
    vgpt_gpt_run_init(&d, m, 1, &err);
    int L = 8, C = m->gpt.width;
    float *vis = malloc((size_t)N_IMG * L * C * sizeof(float));
    uint64_t s = 12345;
    for (int i = 0; i < N_IMG * L * C; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        vis[i] = (float)((s >> 40) / (double)(1 << 24)) * 4.0f - 2.0f;
    }
    vgpt_xkv x[N_IMG];
    if (vgpt_gpt_run_cross_kv(&d, vis, N_IMG, L, x, &err)) {
        printf("FAIL: cross kv: %s\n", err.msg);
        return 1;
    }
    checks(&st, &d, x);
    for (int i = 0; i < N_IMG; i++) vgpt_xkv_free(&x[i]);
    free(vis);
    vgpt_gpt_run_free(&d);
    vgpt_model_free(m);
    printf("%d passed, %d failed\n", st.passed, st.failed);
    return check_exit(&st);
}
