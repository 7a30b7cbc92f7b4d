/* inprocess.c - see inprocess.h. */
#include "inprocess.h"

#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "encoder.h"
#include "gpt2.h"
#include "image.h"
#include "job.h"
#include "kernels.h"
#include "model.h"
#include "output.h"
#include "stop.h"
#include "tokenizer.h"

typedef struct engine {
    vgpt_model *model;
    vgpt_encoder *enc;
    vgpt_gpt_run dec;
    vgpt_tok *tok;
    float *pixels, *vis; /* (batch,3,S,S), (batch,L,C) */
    uint8_t *rgb;
    vgpt_xkv *xkv;
    vgpt_caption *caps;
    int *slot;           /* batch index -> result index */
} engine;

static void engine_free(engine *e) {
    vgpt_encoder_free(e->enc);
    vgpt_gpt_run_free(&e->dec);
    vgpt_model_free(e->model);
    vgpt_tok_free(e->tok);
    free(e->pixels); free(e->vis); free(e->rgb); free(e->xkv); free(e->caps); free(e->slot);
}

static int engine_init(engine *e, const cli_opts *o, const char *argv0, vgpt_err *err) {
    memset(e, 0, sizeof *e);
    int bf16 = o->precision == VGPT_BF16 ? VGPT_LOAD_BF16 : 0;
    if (vgpt_model_load(o->model, VGPT_LOAD_ALL | bf16, &e->model, err)) return -1;
    if (e->model->vit.image != VGPT_IMAGE_SIZE)
        return vgpt_err_set(err, "%s: the ViT expects %dx%d images; vgpt preprocesses to %dx%d", o->model,
                            e->model->vit.image, e->model->vit.image, VGPT_IMAGE_SIZE, VGPT_IMAGE_SIZE);
    if (vgpt_tok_load(o->model, argv0, &e->tok, err)) return -1;
    if (vgpt_encoder_new(e->model, &e->enc, err) || vgpt_gpt_run_init(&e->dec, e->model, o->threads, err)) return -1;
    size_t S = VGPT_IMAGE_SIZE, L = vgpt_encoder_n_tokens(e->enc), C = vgpt_encoder_width(e->enc);
    e->pixels = malloc(o->batch * 3 * S * S * sizeof(float));
    e->vis = malloc(o->batch * L * C * sizeof(float));
    e->rgb = malloc(S * S * 3);
    e->xkv = calloc(o->batch, sizeof *e->xkv);
    e->caps = calloc(o->batch, sizeof *e->caps);
    e->slot = calloc(o->batch, sizeof *e->slot);
    if (!e->pixels || !e->vis || !e->rgb || !e->xkv || !e->caps || !e->slot)
        return vgpt_err_set(err, "out of memory for a batch of %d images", o->batch);
    if (o->verbose) {
        char desc[512];
        vgpt_model_describe(e->model, desc, sizeof desc);
        fprintf(stderr, "vgpt-cli: %s: %s\n", o->model, desc);
    }
    return 0;
}

/* An engine error for one input: its line names the path first, as every
 * error line does (and as the pipeline words the stages' errors). */
static char *path_error(const char *path, const char *why) {
    vgpt_err err;
    vgpt_err_set(&err, "%s: %s", path, why);
    return strdup(err.msg);
}

/* Captions the n_ok decoded images of a batch into their results. */
static int caption_batch(engine *e, const cli_opts *o, cli_result *res, int n_ok, vgpt_err *err) {
    int L = vgpt_encoder_n_tokens(e->enc);
    if (vgpt_encode(e->enc, e->pixels, n_ok, e->vis, err)) return -1;
    if (vgpt_gpt_run_cross_kv(&e->dec, e->vis, n_ok, L, e->xkv, err)) return -1;
    int rc = vgpt_generate(&e->dec, e->xkv, n_ok, &o->gen, e->caps, err);
    for (int i = 0; i < n_ok; i++) {
        vgpt_xkv_free(&e->xkv[i]);
        if (rc) continue;
        cli_result *r = &res[e->slot[i]];
        r->caption = vgpt_tok_text(e->tok, e->caps[i].tokens, e->caps[i].n_tokens);
        r->tokens = e->caps[i].tokens;
        r->n_tokens = e->caps[i].n_tokens;
        e->caps[i].tokens = NULL;
        if (!r->caption) r->error = path_error(r->path, "out of memory decoding the caption");
    }
    return rc;
}

/* Decodes, captions and writes one batch; -1 when the output failed
 * (reported: stop at once). */
static int process_batch(engine *e, const cli_opts *o, cli_result *res, int n, cli_job *j) {
    size_t plane = (size_t)3 * VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE;
    int n_ok = 0, rc = 0;
    vgpt_err err;
    for (int i = 0; i < n; i++) {
        if (res[i].error) continue; /* not a path (cli_input) */
        if (vgpt_image_load_file(res[i].path, &o->image, e->rgb, &err)) {
            res[i].error = strdup(err.msg);
            continue;
        }
        vgpt_image_normalize(e->rgb, e->model->mean, e->model->std, e->pixels + n_ok * plane);
        e->slot[n_ok++] = i;
    }
    if (n_ok && caption_batch(e, o, res, n_ok, &err))
        for (int i = 0; i < n_ok; i++) res[e->slot[i]].error = path_error(res[e->slot[i]].path, err.msg);
    for (int i = 0; i < n; i++)
        if (!rc) rc = cli_job_emit(j, &res[i]);
        else cli_result_free(&res[i]);
    return rc || cli_job_flush(j) ? -1 : 0;
}

/* Reads every entry, batch by batch, until the end or a stop (then the
 * batch being computed is finished and written, the rest left for a
 * resumed run); returns the exit status. */
static int run(engine *e, const cli_opts *o, cli_result *res, cli_job *j) {
    cli_entry ent;
    int n = 0, rc = 0;
    while (!rc && cli_job_next(j, &ent, 1) > 0) {
        if (cli_result_set_path(&res[n++], ent.path, ent.len, ent.bad)) {
            fprintf(stderr, "vgpt-cli: out of memory\n");
            rc = -1;
        } else if (n == o->batch) {
            rc = process_batch(e, o, res, n, j);
            n = 0;
        }
    }
    if (!rc && n && !cli_stop_requested()) rc = process_batch(e, o, res, n, j);
    for (int i = 0; i < o->batch; i++) cli_result_free(&res[i]);
    return cli_job_finish(j, rc != 0);
}

int cli_run_inprocess(const cli_opts *o, const char *argv0) {
    engine e;
    vgpt_err err;
    cli_job j;
    int rc = cli_job_open(&j, o);
    if (rc) return rc;
    vgpt_set_threads(o->threads);
    if (vgpt_image_init(argv0, &err) || engine_init(&e, o, argv0, &err)) {
        fprintf(stderr, "vgpt-cli: %s\n", err.msg);
        engine_free(&e);
        cli_job_free(&j);
        return 2;
    }
    cli_stop_install(); /* before this, a signal ends the load at once */
    cli_result *res = calloc(o->batch, sizeof *res);
    if (res) rc = run(&e, o, res, &j);
    else fprintf(stderr, "vgpt-cli: out of memory\n"), cli_job_free(&j), rc = 2;
    free(res);
    engine_free(&e);
    vgpt_image_shutdown();
    return cli_stop_finish(rc);
}
