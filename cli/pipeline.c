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

enum { WAITING, IN_FLIGHT, DONE };

typedef struct item {
    cli_result res;
    int state;
    uint32_t attempt;
    double sent_at;
} item;

typedef struct client {
    const cli_opts *o;
    void *zctx, *push, *pull;
    embedded emb;
    int embedded_on;
    item *items;         /* items[i - base] is input line i (blank lines skipped) */
    size_t base, n, cap;
    size_t in_flight, failed;
    char reply_to[300];
    cli_progress pg;
} client;

static item *at(client *c, size_t i) { return &c->items[i - c->base]; }

/* Reads the file and sends its bytes as an IMAGE request (id = index + 1). */
static void send_request(client *c, size_t i) {
    item *it = at(c, i);
    vgpt_err err;
    struct stat st;
    FILE *f = NULL;
    void *bytes = NULL, *buf = NULL;
    size_t len = 0;
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
    if (vgpt_msg_encode(&m, &buf, &len, &err) || vgpt_zsock_send_owned(c->push, buf, len, 0, &err) < 0) goto fail;
    if (it->state != IN_FLIGHT) c->in_flight++;
    it->state = IN_FLIGHT;
    it->sent_at = vgpt_now();
    it->attempt++;
    fclose(f);
    free(bytes);
    return;
fail:
    if (f) fclose(f);
    free(bytes);
    if (it->state == IN_FLIGHT) c->in_flight--;
    it->res.error = strdup(err.msg);
    it->state = DONE;
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
    if (zmq_poll(&p, 1, timeout_ms) <= 0) return;
    for (;;) {
        zmq_msg_t frame;
        vgpt_msg m;
        vgpt_err err;
        zmq_msg_init(&frame);
        if (vgpt_zsock_recv(c->pull, &frame, ZMQ_DONTWAIT, &err) != 0) {
            zmq_msg_close(&frame);
            return;
        }
        if (!vgpt_msg_decode(zmq_msg_data(&frame), zmq_msg_size(&frame), &m, &err) &&
            (m.type == VGPT_MSG_CAPTION || m.type == VGPT_MSG_ERROR))
            take_result(c, &m);
        else if (c->o->verbose)
            fprintf(stderr, "vgpt-cli: ignored a malformed result: %s\n", err.msg);
        vgpt_msg_release(&m);
        zmq_msg_close(&frame);
    }
}

/* Prints the finished prefix, in input order, and forgets it. */
static void flush_done(client *c, FILE *out) {
    size_t k = 0;
    while (k < c->n && c->items[k].state == DONE) {
        cli_print_result(out, c->o->format, &c->items[k].res);
        c->failed += c->items[k].res.error != NULL;
        c->pg.errors += c->items[k].res.error != NULL;
        c->pg.done++;
        cli_result_clear(&c->items[k].res);
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

/* Re-sends requests past their deadline (all of them when `all`). */
static void resend(client *c, int all) {
    double now = vgpt_now();
    for (size_t k = 0; k < c->n; k++) {
        item *it = &c->items[k];
        if (it->state == IN_FLIGHT && (all || now - it->sent_at > c->o->retry_after)) {
            if (c->o->verbose)
                fprintf(stderr, "vgpt-cli: re-sending %s (attempt %u)\n", it->res.path, it->attempt + 1);
            send_request(c, c->base + k);
        }
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
    const char *pre = o->connect, *reply = o->reply;
    if (!o->connect) {
        char exe[4096], *dir;
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) exe[n] = 0;
        else snprintf(exe, sizeof exe, "%s", argv0);
        dir = dirname(exe);
        int half = o->threads / 2 > 0 ? o->threads / 2 : 1;
        embedded_cfg cfg = {.bindir = dir, .model = o->model, .cache_dir = o->cache_dir,
                            .enc_threads = o->enc_threads ? o->enc_threads : half,
                            .dec_threads = o->dec_threads ? o->dec_threads : (o->threads - half > 0 ? o->threads - half : 1),
                            .batch = o->batch, .verbose = o->verbose};
        if (embedded_start(&c->emb, &cfg, 300, err)) return -1;
        c->embedded_on = 1;
        pre = c->emb.ep_pre;
        reply = c->emb.ep_reply;
    }
    snprintf(c->reply_to, sizeof c->reply_to, "%s", reply);
    if (!(c->pull = vgpt_zsock_pull_bind(c->zctx, reply, err))) return -1;
    if (!(c->push = vgpt_zsock_push_connect(c->zctx, pre, err))) return -1;
    return 0;
}

int cli_run_pipeline(const cli_opts *o, const char *argv0, FILE *in, FILE *out) {
    client c = {.o = o};
    vgpt_err err;
    if (connect_all(&c, argv0, &err)) {
        fprintf(stderr, "vgpt-cli: %s\n", err.msg);
        if (c.embedded_on || c.emb.dir[0]) embedded_stop(&c.emb);
        return 2;
    }
    cli_progress_start(&c.pg, o->progress);
    char *line = NULL;
    size_t cap = 0;
    int eof = 0, rc = 0;
    while (!eof || c.n > 0) {
        while (!eof && c.in_flight < (size_t)o->window) {
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
            send_request(&c, c.base + c.n - 1);
        }
        drain_results(&c, c.in_flight ? 100 : 0);
        if (c.embedded_on && embedded_supervise(&c.emb)) resend(&c, 1);
        else resend(&c, 0);
        flush_done(&c, out);
    }
    cli_progress_update(&c.pg, 1);
    rc = c.failed ? 1 : 0;
done:
    free(line);
    for (size_t k = 0; k < c.n; k++) cli_result_clear(&c.items[k].res);
    free(c.items);
    if (c.push) zmq_close(c.push);
    if (c.pull) zmq_close(c.pull);
    if (c.embedded_on) embedded_stop(&c.emb);
    zmq_ctx_term(c.zctx);
    return rc;
}
