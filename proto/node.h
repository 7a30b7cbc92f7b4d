/* node.h - the messaging runtime every vgpt daemon shares: one PULL input,
 * one PUSH output to the next stage(s), replies/errors to each request's
 * reply_to, signals through a signalfd, readiness via sd_notify, and a
 * periodic throughput line.  A daemon's main is then only its own work. */
#ifndef VGPT_NODE_H
#define VGPT_NODE_H

#include <stdint.h>
#include <zmq.h>

#include "curve.h"
#include "proto.h"
#include "zsock.h"

typedef struct vgpt_node {
    const char *name;     /* "encoderd", ... : log prefix and ERROR stage */
    void *zctx, *pull, *push;
    vgpt_replier *rep;
    int sigfd;
    int stopping;         /* SIGTERM/SIGINT seen: finish in-flight work, then exit */
    double stats_every, last_stats, t0;
    uint64_t received, sent, failed, dropped, last_sent;
    vgpt_curve curve;     /* keys + ZAP handler; curve.on = 0 when not configured */
} vgpt_node;

/* Binds listen, connects next (NULL for the last stage), opens signals.
 * With CURVE options (sec may be NULL: none) the ZAP handler starts first,
 * the input is a CURVE server and every connecting socket a CURVE client. */
int vgpt_node_start(vgpt_node *n, const char *name, const char *listen, const char *next, double stats_every,
                    const vgpt_curve_opts *sec, vgpt_err *err);
void vgpt_node_close(vgpt_node *n);

/* Waits up to timeout_ms (-1 forever) for input or a signal.  1 = input is
 * ready, 0 = timeout or signal (check n->stopping). */
int vgpt_node_wait(vgpt_node *n, int timeout_ms);

/* Receives and decodes one frame without blocking.  1 = m holds a message
 * of type want (caller releases m and closes frame), 0 = nothing left.
 * A malformed frame or one of another type is answered with an ERROR (or
 * counted and logged as a drop) here, and the next frame is tried. */
int vgpt_node_recv(vgpt_node *n, zmq_msg_t *frame, vgpt_msg *m, vgpt_msg_type want);

/* Encodes out and pushes it to the next stage (blocking on back-pressure). */
int vgpt_node_forward(vgpt_node *n, const vgpt_msg *out);
/* Encodes out and sends it to out->reply_to. */
int vgpt_node_reply(vgpt_node *n, const vgpt_msg *out);
/* Sends an ERROR for request req to its reply_to. */
void vgpt_node_fail(vgpt_node *n, const vgpt_msg *req, const char *why);

/* Logs "N received, N sent, N failed, N dropped, X/s[, extra]" when the
 * interval has passed (or always when force). */
void vgpt_node_stats(vgpt_node *n, const char *extra, int force);

#endif
