/* vgpt-mkckpt - write a random-weight Vision-GPT checkpoint.
 *
 * The engine, the daemons and the benchmarks need a checkpoint with the exact
 * published key layout (model-spec.md) without downloading 0.9 GB: this
 * writes one with random weights, torch-loadable, plus config.json beside
 * it.  The captions it produces are meaningless; the shapes and the cost of
 * running it are real. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_write.h"
#include "half.h"

#define MAX_CROSS 16

typedef struct dims {
    int vw, vl, vh;          /* ViT width, layers, heads */
    int tw, nl, th;          /* text width, transformer blocks, heads */
    int lat, dep, ph, pd, mlp; /* resampler latents, depth, heads, head width, mlp hidden */
    int ctx, vocab;
    int ncross, cross[MAX_CROSS];
} dims;

typedef enum { INIT_NORMAL, INIT_LATENT, INIT_ONES, INIT_FOUR, INIT_ZEROS, INIT_MASK } init_kind;

typedef struct gen {
    vgpt_ckpt_writer *w;
    vgpt_dtype dtype;
    uint64_t seed;
    int64_t params;
    size_t tensors;
    float *f;       /* scratch, sized for the largest tensor */
    uint16_t *h;
    vgpt_err err;
} gen;

static const char usage[] =
    "usage: vgpt-mkckpt --preset full|tiny [--dtype fp32|fp16] [--cross 3,6,9] [--seed N]\n"
    "                   [--tied yes|no] OUT.pth\n"
    "\n"
    "Writes a Vision-GPT checkpoint with RANDOM weights in the published key layout\n"
    "(torch.save zip format, loadable by torch.load and by vgpt) and config.json beside it.\n"
    "Use it for tests and benchmarks; its captions are meaningless.\n"
    "\n"
    "  --preset full   published dimensions: ViT-B/16 (768 wide, 12 layers), resampler 64\n"
    "                  latents depth 2 (8 heads x 64), GPT-2 small (768, 12 blocks), context 256\n"
    "  --preset tiny   ViT 64 wide x 2 layers, text 64 wide x 12 blocks, resampler 8 latents\n"
    "                  depth 2 (2 heads x 16, mlp 32), context 32, vocab 50258\n"
    "  --dtype         fp32 (default) or fp16\n"
    "  --cross         transformer blocks preceded by a cross-attention block (default 3,6,9)\n"
    "  --seed          random seed (default 1)\n"
    "  --tied          out_head.weight shares tok_emb.weight's storage (default: yes for fp32,\n"
    "                  no for fp16, like the published files)\n";

/* ---- random numbers: xorshift64* per tensor, Box-Muller normals ---- */

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* A tensor's values depend only on the seed and its name, so the fp16 file's
 * untied out_head can be regenerated as an exact copy of tok_emb. */
static uint64_t tensor_seed(uint64_t seed, const char *name) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *name; name++) h = (h ^ (uint8_t)*name) * 0x100000001b3ull;
    uint64_t s = mix(seed ^ h);
    return s ? s : 1;
}

static void fill_normal(float *x, size_t n, float std, uint64_t s) {
    for (size_t i = 0; i < n; i += 2) {
        double u1 = ((next(&s) >> 11) + 1.0) * 0x1p-53, u2 = (next(&s) >> 11) * 0x1p-53;
        double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
        x[i] = (float)(r * cos(a)) * std;
        if (i + 1 < n) x[i + 1] = (float)(r * sin(a)) * std;
    }
}

static void fill(float *x, size_t n, int64_t cols, init_kind kind, uint64_t s) {
    switch (kind) {
    case INIT_NORMAL: fill_normal(x, n, 0.02f, s); break;
    case INIT_LATENT: fill_normal(x, n, 1.0f, s); break;
    case INIT_ONES: for (size_t i = 0; i < n; i++) x[i] = 1.0f; break;
    case INIT_FOUR: for (size_t i = 0; i < n; i++) x[i] = 4.0f; break;
    case INIT_ZEROS: memset(x, 0, n * sizeof *x); break;
    case INIT_MASK: /* the stored causal-mask buffer: 1 above the diagonal */
        for (size_t i = 0; i < n; i++) x[i] = (int64_t)(i % (size_t)cols) > (int64_t)(i / (size_t)cols);
        break;
    }
}

/* ---- emitting tensors ---- */

static int emit_as(gen *g, const char *name, const char *seed_name, init_kind kind, int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    fill(g->f, (size_t)n, shape[ndim - 1], kind, tensor_seed(g->seed, seed_name));
    const void *data = g->f;
    if (g->dtype == VGPT_DT_F16) {
        vgpt_float_to_half_n(g->f, g->h, (size_t)n);
        data = g->h;
    }
    g->params += n;
    g->tensors++;
    return vgpt_ckpt_writer_add(g->w, name, g->dtype, ndim, shape, data, &g->err);
}

static int emit(gen *g, const char *name, init_kind kind, int64_t d0, int64_t d1) {
    int64_t shape[2] = {d0, d1};
    return emit_as(g, name, name, kind, d1 ? 2 : 1, shape);
}

/* name = prefix + suffix */
static int emitf(gen *g, const char *prefix, const char *suffix, init_kind kind, int64_t d0, int64_t d1) {
    char name[512];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    return emit(g, name, kind, d0, d1);
}

/* A weight [out,in] + bias [out]. */
static int linear(gen *g, const char *prefix, const char *w, const char *b, int64_t out, int64_t in) {
    return emitf(g, prefix, w, INIT_NORMAL, out, in) || emitf(g, prefix, b, INIT_ZEROS, out, 0);
}

static int layer_norm(gen *g, const char *prefix, const char *w, const char *b, int64_t n) {
    return emitf(g, prefix, w, INIT_ONES, n, 0) || emitf(g, prefix, b, INIT_ZEROS, n, 0);
}

static int vit(gen *g, const dims *d) {
    const char *m = "vision.encoder.model.";
    char p[256];
    int64_t grid = 224 / 16, conv[4] = {d->vw, 3, 16, 16}, cls[3] = {1, 1, d->vw}, pos[3] = {1, 1 + grid * grid, d->vw};
    snprintf(p, sizeof p, "%sclass_token", m);
    if (emit_as(g, p, p, INIT_NORMAL, 3, cls)) return -1;
    snprintf(p, sizeof p, "%sconv_proj.weight", m);
    if (emit_as(g, p, p, INIT_NORMAL, 4, conv)) return -1;
    snprintf(p, sizeof p, "%sconv_proj.", m);
    if (emitf(g, p, "bias", INIT_ZEROS, d->vw, 0)) return -1;
    snprintf(p, sizeof p, "%sencoder.pos_embedding", m);
    if (emit_as(g, p, p, INIT_NORMAL, 3, pos)) return -1;
    for (int i = 0; i < d->vl; i++) {
        snprintf(p, sizeof p, "%sencoder.layers.encoder_layer_%d.", m, i);
        if (layer_norm(g, p, "ln_1.weight", "ln_1.bias", d->vw) ||
            linear(g, p, "self_attention.in_proj_weight", "self_attention.in_proj_bias", 3 * d->vw, d->vw) ||
            linear(g, p, "self_attention.out_proj.weight", "self_attention.out_proj.bias", d->vw, d->vw) ||
            layer_norm(g, p, "ln_2.weight", "ln_2.bias", d->vw) ||
            linear(g, p, "mlp.0.weight", "mlp.0.bias", 4 * d->vw, d->vw) ||
            linear(g, p, "mlp.3.weight", "mlp.3.bias", d->vw, 4 * d->vw))
            return -1;
    }
    snprintf(p, sizeof p, "%sencoder.", m);
    if (layer_norm(g, p, "ln.weight", "ln.bias", d->vw)) return -1;
    snprintf(p, sizeof p, "%sheads.", m);
    return linear(g, p, "head.weight", "head.bias", 1000, d->vw); /* unused ImageNet classifier */
}

static int resampler(gen *g, const dims *d) {
    const char *r = "vision.resampler.";
    char p[256], s[64];
    int64_t inner = (int64_t)d->ph * d->pd;
    if (emitf(g, r, "latents", INIT_LATENT, d->lat, d->tw)) return -1;
    for (int i = 0; i < d->dep; i++) {
        snprintf(s, sizeof s, "to_q.%d.weight", i);
        if (emitf(g, r, s, INIT_NORMAL, inner, d->tw)) return -1;
        snprintf(s, sizeof s, "to_kv.%d.weight", i);
        if (emitf(g, r, s, INIT_NORMAL, 2 * inner, d->tw)) return -1;
        snprintf(s, sizeof s, "proj_out.%d.weight", i);
        if (emitf(g, r, s, INIT_NORMAL, d->tw, inner)) return -1;
        snprintf(p, sizeof p, "%snorms_latent.%d.", r, i);
        if (layer_norm(g, p, "weight", "bias", d->tw)) return -1;
        snprintf(p, sizeof p, "%snorms_media.%d.", r, i);
        if (layer_norm(g, p, "weight", "bias", d->tw)) return -1;
        snprintf(p, sizeof p, "%smlp.%d.", r, i);
        if (layer_norm(g, p, "0.weight", "0.bias", d->tw) || linear(g, p, "1.weight", "1.bias", d->mlp, d->tw) ||
            linear(g, p, "3.weight", "3.bias", d->tw, d->mlp))
            return -1;
    }
    return 0;
}

static int attention(gen *g, const char *p, int64_t c) {
    return linear(g, p, "att.W_query.weight", "att.W_query.bias", c, c) ||
           linear(g, p, "att.W_key.weight", "att.W_key.bias", c, c) ||
           linear(g, p, "att.W_value.weight", "att.W_value.bias", c, c) ||
           linear(g, p, "att.out_proj.weight", "att.out_proj.bias", c, c);
}

static int is_cross_before(const dims *d, int block) {
    for (int i = 0; i < d->ncross; i++)
        if (d->cross[i] == block) return 1;
    return 0;
}

/* trf_blocks is one list in forward order: a cross block goes right before
 * each transformer block named in --cross. */
static int text(gen *g, const dims *d, int tied) {
    char p[64];
    int64_t c = d->tw;
    if (emit(g, "tok_emb.weight", INIT_NORMAL, d->vocab, c) || emit(g, "pos_emb.weight", INIT_NORMAL, d->ctx, c))
        return -1;
    int j = 0;
    for (int b = 0; b < d->nl; b++) {
        if (is_cross_before(d, b)) {
            snprintf(p, sizeof p, "trf_blocks.%d.", j++);
            if (layer_norm(g, p, "attn_norm.scale", "attn_norm.shift", c) || attention(g, p, c)) return -1;
        }
        snprintf(p, sizeof p, "trf_blocks.%d.", j++);
        if (attention(g, p, c) || emitf(g, p, "att.mask", INIT_MASK, d->ctx, d->ctx) ||
            linear(g, p, "ff.layers.0.weight", "ff.layers.0.bias", 4 * c, c) ||
            linear(g, p, "ff.layers.2.weight", "ff.layers.2.bias", c, 4 * c) ||
            layer_norm(g, p, "norm1.scale", "norm1.shift", c) || layer_norm(g, p, "norm2.scale", "norm2.shift", c))
            return -1;
    }
    if (emit(g, "final_norm.scale", INIT_FOUR, c, 0) || emit(g, "final_norm.shift", INIT_ZEROS, c, 0)) return -1;
    if (tied) {
        g->tensors++;
        return vgpt_ckpt_writer_tie(g->w, "out_head.weight", "tok_emb.weight", &g->err);
    }
    int64_t shape[2] = {d->vocab, c};
    return emit_as(g, "out_head.weight", "tok_emb.weight", INIT_NORMAL, 2, shape); /* an exact copy */
}

/* ---- config.json ---- */

static int write_config(const char *out, const dims *d, int tiny, uint64_t seed) {
    char path[4096];
    const char *slash = strrchr(out, '/');
    int dl = slash ? (int)(slash - out) : 1;
    snprintf(path, sizeof path, "%.*s/config.json", dl, slash ? out : ".");
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "vgpt-mkckpt: %s: cannot create: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "{\n  \"vocab_size\": %d,\n  \"context_length\": %d,\n  \"emb_dim\": %d,\n  \"n_heads\": %d,\n"
               "  \"n_layers\": %d,\n  \"drop_rate\": 0.1,\n  \"qkv_bias\": true,\n  \"cross_attention_pos\": [",
            d->vocab, d->ctx, d->tw, d->th, d->nl);
    for (int i = 0; i < d->ncross; i++) fprintf(f, "%s%d", i ? ", " : "", d->cross[i]);
    fprintf(f, "],\n  \"perceiver_num_latents\": %d,\n  \"perceiver_depth\": %d,\n  \"perceiver_heads\": %d,\n"
               "  \"perceiver_dim_head\": %d,\n", d->lat, d->dep, d->ph, d->pd);
    if (tiny) fprintf(f, "  \"vision_num_heads\": %d,\n", d->vh);
    fprintf(f, "  \"vgpt_note\": \"RANDOM weights written by vgpt-mkckpt --seed %llu\"\n}\n", (unsigned long long)seed);
    if (fclose(f)) {
        fprintf(stderr, "vgpt-mkckpt: %s: write failed\n", path);
        return -1;
    }
    printf("wrote %s\n", path);
    return 0;
}

/* ---- options ---- */

static int parse_cross(const char *s, dims *d) {
    d->ncross = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v >= d->nl || d->ncross == MAX_CROSS || (d->ncross && v <= d->cross[d->ncross - 1]))
            return -1;
        d->cross[d->ncross++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return d->ncross ? 0 : -1;
}

static const dims full_dims = {768, 12, 12, 768, 12, 12, 64, 2, 8, 64, 256, 256, 50258, 3, {3, 6, 9}};
static const dims tiny_dims = {64, 2, 2, 64, 12, 4, 8, 2, 2, 16, 32, 32, 50258, 3, {3, 6, 9}};

static int64_t largest(const dims *d) {
    int64_t m = (int64_t)d->vocab * d->tw, v[] = {4LL * d->vw * d->vw, 3LL * d->vw * d->vw, (int64_t)d->ctx * d->ctx,
                                                4LL * d->tw * d->tw, 1000LL * d->vw, 197LL * d->vw};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (v[i] > m) m = v[i];
    return m;
}

static int run(const char *out, const dims *d, vgpt_dtype dt, int tied, uint64_t seed) {
    gen g = {.dtype = dt, .seed = seed};
    size_t n = (size_t)largest(d);
    g.f = malloc(n * sizeof *g.f);
    g.h = malloc(n * sizeof *g.h);
    if (!g.f || !g.h || vgpt_ckpt_writer_open(out, 0, &g.w, &g.err)) {
        fprintf(stderr, "vgpt-mkckpt: %s\n", g.f && g.h ? g.err.msg : "out of memory");
        free(g.f);
        free(g.h);
        return 1;
    }
    int rc = vit(&g, d) || resampler(&g, d) || text(&g, d, tied);
    if (rc) vgpt_ckpt_writer_abort(g.w);
    else rc = vgpt_ckpt_writer_finish(g.w, &g.err);
    free(g.f);
    free(g.h);
    if (rc) {
        fprintf(stderr, "vgpt-mkckpt: %s\n", g.err.msg);
        return 1;
    }
    printf("wrote %s: %zu tensors, %.1fM parameters, %s%s\n", out, g.tensors, g.params / 1e6, vgpt_dtype_name(dt),
           tied ? ", out_head tied to tok_emb" : "");
    return 0;
}

int main(int argc, char **argv) {
    const char *preset = NULL, *dtype = "fp32", *cross = NULL, *tied_s = NULL, *out = NULL;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage, stdout); return 0; }
        else if (!strcmp(a, "--preset") && v) preset = argv[++i];
        else if (!strcmp(a, "--dtype") && v) dtype = argv[++i];
        else if (!strcmp(a, "--cross") && v) cross = argv[++i];
        else if (!strcmp(a, "--tied") && v) tied_s = argv[++i];
        else if (!strcmp(a, "--seed") && v) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end || !*argv[i]) { fprintf(stderr, "vgpt-mkckpt: --seed: expected a number, got '%s'\n", argv[i]); return 2; }
        } else if (a[0] != '-' && !out) out = a;
        else { fprintf(stderr, "vgpt-mkckpt: unexpected argument '%s'\n%s", a, usage); return 2; }
    }
    if (!preset || !out || (strcmp(preset, "full") && strcmp(preset, "tiny"))) {
        fprintf(stderr, "vgpt-mkckpt: need --preset full|tiny and OUT.pth\n%s", usage);
        return 2;
    }
    if (strcmp(dtype, "fp32") && strcmp(dtype, "fp16")) {
        fprintf(stderr, "vgpt-mkckpt: --dtype: expected fp32 or fp16, got '%s'\n", dtype);
        return 2;
    }
    int tiny = !strcmp(preset, "tiny"), fp16 = !strcmp(dtype, "fp16");
    dims d = tiny ? tiny_dims : full_dims;
    if (cross && parse_cross(cross, &d)) {
        fprintf(stderr, "vgpt-mkckpt: --cross: expected increasing block indices in 0..%d like 3,6,9, got '%s'\n",
                d.nl - 1, cross);
        return 2;
    }
    int tied = tied_s ? !strcmp(tied_s, "yes") : !fp16;
    if (tied_s && strcmp(tied_s, "yes") && strcmp(tied_s, "no")) {
        fprintf(stderr, "vgpt-mkckpt: --tied: expected yes or no, got '%s'\n", tied_s);
        return 2;
    }
    fprintf(stderr, "vgpt-mkckpt: WARNING: writing RANDOM weights (seed %llu) to %s; captions from this checkpoint "
            "are meaningless (use it for tests and benchmarks only)\n", seed, out);
    if (run(out, &d, fp16 ? VGPT_DT_F16 : VGPT_DT_F32, tied, seed)) return 1;
    return write_config(out, &d, tiny, seed) ? 1 : 0;
}
