/* decoderd - GPT-2 + cross-attention daemon with continuous batching:
 * every decoder step advances all live captions of all requests together
 * (one GEMM per weight matrix), new requests join between steps, and each
 * caption is sent to its reply_to the moment it finishes. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "generate.h"
#include "gpt2.h"
#include "half.h"
#include "model.h"
#include "node.h"
#include "opts.h"
#include "pool.h"
#include "tokenizer.h"
#include "kernels.h"


typedef struct dec_opts {
    const char *listen, *model;
    long threads, max_seqs;
    vgpt_precision precision;
    vgpt_node_opts node;
} dec_opts;

/* One request being captioned. */
typedef struct live {
    vgpt_msg req;        /* the request's envelope (id, reply_to, attempt, settings) */
    int seats;
    char reply_to[256];  /* req.reply_to points here */
    vgpt_xkv xkv;
    vgpt_job *job;
} live;

typedef struct dec_ctx {
    dec_opts o;
    vgpt_node node;
    vgpt_model *model;
    vgpt_gpt_run dec;
    vgpt_tok *tok;
    live **jobs;
    int n_jobs, cap_jobs;
    int32_t *tokens;
    vgpt_kv **kv;
    const vgpt_xkv **xkv;
    float *logits, *vis;
    uint64_t captions, steps, seqs_stepped;
    int warned_max_tokens; /* a clamped max_tokens is logged once, not per request */
} dec_ctx;

static const char usage_text[] =
    "Usage: decoderd --listen EP --model PATH [OPTIONS]\n"
    "\n"
    "The vgpt decoder stage: receives visual tokens (PULL on --listen), generates\n"
    "captions with GPT-2 + cross-attention, and sends each caption to its request's\n"
    "reply_to as soon as it is finished. All live captions step together.\n"
    "\n"
    "  -l, --listen EP        endpoint to bind, e.g. ipc:///run/vgpt/dec or tcp://*:5557\n"
    "  -m, --model PATH       checkpoint (.pth); default $VGPT_MODEL\n"
    "  -t, --threads N        compute threads (default: the CPUs this process may use)\n"
    "      --max-seqs N       sequences stepped together at most (beams count; default 64)\n"
    "      --precision P      fp32 (default, exact) or bf16: matrix products in bf16\n"
    "                         with fp32 sums (oneDNN on AVX-512: AMX / AVX512-BF16;\n"
    "                         vgpt's kernels elsewhere, ~2x faster than fp32 at batch 1)\n"
    VGPT_NODE_USAGE
    "  -h, --help             this text\n"
    "\n"
    "A request's max_tokens beyond the model's context is clamped to the context\n"
    "(with a warning logged once).\n"
    "\n"
    "Signals: SIGTERM/SIGINT finish the captions in progress, then exit 0.\n"
    "Readiness: READY=1 to $NOTIFY_SOCKET once the model is loaded (systemd Type=notify).\n";

static int parse(int argc, char **argv, dec_opts *o) {
    static const struct option lo[] = {{"listen", 1, 0, 'l'},  {"model", 1, 0, 'm'},
                                       {"threads", 1, 0, 't'}, {"max-seqs", 1, 0, 'S'},
                                       {"precision", 1, 0, 'P'}, VGPT_NODE_LONG_OPTIONS, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    long ncpu = vgpt_cpu_count();
    *o = (dec_opts){.model = getenv("VGPT_MODEL"), .threads = ncpu > 0 ? ncpu : 1, .max_seqs = 64};
    vgpt_node_opts_default(&o->node);
    int c;
    while ((c = vgpt_node_getopt(argc, argv, "l:m:t:h", lo, "decoderd", &o->node)) != -1) {
        int bad = 0;
        switch (c) {
        case 'l': o->listen = optarg; break;
        case 'm': o->model = optarg; break;
        case 't': bad = vgpt_opt_long("decoderd", "threads", optarg, 1, 1024, &o->threads); break;
        case 'S': bad = vgpt_opt_long("decoderd", "max-seqs", optarg, 1, 4096, &o->max_seqs); break;
        case 'P': bad = vgpt_opt_precision("decoderd", optarg, &o->precision); break;
        case 'h': fputs(usage_text, stdout); exit(0);
        default: bad = 1;
        }
        if (bad) return -1;
    }
    if (!o->listen || !o->model || optind < argc) {
        fprintf(stderr, "decoderd: --listen and --model (or $VGPT_MODEL) are required; see --help\n");
        return -1;
    }
    return 0;
}

/* Rows a request can occupy in a step: its beams. */
static int seats(const vgpt_gen_opts *g) { return g->mode == VGPT_BEAM && g->beams > 1 ? g->beams : 1; }

static int setup(dec_ctx *x, char **argv, vgpt_err *err) {
    if (x->o.threads > 0) vgpt_set_threads((int)x->o.threads);
    int bf16 = x->o.precision == VGPT_BF16 ? VGPT_LOAD_BF16 : 0;
    if (vgpt_model_load(x->o.model, VGPT_LOAD_DECODER | bf16, &x->model, err)) return -1;
    if (vgpt_tok_load(x->o.model, argv[0], &x->tok, err)) return -1;
    if (vgpt_gpt_run_init(&x->dec, x->model, (int)x->o.threads, err)) return -1;
    /* admission stops at --max-seqs, so one more request's beams may overshoot it */
    size_t S = (size_t)x->o.max_seqs + VGPT_GEN_MAX_BEAMS;
    x->tokens = malloc(S * sizeof *x->tokens);
    x->kv = malloc(S * sizeof *x->kv);
    x->xkv = malloc(S * sizeof *x->xkv);
    x->logits = malloc(S * x->model->gpt.vocab * sizeof(float));
    if (!x->tokens || !x->kv || !x->xkv || !x->logits) return vgpt_err_set(err, "out of memory");
    return vgpt_node_start(&x->node, "decoderd", x->o.listen, NULL, &x->o.node, err);
}

static int seats_taken(const dec_ctx *x) {
    int n = 0;
    for (int i = 0; i < x->n_jobs; i++) n += x->jobs[i]->seats;
    return n;
}

static void free_live(live *l) {
    vgpt_job_free(l->job);
    vgpt_xkv_free(&l->xkv);
    free(l);
}

/* Index of the first NaN or Inf of n floats, or -1.  Such tokens come from a
 * damaged cache or a broken encoder; decoded, they give a confident garbage
 * caption ("!!!!": every logit NaN, argmax 0) that nothing downstream can tell
 * from a real one, so they are an error for the request instead. */
static long first_non_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return (long)i;
    return -1;
}

/* Cross K/V for the request's visual tokens, then a decoding job for it. */
static int admit_one(dec_ctx *x, const vgpt_msg *m, vgpt_err *err) {
    const vgpt_wire_tensor *t = &m->tensor;
    int L = (int)t->shape[0], C = (int)t->shape[1];
    if (m->model_fp[0] && strcmp(m->model_fp, x->model->fingerprint))
        return vgpt_err_set(err, "visual tokens come from another model (encoderd's fingerprint %s, this decoderd's %s): "
                            "start encoderd and decoderd with the same --model", m->model_fp, x->model->fingerprint);
    if (t->ndim != 2 || C != x->model->gpt.width)
        return vgpt_err_set(err, "visual tokens are [%d,%d], this decoder's model needs [L,%d]", L, C,
                            x->model->gpt.width);
    if (seats(&m->gen) > VGPT_GEN_MAX_BEAMS)
        return vgpt_err_set(err, "%d beams requested, this decoder allows at most %d", m->gen.beams, VGPT_GEN_MAX_BEAMS);
    int ctx = x->model->gpt.context;
    if (m->gen.max_tokens > ctx && !x->warned_max_tokens) {
        x->warned_max_tokens = 1;
        fprintf(stderr, "decoderd: warning: a request asks for up to %d new tokens but the model's context is %d; "
                "captions stop at %d tokens (logged once)\n", m->gen.max_tokens, ctx, ctx);
    }
    const float *vis = t->data;
    float *widened = NULL;
    if (t->dtype == VGPT_WIRE_F16) {
        widened = malloc((size_t)L * C * sizeof(float));
        if (!widened) return vgpt_err_set(err, "out of memory");
        for (size_t i = 0; i < (size_t)L * C; i++) widened[i] = vgpt_half_to_float(((const uint16_t *)t->data)[i]);
        vis = widened;
    }
    long bad = first_non_finite(vis, (size_t)L * C);
    if (bad >= 0) {
        free(widened);
        return vgpt_err_set(err, "visual tokens contain NaN/Inf (first at token %ld, channel %ld of [%d,%d])", bad / C,
                            bad % C, L, C);
    }
    live *l = calloc(1, sizeof *l);
    int rc = l ? vgpt_gpt_run_cross_kv(&x->dec, vis, 1, L, &l->xkv, err) : vgpt_err_set(err, "out of memory");
    free(widened);
    if (rc || !(l->job = vgpt_job_new(x->model, &l->xkv, &m->gen, err))) {
        if (l) free_live(l);
        return -1;
    }
    vgpt_msg_follow(&l->req, VGPT_MSG_TOKENS, m);
    snprintf(l->reply_to, sizeof l->reply_to, "%s", m->reply_to);
    l->req.reply_to = l->reply_to;
    l->seats = seats(&m->gen);
    if (x->n_jobs == x->cap_jobs) {
        int cap = x->cap_jobs ? 2 * x->cap_jobs : 64;
        live **p = realloc(x->jobs, cap * sizeof *p);
        if (!p) {
            free_live(l);
            return vgpt_err_set(err, "out of memory");
        }
        x->jobs = p;
        x->cap_jobs = cap;
    }
    x->jobs[x->n_jobs++] = l;
    return 0;
}

/* Takes new requests while there is room in the step. */
static void admit(dec_ctx *x) {
    zmq_msg_t frame;
    vgpt_msg m;
    /* a request whose beams do not fit waits in ZeroMQ's queue for a later step */
    while (seats_taken(x) + 1 <= x->o.max_seqs && vgpt_node_recv(&x->node, &frame, &m, VGPT_MSG_TOKENS)) {
        vgpt_err err;
        if (admit_one(x, &m, &err)) vgpt_node_fail(&x->node, &m, err.msg);
        vgpt_msg_free(&m);
        zmq_msg_close(&frame);
    }
}

static void finish(dec_ctx *x, live *l) {
    vgpt_err err;
    vgpt_caption cap;
    vgpt_msg out;
    if (vgpt_job_result(l->job, &cap, &err)) {
        vgpt_node_fail(&x->node, &l->req, err.msg);
        return;
    }
    char *text = vgpt_tok_text(x->tok, cap.tokens, cap.n_tokens);
    vgpt_msg_follow(&out, VGPT_MSG_CAPTION, &l->req);
    out.caption = text ? text : "";
    out.caption_len = text ? strlen(text) : 0;
    out.tokens = cap.tokens;
    out.n_tokens = cap.n_tokens;
    out.score = cap.score;
    if (!text) vgpt_node_fail(&x->node, &l->req, "out of memory decoding the caption");
    else vgpt_node_reply(&x->node, &out);
    x->captions++;
    free(text);
    vgpt_caption_free(&cap);
}

/* One decoder step over every live sequence; finished captions go out. */
static void step(dec_ctx *x) {
    int nb = 0, V = x->model->gpt.vocab;
    for (int i = 0; i < x->n_jobs; i++) {
        vgpt_job_collect(x->jobs[i]->job, x->tokens + nb, x->kv + nb, x->xkv + nb);
        nb += vgpt_job_n_live(x->jobs[i]->job);
    }
    vgpt_err err;
    int failed = nb > 0 && vgpt_gpt_run_step(&x->dec, nb, x->tokens, x->kv, x->xkv, x->logits, &err);
    x->steps++;
    x->seqs_stepped += nb;
    float *rows = x->logits;
    int kept = 0;
    for (int i = 0; i < x->n_jobs; i++) {
        live *l = x->jobs[i];
        int n = vgpt_job_n_live(l->job);
        if (!failed && n && vgpt_job_advance(l->job, rows, &err)) failed = 1;
        rows += (size_t)n * V;
        if (failed || vgpt_job_done(l->job)) {
            if (failed) vgpt_node_fail(&x->node, &l->req, err.msg);
            else finish(x, l);
            free_live(l);
        } else {
            x->jobs[kept++] = l;
        }
    }
    x->n_jobs = kept;
}

/* The reactor's handlers: admit new requests, step the live captions. */
static void on_input(void *ctx) { admit(ctx); }

static int on_step(void *ctx) {
    dec_ctx *x = ctx;
    if (x->n_jobs) step(x);
    return x->n_jobs > 0;
}

static void stats(void *ctx, char *buf, size_t cap) {
    dec_ctx *x = ctx;
    snprintf(buf, cap, "%llu captions, %d live, %.1f seqs/step", (unsigned long long)x->captions, x->n_jobs,
             x->steps ? (double)x->seqs_stepped / x->steps : 0.0);
}

int main(int argc, char **argv) {
    vgpt_process_tune(argv);
    dec_ctx x;
    memset(&x, 0, sizeof x);
    if (parse(argc, argv, &x.o)) return 2;
    vgpt_err err;
    if (setup(&x, argv, &err)) {
        vgpt_log("decoderd", "fatal: %s", err.msg);
        return 1;
    }
    char desc[512], ready[1024];
    vgpt_model_describe(x.model, desc, sizeof desc);
    snprintf(ready, sizeof ready, "ready on %s: %s", x.o.listen, desc);
    vgpt_node_run(&x.node, &(vgpt_node_work){.ctx = &x, .on_input = on_input, .on_step = on_step, .stats = stats},
                  ready);
    vgpt_node_free(&x.node);
    vgpt_gpt_run_free(&x.dec);
    vgpt_tok_free(x.tok);
    vgpt_model_free(x.model);
    free(x.jobs); free(x.tokens); free(x.kv); free(x.xkv); free(x.logits);
    return 0;
}
