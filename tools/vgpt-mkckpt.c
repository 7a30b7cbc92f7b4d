/* vgpt-mkckpt - write a random-weight Vision-GPT checkpoint.
 *
 * The engine, the daemons and the benchmarks need a checkpoint with the exact
 * published key layout (model-spec.md) without downloading 0.9 GB: this
 * writes one with random weights, torch-loadable, plus config.json beside
 * it.  The captions it produces are meaningless; the shapes and the cost of
 * running it are real.  By default the file is what the published one is:
 * wrapped as the model author's training code saves it (config, epoch, a
 * loss tensor on cuda:0, model_class) and with more pos_emb rows than the
 * context, so readers are tested against what they will meet.  Options
 * give the older variants (bare / minimal wrapper, rows == context). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_write.h"
#include "half.h"
#include "json.h"

#define MAX_CROSS 16
#define MAX_POS_ROWS 65536
#define EPOCH 9 /* the published run's last epoch (0-based, 10 epochs) */

typedef struct dims {
    int vw, vl, vh;          /* ViT width, layers, heads */
    int tw, nl, th;          /* text width, transformer blocks, heads */
    int lat, dep, ph, pd, mlp; /* resampler latents, depth, heads, head width, mlp hidden */
    int ctx, vocab;
    int ncross, cross[MAX_CROSS];
    int pos;                 /* pos_emb rows, >= ctx */
} dims;

typedef enum { WRAP_TRAINING, WRAP_MINIMAL, WRAP_BARE } wrap_kind;

typedef struct opts {
    const char *out;
    dims d;
    int tiny, tied, config;
    vgpt_dtype dtype;
    wrap_kind wrap;
    unsigned long long seed;
} opts;

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
    "usage: vgpt-mkckpt --preset full|tiny [OPTIONS] OUT.pth\n"
    "\n"
    "Writes a Vision-GPT checkpoint with RANDOM weights in the key layout of the\n"
    "published gurumurthy3/vision-gpt-flickr8k_v2 checkpoint, and config.json beside\n"
    "it.  OUT.pth is in torch.save's zip format, readable by vgpt and by\n"
    "torch.load(OUT.pth, map_location='cpu').  Use it for tests and benchmarks only:\n"
    "its captions are meaningless.\n"
    "\n"
    "By default data.pkl holds what the model author's training code saves:\n"
    "  {'model_state_dict': OrderedDict(name -> tensor),\n"
    "   'config': a dict equal to config.json,\n"
    "   'epoch': 9,\n"
    "   'loss': ln(vocab_size) (the loss of a uniform guess) as a 0-dim float32\n"
    "           tensor with requires_grad=True, its storage tagged 'cuda:0',\n"
    "   'model_class': 'GPTModal'}\n"
    "so torch.load without map_location='cpu' fails on a machine without CUDA.\n"
    "\n"
    "Options:\n"
    "  --preset full     published dimensions: ViT-B/16 (768 wide, 12 layers, 12 heads),\n"
    "                    resampler 64 latents, depth 2 (8 heads x 64, mlp 256), GPT-2\n"
    "                    small (768 wide, 12 blocks, 12 heads), vocab 50258, context\n"
    "                    256, pos_emb 1024 rows\n"
    "  --preset tiny     ViT 64 wide x 2 layers (2 heads), text 64 wide x 12 blocks\n"
    "                    (4 heads), resampler 8 latents, depth 2 (2 heads x 16, mlp 32),\n"
    "                    vocab 50258, context 32, pos_emb 128 rows\n"
    "  --dtype fp32|fp16 tensor dtype, masks included (default fp32)\n"
    "  --cross LIST      transformer blocks preceded by a cross-attention block,\n"
    "                    increasing and comma-separated (default 3,6,9)\n"
    "  --seed N          random seed (default 1).  A tensor's values depend only on the\n"
    "                    seed and its name, and pos_emb's first rows not on --pos-rows\n"
    "  --tied yes|no     out_head.weight shares tok_emb.weight's storage (default yes\n"
    "                    for fp32, no for fp16, like the published files)\n"
    "  --pos-rows N      rows of pos_emb.weight, from the context up to 65536 (default\n"
    "                    1024 for full, 128 for tiny).  The published pos_emb is GPT-2's\n"
    "                    whole 1024-row wpe while its att.mask buffers and\n"
    "                    context_length are 256; N equal to the context gives the older\n"
    "                    rows == context layout\n"
    "  --wrapper KIND    top level of data.pkl: training (the default, above);\n"
    "                    minimal, {'model_state_dict': ...} alone (what vgpt-mkckpt\n"
    "                    wrote before); or bare, the state dict itself\n"
    "  --bare            same as --wrapper bare\n"
    "  --no-config       write no config.json (the training wrapper still holds the\n"
    "                    config); readers then use their default head counts\n"
    "  -h, --help        print this help and exit\n"
    "\n"
    "The config has the published keys (vocab_size, emb_dim, context_length, n_heads,\n"
    "n_layers, drop_rate, qkv_bias, cross_attention_pos, vision_*, perceiver_*,\n"
    "weight_decay, learning_rate), plus vision_num_heads for tiny and vgpt_note, which\n"
    "says the weights are random.  config.json is written into OUT.pth's directory,\n"
    "replacing any config.json there.  OUT.pth appears only once complete.  The\n"
    "parameter count printed leaves out the att.mask buffers (222,092,520 for full\n"
    "fp32, as the author's training log prints).\n"
    "\n"
    "Exit status: 0 written, 1 cannot write, 2 bad usage.\n";

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
    if (kind != INIT_MASK) g->params += n; /* masks are buffers, not parameters */
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
    if (emit(g, "tok_emb.weight", INIT_NORMAL, d->vocab, c) || emit(g, "pos_emb.weight", INIT_NORMAL, d->pos, c))
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

/* ---- the config: one JSON text for config.json and the wrapper ---- */

static int jsonf(vgpt_json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int jsonf(vgpt_json_buf *b, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= sizeof line ? -1 : vgpt_json_buf_append(b, line, (size_t)n);
}

/* The published config.json's keys in its order, then ours. */
static int config_text(vgpt_json_buf *b, const opts *o) {
    const dims *d = &o->d;
    if (jsonf(b, "{\n  \"vocab_size\": %d,\n  \"emb_dim\": %d,\n  \"context_length\": %d,\n  \"n_heads\": %d,\n"
                 "  \"n_layers\": %d,\n  \"drop_rate\": 0.1,\n  \"qkv_bias\": true,\n  \"cross_attention_pos\": [",
              d->vocab, d->tw, d->ctx, d->th, d->nl))
        return -1;
    for (int i = 0; i < d->ncross; i++)
        if (jsonf(b, "%s%d", i ? ", " : "", d->cross[i])) return -1;
    if (jsonf(b, "],\n  \"vision_enabled\": true,\n  \"vision_encoder_type\": \"torchvision_vit_b_16\",\n"
                 "  \"vision_pretrained\": true,\n  \"vision_freeze\": true,\n") ||
        jsonf(b, "  \"perceiver_num_latents\": %d,\n  \"perceiver_depth\": %d,\n  \"perceiver_heads\": %d,\n"
                 "  \"perceiver_dim_head\": %d,\n  \"weight_decay\": 0.01,\n  \"learning_rate\": 0.0001,\n",
              d->lat, d->dep, d->ph, d->pd))
        return -1;
    if (o->tiny && jsonf(b, "  \"vision_num_heads\": %d,\n", d->vh)) return -1;
    return jsonf(b, "  \"vgpt_note\": \"RANDOM weights written by vgpt-mkckpt --seed %llu\"\n}\n", o->seed);
}

static int write_config(const char *out, const vgpt_json_buf *text) {
    char path[4096];
    const char *slash = strrchr(out, '/');
    int dl = slash ? (int)(slash - out) : 1;
    snprintf(path, sizeof path, "%.*s/config.json", dl, slash ? out : ".");
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "vgpt-mkckpt: %s: cannot create: %s\n", path, strerror(errno));
        return -1;
    }
    int ok = fwrite(text->data, 1, text->len, f) == text->len;
    if (fclose(f) || !ok) {
        fprintf(stderr, "vgpt-mkckpt: %s: write failed: %s\n", path, strerror(errno));
        return -1;
    }
    printf("wrote %s\n", path);
    return 0;
}

/* ---- writing ---- */

static int64_t largest(const dims *d) {
    int64_t m = (int64_t)d->vocab * d->tw, v[] = {4LL * d->vw * d->vw, 3LL * d->vw * d->vw, (int64_t)d->ctx * d->ctx,
                                                4LL * d->tw * d->tw, 1000LL * d->vw, 197LL * d->vw,
                                                (int64_t)d->pos * d->tw};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (v[i] > m) m = v[i];
    return m;
}

/* The tensors, then the wrapper's other keys (the loss storage comes last,
 * as torch numbers it). */
static int generate(gen *g, const opts *o, const vgpt_json *config) {
    if (vit(g, &o->d) || resampler(g, &o->d) || text(g, &o->d, o->tied)) return -1;
    if (o->wrap != WRAP_TRAINING) return 0;
    vgpt_ckpt_training t = {config, EPOCH, logf((float)o->d.vocab), "GPTModal"};
    return vgpt_ckpt_writer_set_training(g->w, &t, &g->err);
}

static int write_ckpt(const opts *o, const vgpt_json *config) {
    gen g = {.dtype = o->dtype, .seed = o->seed};
    size_t n = (size_t)largest(&o->d);
    int flags = o->wrap == WRAP_BARE ? VGPT_CKPT_WRITE_BARE : 0;
    g.f = malloc(n * sizeof *g.f);
    g.h = malloc(n * sizeof *g.h);
    if (!g.f || !g.h || vgpt_ckpt_writer_open(o->out, flags, &g.w, &g.err)) {
        fprintf(stderr, "vgpt-mkckpt: %s\n", g.f && g.h ? g.err.msg : "out of memory");
        free(g.f);
        free(g.h);
        return -1;
    }
    int rc = generate(&g, o, config);
    if (rc) vgpt_ckpt_writer_abort(g.w);
    else rc = vgpt_ckpt_writer_finish(g.w, &g.err);
    free(g.f);
    free(g.h);
    if (rc) {
        fprintf(stderr, "vgpt-mkckpt: %s\n", g.err.msg);
        return -1;
    }
    static const char *wrap_name[] = {"training wrapper", "minimal wrapper", "bare state dict"};
    printf("wrote %s: %zu tensors, %.1fM parameters (%lld), %s, %s, pos_emb %d rows, context %d%s\n", o->out,
           g.tensors, g.params / 1e6, (long long)g.params, vgpt_dtype_name(o->dtype), wrap_name[o->wrap], o->d.pos,
           o->d.ctx, o->tied ? ", out_head tied to tok_emb" : "");
    return 0;
}

/* Builds the config once, so config.json and the wrapper's dict agree. */
static int run(const opts *o) {
    vgpt_json_buf text = {0};
    vgpt_json_doc *doc = NULL;
    vgpt_err err;
    int rc = 1;
    if (config_text(&text, o)) fprintf(stderr, "vgpt-mkckpt: out of memory\n");
    else if (vgpt_json_parse(text.data, text.len, "config.json", &doc, &err))
        fprintf(stderr, "vgpt-mkckpt: internal error: %s\n", err.msg);
    else if (!write_ckpt(o, vgpt_json_root(doc)) && (!o->config || !write_config(o->out, &text)))
        rc = 0;
    vgpt_json_free(doc);
    vgpt_json_buf_free(&text);
    return rc;
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

static const dims full_dims = {768, 12, 12, 768, 12, 12, 64, 2, 8, 64, 256, 256, 50258, 3, {3, 6, 9}, 1024};
static const dims tiny_dims = {64, 2, 2, 64, 12, 4, 8, 2, 2, 16, 32, 32, 50258, 3, {3, 6, 9}, 128};

/* The raw option strings, checked once all are seen (--pos-rows and --cross
 * depend on --preset, --tied's default on --dtype). */
typedef struct raw_opts {
    const char *preset, *dtype, *cross, *tied, *pos, *wrap, *seed;
    int no_config;
} raw_opts;

/* Prints "vgpt-mkckpt: <message>" and the usage; returns the usage exit status. */
static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("vgpt-mkckpt: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage);
    return 2;
}

/* 0 ok, 1 --help printed, 2 usage error (printed). */
static int scan_args(int argc, char **argv, raw_opts *r, const char **out) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = !strcmp(a, "--preset") ? &r->preset : !strcmp(a, "--dtype") ? &r->dtype
                          : !strcmp(a, "--cross") ? &r->cross : !strcmp(a, "--tied") ? &r->tied
                          : !strcmp(a, "--pos-rows") ? &r->pos : !strcmp(a, "--wrapper") ? &r->wrap
                          : !strcmp(a, "--seed") ? &r->seed : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage, stdout); return 1; }
        if (slot && v) { *slot = argv[++i]; continue; }
        if (slot) return bad("%s needs a value", a);
        if (!strcmp(a, "--bare")) r->wrap = "bare";
        else if (!strcmp(a, "--no-config")) r->no_config = 1;
        else if (a[0] != '-' && !*out) *out = a;
        else return bad("unexpected argument '%s'", a);
    }
    return 0;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *v) {
    char *end;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return !*s || *s == '-' || *end || errno || *v > max ? -1 : 0;
}

static int pick(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* Fills o from r; prints the error and returns 2 on a bad value. */
static int check_opts(const raw_opts *r, opts *o) {
    static const char *const presets[] = {"full", "tiny"}, *const dtypes[] = {"fp32", "fp16"},
                             *const yesno[] = {"no", "yes"}, *const wraps[] = {"training", "minimal", "bare"};
    int preset = r->preset ? pick(r->preset, presets, 2) : -1, fp16 = pick(r->dtype ? r->dtype : "fp32", dtypes, 2);
    int tied = r->tied ? pick(r->tied, yesno, 2) : 0, wrap = pick(r->wrap ? r->wrap : "training", wraps, 3);
    if (preset < 0 || !o->out) return bad("need --preset full|tiny and OUT.pth");
    if (fp16 < 0) return bad("--dtype: expected fp32 or fp16, got '%s'", r->dtype);
    if (tied < 0) return bad("--tied: expected yes or no, got '%s'", r->tied);
    if (wrap < 0) return bad("--wrapper: expected training, minimal or bare, got '%s'", r->wrap);
    o->tiny = preset == 1;
    o->d = o->tiny ? tiny_dims : full_dims;
    o->dtype = fp16 ? VGPT_DT_F16 : VGPT_DT_F32;
    o->tied = r->tied ? tied : !fp16;
    o->wrap = (wrap_kind)wrap;
    o->config = !r->no_config;
    if (r->seed && parse_uint(r->seed, ~0ull, &o->seed))
        return bad("--seed: expected a number, got '%s'", r->seed);
    if (r->cross && parse_cross(r->cross, &o->d))
        return bad("--cross: expected increasing block indices in 0..%d like 3,6,9, got '%s'", o->d.nl - 1,
                   r->cross);
    unsigned long long rows;
    if (r->pos && (parse_uint(r->pos, MAX_POS_ROWS, &rows) || rows < (unsigned long long)o->d.ctx))
        return bad("--pos-rows: expected a number from the context (%d) to %d, got '%s'", o->d.ctx,
                   MAX_POS_ROWS, r->pos);
    if (r->pos) o->d.pos = (int)rows;
    return 0;
}

int main(int argc, char **argv) {
    raw_opts r = {0};
    opts o = {.seed = 1};
    int rc = scan_args(argc, argv, &r, &o.out);
    if (rc) return rc == 1 ? 0 : 2;
    if ((rc = check_opts(&r, &o))) return rc;
    fprintf(stderr, "vgpt-mkckpt: WARNING: writing RANDOM weights (seed %llu) to %s; captions from this checkpoint "
            "are meaningless (use it for tests and benchmarks only)\n", o.seed, o.out);
    return run(&o);
}
