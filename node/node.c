/* node.c - see node.h. */
#include "node.h"

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "opts.h"

void vgpt_node_opts_default(vgpt_node_opts *o) {
    memset(o, 0, sizeof *o);
    o->stats_every = 10;
}

int vgpt_node_opt(const char *prog, int c, const char *arg, vgpt_node_opts *o) {
    switch (c) {
    case VGPT_NODE_OPT_STATS: return vgpt_opt_double(prog, "stats-interval", arg, 0, 1e6, &o->stats_every) ? -1 : 1;
    case VGPT_NODE_OPT_CURVE_KEY: o->curve.key = arg; return 1;
    case VGPT_NODE_OPT_CURVE_SERVER: o->curve.server_key = arg; return 1;
    case VGPT_NODE_OPT_CURVE_PEERS: o->curve.peers = arg; return 1;
    }
    return 0;
}

int vgpt_node_getopt(int argc, char **argv, const char *shortopts, const struct option *lo, const char *prog,
                     vgpt_node_opts *o) {
    for (;;) {
        int c = getopt_long(argc, argv, shortopts, lo, NULL);
        int common = c == -1 ? 0 : vgpt_node_opt(prog, c, optarg, o);
        if (common < 0) return '?';
        if (!common) return c;
    }
}

int vgpt_node_start(vgpt_node *n, const char *name, const char *listen, const char *next,
                    const vgpt_node_opts *o, vgpt_err *err) {
    memset(n, 0, sizeof *n);
    n->name = name;
    n->stats_every = o->stats_every;
    n->t0 = n->last_stats = vgpt_now();
    if (vgpt_curve_load(&n->curve, &o->curve, name, err)) return -1;
    n->sigfd = vgpt_signals_open(err);
    if (n->sigfd < 0) return -1;
    n->zctx = zmq_ctx_new();
    if (!n->zctx) return vgpt_err_set(err, "zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
    /* the handler must be up before a CURVE socket binds: see curve.h */
    if (vgpt_curve_zap_start(&n->curve, n->zctx, err)) return -1;
    n->pull = vgpt_zsock_pull_bind_sec(n->zctx, listen, VGPT_ZSOCK_MAXMSG, &n->curve, err);
    if (!n->pull) return -1;
    if (next && *next && !(n->push = vgpt_zsock_push_connect_sec(n->zctx, next, &n->curve, err))) return -1;
    n->rep = vgpt_replier_new_sec(n->zctx, &n->curve);
    if (!n->rep) return vgpt_err_set(err, "out of memory");
    return 0;
}

void vgpt_node_free(vgpt_node *n) {
    if (n->rep) vgpt_replier_free(n->rep);
    if (n->push) zmq_close(n->push);
    if (n->pull) zmq_close(n->pull);
    if (n->zctx) zmq_ctx_term(n->zctx); /* also ends the ZAP thread */
    vgpt_curve_free(&n->curve);
    n->rep = n->push = n->pull = n->zctx = NULL;
}

/* Reads a pending signal (the fd polled readable): stopping begins. */
static void node_take_signal(vgpt_node *n) {
    int sig = vgpt_signals_read(n->sigfd);
    if (!sig || n->stopping) return;
    vgpt_log(n->name, "signal %d: draining in-flight work, then exiting", sig);
    n->stopping = 1;
    n->stop_at = vgpt_now();
}

int vgpt_node_wait(vgpt_node *n, int timeout_ms) {
    zmq_pollitem_t items[2] = {{n->pull, 0, ZMQ_POLLIN, 0}, {NULL, n->sigfd, ZMQ_POLLIN, 0}};
    int rc = zmq_poll(items, 2, timeout_ms);
    if (rc > 0 && (items[1].revents & ZMQ_POLLIN)) node_take_signal(n);
    return rc > 0 && (items[0].revents & ZMQ_POLLIN);
}

#define SEND_SLICE_MS 100 /* a blocked forward looks at signals this often */

/* vgpt_zsock_send_owned_wait's wait: up to SEND_SLICE_MS for room on the
 * output or a signal; gives up once stopping has lasted the grace period. */
static int node_send_wait(void *ctx) {
    vgpt_node *n = ctx;
    if (n->stopping && vgpt_now() - n->stop_at >= VGPT_NODE_STOP_GRACE_S) return 0;
    zmq_pollitem_t items[2] = {{n->push, 0, ZMQ_POLLOUT, 0}, {NULL, n->sigfd, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 2, SEND_SLICE_MS) > 0 && (items[1].revents & ZMQ_POLLIN)) node_take_signal(n);
    return 1;
}

static void drop(vgpt_node *n, const char *why) {
    n->dropped++;
    vgpt_log(n->name, "dropped a frame with no usable reply_to: %s", why);
}

int vgpt_node_recv(vgpt_node *n, zmq_msg_t *frame, vgpt_msg *m, vgpt_msg_type want) {
    vgpt_err err;
    for (;;) {
        zmq_msg_init(frame);
        int rc = vgpt_zsock_recv(n->pull, frame, ZMQ_DONTWAIT, &err);
        if (rc != 0) {
            zmq_msg_close(frame);
            if (rc < 0) drop(n, err.msg);
            return 0;
        }
        n->received++;
        if (vgpt_msg_unpack(zmq_msg_data(frame), zmq_msg_size(frame), m, &err) == 0 && m->type == want) return 1;
        if (m->priv) snprintf(err.msg, sizeof err.msg, "%s expects %s messages, got %s", n->name,
                              vgpt_msg_type_name(want), vgpt_msg_type_name(m->type));
        if (m->reply_to) {
            vgpt_err e2;
            n->failed++;
            if (vgpt_reply_error(n->rep, m->id, m->reply_to, m->attempt, n->name, err.msg, &e2))
                vgpt_log(n->name, "could not send an error reply: %s", e2.msg);
        } else {
            drop(n, err.msg);
        }
        vgpt_msg_free(m);
        zmq_msg_close(frame);
    }
}

/* Encodes out and hands it to the next stage (to_next) or to its reply_to.
 * A message that will not encode is answered with an ERROR instead. */
static int send_msg(vgpt_node *n, const vgpt_msg *out, int to_next) {
    vgpt_err err;
    void *buf;
    size_t len;
    if (vgpt_msg_pack(out, &buf, &len, &err)) {
        vgpt_node_fail(n, out, err.msg);
        return -1;
    }
    int rc;
    if (to_next) {
        rc = vgpt_zsock_send_owned_wait(n->push, buf, len, node_send_wait, n, &err);
        if (rc == 1)
            vgpt_err_set(&err, "the next stage accepted nothing for %.0f s after the stop signal", VGPT_NODE_STOP_GRACE_S);
    } else {
        rc = vgpt_replier_send(n->rep, out->reply_to, buf, len, &err);
        free(buf);
    }
    if (rc) {
        vgpt_log(n->name, "%s for request %llu dropped: %s", to_next ? "message" : "reply",
                 (unsigned long long)out->id, err.msg);
        return -1;
    }
    n->sent++;
    return 0;
}

int vgpt_node_forward(vgpt_node *n, const vgpt_msg *out) { return send_msg(n, out, 1); }

int vgpt_node_reply(vgpt_node *n, const vgpt_msg *out) { return send_msg(n, out, 0); }

void vgpt_node_fail(vgpt_node *n, const vgpt_msg *req, const char *why) {
    vgpt_err err;
    n->failed++;
    if (vgpt_reply_error(n->rep, req->id, req->reply_to, req->attempt, n->name, why, &err))
        vgpt_log(n->name, "request %llu failed (%s) and the error could not be sent: %s",
                 (unsigned long long)req->id, why, err.msg);
}

void vgpt_node_stats(vgpt_node *n, const char *extra, int force) {
    double t = vgpt_now();
    if (!force && (n->stats_every <= 0 || t - n->last_stats < n->stats_every)) return;
    double rate = (n->sent - n->last_sent) / (t - n->last_stats > 0 ? t - n->last_stats : 1);
    vgpt_log(n->name, "%llu received, %llu sent, %llu failed, %llu dropped, %.2f/s%s%s",
             (unsigned long long)n->received, (unsigned long long)n->sent, (unsigned long long)n->failed,
             (unsigned long long)n->dropped, rate, extra && *extra ? ", " : "", extra ? extra : "");
    n->last_stats = t;
    n->last_sent = n->sent;
}

static void run_stats(vgpt_node *n, const vgpt_node_work *w, int force) {
    char extra[256] = "";
    if (w->stats) w->stats(w->ctx, extra, sizeof extra);
    vgpt_node_stats(n, extra, force);
}

void vgpt_node_run(vgpt_node *n, const vgpt_node_work *w, const char *ready_line) {
    vgpt_log(n->name, "%s", ready_line);
    vgpt_sd_notify("READY=1");
    int busy = 0;
    while (!n->stopping || busy) {
        if (vgpt_node_wait(n, busy ? 0 : 1000) && !n->stopping) w->on_input(w->ctx);
        busy = w->on_step ? w->on_step(w->ctx) : 0;
        run_stats(n, w, 0);
    }
    vgpt_sd_notify("STOPPING=1");
    run_stats(n, w, 1);
}
