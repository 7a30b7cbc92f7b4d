/* pipeline.c - see pipeline.h. */
#include "pipeline.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "daemon.h"
#include "image.h"
#include "job.h"
#include "model.h"
#include "output.h"
#include "proto.h"
#include "spawn.h"
#include "stop.h"
#include "tokenizer.h"
#include "zsock.h"

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
    size_t in_flight;
    size_t next_unsent;  /* input lines before this one were tried at least once */
    char reply_to[300];
    cli_job *job;
} client;

static item *at(client *c, size_t i) { return &c->items[i - c->base]; }

/* Reads the file and sends its bytes as an IMAGE request (id = index + 1).
 * 0 = sent (or failed for good: an error line), 1 = no preprocd took it
 * within SEND_WAIT_MS: the item is unchanged, try again later. */
static int send_request(client *c, size_t i) {
    item *it = at(c, i);
    vgpt_err err;
    uint8_t *bytes = NULL;
    void *buf = NULL;
    size_t n_bytes = 0, len = 0;
    int rc;
    if (!it->first_try) it->first_try = vgpt_now();
    if (c->unreachable) {
        vgpt_err_set(&err, "%s: not sent: no preprocd accepted a request within --timeout %g s%s", it->res.path,
                     c->o->timeout, c->refused ? " (a preprocd refused this client's CURVE key)" : "");
        goto fail;
    }
    /* the checks, limits and messages of --in-process (a FIFO never blocks) */
    if (vgpt_image_read_file(it->res.path, &bytes, &n_bytes, &err)) goto fail;
    vgpt_msg m;
    vgpt_msg_init(&m, VGPT_MSG_IMAGE);
    m.id = i + 1;
    m.reply_to = c->reply_to;
    m.attempt = it->attempt;
    m.img = c->o->image;
    m.gen = c->o->gen;
    m.bytes = bytes;
    m.n_bytes = n_bytes;
    if (vgpt_msg_pack(&m, &buf, &len, &err) || (rc = vgpt_zsock_send_owned(c->push, buf, len, 0, &err)) < 0)
        goto fail;
    free(bytes);
    if (rc == 1) return 1;
    if (it->state != IN_FLIGHT) c->in_flight++;
    it->state = IN_FLIGHT;
    it->sent_at = vgpt_now();
    it->due = 0;
    it->attempt++;
    return 0;
fail:
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

/* A stage's ERROR names the request's bytes "request ID" (preprocd) or not
 * at all; the error line names the path the user gave, in front of the
 * reason, exactly as --in-process words it (and cut as vgpt_err cuts it). */
static char *name_error(const char *path, const vgpt_msg *m) {
    char stage_name[48];
    const char *e = m->error;
    size_t n = m->error_len;
    int k = snprintf(stage_name, sizeof stage_name, "request %llu: ", (unsigned long long)m->id);
    if (k > 0 && n >= (size_t)k && !memcmp(e, stage_name, (size_t)k)) e += k, n -= (size_t)k;
    vgpt_err err;
    vgpt_err_set(&err, "%s: %.*s", path, (int)n, e);
    return strdup(err.msg);
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
        it->res.error = name_error(it->res.path, m);
    }
    it->state = DONE;
    c->in_flight--;
}

/* Waits up to timeout_ms for results (or for input on in_fd, when >= 0, so
 * that a new line is read as soon as it comes), then takes every result. */
static void drain_results(client *c, int in_fd, int timeout_ms) {
    zmq_pollitem_t p[2] = {{c->pull, 0, ZMQ_POLLIN, 0}, {NULL, in_fd, ZMQ_POLLIN, 0}};
    int rc = zmq_poll(p, in_fd >= 0 ? 2 : 1, timeout_ms);
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

/* Writes the finished prefix, in input order, and forgets it; -1 when
 * the output failed (reported: the run stops at once). */
static int flush_done(client *c) {
    size_t k = 0;
    int rc = 0;
    while (k < c->n && c->items[k].state == DONE) {
        if (!rc) rc = cli_job_emit(c->job, &c->items[k].res);
        else cli_result_free(&c->items[k].res);
        k++;
    }
    if (!k) return 0;
    memmove(c->items, c->items + k, (c->n - k) * sizeof *c->items);
    c->n -= k;
    c->base += k;
    return rc || cli_job_flush(c->job) ? -1 : 0;
}

/* A new input entry; one that is not a path is done at once (its error line). */
static int add_line(client *c, const cli_entry *e) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        item *p = realloc(c->items, cap * sizeof *p);
        if (!p) return -1;
        c->items = p;
        c->cap = cap;
    }
    item *it = &c->items[c->n++];
    memset(it, 0, sizeof *it);
    if (e->bad) it->state = DONE;
    return cli_result_set_path(&it->res, e->path, e->len, e->bad);
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
        vgpt_err err;
        vgpt_err_set(&err, "%s: no result within --timeout %g s (%u attempts%s)", it->res.path, c->o->timeout,
                     it->attempt, c->refused ? "; a preprocd refused this client's CURVE key" : "");
        if (it->state == IN_FLIGHT) c->in_flight--;
        else c->unreachable = 1;
        it->res.error = strdup(err.msg);
        it->state = DONE;
    }
}

/* Each daemon would fail on a bad checkpoint, config.json or tokenizer file
 * in its own log (or block on a FIFO): find out first, in one line, as
 * --in-process does.  Only the index and the small files are read. */
static int check_model(const cli_opts *o, const char *argv0, vgpt_err *err) {
    int ctx;
    vgpt_tok *tok;
    if (vgpt_model_peek_context(o->model, &ctx, err) || vgpt_tok_load(o->model, argv0, &tok, err)) return -1;
    vgpt_tok_free(tok);
    return 0;
}

static int connect_all(client *c, const char *argv0, vgpt_err *err) {
    const cli_opts *o = c->o;
    if (!o->connect && check_model(o, argv0, err)) return -1;
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
         * the splits).  Idle threads sleep, none spin (vgpt_process_tune). */
        cli_embedded_cfg cfg = {.bindir = dir, .model = o->model, .cache_dir = o->cache_dir,
                            .enc_threads = o->enc_threads ? o->enc_threads : o->threads,
                            .dec_threads = o->dec_threads ? o->dec_threads : o->threads,
                            .batch = o->batch, .precision = o->precision, .verbose = o->verbose};
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

/* Stops everything connect_all started. */
static void disconnect_all(client *c) {
    for (size_t k = 0; k < c->n; k++) cli_result_free(&c->items[k].res);
    free(c->items);
    if (c->mon) zmq_socket_monitor(c->push, NULL, 0), zmq_close(c->mon);
    if (c->push) zmq_close(c->push);
    if (c->pull) zmq_close(c->pull);
    if (c->embedded_on || c->emb.dir[0]) cli_embedded_stop(&c->emb);
    if (c->zctx) zmq_ctx_term(c->zctx); /* no socket is left open to block it */
    vgpt_curve_free(&c->curve);
}

/* Reads, sends, collects and writes until the input is done or a stop was
 * asked for (then what came back is written and the rest left to a resumed
 * run); the job's exit status. */
static int run(client *c) {
    const cli_opts *o = c->o;
    cli_entry ent;
    int eof = 0, r, broken = 1;
    while ((!eof || c->n > 0) && !cli_stop_requested()) {
        send_waiting(c);
        /* read input only while there is room, and never wait for it: results
         * are printed (and a write error seen) while a producer is slow */
        while (!eof && c->next_unsent == c->base + c->n && c->in_flight < (size_t)o->window) {
            if ((r = cli_job_next(c->job, &ent, 0)) < 0) break;
            if (r == 0) {
                eof = 1; /* or a read error: reported once what was read is out */
                break;
            }
            if (add_line(c, &ent)) {
                fprintf(stderr, "vgpt-cli: out of memory\n");
                return cli_job_finish(c->job, 1);
            }
            send_waiting(c);
        }
        int want_input = !eof && c->next_unsent == c->base + c->n && c->in_flight < (size_t)o->window;
        drain_results(c, want_input ? c->job->in.fd : -1,
                      c->in_flight || c->next_unsent < c->base + c->n || want_input ? 100 : 0);
        if (cli_stop_requested()) break; /* daemons may be dying of the same Ctrl-C: no restarts */
        int restarted = c->embedded_on ? cli_embedded_supervise(&c->emb) : 0;
        if (restarted < 0) return cli_job_finish(c->job, 1); /* a daemon keeps dying (said on stderr) */
        resend(c, restarted > 0);
        expire(c);
        if (flush_done(c)) return cli_job_finish(c->job, 1);
    }
    broken = cli_stop_requested() && flush_done(c);
    return cli_job_finish(c->job, broken);
}

int cli_run_pipeline(const cli_opts *o, const char *argv0) {
    client c = {.o = o};
    vgpt_err err;
    cli_job job;
    int rc = cli_job_open(&job, o);
    if (rc) return rc;
    c.job = &job;
    if (connect_all(&c, argv0, &err)) {
        fprintf(stderr, "vgpt-cli: %s\n", err.msg);
        disconnect_all(&c);
        cli_job_free(&job);
        return 2;
    }
    cli_stop_install(); /* replaces spawn.c's immediate teardown: finish writing first */
    rc = run(&c);
    disconnect_all(&c);
    return cli_stop_finish(rc);
}
