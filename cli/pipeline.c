/* pipeline.c - see pipeline.h. */
#include "pipeline.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon.h"
#include "output.h"
#include "proto.h"
#include "spawn.h"
#include "zsock.h"

#define MAX_FILE_BYTES (60u << 20) /* below the daemons' 64 MiB frame limit */
#define SEND_WAIT_MS 100           /* a send that cannot be queued waits this long, then results are read */
#define MONITOR_EP "inproc://vgpt-cli-monitor"

enum { WAITING, IN_FLIGHT, DONE };

typedef struct item {
    cli_result res;
    int state;
    uint32_t attempt;
    int due;             /* re-send at the next chance (a daemon was restarted) */
    double sent_at, first_try;
} item;

typedef struct client {
    const cli_opts *o;
    void *zctx, *push, *pull, *mon;
    vgpt_curve curve;    /* --curve-*: keys and the reply socket's ZAP handler */
    int refused;         /* a preprocd refused our CURVE key */
    int unreachable;     /* --timeout passed with a request never accepted: fail the rest */
    cli_embedded emb;
    int embedded_on;
    item *items;         /* items[i - base] is input line i (blank lines skipped) */
    size_t base, n, cap;
    size_t in_flight, failed;
    size_t next_unsent;  /* input lines before this one were tried at least once */
    char reply_to[300];
    cli_progress pg;
} client;

static item *at(client *c, size_t i) { return &c->items[i - c->base]; }

/* Reads the file and sends its bytes as an IMAGE request (id = index + 1).
 * 0 = sent (or failed for good: an error line), 1 = no preprocd took it
 * within SEND_WAIT_MS: the item is unchanged, try again later. */
static int send_request(client *c, size_t i) {
    item *it = at(c, i);
    vgpt_err err;
    struct stat st;
    FILE *f = NULL;
    void *bytes = NULL, *buf = NULL;
    size_t len = 0;
    int rc;
    if (!it->first_try) it->first_try = vgpt_now();
    if (c->unreachable) {
        vgpt_err_set(&err, "%s: not sent: no preprocd accepted a request within --timeout %g s%s", it->res.path,
                     c->o->timeout, c->refused ? " (a preprocd refused this client's CURVE key)" : "");
        goto fail;
    }
    if (stat(it->res.path, &st)) {
        vgpt_err_set(&err, "%s: %s", it->res.path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        vgpt_err_set(&err, "%s: not a regular file", it->res.path);
        goto fail;
    }
    if ((size_t)st.st_size > MAX_FILE_BYTES) {
        vgpt_err_set(&err, "%s: file is %lld bytes, more than the %u MiB a request may carry", it->res.path,
                     (long long)st.st_size, MAX_FILE_BYTES >> 20);
        goto fail;
    }
    bytes = malloc(st.st_size ? st.st_size : 1);
    f = fopen(it->res.path, "rb");
    if (!f || !bytes || fread(bytes, 1, st.st_size, f) != (size_t)st.st_size) {
        vgpt_err_set(&err, "%s: cannot read: %s", it->res.path, strerror(errno ? errno : EIO));
        goto fail;
    }
    vgpt_msg m;
    vgpt_msg_init(&m, VGPT_MSG_IMAGE);
    m.id = i + 1;
    m.reply_to = c->reply_to;
    m.attempt = it->attempt;
    m.img = c->o->image;
    m.gen = c->o->gen;
    m.bytes = bytes;
    m.n_bytes = st.st_size;
    if (vgpt_msg_pack(&m, &buf, &len, &err) || (rc = vgpt_zsock_send_owned(c->push, buf, len, 0, &err)) < 0)
        goto fail;
    fclose(f);
    free(bytes);
    if (rc == 1) return 1;
    if (it->state != IN_FLIGHT) c->in_flight++;
    it->state = IN_FLIGHT;
    it->sent_at = vgpt_now();
    it->due = 0;
    it->attempt++;
    return 0;
fail:
    if (f) fclose(f);
    free(bytes);
    if (it->state == IN_FLIGHT) c->in_flight--;
    it->res.error = strdup(err.msg);
    it->state = DONE;
    return 0;
}

/* Tries the requests not tried yet, in input order, until one would block. */
static void send_waiting(client *c) {
    if (c->next_unsent < c->base) c->next_unsent = c->base;
    for (; c->next_unsent < c->base + c->n; c->next_unsent++)
        if (at(c, c->next_unsent)->state == WAITING && send_request(c, c->next_unsent)) return;
}

/* Reports (once per endpoint) a server that refused our CURVE key: the ZAP
 * handler there logs the refusal too, with our public key. */
static void read_monitor(client *c) {
    while (c->mon) {
        zmq_msg_t ev, ep;
        zmq_msg_init(&ev);
        zmq_msg_init(&ep);
        int ok = zmq_msg_recv(&ev, c->mon, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&ev) && zmq_msg_recv(&ep, c->mon, 0) >= 0;
        if (ok && zmq_msg_size(&ev) >= 6) {
            uint16_t event;
            memcpy(&event, zmq_msg_data(&ev), 2);
            if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && !c->refused++)
                fprintf(stderr, "vgpt-cli: %.*s refused this client's CURVE key %.8s... (is its .pub in the "
                                "server's --curve-peers directory?)\n",
                        (int)zmq_msg_size(&ep), (const char *)zmq_msg_data(&ep), c->curve.pub);
        }
        zmq_msg_close(&ev);
        zmq_msg_close(&ep);
        if (!ok) return;
    }
}

/* Stores a CAPTION or ERROR for its request; duplicates and strays are ignored. */
static void take_result(client *c, const vgpt_msg *m) {
    if (m->id == 0 || m->id - 1 < c->base || m->id - 1 >= c->base + c->n) return;
    item *it = at(c, m->id - 1);
    if (it->state != IN_FLIGHT) return;
    if (m->type == VGPT_MSG_CAPTION) {
        it->res.caption = strndup(m->caption, m->caption_len);
        it->res.tokens = malloc((m->n_tokens ? m->n_tokens : 1) * sizeof *it->res.tokens);
        if (it->res.tokens) memcpy(it->res.tokens, m->tokens, m->n_tokens * sizeof *m->tokens);
        it->res.n_tokens = m->n_tokens;
    } else {
        char buf[4400];
        snprintf(buf, sizeof buf, "%.*s", (int)m->error_len, m->error);
        it->res.error = strdup(buf);
    }
    it->state = DONE;
    c->in_flight--;
}

static void drain_results(client *c, int timeout_ms) {
    zmq_pollitem_t p = {c->pull, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&p, 1, timeout_ms);
    read_monitor(c);
    if (rc <= 0) return;
    for (;;) {
        zmq_msg_t frame;
        vgpt_msg m;
        vgpt_err err;
        zmq_msg_init(&frame);
        if (vgpt_zsock_recv(c->pull, &frame, ZMQ_DONTWAIT, &err) != 0) {
            zmq_msg_close(&frame);
            return;
        }
        if (!vgpt_msg_unpack(zmq_msg_data(&frame), zmq_msg_size(&frame), &m, &err) &&
            (m.type == VGPT_MSG_CAPTION || m.type == VGPT_MSG_ERROR))
            take_result(c, &m);
        else if (c->o->verbose)
            fprintf(stderr, "vgpt-cli: ignored a malformed result: %s\n", err.msg);
        vgpt_msg_free(&m);
        zmq_msg_close(&frame);
    }
}

/* Prints the finished prefix, in input order, and forgets it. */
static void flush_done(client *c, FILE *out) {
    size_t k = 0;
    if (c->n && c->items[0].state == DONE) cli_progress_clear(&c->pg);
    while (k < c->n && c->items[k].state == DONE) {
        cli_print_result(out, c->o->format, &c->items[k].res);
        c->failed += c->items[k].res.error != NULL;
        c->pg.errors += c->items[k].res.error != NULL;
        c->pg.done++;
        cli_result_free(&c->items[k].res);
        k++;
    }
    if (!k) return;
    fflush(out);
    memmove(c->items, c->items + k, (c->n - k) * sizeof *c->items);
    c->n -= k;
    c->base += k;
    cli_progress_update(&c->pg, 0);
}

static int add_line(client *c, const char *path) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        item *p = realloc(c->items, cap * sizeof *p);
        if (!p) return -1;
        c->items = p;
        c->cap = cap;
    }
    memset(&c->items[c->n], 0, sizeof *c->items);
    c->items[c->n].res.path = strdup(path);
    c->n++;
    return c->items[c->n - 1].res.path ? 0 : -1;
}

/* Re-sends requests past their deadline (all of them when `all`), until a
 * send would block (the rest stay due and go out on a later call). */
static void resend(client *c, int all) {
    double now = vgpt_now();
    int blocked = 0;
    for (size_t k = 0; k < c->n; k++) {
        item *it = &c->items[k];
        if (it->state != IN_FLIGHT) continue;
        it->due |= all || now - it->sent_at > c->o->retry_after;
        if (!it->due || blocked) continue;
        if (c->o->verbose) fprintf(stderr, "vgpt-cli: re-sending %s (attempt %u)\n", it->res.path, it->attempt + 1);
        blocked = send_request(c, c->base + k);
    }
}

/* --timeout: a request tried for longer becomes an error line; one that no
 * preprocd ever accepted means none is reachable, so the rest fail at once. */
static void expire(client *c) {
    if (c->o->timeout <= 0) return;
    double now = vgpt_now();
    for (size_t k = 0; k < c->n; k++) {
        item *it = &c->items[k];
        if (it->state == DONE || !it->first_try || now - it->first_try <= c->o->timeout) continue;
        char msg[4400];
        snprintf(msg, sizeof msg, "%s: no result within --timeout %g s (%u attempts%s)", it->res.path, c->o->timeout,
                 it->attempt, c->refused ? "; a preprocd refused this client's CURVE key" : "");
        if (it->state == IN_FLIGHT) c->in_flight--;
        else c->unreachable = 1;
        it->res.error = strdup(msg);
        it->state = DONE;
    }
}

static char *clean_line(char *line) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)line[i])) return line;
    return NULL;
}

static int connect_all(client *c, const char *argv0, vgpt_err *err) {
    const cli_opts *o = c->o;
    c->zctx = zmq_ctx_new();
    if (!c->zctx) return vgpt_err_set(err, "zmq_ctx_new: %s", zmq_strerror(errno));
    const char *pre = o->connect, *reply = o->reply;
    if (!o->connect) {
        char exe[4096], *dir;
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) exe[n] = 0;
        else snprintf(exe, sizeof exe, "%s", argv0);
        dir = dirname(exe);
        /* Each daemon gets every core by default: the encoder is busy most of
         * the time and the decoder steps only while captions are live, so a
         * fixed half each leaves a core idle (tools/bench_pipeline.sh measures
         * the splits).  Idle threads sleep, none spin (vgpt_blas_quiet). */
        cli_embedded_cfg cfg = {.bindir = dir, .model = o->model, .cache_dir = o->cache_dir,
                            .enc_threads = o->enc_threads ? o->enc_threads : o->threads,
                            .dec_threads = o->dec_threads ? o->dec_threads : o->threads,
                            .batch = o->batch, .verbose = o->verbose};
        if (cli_embedded_start(&c->emb, &cfg, 300, err)) return -1;
        c->embedded_on = 1;
        pre = c->emb.ep_pre;
        reply = c->emb.ep_reply;
    }
    snprintf(c->reply_to, sizeof c->reply_to, "%s", reply);
    if (vgpt_curve_load(&c->curve, &o->curve, "vgpt-cli", err) || vgpt_curve_zap_start(&c->curve, c->zctx, err))
        return -1;
    if (!(c->pull = vgpt_zsock_pull_bind_sec(c->zctx, reply, VGPT_ZSOCK_MAXMSG, &c->curve, err))) return -1;
    if (!(c->push = vgpt_zsock_push_connect_sec(c->zctx, pre, &c->curve, err))) return -1;
    int ms = SEND_WAIT_MS;
    zmq_setsockopt(c->push, ZMQ_SNDTIMEO, &ms, sizeof ms);
    if (c->curve.on && !zmq_socket_monitor(c->push, MONITOR_EP, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)) {
        c->mon = zmq_socket(c->zctx, ZMQ_PAIR);
        if (c->mon && zmq_connect(c->mon, MONITOR_EP)) zmq_close(c->mon), c->mon = NULL;
    }
    return 0;
}

int cli_run_pipeline(const cli_opts *o, const char *argv0, FILE *in, FILE *out) {
    client c = {.o = o};
    vgpt_err err;
    if (connect_all(&c, argv0, &err)) {
        fprintf(stderr, "vgpt-cli: %s\n", err.msg);
        if (c.embedded_on || c.emb.dir[0]) cli_embedded_stop(&c.emb);
        return 2;
    }
    cli_progress_start(&c.pg, o->progress);
    char *line = NULL;
    size_t cap = 0;
    int eof = 0, rc = 0;
    while (!eof || c.n > 0) {
        send_waiting(&c);
        while (!eof && c.next_unsent == c.base + c.n && c.in_flight < (size_t)o->window) {
            if (getline(&line, &cap, in) < 0) {
                eof = 1;
                break;
            }
            char *p = clean_line(line);
            if (!p) continue;
            if (add_line(&c, p)) {
                fprintf(stderr, "vgpt-cli: out of memory\n");
                rc = 2;
                goto done;
            }
            send_waiting(&c);
        }
        drain_results(&c, c.in_flight || c.next_unsent < c.base + c.n ? 100 : 0);
        if (c.embedded_on && cli_embedded_supervise(&c.emb)) resend(&c, 1);
        else resend(&c, 0);
        expire(&c);
        flush_done(&c, out);
    }
    cli_progress_update(&c.pg, 1);
    rc = c.failed ? 1 : 0;
done:
    free(line);
    for (size_t k = 0; k < c.n; k++) cli_result_free(&c.items[k].res);
    free(c.items);
    if (c.mon) zmq_socket_monitor(c.push, NULL, 0), zmq_close(c.mon);
    if (c.push) zmq_close(c.push);
    if (c.pull) zmq_close(c.pull);
    if (c.embedded_on) cli_embedded_stop(&c.emb);
    zmq_ctx_term(c.zctx);
    vgpt_curve_free(&c.curve);
    return rc;
}
