/* err.c - formatting of vgpt_err messages (see err.h). */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int vgpt_err_set(vgpt_err *err, const char *fmt, ...) {
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int vgpt_err_prefix(vgpt_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    size_t plen = strnlen(prefix, sizeof prefix - 3);
    prefix[plen++] = ':';
    prefix[plen++] = ' ';
    size_t mlen = strnlen(err->msg, sizeof err->msg - 1);
    if (plen + mlen >= sizeof err->msg) mlen = sizeof err->msg - 1 - plen;
    memmove(err->msg + plen, err->msg, mlen);
    memcpy(err->msg, prefix, plen);
    err->msg[plen + mlen] = 0;
    return -1;
}
