/* zsock.h - ZeroMQ endpoint helpers for the vgpt pipeline.
 *
 * Every stage binds one PULL input and PUSHes to its downstream stage(s);
 * results and errors go to whatever endpoint a request names as reply_to,
 * through a per-daemon cache of PUSH sockets (vgpt_replier).  The socket
 * options that matter for "never crash, never hang" live here in one place:
 * a maximum frame size on input, bounded queues, short linger, and sends to
 * a reply_to that never blocks the daemon.  Every error names the endpoint. */
#ifndef VGPT_ZSOCK_H
#define VGPT_ZSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "curve.h"
#include "err.h"

#define VGPT_ZSOCK_MAXMSG (64 << 20) /* default ZMQ_MAXMSGSIZE of inputs */
#define VGPT_ZSOCK_RCVHWM 64        /* frames queued per input */
#define VGPT_ZSOCK_SNDHWM 64        /* frames queued per downstream peer */
#define VGPT_ZSOCK_LINGER_MS 200    /* how long close waits to flush */
#define VGPT_REPLIER_MAX 64         /* cached reply_to sockets (LRU) */
#define VGPT_REPLIER_HWM 1000       /* replies queued per reply_to */
#define VGPT_REPLIER_SNDTIMEO_MS 100 /* then the reply is dropped, never blocks longer */

/* PULL bound to endpoint; frames over VGPT_ZSOCK_MAXMSG make libzmq drop the
 * sending peer's connection (the peer reconnects; that frame is lost). */
void *vgpt_zsock_pull_bind(void *zctx, const char *endpoint, vgpt_err *err);
/* Same with an explicit maximum frame size in bytes (-1 = unlimited). */
void *vgpt_zsock_pull_bind_max(void *zctx, const char *endpoint, int64_t maxmsg, vgpt_err *err);

/* The same as a CURVE server when curve is on (curve may be NULL); the
 * context's ZAP handler (vgpt_curve_zap_start) must already run. */
void *vgpt_zsock_pull_bind_sec(void *zctx, const char *endpoint, int64_t maxmsg, const vgpt_curve *curve,
                               vgpt_err *err);

/* PUSH connected to each endpoint of "ep1,ep2" (spaces around commas
 * allowed); ZMQ_IMMEDIATE=1 so frames only queue on live connections and
 * ZeroMQ balances them across the live downstream stages. */
void *vgpt_zsock_push_connect(void *zctx, const char *endpoints_csv, vgpt_err *err);
/* The same as a CURVE client when curve is on (curve may be NULL). */
void *vgpt_zsock_push_connect_sec(void *zctx, const char *endpoints_csv, const vgpt_curve *curve, vgpt_err *err);

/* zmq_send, retried on EINTR.  0 sent, 1 not sent because of EAGAIN (flags
 * had ZMQ_DONTWAIT or the socket's ZMQ_SNDTIMEO ran out), -1 error. */
int vgpt_zsock_send(void *sock, const void *buf, size_t len, int flags, vgpt_err *err);
/* The same without a copy: takes a malloc'd buf and free()s it, sent or not. */
int vgpt_zsock_send_owned(void *sock, void *buf, size_t len, int flags, vgpt_err *err);
/* The same, never blocking inside libzmq: while the frame cannot be queued
 * it calls wait(ctx), which waits a while (e.g. polls the socket for room
 * and a stop signal) and returns 1 to try again or 0 to give up (then the
 * result is 1, as for EAGAIN).  A daemon blocked on a full or vanished next
 * stage can so still see SIGTERM. */
int vgpt_zsock_send_owned_wait(void *sock, void *buf, size_t len, int (*wait)(void *ctx), void *ctx, vgpt_err *err);

/* Receives one frame into msg (zmq_msg_init'ed by the caller; zmq_msg_data /
 * zmq_msg_size are the bytes to decode; zmq_msg_close when done).  0 got a
 * frame, 1 nothing (EAGAIN / EINTR: check your stop flag and call again),
 * -1 error.  vgpt frames are single-part: a multi-part message is drained
 * and reported as an error (the caller counts and logs the drop). */
int vgpt_zsock_recv(void *sock, zmq_msg_t *msg, int flags, vgpt_err *err);

/* A daemon's cache of PUSH sockets to reply_to endpoints.  Not thread-safe
 * (one per thread that sends replies), like the zmq sockets inside it. */
typedef struct vgpt_replier vgpt_replier;
vgpt_replier *vgpt_replier_new(void *zctx);
/* The same, connecting as a CURVE client when curve is on (curve may be
 * NULL; it must outlive the replier). */
vgpt_replier *vgpt_replier_new_sec(void *zctx, const vgpt_curve *curve);
/* Queues buf for endpoint without blocking more than VGPT_REPLIER_SNDTIMEO_MS;
 * -1 (naming the endpoint) when the endpoint is invalid or its queue is full
 * (a client that went away): the reply is dropped, the daemon goes on. */
int vgpt_replier_send(vgpt_replier *r, const char *endpoint, const void *buf, size_t len, vgpt_err *err);
void vgpt_replier_free(vgpt_replier *r);

/* Encodes and sends an ERROR {id, stage, why} to reply_to through r: what a
 * stage does with a request it fails, or with a frame it could only
 * partly decode (proto/README.md "Receiving").  -1 when reply_to is NULL
 * (nothing to answer: count and log a drop) or the send fails. */
int vgpt_reply_error(vgpt_replier *r, uint64_t id, const char *reply_to, uint32_t attempt, const char *stage,
                     const char *why, vgpt_err *err);

#endif
