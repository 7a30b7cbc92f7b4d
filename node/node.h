/* node.h - the runtime every vgpt daemon shares: one PULL input, one PUSH
 * output to the next stage(s), replies/errors to each request's reply_to,
 * signals through a self-pipe, readiness via sd_notify, a periodic
 * throughput line, the options every daemon takes, and the one reactor loop
 * they all run.  A daemon's main is then only its own work. */
#ifndef VGPT_NODE_H
#define VGPT_NODE_H

#include <stdint.h>
#include <zmq.h>

#include "curve.h"
#include "proto.h"
#include "zsock.h"

/* The options every daemon takes, parsed by vgpt_node_opt. */
typedef struct vgpt_node_opts {
    double stats_every;    /* --stats-interval: seconds between throughput lines (0 = off) */
    vgpt_curve_opts curve; /* --curve-key / --curve-server-key / --curve-peers */
} vgpt_node_opts;

enum { VGPT_NODE_OPT_STATS = 1000, VGPT_NODE_OPT_CURVE_KEY, VGPT_NODE_OPT_CURVE_SERVER, VGPT_NODE_OPT_CURVE_PEERS };
/* Entries for a daemon's getopt_long table. */
#define VGPT_NODE_LONG_OPTIONS                                                                                     \
    {"stats-interval", 1, 0, VGPT_NODE_OPT_STATS}, {"curve-key", 1, 0, VGPT_NODE_OPT_CURVE_KEY},                 \
        {"curve-server-key", 1, 0, VGPT_NODE_OPT_CURVE_SERVER}, {"curve-peers", 1, 0, VGPT_NODE_OPT_CURVE_PEERS}
/* Their lines in a daemon's --help. */
#define VGPT_NODE_USAGE                                                                                             \
    "      --stats-interval S seconds between throughput log lines (default 10, 0 = off)\n"                        \
    "      --curve-key FILE   this node's CURVE keypair (vgpt-keygen .key, mode 0600)\n"                           \
    "      --curve-server-key FILE  the cluster's CURVE server keypair (.key)\n"                                   \
    "      --curve-peers DIR  *.pub keys allowed to connect to --listen (refusals are\n"                           \
    "                         logged). All three together turn CURVE on for every socket;\n"                       \
    "                         see README \"Deployment\"\n"

void vgpt_node_opts_default(vgpt_node_opts *o);
/* Applies getopt's c: 1 = it was a common option, 0 = not one of them,
 * -1 = a bad value (the message is printed, naming prog and the option). */
int vgpt_node_opt(const char *prog, int c, const char *arg, vgpt_node_opts *o);
/* getopt_long that applies the common options itself: returns the next
 * other option, -1 at the end, '?' after a bad common value (printed). */
struct option;
int vgpt_node_getopt(int argc, char **argv, const char *shortopts, const struct option *lo, const char *prog,
                     vgpt_node_opts *o);

typedef struct vgpt_node {
    const char *name;     /* "encoderd", ... : log prefix and ERROR stage */
    void *zctx, *pull, *push;
    vgpt_replier *rep;
    int sigfd;
    int stopping;         /* SIGTERM/SIGINT seen: finish in-flight work, then exit */
    double stop_at;       /* when stopping began (vgpt_now) */
    double stats_every, last_stats, t0;
    uint64_t received, sent, failed, dropped, last_sent;
    vgpt_curve curve;     /* keys + ZAP handler; curve.on = 0 when not configured */
} vgpt_node;

/* Binds listen, connects next (NULL for the last stage), opens signals.
 * With CURVE options (sec may be NULL: none) the ZAP handler starts first,
 * the input is a CURVE server and every connecting socket a CURVE client. */
int vgpt_node_start(vgpt_node *n, const char *name, const char *listen, const char *next,
                    const vgpt_node_opts *o, vgpt_err *err);
void vgpt_node_free(vgpt_node *n);

/* Waits up to timeout_ms (-1 forever) for input or a signal.  1 = input is
 * ready, 0 = timeout or signal (check n->stopping). */
int vgpt_node_wait(vgpt_node *n, int timeout_ms);

/* Receives and decodes one frame without blocking.  1 = m holds a message
 * of type want (caller releases m and closes frame), 0 = nothing left.
 * A malformed frame or one of another type is answered with an ERROR (or
 * counted and logged as a drop) here, and the next frame is tried. */
int vgpt_node_recv(vgpt_node *n, zmq_msg_t *frame, vgpt_msg *m, vgpt_msg_type want);

/* A forward blocked by back-pressure waits at most this long after the stop
 * signal, then the message is dropped: a next stage that is gone, stopped
 * or full can delay a SIGTERM (or the vgpt-cli parent's death) by this
 * much, never forever. */
#define VGPT_NODE_STOP_GRACE_S 2.0

/* Encodes out and pushes it to the next stage, waiting on back-pressure
 * (while reading signals) but not past VGPT_NODE_STOP_GRACE_S once stopping. */
int vgpt_node_forward(vgpt_node *n, const vgpt_msg *out);
/* Encodes out and sends it to out->reply_to. */
int vgpt_node_reply(vgpt_node *n, const vgpt_msg *out);
/* Sends an ERROR for request req to its reply_to. */
void vgpt_node_fail(vgpt_node *n, const vgpt_msg *req, const char *why);

/* Logs "N received, N sent, N failed, N dropped, X/s[, extra]" when the
 * interval has passed (or always when force). */
void vgpt_node_stats(vgpt_node *n, const char *extra, int force);

/* A daemon's work, called from its one loop.  ctx is the daemon's context. */
typedef struct vgpt_node_work {
    void *ctx;
    /* Input is waiting (never called once stopping): take it with vgpt_node_recv. */
    void (*on_input)(void *ctx);
    /* Work in progress (decoderd's live captions): one step; returns 1 while
     * some remains, and the loop then polls without sleeping.  NULL: none. */
    int (*on_step)(void *ctx);
    /* Extra text for the throughput line; NULL: none. */
    void (*stats)(void *ctx, char *buf, size_t cap);
} vgpt_node_work;

/* Logs ready_line, tells systemd READY=1, runs until SIGTERM/SIGINT and
 * until on_step has nothing left, then STOPPING=1 and the final stats line. */
void vgpt_node_run(vgpt_node *n, const vgpt_node_work *w, const char *ready_line);

#endif
