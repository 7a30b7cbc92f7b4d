/* err.c - formatting of vgpt_err messages (see err.h). */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD (VGPT_ERR_MAX / 4) /* what a cut message keeps of its start; the rest is its end */
#define CUT "..."

static int utf8_cont(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

/* Stores s[0..n) into err->msg, cutting out the middle if it is too long,
 * never inside a UTF-8 character. */
static void store(vgpt_err *err, const char *s, size_t n) {
    size_t cap = sizeof err->msg - 1;
    if (n <= cap) {
        memmove(err->msg, s, n);
        err->msg[n] = 0;
        return;
    }
    size_t head = HEAD, tail = n - (cap - HEAD - strlen(CUT));
    while (head > 0 && utf8_cont(s[head])) head--;
    while (tail < n && utf8_cont(s[tail])) tail++;
    memmove(err->msg, s, head);
    memcpy(err->msg + head, CUT, strlen(CUT));
    memcpy(err->msg + head + strlen(CUT), s + tail, n - tail);
    err->msg[head + strlen(CUT) + n - tail] = 0;
}

/* Formats "fmt" (then ": rest" when rest is given) into err->msg.  Out of
 * memory keeps what was there, or says so. */
static void format(vgpt_err *err, const char *rest, const char *fmt, va_list ap) {
    char *s = NULL, *full = NULL;
    int n = vasprintf(&s, fmt, ap);
    if (n >= 0 && rest) {
        n = asprintf(&full, "%s: %s", s, rest);
        free(s);
        s = n >= 0 ? full : NULL;
    }
    if (n >= 0) store(err, s, (size_t)n);
    else if (!rest) snprintf(err->msg, sizeof err->msg, "out of memory formatting an error message");
    free(s);
}

int vgpt_err_set(vgpt_err *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    format(err, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

int vgpt_err_prefix(vgpt_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char *old = strndup(err->msg, sizeof err->msg - 1);
    if (!old) return -1;
    va_list ap;
    va_start(ap, fmt);
    format(err, old, fmt, ap);
    va_end(ap);
    free(old);
    return -1;
}
