/* serve.c - see serve.h. */
#include "serve.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "err.h"
#include "node.h"
#include "proto.h"
#include "sha256.h"

/* every message this stage sends fits an ERROR frame uncut */
_Static_assert(sizeof(((vgpt_err *)0)->msg) <= VGPT_PROTO_MAX_ERROR + 1, "vgpt_err messages must fit an ERROR frame");

/* A path request is honoured only if its real path lies under an allowed
 * root: a client must not make preprocd read arbitrary files. */
static int path_allowed(const preprocd_daemon_opts *o, const char *path, char *real) {
    if (!realpath(path, real)) return 0;
    for (int i = 0; i < o->n_roots; i++) {
        char root[PATH_MAX];
        if (!realpath(o->roots[i], root)) continue;
        size_t n = strlen(root);
        if (!strncmp(real, root, n) && (real[n] == '/' || real[n] == 0 || (n == 1 && root[0] == '/'))) return 1;
    }
    return 0;
}

/* Messages name a path request's file by its real path, and a request's
 * bytes as "request ID": the client puts its own path there (cli/pipeline.c). */
static void handle(vgpt_node *node, const preprocd_daemon_opts *o, const vgpt_msg *req, uint8_t *rgb) {
    vgpt_err err;
    vgpt_image_opts io = req->img;
    if (o->max_pixels && (io.max_pixels == 0 || io.max_pixels > o->max_pixels)) io.max_pixels = o->max_pixels;
    uint8_t hash[32];
    int rc;
    if (req->bytes || !req->path) {
        vgpt_sha256(req->bytes, req->n_bytes, hash);
        char name[64];
        snprintf(name, sizeof name, "request %llu", (unsigned long long)req->id);
        rc = vgpt_image_load_buffer(req->bytes, req->n_bytes, name, &io, rgb, &err);
    } else {
        char real[PATH_MAX];
        uint8_t *data;
        size_t len;
        if (!path_allowed(o, req->path, real)) {
            vgpt_err_set(&err, "%s: not under an --allow-root directory of this preprocd (or missing)", req->path);
            vgpt_node_fail(node, req, err.msg);
            return;
        }
        /* read once (a regular file only: a FIFO must not block the stage),
         * hash what was read (the cache key follows the content), decode it */
        rc = vgpt_image_read_file(real, &data, &len, &err);
        if (!rc) {
            vgpt_sha256(data, len, hash);
            rc = vgpt_image_load_buffer(data, len, real, &io, rgb, &err);
            free(data);
        }
    }
    if (rc) {
        vgpt_node_fail(node, req, err.msg);
        return;
    }
    vgpt_msg out;
    vgpt_msg_follow(&out, VGPT_MSG_PREPROCESSED, req);
    memcpy(out.hash, hash, 32);
    out.has_hash = 1;
    out.tensor = (vgpt_wire_tensor){.dtype = VGPT_WIRE_U8, .ndim = 3,
                                    .shape = {VGPT_IMAGE_SIZE, VGPT_IMAGE_SIZE, 3}, .data = rgb,
                                    .nbytes = (size_t)VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE * 3};
    vgpt_node_forward(node, &out);
}

typedef struct serve_ctx {
    vgpt_node node;
    const preprocd_daemon_opts *o;
    uint8_t *rgb;
} serve_ctx;

static void on_input(void *ctx) {
    serve_ctx *x = ctx;
    zmq_msg_t frame;
    vgpt_msg m;
    while (!x->node.stopping && vgpt_node_recv(&x->node, &frame, &m, VGPT_MSG_IMAGE)) {
        handle(&x->node, x->o, &m, x->rgb);
        vgpt_msg_free(&m);
        zmq_msg_close(&frame);
    }
}

int preprocd_run_daemon(const preprocd_daemon_opts *o, const char *argv0) {
    serve_ctx x = {.o = o, .rgb = malloc(VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE * 3)};
    vgpt_err err;
    if (!x.rgb) return 1;
    if (vgpt_image_init(argv0, &err) || vgpt_node_start(&x.node, "preprocd", o->listen, o->next, &o->node, &err)) {
        vgpt_log("preprocd", "fatal: %s", err.msg);
        free(x.rgb);
        return 1;
    }
    char ready[1024];
    snprintf(ready, sizeof ready, "ready on %s -> %s", o->listen, o->next);
    vgpt_node_run(&x.node, &(vgpt_node_work){.ctx = &x, .on_input = on_input}, ready);
    vgpt_node_free(&x.node);
    vgpt_image_shutdown();
    free(x.rgb);
    return 0;
}
