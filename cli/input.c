/* input.c - see input.h. */
#include "input.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stop.h"

#define READ_SIZE 65536

void cli_input_init(cli_input *in, int fd, int null_sep) {
    memset(in, 0, sizeof *in);
    in->fd = fd;
    in->null_sep = null_sep;
}

void cli_input_free(cli_input *in) {
    free(in->buf);
    in->buf = NULL;
}

/* One read(2) into the buffer after dropping what was returned; -1 if wait
 * is 0 and nothing can be read now. */
static int fill(cli_input *in, int wait) {
    struct pollfd p = {in->fd, POLLIN, 0};
    if (!wait && poll(&p, 1, 0) == 0) return -1;
    if (in->start) {
        memmove(in->buf, in->buf + in->start, in->len - in->start);
        in->len -= in->start;
        in->start = 0;
    }
    if (in->cap - in->len < READ_SIZE) {
        size_t cap = in->cap ? 2 * in->cap : 2 * READ_SIZE;
        char *b = realloc(in->buf, cap);
        if (!b) {
            in->error = ENOMEM;
            in->eof = 1;
            return 0;
        }
        in->buf = b;
        in->cap = cap;
    }
    ssize_t r;
    do r = read(in->fd, in->buf + in->len, in->cap - in->len - 1); /* room for a last NUL */
    while (r < 0 && errno == EINTR && !cli_stop_requested());
    if (r <= 0) {
        in->error = r < 0 ? errno : 0;
        in->eof = 1;
        return 0;
    }
    in->len += (size_t)r;
    return 0;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

/* Makes buf[at..at+n) an entry; 0 if it is one to skip. */
static int take(cli_input *in, size_t at, size_t n, cli_entry *e) {
    char *s = in->buf + at;
    s[n] = 0;
    in->entry++;
    e->bad = NULL;
    if (in->null_sep) {
        e->path = s;
        e->len = n;
        return n > 0;
    }
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0; /* CRLF */
    if (blank(s, n)) return 0;
    e->path = s;
    e->len = n;
    if (memchr(s, 0, n)) {
        snprintf(in->why, sizeof in->why, "line %ld of standard input contains a NUL byte, which no path can "
                 "(for NUL-separated input, as from find -print0, use -0/--null)", in->entry);
        e->bad = in->why;
    }
    return 1;
}

int cli_input_next(cli_input *in, cli_entry *e, int wait) {
    for (;;) {
        char *end = in->len > in->start ? memchr(in->buf + in->start, in->null_sep ? '\0' : '\n', in->len - in->start)
                                        : NULL;
        if (end) {
            size_t at = in->start, n = (size_t)(end - in->buf) - at;
            in->start += n + 1;
            if (take(in, at, n, e)) return 1;
            continue;
        }
        if (in->eof) { /* a last entry without its newline (or NUL) */
            size_t at = in->start, n = in->len - at;
            in->start = in->len;
            if (n && take(in, at, n, e)) return 1;
            return 0;
        }
        if (fill(in, wait) < 0) return -1;
    }
}

int cli_input_failed(const cli_input *in) {
    if (!in->error) return 0;
    fprintf(stderr, "vgpt-cli: reading standard input: %s\n", strerror(in->error));
    return 1;
}
