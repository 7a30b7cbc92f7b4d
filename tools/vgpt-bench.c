/* vgpt-bench.c - speed of the engine's parts on this machine, with the
 * machine's own ceilings measured in the same run (sgemm's rate, the bf16
 * products' rate on the same shape, memory bandwidth), so every figure can
 * be read against its own precision's floor.
 *
 *   vgpt-bench CKPT [THREADS [PRECISIONS [CAPTION_TOKENS]]]
 *
 * PRECISIONS is fp32, bf16 or both, "fp32,bf16": then the checkpoint is
 * loaded once per precision and every part is measured for each in turn,
 * so that their ratios come from the same minutes of a shared host (whose
 * memory bandwidth drifts by a third between runs).  Prints one JSON
 * object per line, each naming its precision. */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "generate.h"
#include "encoder.h"
#include "gpt2.h"
#include "kern.h"
#include "kernels.h"
#include "mm.h"
#include "model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fill(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((seed >> 40) / (double)(1 << 24)) * 4.0f - 2.0f;
    }
}

/* Runs each rate is the best of: a floor must come from a quiet moment of
 * a shared host, or a part's best round beats it (5 did, on Zen 4). */
#define PEAK_RUNS 20

/* sgemm GFLOP/s on the ViT's MLP shape (8 images x 197 tokens, 768 -> 3072). */
static double sgemm_peak(void) {
    int M = 1576, N = 3072, K = 768;
    float *a = malloc((size_t)M * K * 4), *b = malloc((size_t)N * K * 4), *c = malloc((size_t)M * N * 4);
    fill(a, (size_t)M * K, 1);
    fill(b, (size_t)N * K, 2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
    double best = 0;
    for (int r = 0; r < PEAK_RUNS; r++) {
        double t = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, 0, c, N);
        double g = 2.0 * M * N * K / (now() - t) / 1e9;
        best = g > best ? g : best;
    }
    free(a); free(b); free(c);
    return best;
}

/* The bf16 products' GFLOP/s on the same shape, through the engine's own
 * product (oneDNN's, or vgpt's where oneDNN has no bf16): the rate every
 * bf16 floor below is read against, as sgemm's is for fp32.  Its input is
 * rounded to bf16 each time, as the engine's is.  0 if it cannot run. */
static double bf16_peak(vgpt_mm_ctx *c) {
    int M = 1576, N = 3072, K = 768;
    float *a = malloc((size_t)M * K * 4), *b = malloc((size_t)N * K * 4), *out = malloc((size_t)M * N * 4);
    vgpt_err err;
    vgpt_mm *w = NULL;
    double best = 0;
    if (a && b && out) {
        fill(a, (size_t)M * K, 1);
        fill(b, (size_t)N * K, 2);
        w = vgpt_mm_new(c, K, 1, (const float *const[]){b}, NULL, &N, &err);
    }
    if (w) vgpt_mm_run(w, out, a, M, 0);
    for (int r = 0; w && r < PEAK_RUNS; r++) {
        double t = now();
        vgpt_mm_run(w, out, a, M, 0);
        double g = 2.0 * M * N * K / (now() - t) / 1e9;
        best = g > best ? g : best;
    }
    if (vgpt_mm_ctx_check(c, &err)) best = 0;
    vgpt_mm_free(w);
    free(a); free(b); free(out);
    return best;
}

typedef struct { const uint64_t *p; size_t n; uint64_t x; } bw_arg;

/* XOR is associative for integers, so GCC vectorises this without fast-math. */
static void *bw_thread(void *arg) {
    bw_arg *a = arg;
    uint64_t x = 0;
    for (size_t i = 0; i < a->n; i++) x ^= a->p[i];
    a->x = x;
    return NULL;
}

/* GB/s reading 1 GiB with T threads: the decoder's batch-1 floor. */
static double read_bandwidth(int T) {
    size_t n = (size_t)1 << 27;
    uint64_t *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = i;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        pthread_t th[64];
        bw_arg args[64];
        double t = now();
        for (int i = 0; i < T; i++) {
            args[i] = (bw_arg){p + n / T * i, n / T, 0};
            pthread_create(&th[i], NULL, bw_thread, &args[i]);
        }
        for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
        double g = n * sizeof *p / (now() - t) / 1e9;
        best = g > best ? g : best;
    }
    free(p);
    return best;
}

/* Visual tokens per image (the family's: 64 latents, or the ViT's 197). */
static int vis_tokens(const vgpt_model *m) {
    vgpt_encoder *e;
    vgpt_err err;
    if (vgpt_encoder_new(m, &e, &err)) return 1;
    int L = vgpt_encoder_n_tokens(e);
    vgpt_encoder_free(e);
    return L;
}

static double lin_macs(const vgpt_lin *l) { return (double)l->in * l->out; }

/* GFLOP of one ViT pass over its 1+G*G tokens: the patch GEMM, each
 * layer's four products and its attention's two (ViT-B/16: 35.1). */
static double vit_gflop(const vgpt_vit *v) {
    double T = v->grid * v->grid + 1.0, D = v->width;
    double flops = 2.0 * (T - 1) * lin_macs(&v->patch_embed);
    for (int l = 0; l < v->n_layers; l++) {
        const vgpt_vit_layer *L = &v->layers[l];
        flops += 2.0 * T * (lin_macs(&L->qkv) + lin_macs(&L->proj) + lin_macs(&L->fc1) + lin_macs(&L->fc2));
        flops += 2.0 * 2 * T * T * D; /* q k^T and p v, all heads */
    }
    return flops / 1e9;
}

/* One precision's model and what runs it. */
typedef struct bench_model {
    vgpt_precision prec;
    vgpt_model *m;
    vgpt_encoder *enc;
    vgpt_gpt_run d;
    double peak; /* its products' GFLOP/s: sgemm's, or bf16_peak's */
} bench_model;

/* Seconds per image of one timed run (after a warm-up: buffers, page faults). */
static double encode_run(const bench_model *bm, int batch) {
    const vgpt_model *m = bm->m;
    vgpt_encoder *enc = bm->enc;
    int S = m->vit.image;
    size_t L = vgpt_encoder_n_tokens(enc), C = vgpt_encoder_width(enc);
    float *px = malloc((size_t)batch * 3 * S * S * 4), *vis = malloc(batch * L * C * 4);
    fill(px, (size_t)batch * 3 * S * S, 3);
    vgpt_err err;
    vgpt_encode(enc, px, batch, vis, &err);
    int reps = batch == 1 ? 5 : 2;
    double t = now();
    for (int r = 0; r < reps; r++) vgpt_encode(enc, px, batch, vis, &err);
    double s = (now() - t) / (reps * batch);
    free(px);
    free(vis);
    return s;
}

/* Every precision in turn, the best of three rounds each, as the decoders
 * are measured: a neighbour's burst on a shared host then costs one round,
 * not one precision's figure. */
static void bench_encoders(const bench_model *bm, int n, int batch) {
    double best[2] = {1e9, 1e9};
    for (int r = 0; r < 3; r++)
        for (int i = 0; i < n; i++) {
            double s = encode_run(&bm[i], batch);
            best[i] = s < best[i] ? s : best[i];
        }
    for (int i = 0; i < n; i++) {
        double s = best[i], peak = bm[i].peak, vit = vit_gflop(&bm[i].m->vit);
        printf("{\"bench\":\"encoder\",\"precision\":\"%s\",\"batch\":%d,\"images_per_s\":%.3f,\"s_per_image\":%.4f,"
               "\"vit_gflops\":%.1f,\"floor_s_per_image\":%.4g,\"x_floor\":%.2f}\n",
               vgpt_precision_name(bm[i].prec), batch, 1 / s, s, vit / s, vit / peak, s / (vit / peak));
    }
    fflush(stdout);
}

/* Steps B captions for `steps` tokens from random visual tokens; s per step. */
static double decode_steps(const vgpt_model *m, vgpt_gpt_run *d, int B, int steps) {
    int L = vis_tokens(m), C = m->gpt.width, V = m->gpt.vocab;
    float *vis = malloc((size_t)B * L * C * 4), *logits = malloc((size_t)B * V * 4);
    fill(vis, (size_t)B * L * C, 4);
    vgpt_xkv *x = calloc(B, sizeof *x);
    vgpt_kv *kv = calloc(B, sizeof *kv);
    vgpt_kv **kvp = calloc(B, sizeof *kvp);
    const vgpt_xkv **xp = calloc(B, sizeof *xp);
    int32_t *tok = calloc(B, sizeof *tok);
    vgpt_err err;
    vgpt_gpt_run_cross_kv(d, vis, B, L, x, &err);
    for (int b = 0; b < B; b++) {
        vgpt_kv_alloc(&kv[b], m, steps + 2);
        kvp[b] = &kv[b];
        xp[b] = &x[b];
        tok[b] = m->family->bos;
    }
    vgpt_gpt_run_step(d, B, tok, kvp, xp, logits, &err); /* warm-up */
    double t = now();
    for (int s = 0; s < steps; s++) {
        vgpt_gpt_run_step(d, B, tok, kvp, xp, logits, &err);
        for (int b = 0; b < B; b++) tok[b] = vgpt_argmax(logits + (size_t)b * V, V);
    }
    double per = (now() - t) / steps;
    for (int b = 0; b < B; b++) {
        vgpt_kv_free(&kv[b]);
        vgpt_xkv_free(&x[b]);
    }
    free(vis); free(logits); free(x); free(kv); free(kvp); free(xp); free(tok);
    return per;
}

/* Multiply-adds per token of a decoding step: every weight a step streams
 * (the cross blocks' K / V are made once per image, cross_kv_macs). */
static double step_macs(const vgpt_gpt *g) {
    double n = (double)g->vocab * g->width;
    for (int j = 0; j < g->n_blocks; j++) {
        const vgpt_block *b = &g->blocks[j];
        n += lin_macs(&b->q) + lin_macs(&b->proj);
        if (!b->is_cross) n += lin_macs(&b->k) + lin_macs(&b->v) + lin_macs(&b->fc1) + lin_macs(&b->fc2);
        if (b->in_cross) n += lin_macs(&b->xq) + lin_macs(&b->xproj);
    }
    return n;
}

/* Multiply-adds per visual token of the K / V every cross-attention makes once per image. */
static double cross_kv_macs(const vgpt_gpt *g) {
    double n = 0;
    for (int j = 0; j < g->n_blocks; j++) {
        const vgpt_block *b = &g->blocks[j];
        if (b->is_cross) n += lin_macs(&b->k) + lin_macs(&b->v);
        if (b->in_cross) n += lin_macs(&b->xk) + lin_macs(&b->xv);
    }
    return n;
}

/* The machine's memory bandwidth drifts (a shared host): batch 1 and 16
 * of every precision are measured in turns and the best of six taken for
 * each (on Zen 4 the best of three still moved by ~10% between runs, with
 * a neighbour's memory traffic). */
static void bench_decoders(bench_model *bm, int n, double bw) {
    double s1[2] = {1e9, 1e9}, s16[2] = {1e9, 1e9};
    for (int r = 0; r < 6; r++)
        for (int i = 0; i < n; i++) {
            double a = decode_steps(bm[i].m, &bm[i].d, 1, 24), b = decode_steps(bm[i].m, &bm[i].d, 16, 24);
            s1[i] = a < s1[i] ? a : s1[i];
            s16[i] = b < s16[i] ? b : s16[i];
        }
    for (int i = 0; i < n; i++) {
        double peak = bm[i].peak * 1e9, macs = step_macs(&bm[i].m->gpt), bytes = macs * (bm[i].prec == VGPT_BF16 ? 2 : 4);
        double flops16 = 16 * 2 * macs; /* one multiply-add per weight per token */
        const char *p = vgpt_precision_name(bm[i].prec);
        printf("{\"bench\":\"decoder\",\"precision\":\"%s\",\"batch\":1,\"ms_per_token\":%.2f,\"weights_gb\":%.4g,"
               "\"floor_ms\":%.4g,\"x_floor\":%.2f}\n",
               p, s1[i] * 1e3, bytes / 1e9, bytes / bw * 1e3, s1[i] / (bytes / bw));
        printf("{\"bench\":\"decoder\",\"precision\":\"%s\",\"batch\":16,\"tokens_per_s\":%.1f,\"ms_per_step\":%.2f,"
               "\"x_batch1\":%.2f,\"gflops\":%.1f,\"compute_floor_ms\":%.4g,\"x_compute_floor\":%.2f}\n",
               p, 16 / s16[i], s16[i] * 1e3, (16 / s16[i]) / (1 / s1[i]), flops16 / s16[i] / 1e9,
               flops16 / peak * 1e3, s16[i] / (flops16 / peak));
    }
    fflush(stdout);
}

/* Whole captions: encode a batch, then exactly T greedy tokens for it
 * (random weights may emit 50256 early; the count is fixed for fairness).
 * Seconds for all `total`. */
static double captions_run(bench_model *bm, int total, int batch, int T) {
    const vgpt_model *m = bm->m;
    vgpt_encoder *enc = bm->enc;
    vgpt_gpt_run *d = &bm->d;
    int S = m->vit.image, L = vgpt_encoder_n_tokens(enc), C = m->gpt.width, V = m->gpt.vocab;
    float *px = malloc((size_t)batch * 3 * S * S * 4), *vis = malloc((size_t)batch * L * C * 4);
    float *logits = malloc((size_t)batch * V * 4);
    vgpt_xkv *x = calloc(batch, sizeof *x);
    vgpt_kv *kv = calloc(batch, sizeof *kv);
    vgpt_kv **kvp = calloc(batch, sizeof *kvp);
    const vgpt_xkv **xp = calloc(batch, sizeof *xp);
    int32_t *tok = calloc(batch, sizeof *tok);
    for (int b = 0; b < batch; b++) {
        vgpt_kv_alloc(&kv[b], m, T + 1);
        kvp[b] = &kv[b];
        xp[b] = &x[b];
    }
    fill(px, (size_t)batch * 3 * S * S, 5);
    vgpt_err err;
    double t = now();
    for (int done = 0; done < total; done += batch) {
        vgpt_encode(enc, px, batch, vis, &err);
        vgpt_gpt_run_cross_kv(d, vis, batch, L, x, &err);
        for (int b = 0; b < batch; b++) {
            kv[b].pos = 0;
            tok[b] = m->family->bos;
        }
        for (int s = 0; s < T; s++) {
            vgpt_gpt_run_step(d, batch, tok, kvp, xp, logits, &err);
            for (int b = 0; b < batch; b++) tok[b] = vgpt_argmax(logits + (size_t)b * V, V);
        }
        for (int b = 0; b < batch; b++) vgpt_xkv_free(&x[b]);
    }
    double dt = now() - t;
    for (int b = 0; b < batch; b++) vgpt_kv_free(&kv[b]);
    free(px); free(vis); free(logits); free(x); free(kv); free(kvp); free(xp); free(tok);
    return dt;
}

/* Every precision in turn, the best of `rounds` each (as the encoders). */
static void bench_captions(bench_model *bm, int n, int total, int batch, int T, int rounds) {
    double best[2] = {1e9, 1e9};
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < n; i++) {
            double dt = captions_run(&bm[i], total, batch, T);
            best[i] = dt < best[i] ? dt : best[i];
        }
    for (int i = 0; i < n; i++) {
        const vgpt_model *m = bm[i].m;
        int L = vgpt_encoder_n_tokens(bm[i].enc);
        double dt = best[i];
        /* the floor: every product at its precision's rate, sgemm's or
         * bf16_peak's (the ViT's products; a resampler and the decoder's
         * attention are left out: a bound) */
        double flops = total * (vit_gflop(&m->vit) * 1e9 + 2 * L * cross_kv_macs(&m->gpt) + 2.0 * T * step_macs(&m->gpt));
        double floor_s = flops / (bm[i].peak * 1e9);
        printf("{\"bench\":\"captions\",\"precision\":\"%s\",\"images\":%d,\"batch\":%d,\"tokens\":%d,"
               "\"captions_per_s\":%.3f,\"s_per_caption\":%.3f,\"floor_captions_per_s\":%.3f,\"x_floor\":%.2f}\n",
               vgpt_precision_name(bm[i].prec), total, batch, T, total / dt, dt / total, total / floor_s, dt / floor_s);
    }
    fflush(stdout);
}

/* "fp32", "bf16" or "fp32,bf16" -> bm[0..n-1].prec; -1 if not one of those. */
static int parse_precisions(const char *arg, bench_model *bm) {
    char buf[32];
    snprintf(buf, sizeof buf, "%s", arg);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == 2 || vgpt_precision_parse(t, &bm[n].prec)) return -1;
        n++;
    }
    return n ? n : -1;
}

static int load(bench_model *bm, const char *path) {
    vgpt_err err;
    if (vgpt_model_load(path, VGPT_LOAD_ALL | (bm->prec == VGPT_BF16 ? VGPT_LOAD_BF16 : 0), &bm->m, &err) ||
        vgpt_encoder_new(bm->m, &bm->enc, &err) || vgpt_gpt_run_init(&bm->d, bm->m, 2, &err)) {
        fprintf(stderr, "vgpt-bench: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    vgpt_process_tune(argv);
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: vgpt-bench CKPT [THREADS [fp32|bf16|fp32,bf16 [CAPTION_TOKENS]]]\n");
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    bench_model bm[2] = {{.prec = VGPT_FP32}};
    int n = argc > 3 ? parse_precisions(argv[3], bm) : 1;
    if (n < 0) {
        fprintf(stderr, "vgpt-bench: precisions '%s' are not fp32, bf16 or fp32,bf16\n", argv[3]);
        return 2;
    }
    vgpt_set_threads(threads);
    double sgemm = sgemm_peak(), bw = read_bandwidth(threads);
    printf("{\"bench\":\"machine\",\"threads\":%d,\"sgemm_gflops\":%.1f,\"read_gb_per_s\":%.1f}\n", threads, sgemm, bw);
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        if (load(&bm[i], argv[1])) return 1;
        bm[i].peak = sgemm;
        if (bm[i].prec == VGPT_BF16) { /* a bf16 model always has its products' context */
            bm[i].peak = bf16_peak(bm[i].m->mm_ctx);
            printf("{\"bench\":\"machine\",\"precision\":\"bf16\",\"products\":\"%s\",\"bf16_gflops\":%.1f}\n",
                   vgpt_mm_isa(bm[i].m->mm_ctx), bm[i].peak);
            if (bm[i].peak <= 0) {
                fprintf(stderr, "vgpt-bench: the bf16 product failed on the (1576,768)x(768,3072) shape\n");
                return 1;
            }
        }
    }
    int T = argc > 4 ? atoi(argv[4]) : 20;
    bench_encoders(bm, n, 1);
    bench_encoders(bm, n, 8);
    bench_decoders(bm, n, bw * 1e9);
    bench_captions(bm, n, 4, 1, T > 0 ? T : 20, 3);
    bench_captions(bm, n, 64, 16, T > 0 ? T : 20, 2);
    for (int i = 0; i < n; i++) {
        const vgpt_model *m = bm[i].m;
        printf("{\"bench\":\"isa\",\"precision\":\"%s\",\"kernels\":\"%s\",\"onednn\":\"%s\"}\n",
               vgpt_precision_name(bm[i].prec), vgpt_kernels_get()->name, m->mm_ctx ? vgpt_mm_isa(m->mm_ctx) : "unused");
        vgpt_encoder_free(bm[i].enc);
        vgpt_gpt_run_free(&bm[i].d);
        vgpt_model_free(bm[i].m);
    }
    return 0;
}
