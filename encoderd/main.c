/* encoderd - ViT + resampler daemon: preprocessed images in, visual tokens
 * out, with the LMDB visual-token cache in front of the ViT.
 *
 * Images that arrive together (up to --batch, waiting at most --batch-wait-ms
 * for a batch to fill) share one encoder pass. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "encoder.h"
#include "image.h"
#include "kernels.h"
#include "model.h"
#include "node.h"
#include "opts.h"
#include "pool.h"
#include "token_cache.h"

#define MAX_BATCH VGPT_IMAGE_MAX_BATCH /* lib/image_opts.h: the one batch limit */

typedef struct enc_opts {
    const char *listen, *next, *model, *cache_dir;
    long threads, batch, wait_ms, cache_mb;
    vgpt_precision precision;
    vgpt_node_opts node;
} enc_opts;

typedef struct enc_ctx {
    enc_opts o;
    vgpt_node node;
    vgpt_model *model;
    vgpt_encoder *enc;
    vgpt_cache *cache;
    zmq_msg_t frames[MAX_BATCH];
    vgpt_msg msgs[MAX_BATCH];
    uint8_t keys[MAX_BATCH][32];
    int miss[MAX_BATCH];
    float *pixels, *vis, *hit_tokens;
    int L, C;
} enc_ctx;

static const char usage_text[] =
    "Usage: encoderd --listen EP --next EP[,EP...] --model PATH [OPTIONS]\n"
    "\n"
    "The vgpt encoder stage: receives preprocessed 224x224 images (PULL on --listen),\n"
    "runs ViT-B/16 + the Perceiver resampler, and pushes 64 visual tokens per image\n"
    "to the decoder stage(s) given by --next. Errors go to each request's reply_to.\n"
    "\n"
    "  -l, --listen EP        endpoint to bind, e.g. ipc:///run/vgpt/enc or tcp://*:5556\n"
    "  -n, --next EP[,EP]     decoderd endpoint(s) to connect to (load-balanced)\n"
    "  -m, --model PATH       checkpoint (.pth); default $VGPT_MODEL\n"
    "  -t, --threads N        OpenBLAS threads (default: the CPUs this process may use)\n"
    "  -b, --batch N          images per encoder pass, at most (default 8, max 64)\n"
    "      --precision P      fp32 (default, exact) or bf16: matrix products in bf16\n"
    "                         with fp32 sums (oneDNN on AVX-512: AMX / AVX512-BF16;\n"
    "                         vgpt's kernels elsewhere); weights held in half the memory;\n"
    "                         cached tokens are kept apart per precision\n"
    "      --batch-wait-ms N  how long to wait for a batch to fill (default 5)\n"
    "      --cache DIR        visual-token cache (LMDB) directory; none by default\n"
    "      --cache-max-mb N   cache size bound, least recently used evicted (default 2048)\n"
    VGPT_NODE_USAGE
    "  -h, --help             this text\n"
    "\n"
    "Signals: SIGTERM/SIGINT finish the batch in progress, then exit 0.\n"
    "Readiness: READY=1 to $NOTIFY_SOCKET once the model is loaded (systemd Type=notify).\n";

static int parse(int argc, char **argv, enc_opts *o) {
    static const struct option lo[] = {
        {"listen", 1, 0, 'l'}, {"next", 1, 0, 'n'}, {"model", 1, 0, 'm'}, {"threads", 1, 0, 't'},
        {"batch", 1, 0, 'b'},  {"batch-wait-ms", 1, 0, 'w'}, {"cache", 1, 0, 'c'}, {"cache-max-mb", 1, 0, 'M'},
        {"precision", 1, 0, 'P'}, VGPT_NODE_LONG_OPTIONS, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    *o = (enc_opts){.model = getenv("VGPT_MODEL"), .threads = vgpt_cpu_count(), .batch = 8, .wait_ms = 5, .cache_mb = 2048};
    vgpt_node_opts_default(&o->node);
    int c;
    while ((c = vgpt_node_getopt(argc, argv, "l:n:m:t:b:h", lo, "encoderd", &o->node)) != -1) {
        int bad = 0;
        switch (c) {
        case 'l': o->listen = optarg; break;
        case 'n': o->next = optarg; break;
        case 'm': o->model = optarg; break;
        case 'c': o->cache_dir = optarg; break;
        case 'P': bad = vgpt_opt_precision("encoderd", optarg, &o->precision); break;
        case 't': bad = vgpt_opt_long("encoderd", "threads", optarg, 1, 1024, &o->threads); break;
        case 'b': bad = vgpt_opt_long("encoderd", "batch", optarg, 1, MAX_BATCH, &o->batch); break;
        case 'w': bad = vgpt_opt_long("encoderd", "batch-wait-ms", optarg, 0, 60000, &o->wait_ms); break;
        case 'M': bad = vgpt_opt_long("encoderd", "cache-max-mb", optarg, 1, 1L << 24, &o->cache_mb); break;
        case 'h': fputs(usage_text, stdout); exit(0);
        default: bad = 1;
        }
        if (bad) return -1;
    }
    if (!o->listen || !o->next || !o->model || optind < argc) {
        fprintf(stderr, "encoderd: --listen, --next and --model (or $VGPT_MODEL) are required; see --help\n");
        return -1;
    }
    return 0;
}

static int setup(enc_ctx *x, vgpt_err *err) {
    if (x->o.threads > 0) vgpt_set_threads((int)x->o.threads);
    int bf16 = x->o.precision == VGPT_BF16 ? VGPT_LOAD_BF16 : 0;
    if (vgpt_model_load(x->o.model, VGPT_LOAD_ENCODER | bf16, &x->model, err)) return -1;
    if (vgpt_encoder_new(x->model, &x->enc, err)) return -1;
    if (vgpt_encoder_image_size(x->enc) != VGPT_IMAGE_SIZE)
        return vgpt_err_set(err, "%s: the ViT expects %d px images, vgpt sends %d", x->o.model,
                            vgpt_encoder_image_size(x->enc), VGPT_IMAGE_SIZE);
    x->L = vgpt_encoder_n_tokens(x->enc);
    x->C = vgpt_encoder_width(x->enc);
    size_t plane = 3 * VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE;
    x->pixels = malloc(x->o.batch * plane * sizeof(float));
    x->vis = malloc((size_t)x->o.batch * x->L * x->C * sizeof(float));
    x->hit_tokens = malloc((size_t)x->L * x->C * sizeof(float));
    if (!x->pixels || !x->vis || !x->hit_tokens) return vgpt_err_set(err, "out of memory");
    if (x->o.cache_dir) x->cache = vgpt_cache_open(x->o.cache_dir, (size_t)x->o.cache_mb, "encoderd");
    return vgpt_node_start(&x->node, "encoderd", x->o.listen, x->o.next, &x->o.node, err);
}

static void send_tokens(enc_ctx *x, const vgpt_msg *req, const float *tokens, int hit) {
    vgpt_msg out;
    vgpt_msg_follow(&out, VGPT_MSG_TOKENS, req);
    out.cache_hit = hit;
    snprintf(out.model_fp, sizeof out.model_fp, "%s", x->model->fingerprint); /* decoderd refuses another model's */
    out.tensor = (vgpt_wire_tensor){.dtype = VGPT_WIRE_F32, .ndim = 2, .shape = {x->L, x->C},
                                    .data = tokens, .nbytes = (size_t)x->L * x->C * sizeof(float)};
    vgpt_node_forward(&x->node, &out);
}

/* Cache lookups, one encoder pass over the misses, tokens pushed on. */
static void process(enc_ctx *x, int n) {
    size_t plane = 3 * VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE;
    int n_miss = 0;
    for (int i = 0; i < n; i++) {
        vgpt_msg *m = &x->msgs[i];
        if (m->has_hash) {
            vgpt_cache_key(m->hash, &m->img, x->model->fingerprint, x->o.precision, x->keys[i]);
            if (vgpt_cache_get(x->cache, x->keys[i], x->hit_tokens, x->L, x->C)) {
                send_tokens(x, m, x->hit_tokens, 1);
                continue;
            }
        }
        vgpt_image_normalize(m->tensor.data, x->model->mean, x->model->std, x->pixels + n_miss * plane);
        x->miss[n_miss++] = i;
    }
    if (!n_miss) return;
    vgpt_err err;
    if (vgpt_encode(x->enc, x->pixels, n_miss, x->vis, &err)) {
        for (int k = 0; k < n_miss; k++) vgpt_node_fail(&x->node, &x->msgs[x->miss[k]], err.msg);
        return;
    }
    for (int k = 0; k < n_miss; k++) {
        const vgpt_msg *m = &x->msgs[x->miss[k]];
        const float *tok = x->vis + (size_t)k * x->L * x->C;
        if (m->has_hash) vgpt_cache_put(x->cache, x->keys[x->miss[k]], tok, x->L, x->C);
        send_tokens(x, m, tok, 0);
    }
}

/* Takes what has arrived, waiting up to --batch-wait-ms for a batch to fill. */
static int gather(enc_ctx *x) {
    int n = 0;
    double deadline = vgpt_now() + x->o.wait_ms / 1e3;
    while (n < x->o.batch) {
        if (vgpt_node_recv(&x->node, &x->frames[n], &x->msgs[n], VGPT_MSG_PREPROCESSED)) {
            n++;
            continue;
        }
        int left = (int)((deadline - vgpt_now()) * 1e3);
        if (n == 0 || left <= 0 || x->node.stopping || !vgpt_node_wait(&x->node, left)) break;
    }
    return n;
}

/* The reactor's input handler: one batch, encoded and pushed on. */
static void on_input(void *ctx) {
    enc_ctx *x = ctx;
    int n = gather(x);
    process(x, n);
    for (int i = 0; i < n; i++) {
        vgpt_msg_free(&x->msgs[i]);
        zmq_msg_close(&x->frames[i]);
    }
}

static void stats(void *ctx, char *buf, size_t cap) {
    enc_ctx *x = ctx;
    vgpt_cache_stats cs;
    vgpt_cache_stats_get(x->cache, &cs);
    snprintf(buf, cap, "cache %s: %llu hits, %llu misses, %llu entries, %llu damaged", cs.disabled ? "off" : "on",
             (unsigned long long)cs.hits, (unsigned long long)cs.misses, (unsigned long long)cs.entries,
             (unsigned long long)cs.damaged);
}

int main(int argc, char **argv) {
    vgpt_process_tune(argv);
    enc_ctx x;
    memset(&x, 0, sizeof x);
    if (parse(argc, argv, &x.o)) return 2;
    vgpt_err err;
    if (setup(&x, &err)) {
        vgpt_log("encoderd", "fatal: %s", err.msg);
        return 1;
    }
    char desc[512], ready[1024];
    vgpt_model_describe(x.model, desc, sizeof desc);
    snprintf(ready, sizeof ready, "ready on %s -> %s: %s", x.o.listen, x.o.next, desc);
    vgpt_node_run(&x.node, &(vgpt_node_work){.ctx = &x, .on_input = on_input, .stats = stats}, ready);
    vgpt_cache_free(x.cache);
    vgpt_node_free(&x.node);
    vgpt_encoder_free(x.enc);
    vgpt_model_free(x.model);
    free(x.pixels); free(x.vis); free(x.hit_tokens);
    return 0;
}
