/* test_kernels.c - the math kernels against straightforward double-precision
 * definitions (LayerNorm, both GELUs, softmax, masked attention, linear,
 * the packed products from fp32 / fp16 / bf16 panels, the bf16 products,
 * the many-row bf16 product). */
#include <math.h>
#include <string.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "generate.h"
#include "kern.h"
#include "kernels.h"
#include "half.h"
#include "mm.h"
#include "packed.h"
#include "pool.h"

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}

static void fill(float *x, int n, uint64_t *s, float scale) {
    for (int i = 0; i < n; i++) x[i] = frand(s) * scale;
}

static void test_layernorm(check_state *st, uint64_t *s) {
    enum { N = 3, C = 77 };
    float x[N * C], sc[C], sh[C], y[N * C];
    fill(x, N * C, s, 5.0f);
    fill(sc, C, s, 2.0f);
    fill(sh, C, s, 1.0f);
    for (int i = 0; i < C; i++) x[i] += 100.0f; /* large mean: catches one-pass variance */
    vgpt_layernorm(y, x, sc, sh, N, C, 1e-5f);
    double worst = 0;
    for (int n = 0; n < N; n++) {
        double mean = 0, var = 0;
        for (int i = 0; i < C; i++) mean += x[n * C + i];
        mean /= C;
        for (int i = 0; i < C; i++) var += (x[n * C + i] - mean) * (x[n * C + i] - mean);
        var /= C;
        for (int i = 0; i < C; i++) {
            double want = (x[n * C + i] - mean) / sqrt(var + 1e-5) * sc[i] + sh[i];
            worst = fmax(worst, fabs(want - y[n * C + i]));
        }
    }
    CHECK(st, worst < 1e-5, "layernorm matches the definition (max err %.2g)", worst);
}

static void test_gelu(check_state *st, uint64_t *s) {
    enum { N = 1000 };
    float a[N], b[N], x[N];
    fill(x, N, s, 8.0f);
    for (int i = 0; i < N; i++) a[i] = b[i] = x[i];
    vgpt_gelu_erf(a, N);
    vgpt_gelu_tanh(b, N);
    double we = 0, wt = 0, diff = 0;
    for (int i = 0; i < N; i++) {
        double v = x[i];
        double e = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        double t = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        we = fmax(we, fabs(e - a[i]));
        wt = fmax(wt, fabs(t - b[i]));
        diff = fmax(diff, fabs(e - t));
    }
    CHECK(st, we < 1e-5, "erf GELU matches 0.5x(1+erf(x/sqrt2)) (max err %.2g)", we);
    CHECK(st, wt < 1e-5, "tanh GELU matches the GPT-2 formula (max err %.2g)", wt);
    CHECK(st, diff > 1e-4, "the two GELU variants differ measurably (%.2g), so mixing them up is caught", diff);
}

static void test_linear(check_state *st, uint64_t *s) {
    enum { N = 5, C = 33, OC = 17 };
    float x[N * C], w[OC * C], b[OC], y[N * OC], y1[OC];
    fill(x, N * C, s, 1.0f);
    fill(w, OC * C, s, 1.0f);
    fill(b, OC, s, 1.0f);
    vgpt_linear(y, x, w, b, N, C, OC, 0);
    vgpt_linear(y1, x + C, w, b, 1, C, OC, 0); /* the sgemv path */
    double worst = 0, w1 = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double acc = b[o];
            for (int c = 0; c < C; c++) acc += (double)x[n * C + c] * w[o * C + c];
            worst = fmax(worst, fabs(acc - y[n * OC + o]));
            if (n == 1) w1 = fmax(w1, fabs(acc - y1[o]));
        }
    CHECK(st, worst < 1e-4, "linear (sgemm) = x W^T + b (max err %.2g)", worst);
    CHECK(st, w1 < 1e-4, "linear with one row (sgemv) = x W^T + b (max err %.2g)", w1);
}

/* Naive attention in double: out[i] = sum_j softmax_j(q_i.k_j/sqrt(hd)) v_j. */
static double attention_err(const float *q, const float *k, const float *v, const float *out, int Tq, int Tk, int H,
                            int hd, int causal_offset) {
    int D = H * hd;
    double worst = 0;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < Tq; i++) {
            int n = causal_offset >= 0 ? causal_offset + i + 1 : Tk;
            if (n > Tk) n = Tk;
            double sc[512], mx = -1e300, sum = 0;
            for (int j = 0; j < n; j++) {
                double d = 0;
                for (int c = 0; c < hd; c++) d += (double)q[i * D + h * hd + c] * k[j * D + h * hd + c];
                sc[j] = d / sqrt((double)hd);
                mx = fmax(mx, sc[j]);
            }
            for (int j = 0; j < n; j++) sum += (sc[j] = exp(sc[j] - mx));
            for (int c = 0; c < hd; c++) {
                double acc = 0;
                for (int j = 0; j < n; j++) acc += sc[j] / sum * v[j * D + h * hd + c];
                worst = fmax(worst, fabs(acc - out[i * D + h * hd + c]));
            }
        }
    return worst;
}

static void test_attention(check_state *st, uint64_t *s) {
    enum { T = 9, H = 3, HD = 8, D = H * HD };
    float q[T * D], k[T * D], v[T * D], out[T * D], scratch[T * T];
    fill(q, T * D, s, 2.0f);
    fill(k, T * D, s, 2.0f);
    fill(v, T * D, s, 1.0f);
    vgpt_attention(out, D, q, D, k, D, v, D, T, T, H, HD, -1, scratch);
    double e = attention_err(q, k, v, out, T, T, H, HD, -1);
    CHECK(st, e < 1e-5, "unmasked multi-head attention (max err %.2g)", e);
    vgpt_attention(out, D, q, D, k, D, v, D, T, T, H, HD, 0, scratch);
    e = attention_err(q, k, v, out, T, T, H, HD, 0);
    CHECK(st, e < 1e-5, "causal multi-head attention (max err %.2g)", e);
    vgpt_attention(out, D, q + 4 * D, D, k, D, v, D, 1, 5, H, HD, -1, scratch);
    e = attention_err(q + 4 * D, k, v, out, 1, 5, H, HD, -1);
    CHECK(st, e < 1e-5, "single-query attention over a cache (max err %.2g)", e);
    enum { H2 = 2, HD2 = 40, D2 = H2 * HD2 }; /* 40 = two full vectors and a masked tail */
    float q2[D2], k2[T * D2], v2[T * D2], out2[D2];
    fill(q2, D2, s, 1.0f);
    fill(k2, T * D2, s, 1.0f);
    fill(v2, T * D2, s, 1.0f);
    vgpt_attention(out2, D2, q2, D2, k2, D2, v2, D2, 1, T, H2, HD2, -1, scratch);
    e = attention_err(q2, k2, v2, out2, 1, T, H2, HD2, -1);
    CHECK(st, e < 1e-5, "single-query attention, 40-wide heads (max err %.2g)", e);
}

/* One query against a cache, as a decoding step runs it: GPT-2's 64-wide
 * heads take the 16-keys-at-a-time scores (key counts below, at and past
 * 16, odd), other widths the per-key path; keys and values are rows of a
 * wider matrix (ld > H * hd), as the cross-attention's K / V are. */
static void test_decode_attention(check_state *st, uint64_t *s) {
    enum { MAXT = 53, MAXD = 2 * 80, LD = 2 * MAXD + 16 };
    static float q[MAXD], kv[2 * MAXT * LD], out[MAXD], scratch[2 * MAXT];
    const int widths[] = {64, 80}, keys[] = {1, 15, 16, 17, 32, 53};
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++)
        for (size_t n = 0; n < sizeof keys / sizeof *keys; n++) {
            int HD = widths[w], H = 2, Tk = keys[n];
            fill(q, MAXD, s, 2.0f);
            fill(kv, 2 * MAXT * LD, s, 1.0f);
            const float *k = kv, *v = kv + MAXT * LD;
            vgpt_attention(out, H * HD, q, H * HD, k, LD, v, LD, 1, Tk, H, HD, -1, scratch);
            /* attention_err reads rows H * HD apart: compare against a packed copy */
            static float kp[MAXT * MAXD], vp[MAXT * MAXD];
            for (int t = 0; t < Tk; t++)
                for (int i = 0; i < H * HD; i++) kp[t * H * HD + i] = k[t * LD + i], vp[t * H * HD + i] = v[t * LD + i];
            double e = attention_err(q, kp, vp, out, 1, Tk, H, HD, -1);
            CHECK(st, e < 1e-5, "one query, %d keys, %d-wide heads, rows %d apart (max err %.2g)", Tk, HD, LD, e);
        }
}

/* The decoder's caches in bf16 (--precision bf16): every kernel set this
 * CPU runs, called directly, over bf16 keys and values against double sums
 * of the same (widened) values; head widths with and without a whole
 * number of 16-wide vectors, rows ld apart (an odd number of 2-byte
 * elements).  Then the chosen set through vgpt_attention_one. */
static double bf16_head_err(const vgpt_kernels *kern, uint64_t *s, int HD, int Tk, int ld) {
    enum { MAXT = 53, MAXD = 80, MAXLD = 2 * MAXD + 17 };
    static float q[MAXD], p[MAXT], got_s[MAXT], got_o[MAXD], tmp[MAXT * MAXLD];
    static uint16_t k[MAXT * MAXLD], v[MAXT * MAXLD];
    fill(q, HD, s, 2.0f);
    fill(p, Tk, s, 1.0f);
    fill(tmp, Tk * ld, s, 1.0f);
    vgpt_float_to_bf16_n(tmp, k, (size_t)Tk * ld);
    fill(tmp, Tk * ld, s, 1.0f);
    vgpt_float_to_bf16_n(tmp, v, (size_t)Tk * ld);
    kern->scores_bf16(got_s, q, k, ld, Tk, HD, 0.125f);
    memset(got_o, 0, sizeof got_o);
    kern->mix_bf16(got_o, p, v, ld, Tk, HD);
    double worst = 0;
    for (int t = 0; t < Tk; t++) {
        double want = 0;
        for (int i = 0; i < HD; i++) want += (double)q[i] * vgpt_bf16_to_float(k[t * ld + i]);
        worst = fmax(worst, fabs(0.125 * want - got_s[t]));
    }
    for (int i = 0; i < HD; i++) {
        double want = 0;
        for (int t = 0; t < Tk; t++) want += (double)p[t] * vgpt_bf16_to_float(v[t * ld + i]);
        worst = fmax(worst, fabs(want - got_o[i]));
    }
    return worst;
}

static void test_decode_attention_bf16(check_state *st, uint64_t *s) {
    const vgpt_kernels *sets[] = {&vgpt_kernels_generic, &vgpt_kernels_avx2, &vgpt_kernels_avx512};
    const int runs[] = {1, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                               __builtin_cpu_supports("f16c"),
                        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")};
    const int widths[] = {64, 72, 80}, keys[] = {1, 15, 16, 17, 32, 53};
    for (int k = 0; k < 3; k++) {
        if (!runs[k]) {
            printf("SKIP: bf16 attention kernels %s: this CPU does not run them\n", sets[k]->name);
            continue;
        }
        double worst = 0;
        for (size_t w = 0; w < sizeof widths / sizeof *widths; w++)
            for (size_t n = 0; n < sizeof keys / sizeof *keys; n++)
                worst = fmax(worst, bf16_head_err(sets[k], s, widths[w], keys[n], 2 * widths[w] + 17));
        CHECK(st, worst < 2e-5, "%s bf16 keys/values: scores and sums over 1..53 keys, heads 64/72/80 wide (max err %.2g)",
              sets[k]->name, worst);
    }
    /* two heads through vgpt_attention_one against the fp32 path on the widened values */
    enum { H = 2, HD = 64, T = 37, LD = H * HD + 5 };
    static float q[H * HD], kf[T * LD], vf[T * LD], want[H * HD], got[H * HD], scratch[H * T];
    static uint16_t kb[T * LD], vb[T * LD];
    fill(q, H * HD, s, 2.0f);
    fill(kf, T * LD, s, 1.0f);
    fill(vf, T * LD, s, 1.0f);
    vgpt_float_to_bf16_n(kf, kb, T * LD);
    vgpt_float_to_bf16_n(vf, vb, T * LD);
    for (int i = 0; i < T * LD; i++) kf[i] = vgpt_bf16_to_float(kb[i]), vf[i] = vgpt_bf16_to_float(vb[i]);
    vgpt_attention_one(want, q, kf, LD, vf, LD, T, H, HD, 0, scratch);
    vgpt_attention_one(got, q, kb, LD, vb, LD, T, H, HD, 1, scratch);
    double worst = 0;
    for (int i = 0; i < H * HD; i++) worst = fmax(worst, fabs((double)want[i] - got[i]));
    CHECK(st, worst < 1e-5, "vgpt_attention_one over bf16 caches = over their widened fp32 values (max diff %.2g)", worst);
}

/* vgpt_argmax (16 vector lanes) against the plain first-maximum loop:
 * every length 1..70 and the vocabulary's 50257, values drawn from a few
 * levels so that ties are common, with -inf (banned tokens) and NaNs mixed
 * in, x[0] NaN, all -inf, and the maximum in the tail past the lanes. */
static int argmax_plain(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void test_argmax(check_state *st, uint64_t *s) {
    enum { N = 50257 };
    static float x[N];
    int bad = 0, cases = 0;
    for (int trial = 0; trial < 400; trial++) {
        int n = trial < 350 ? 1 + trial % 70 : N;
        for (int i = 0; i < n; i++) {
            float r = frand(s);
            x[i] = r < -0.8f ? -INFINITY : r > 0.95f ? NAN : (float)(int)(r * 4.0f);
        }
        if (trial % 7 == 0) x[0] = NAN;
        if (trial % 11 == 0)
            for (int i = 0; i < n; i++) x[i] = -INFINITY;
        if (trial % 13 == 0) x[n - 1] = 100.0f;
        bad += vgpt_argmax(x, n) != argmax_plain(x, n);
        cases++;
    }
    CHECK(st, bad == 0, "argmax = the first maximum of the plain loop in %d of %d cases (ties, -inf, NaN, tails)",
          cases - bad, cases);
}

/* A prompt longer than 256 tokens once lost its causal mask (a fixed-size
 * buffer of row lengths): check a 300-row causal product. */
static void test_long_causal(check_state *st, uint64_t *s) {
    enum { T = 300, H = 2, HD = 8, D = H * HD };
    float *q = malloc(sizeof(float) * T * D), *k = malloc(sizeof(float) * T * D), *v = malloc(sizeof(float) * T * D);
    float *out = malloc(sizeof(float) * T * D), *scratch = malloc(sizeof(float) * T * T);
    fill(q, T * D, s, 1.0f);
    fill(k, T * D, s, 1.0f);
    fill(v, T * D, s, 1.0f);
    vgpt_attention(out, D, q, D, k, D, v, D, T, T, H, HD, 0, scratch);
    double e = attention_err(q, k, v, out, T, T, H, HD, 0);
    CHECK(st, e < 1e-5, "causal attention over %d queries keeps its mask (max err %.2g)", T, e);
    free(q); free(k); free(v); free(out); free(scratch);
}

/* The decoder's packed product: two weights stacked (as W_query | W_key),
 * an output count that is not a whole number of panels, 1..19 rows. */
static void test_packed(check_state *st, uint64_t *s, vgpt_pool *pool) {
    enum { C = 37, R0 = 30, R1 = 41, OC = R0 + R1, MAXM = 19 };
    static float w0[R0 * C], w1[R1 * C], b0[R0], b1[R1], x[MAXM * C], y[MAXM * OC], y1[OC], res[MAXM * OC];
    fill(w0, R0 * C, s, 1.0f);
    fill(w1, R1 * C, s, 1.0f);
    fill(b0, R0, s, 1.0f);
    fill(b1, R1, s, 1.0f);
    fill(x, MAXM * C, s, 1.0f);
    fill(res, MAXM * OC, s, 1.0f);
    const float *ws[2] = {w0, w1}, *bs[2] = {b0, b1};
    int rows[2] = {R0, R1};
    vgpt_packed pk;
    int packed = vgpt_pack(&pk, C, 2, ws, bs, rows) == 0; /* CHECK evaluates its condition twice */
    CHECK(st, packed && pk.OC == OC, "pack two stacked weights");
    if (!packed) return;
    double worst = 0, worst_acc = 0, worst_gelu = 0;
    int invariant = 1;
    for (int M = 1; M <= MAXM; M++) {
        vgpt_linear_packed(y, x, &pk, M, 0, pool);
        for (int m = 0; m < M; m++)
            for (int o = 0; o < OC; o++) {
                const float *wr = o < R0 ? w0 + o * C : w1 + (o - R0) * C;
                double acc = o < R0 ? b0[o] : b1[o - R0];
                for (int c = 0; c < C; c++) acc += (double)x[m * C + c] * wr[c];
                worst = fmax(worst, fabs(acc - y[m * OC + o]));
            }
        vgpt_linear_packed(y1, x + (M - 1) * C, &pk, 1, 0, pool);
        for (int o = 0; o < OC; o++) invariant &= y1[o] == y[(M - 1) * OC + o];
    }
    CHECK(st, worst < 1e-4, "packed linear = x W^T + b for 1..%d rows (max err %.2g)", MAXM, worst);
    CHECK(st, invariant, "packed linear: a row's result is bit-identical whatever the batch around it");
    float acc[MAXM * OC], act[MAXM * OC];
    for (int i = 0; i < MAXM * OC; i++) acc[i] = res[i];
    vgpt_linear_packed(acc, x, &pk, MAXM, VGPT_ACCUMULATE, pool);
    vgpt_linear_packed(act, x, &pk, MAXM, VGPT_GELU_TANH, pool);
    for (int i = 0; i < MAXM * OC; i++) {
        double v = y[i];
        double g = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        worst_acc = fmax(worst_acc, fabs(acc[i] - (res[i] + y[i])));
        worst_gelu = fmax(worst_gelu, fabs(act[i] - g));
    }
    CHECK(st, worst_acc < 1e-5, "packed linear with VGPT_ACCUMULATE adds to out (max err %.2g)", worst_acc);
    CHECK(st, worst_gelu < 1e-5, "packed linear with VGPT_GELU_TANH applies GELU (max err %.2g)", worst_gelu);
    vgpt_packed_free(&pk);
}

/* fp16-exact weights are narrowed to fp16 panels and give bit-identical
 * results from them (the kernels widen exactly); other weights stay fp32.
 * C spans several strips and OC several panels with a ragged end. */
static void test_packed_half(check_state *st, uint64_t *s, vgpt_pool *pool) {
    enum { C = 70, OC = 150, MAXM = 17 };
    static float w[OC * C], b[OC], x[MAXM * C], y32[MAXM * OC], y16[MAXM * OC];
    fill(w, OC * C, s, 1.0f);
    fill(b, OC, s, 1.0f);
    fill(x, MAXM * C, s, 1.0f);
    for (int i = 0; i < OC * C; i++) w[i] = vgpt_half_to_float(vgpt_float_to_half(w[i]));
    w[5] = 3e-7f; /* an fp16 subnormal */
    w[5] = vgpt_half_to_float(vgpt_float_to_half(w[5]));
    const float *ws[1] = {w}, *bs[1] = {b};
    int rows[1] = {OC};
    vgpt_packed p32, p16;
    int ok = vgpt_pack(&p32, C, 1, ws, bs, rows) == 0 && vgpt_pack(&p16, C, 1, ws, bs, rows) == 0;
    int narrowed = ok ? vgpt_pack_narrow(&p16) : -1;
    CHECK(st, narrowed == 1 && p16.h && !p16.p, "fp16-exact weights are narrowed to fp16 panels (got %d)", narrowed);
    if (narrowed != 1) return;
    int same = 1;
    for (int M = 1; M <= MAXM; M++) {
        vgpt_linear_packed(y32, x, &p32, M, 0, pool);
        vgpt_linear_packed(y16, x, &p16, M, 0, pool);
        same &= !memcmp(y32, y16, (size_t)M * OC * sizeof(float));
    }
    CHECK(st, same, "packed linear from fp16 panels is bit-identical to fp32 for 1..%d rows", MAXM);
    vgpt_packed_free(&p16);
    w[7] += 1e-6f; /* no longer an fp16 value */
    ok = vgpt_pack(&p16, C, 1, ws, bs, rows) == 0;
    narrowed = ok ? vgpt_pack_narrow(&p16) : -1;
    CHECK(st, narrowed == 0 && p16.p && !p16.h, "a weight with one value fp16 cannot hold stays fp32 (got %d)", narrowed);
    vgpt_packed_free(&p16);
    vgpt_packed_free(&p32);
}

/* vgpt_pack_bf16's done(): rows packed so far, never decreasing. */
typedef struct done_log {
    int calls, last, monotone;
} done_log;

static void on_done(void *arg, int o) {
    done_log *d = arg;
    d->monotone &= o > d->last;
    d->last = o, d->calls++;
}

static float bf16_round(float x) {
    return vgpt_bf16_to_float(vgpt_float_to_bf16(x));
}

/* bf16 panels give bit for bit the products of fp32 panels holding the
 * rounded weights, for 1..17 rows; and any panel-aligned slice of their
 * columns widens to exactly the rounded weight, transposed (the many-row
 * products' sgemm operand, mm_own.c). */
static void test_packed_bf16(check_state *st, uint64_t *s, vgpt_pool *pool) {
    enum { C = 70, OC = 3300, MAXM = 17 }; /* MAXM x OC floats also hold a widened slice (C x 773) */
    float *w = malloc(sizeof(float) * OC * C), *wr = malloc(sizeof(float) * OC * C), b[OC];
    float *x = malloc(sizeof(float) * MAXM * C), *y32 = malloc(sizeof(float) * MAXM * OC), *ybf = malloc(sizeof(float) * MAXM * OC);
    fill(w, OC * C, s, 1.0f);
    fill(b, OC, s, 1.0f);
    fill(x, MAXM * C, s, 1.0f);
    for (int i = 0; i < OC * C; i++) wr[i] = bf16_round(w[i]);
    const float *ws[2] = {w, w + 100 * C}, *wrs[2] = {wr, wr + 100 * C}, *bs[2] = {b, b + 100};
    int rows[2] = {100, OC - 100};
    vgpt_packed p32, pbf;
    done_log d = {0, 0, 1};
    int ok = vgpt_pack(&p32, C, 2, wrs, bs, rows) == 0 && vgpt_pack_bf16(&pbf, C, 2, ws, bs, rows, on_done, &d) == 0;
    CHECK(st, ok && pbf.h && pbf.h_bf16 && !pbf.p, "a weight packs straight into bf16 panels");
    if (!ok) return;
    CHECK(st, d.calls >= 2 && d.monotone && d.last == OC, "packing tells its progress in slices (%d calls, last %d of %d)",
          d.calls, d.last, OC);
    int same = 1;
    for (int M = 1; M <= MAXM; M++) {
        vgpt_linear_packed(y32, x, &p32, M, VGPT_GELU_TANH, pool);
        vgpt_linear_packed(ybf, x, &pbf, M, VGPT_GELU_TANH, pool);
        same &= !memcmp(y32, ybf, (size_t)M * OC * sizeof(float));
    }
    CHECK(st, same, "packed linear from bf16 panels is bit-identical to fp32 panels of the rounded weights (1..%d rows)", MAXM);
    /* slices from the first panel, the middle, and one ending inside the last panel */
    const int from[3] = {0, 48 * 20, 48 * 60}, cols[3] = {48 * 16, 100, OC - 48 * 60};
    int widened = 1, ld = 48 * 16 + 5;
    for (int t = 0; t < 3; t++) {
        vgpt_packed_widen_columns(&pbf, from[t], cols[t], y32, ld);
        for (int k = 0; k < C; k++)
            for (int j = 0; j < cols[t]; j++) widened &= y32[(size_t)k * ld + j] == wr[(size_t)(from[t] + j) * C + k];
    }
    CHECK(st, widened, "bf16 panels widen to the rounded weight's columns, transposed, at any panel and width");
    vgpt_packed_free(&p32);
    vgpt_packed_free(&pbf);
    free(w), free(wr), free(x), free(y32), free(ybf);
}

/* The kernels' many-row bf16 product (rows_bf16, the encoder's on AVX2):
 * against double sums from out's starting values, with k in three slices
 * (the last short), two calls' panels and a strip that ends inside the
 * last panel; and each row's result its own, bit for bit: rows 7..19
 * alone (tiles of 6, 6, 1) = the same rows among 61 (other tiles). */
static void test_rows_bf16(check_state *st, uint64_t *s) {
    enum { M = 61, C = 2 * VGPT_ROWS_K + 32, OC = VGPT_ROWS_PANELS * VGPT_PANEL + 58, R0 = 7, RN = 13 };
    const vgpt_kernels *k = vgpt_kernels_get();
    if (!k->rows_bf16) {
        printf("SKIP: many-row bf16 products: the %s kernels have none (OpenBLAS's sgemm runs them)\n", k->name);
        return;
    }
    float *w = malloc(sizeof(float) * OC * C), *x = malloc(sizeof(float) * M * C), *y0 = malloc(sizeof(float) * M * OC);
    float *y = malloc(sizeof(float) * M * OC), *ya = malloc(sizeof(float) * RN * OC);
    float *wide = aligned_alloc(64, sizeof(float) * VGPT_ROWS_WIDE);
    fill(w, OC * C, s, 1.0f);
    fill(x, M * C, s, 1.0f);
    fill(y0, M * OC, s, 4.0f);
    for (int i = 0; i < M * C; i++) x[i] = bf16_round(x[i]);
    const float *ws[1] = {w};
    int rows[1] = {OC};
    vgpt_packed p;
    int ok = vgpt_pack_bf16(&p, C, 1, ws, NULL, rows, NULL, NULL) == 0;
    CHECK(st, ok, "a (%d,%d) weight packs into bf16 panels for the many-row product", OC, C);
    if (!ok) return;
    int panels = (OC + VGPT_PANEL - 1) / VGPT_PANEL;
    memcpy(y, y0, sizeof(float) * M * OC);
    memcpy(ya, y0 + (size_t)R0 * OC, sizeof(float) * RN * OC);
    for (int p0 = 0; p0 < panels; p0 += VGPT_ROWS_PANELS) {
        int p1 = p0 + VGPT_ROWS_PANELS < panels ? p0 + VGPT_ROWS_PANELS : panels;
        k->rows_bf16(y, x, &p, M, p0, p1, wide);
        k->rows_bf16(ya, x + (size_t)R0 * C, &p, RN, p0, p1, wide);
    }
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int o = 0; o < OC; o++) {
            double want = y0[i * OC + o], scale = fabs(want);
            for (int c = 0; c < C; c++) {
                double t = (double)x[i * C + c] * bf16_round(w[(size_t)o * C + c]);
                want += t, scale += fabs(t);
            }
            double e = fabs(y[i * OC + o] - want) / scale;
            worst = e > worst ? e : worst;
        }
    CHECK(st, worst < 1e-6, "%s many-row bf16 product (%d,%d)x(%d,%d) = out + x @ rounded W^T, fp32 sums (worst err "
          "%.2g of the terms' size)", k->name, M, C, C, OC, worst);
    CHECK(st, !memcmp(ya, y + (size_t)R0 * OC, sizeof(float) * RN * OC),
          "%s many-row bf16 product: rows %d..%d alone = the same rows among %d, bit for bit", k->name, R0, R0 + RN - 1, M);
    vgpt_packed_free(&p);
    free(w), free(x), free(y0), free(y), free(ya), free(wide);
}

/* One bf16 product (mm.h: oneDNN's, or vgpt's own where oneDNN has none)
 * through vgpt_mm_run_pool against double sums of the rounded operands: only
 * the order of the fp32 sums differs.  Pool NULL is the encoder's call
 * (oneDNN or OpenMP); a pool and
 * M <= 16 is a decoding step (on AVX512-BF16, mm_gemv.c reading oneDNN's
 * layout in passes of 4 rows, whose 64-column blocks a 130-column weight
 * ends inside); M = 17 goes back to oneDNN. */
static void mm_case(check_state *st, uint64_t *s, vgpt_mm_ctx *c, int M, int C, int OC, vgpt_pool *pool, int flags) {
    enum { MAXM = 37, MAXC = 96, MAXOC = 130 };
    static float w[MAXOC * MAXC], b[MAXOC], x[MAXM * MAXC], y[MAXM * MAXOC], y0[MAXM * MAXOC];
    fill(w, OC * C, s, 1.0f);
    fill(b, OC, s, 1.0f);
    fill(x, M * C, s, 1.0f);
    fill(y0, M * OC, s, 1.0f);
    vgpt_err err;
    const float *ws[1] = {w}, *bs[1] = {b};
    int rows[1] = {OC};
    vgpt_mm *m = vgpt_mm_new(c, C, 1, ws, bs, rows, &err);
    CHECK(st, m != NULL, "a (%d,%d) weight converts to bf16", OC, C);
    if (!m) return;
    memcpy(y, y0, (size_t)M * OC * sizeof *y);
    vgpt_mm_run_pool(m, y, x, M, flags, pool);
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int o = 0; o < OC; o++) {
            double want = b[o], scale = fabs(b[o]), old = flags & VGPT_ACCUMULATE ? y0[i * OC + o] : 0.0;
            for (int k = 0; k < C; k++) {
                double t = (double)bf16_round(x[i * C + k]) * bf16_round(w[o * C + k]);
                want += t, scale += fabs(t);
            }
            want = flags & VGPT_GELU_ERF ? 0.5 * want * (1.0 + erf(want / sqrt(2.0))) : want + old;
            double e = fabs(y[i * OC + o] - want) / (scale + fabs(old));
            worst = e > worst ? e : worst;
        }
    int failed = vgpt_mm_ctx_check(c, &err);
    CHECK(st, !failed && worst < 1e-6,
          "bf16 product (%d,%d)x(%d,%d)%s = %s rounded x @ rounded W^T + b, summed in fp32 (%s: worst err %.2g of "
          "the terms' size)", M, C, C, OC, pool ? " on a pool" : "", flags & VGPT_GELU_ERF ? "GELU (erf) of" : "out +",
          vgpt_mm_isa(c), worst);
    vgpt_mm_free(m);
}

/* vgpt_mm_mlp hands fc1's GELU'd result to fc2 in bf16 as oneDNN writes
 * it: the same values as fc2 rounding an fp32 copy, so the same result,
 * bit for bit, as the two products run one after the other. */
static void mlp_case(check_state *st, uint64_t *s, vgpt_mm_ctx *c) {
    enum { M = 37, C = 96, H = 160 };
    static float w1[H * C], b1[H], w2[C * H], b2[C], x[M * C], hid[M * H], y0[M * C], ya[M * C], yb[M * C];
    fill(w1, H * C, s, 1.0f);
    fill(b1, H, s, 1.0f);
    fill(w2, C * H, s, 1.0f);
    fill(b2, C, s, 1.0f);
    fill(x, M * C, s, 1.0f);
    fill(y0, M * C, s, 1.0f);
    vgpt_err err;
    const float *w1s[1] = {w1}, *b1s[1] = {b1}, *w2s[1] = {w2}, *b2s[1] = {b2};
    int h = H, cc = C;
    vgpt_mm *fc1 = vgpt_mm_new(c, C, 1, w1s, b1s, &h, &err), *fc2 = vgpt_mm_new(c, H, 1, w2s, b2s, &cc, &err);
    CHECK(st, fc1 && fc2, "an MLP's two weights convert to bf16");
    if (fc1 && fc2) {
        memcpy(ya, y0, sizeof ya);
        memcpy(yb, y0, sizeof yb);
        vgpt_mm_run(fc1, hid, x, M, VGPT_GELU_ERF);
        vgpt_mm_run(fc2, ya, hid, M, VGPT_ACCUMULATE);
        vgpt_mm_mlp(fc1, fc2, yb, x, hid, M, VGPT_GELU_ERF, VGPT_ACCUMULATE);
        int differ = 0;
        for (int i = 0; i < M * C; i++) differ += memcmp(&ya[i], &yb[i], sizeof ya[i]) != 0;
        int failed = vgpt_mm_ctx_check(c, &err);
        CHECK(st, !failed && differ == 0, "bf16 MLP with the hidden state in bf16 = its two products (%s: %d of %d differ)",
              vgpt_mm_isa(c), differ, M * C);
    }
    vgpt_mm_free(fc1);
    vgpt_mm_free(fc2);
}

static void test_mm_bf16(check_state *st, uint64_t *s, vgpt_pool *pool) {
    vgpt_err err;
    vgpt_mm_ctx *c = NULL;
    int started = vgpt_mm_ctx_new(&c, &err) == 0; /* CHECK evaluates its condition twice */
    CHECK(st, started, "bf16 products start on this CPU (%s)", c ? vgpt_mm_isa(c) : err.msg);
    if (!c) return;
    mm_case(st, s, c, 37, 96, 130, NULL, VGPT_ACCUMULATE);
    mm_case(st, s, c, 37, 96, 130, NULL, VGPT_GELU_ERF);
    mlp_case(st, s, c);
    static const int Ms[] = {1, 2, 3, 4, 5, 6, 11, 16, 17};
    for (size_t i = 0; i < sizeof Ms / sizeof *Ms; i++)
        mm_case(st, s, c, Ms[i], 64, 130, pool, i % 3 ? VGPT_ACCUMULATE : VGPT_GELU_ERF);
    vgpt_mm_ctx_free(c);
}

static void test_softmax(check_state *st) {
    float x[6] = {5.0f, 5.0f, 5.0f, 1000.0f, 1001.0f, 999.0f};
    vgpt_softmax_rows(x, 2, 3, 1); /* row 0 sees 2 entries, row 1 all 3 */
    double e = fabs(x[4] - 1.0 / (1.0 + exp(-1.0) + exp(-2.0)));
    CHECK(st, e < 1e-6, "softmax is stable for large logits (err %.2g)", e);
    CHECK(st, fabs(x[0] - 0.5) < 1e-6 && x[2] == 0.0f, "causal softmax masks entries past the row's length");
}

int main(void) {
    check_state st = {0};
    uint64_t s = 7;
    vgpt_set_threads(1);
    test_layernorm(&st, &s);
    test_gelu(&st, &s);
    test_linear(&st, &s);
    test_attention(&st, &s);
    test_decode_attention(&st, &s);
    test_decode_attention_bf16(&st, &s);
    test_argmax(&st, &s);
    test_long_causal(&st, &s);
    test_softmax(&st);
    vgpt_pool *pool = vgpt_pool_new(2);
    test_packed(&st, &s, pool);
    test_packed_half(&st, &s, pool);
    test_packed_bf16(&st, &s, pool);
    test_mm_bf16(&st, &s, pool);
    test_rows_bf16(&st, &s);
    vgpt_pool_free(pool);
    return check_exit(&st);
}
