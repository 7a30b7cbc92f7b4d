/* zsock.c - ZeroMQ socket set-up, send / receive and the reply_to cache
 * (see zsock.h for the policy each option implements). */
#include "zsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static int opt_int(void *s, int opt, int v) { return zmq_setsockopt(s, opt, &v, sizeof v); }

/* Best-effort name for messages about a socket we only have a handle to. */
static const char *sock_name(void *s, char *buf, size_t n) {
    size_t len = n;
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, buf, &len) || len <= 1) snprintf(buf, n, "(connected socket)");
    return buf;
}

void *vgpt_zsock_pull_bind_sec(void *zctx, const char *endpoint, int64_t maxmsg, const vgpt_curve *curve,
                               vgpt_err *err) {
    void *s = zmq_socket(zctx, ZMQ_PULL);
    if (!s) {
        vgpt_err_set(err, "%s: cannot create a PULL socket: %s", endpoint, zmq_strerror(errno));
        return NULL;
    }
    if (vgpt_curve_server(s, curve, err)) {
        zmq_close(s);
        return NULL;
    }
    if (zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) || opt_int(s, ZMQ_RCVHWM, VGPT_ZSOCK_RCVHWM) ||
        opt_int(s, ZMQ_LINGER, 0) || zmq_bind(s, endpoint)) {
        vgpt_err_set(err, "%s: cannot bind the input (PULL) socket: %s", endpoint, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

void *vgpt_zsock_pull_bind_max(void *zctx, const char *endpoint, int64_t maxmsg, vgpt_err *err) {
    return vgpt_zsock_pull_bind_sec(zctx, endpoint, maxmsg, NULL, err);
}

void *vgpt_zsock_pull_bind(void *zctx, const char *endpoint, vgpt_err *err) {
    return vgpt_zsock_pull_bind_max(zctx, endpoint, VGPT_ZSOCK_MAXMSG, err);
}

/* Connects s to every endpoint of the comma-separated list. */
static int connect_all(void *s, const char *csv, vgpt_err *err) {
    int n = 0;
    for (const char *p = csv; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) p++, len--;
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        char ep[512];
        if (len >= sizeof ep) return vgpt_err_set(err, "%.*s...: endpoint too long", 64, p);
        memcpy(ep, p, len);
        ep[len] = 0;
        if (len && zmq_connect(s, ep))
            return vgpt_err_set(err, "%s: cannot connect the output (PUSH) socket: %s", ep, zmq_strerror(errno));
        n += len > 0;
        p = comma ? comma + 1 : p + len;
        if (!comma) break;
    }
    return n ? 0 : vgpt_err_set(err, "\"%s\": expected one or more endpoints separated by commas", csv);
}

void *vgpt_zsock_push_connect(void *zctx, const char *endpoints_csv, vgpt_err *err) {
    return vgpt_zsock_push_connect_sec(zctx, endpoints_csv, NULL, err);
}

void *vgpt_zsock_push_connect_sec(void *zctx, const char *endpoints_csv, const vgpt_curve *curve, vgpt_err *err) {
    void *s = zmq_socket(zctx, ZMQ_PUSH);
    if (!s) {
        vgpt_err_set(err, "%s: cannot create a PUSH socket: %s", endpoints_csv, zmq_strerror(errno));
        return NULL;
    }
    if (opt_int(s, ZMQ_SNDHWM, VGPT_ZSOCK_SNDHWM) || opt_int(s, ZMQ_LINGER, VGPT_ZSOCK_LINGER_MS) ||
        opt_int(s, ZMQ_IMMEDIATE, 1)) {
        vgpt_err_set(err, "%s: cannot set socket options: %s", endpoints_csv, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    if (vgpt_curve_client(s, curve, err) || connect_all(s, endpoints_csv, err)) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

int vgpt_zsock_send(void *sock, const void *buf, size_t len, int flags, vgpt_err *err) {
    for (;;) {
        if (zmq_send(sock, buf, len, flags) >= 0) return 0;
        if (errno == EINTR) continue;
        char name[256];
        if (errno == EAGAIN)
            return vgpt_err_set(err, "%s: send would block (no peer ready or queue full)", sock_name(sock, name, sizeof name)), 1;
        return vgpt_err_set(err, "%s: send failed: %s", sock_name(sock, name, sizeof name), zmq_strerror(errno));
    }
}

static void free_buf(void *data, void *hint) {
    (void)hint;
    free(data);
}

/* flags as for zmq_msg_send; wait: see vgpt_zsock_send_owned_wait (NULL = none). */
static int send_owned(void *sock, void *buf, size_t len, int flags, int (*wait)(void *), void *ctx, vgpt_err *err) {
    zmq_msg_t msg;
    if (zmq_msg_init_data(&msg, buf, len, free_buf, NULL)) {
        free(buf);
        return vgpt_err_set(err, "send: cannot wrap %zu bytes: %s", len, zmq_strerror(errno));
    }
    for (;;) {
        if (zmq_msg_send(&msg, sock, flags) >= 0) return 0;
        int e = errno;
        if (e == EINTR || (e == EAGAIN && wait && wait(ctx))) continue;
        char name[256];
        zmq_msg_close(&msg);
        if (e == EAGAIN)
            return vgpt_err_set(err, "%s: send would block (no peer ready or queue full)", sock_name(sock, name, sizeof name)), 1;
        return vgpt_err_set(err, "%s: send failed: %s", sock_name(sock, name, sizeof name), zmq_strerror(e));
    }
}

int vgpt_zsock_send_owned(void *sock, void *buf, size_t len, int flags, vgpt_err *err) {
    return send_owned(sock, buf, len, flags, NULL, NULL, err);
}

int vgpt_zsock_send_owned_wait(void *sock, void *buf, size_t len, int (*wait)(void *ctx), void *ctx, vgpt_err *err) {
    return send_owned(sock, buf, len, ZMQ_DONTWAIT, wait, ctx, err);
}

int vgpt_zsock_recv(void *sock, zmq_msg_t *msg, int flags, vgpt_err *err) {
    char name[256];
    if (zmq_msg_recv(msg, sock, flags) < 0) {
        if (errno == EAGAIN || errno == EINTR) return 1;
        return vgpt_err_set(err, "%s: receive failed: %s", sock_name(sock, name, sizeof name), zmq_strerror(errno));
    }
    if (!zmq_msg_more(msg)) return 0;
    int parts = 1;
    zmq_msg_t part;
    zmq_msg_init(&part);
    do { /* the rest of a multi-part message is already here: drain it */
        if (zmq_msg_recv(&part, sock, 0) < 0 && errno != EINTR) break;
        parts++;
    } while (zmq_msg_more(&part));
    zmq_msg_close(&part);
    return vgpt_err_set(err, "%s: dropped a %d-part message (vgpt frames are single-part)",
                        sock_name(sock, name, sizeof name), parts);
}

typedef struct replier_entry {
    char ep[VGPT_PROTO_MAX_REPLY_TO + 1];
    void *sock;
    uint64_t used; /* tick of last use, for LRU eviction */
} replier_entry;

struct vgpt_replier {
    void *zctx;
    const vgpt_curve *curve;
    uint64_t tick;
    int n;
    replier_entry e[VGPT_REPLIER_MAX];
};

vgpt_replier *vgpt_replier_new_sec(void *zctx, const vgpt_curve *curve) {
    vgpt_replier *r = calloc(1, sizeof *r);
    if (r) r->zctx = zctx, r->curve = curve;
    return r;
}

vgpt_replier *vgpt_replier_new(void *zctx) { return vgpt_replier_new_sec(zctx, NULL); }

void vgpt_replier_free(vgpt_replier *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) zmq_close(r->e[i].sock);
    free(r);
}

/* Opens a PUSH to ep in a new entry, first closing the least recently used
 * one when the cache is full. */
static replier_entry *replier_open(vgpt_replier *r, const char *ep, vgpt_err *err) {
    if (r->n == VGPT_REPLIER_MAX) {
        int lru = 0;
        for (int i = 1; i < r->n; i++)
            if (r->e[i].used < r->e[lru].used) lru = i;
        zmq_close(r->e[lru].sock);
        r->e[lru] = r->e[--r->n];
    }
    void *s = zmq_socket(r->zctx, ZMQ_PUSH);
    vgpt_err cerr;
    if (s && vgpt_curve_client(s, r->curve, &cerr)) {
        vgpt_err_set(err, "reply_to %s: %s", ep, cerr.msg);
        zmq_close(s);
        return NULL;
    }
    if (!s || opt_int(s, ZMQ_SNDHWM, VGPT_REPLIER_HWM) || opt_int(s, ZMQ_LINGER, VGPT_ZSOCK_LINGER_MS) ||
        opt_int(s, ZMQ_SNDTIMEO, VGPT_REPLIER_SNDTIMEO_MS) || zmq_connect(s, ep)) {
        vgpt_err_set(err, "reply_to %s: cannot connect: %s", ep, zmq_strerror(errno));
        if (s) zmq_close(s);
        return NULL;
    }
    replier_entry *e = &r->e[r->n++];
    snprintf(e->ep, sizeof e->ep, "%s", ep);
    e->sock = s;
    return e;
}

int vgpt_replier_send(vgpt_replier *r, const char *endpoint, const void *buf, size_t len, vgpt_err *err) {
    if (!endpoint || !*endpoint || strlen(endpoint) > VGPT_PROTO_MAX_REPLY_TO)
        return vgpt_err_set(err, "reply_to \"%.64s\": expected an endpoint of 1 to %d bytes",
                            endpoint ? endpoint : "(null)", VGPT_PROTO_MAX_REPLY_TO);
    replier_entry *e = NULL;
    for (int i = 0; i < r->n && !e; i++)
        if (!strcmp(r->e[i].ep, endpoint)) e = &r->e[i];
    if (!e && !(e = replier_open(r, endpoint, err))) return -1;
    e->used = ++r->tick;
    for (;;) {
        if (zmq_send(e->sock, buf, len, 0) >= 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN)
            return vgpt_err_set(err, "reply_to %s: queue full for %d ms (client gone?), reply dropped", endpoint,
                                VGPT_REPLIER_SNDTIMEO_MS);
        return vgpt_err_set(err, "reply_to %s: send failed: %s", endpoint, zmq_strerror(errno));
    }
}

int vgpt_reply_error(vgpt_replier *r, uint64_t id, const char *reply_to, uint32_t attempt, const char *stage,
                     const char *why, vgpt_err *err) {
    if (!reply_to) return vgpt_err_set(err, "request id %llu: no reply_to to send the error to", (unsigned long long)id);
    vgpt_msg m;
    vgpt_msg_init(&m, VGPT_MSG_ERROR);
    m.id = id;
    m.reply_to = reply_to;
    m.attempt = attempt;
    m.stage = stage && *stage ? stage : "unknown";
    m.stage_len = strnlen(m.stage, VGPT_PROTO_MAX_STAGE);
    m.error = why && *why ? why : "(no reason given)";
    m.error_len = strnlen(m.error, VGPT_PROTO_MAX_ERROR);
    void *buf;
    size_t len;
    if (vgpt_msg_pack(&m, &buf, &len, err)) return -1;
    int rc = vgpt_replier_send(r, reply_to, buf, len, err);
    free(buf);
    return rc;
}
