/* err.h - one-line, user-actionable error messages.
 *
 * Fallible functions that can say why take a vgpt_err* and return 0 on
 * success, -1 on failure after writing a message that names the file, the
 * tensor or the input and what was expected (constructors that can only run
 * out of memory return NULL instead).  No global errno-style state. */
#ifndef VGPT_ERR_H
#define VGPT_ERR_H

#include <stddef.h>

/* Bytes of a message with its NUL: one always fits an ERROR frame's 4095
 * bytes (VGPT_PROTO_MAX_ERROR), so the wire never cuts it again. */
#define VGPT_ERR_MAX 4096

typedef struct vgpt_err {
    char msg[VGPT_ERR_MAX];
} vgpt_err;

/* Formats into err->msg (if err is non-NULL) and returns -1, so error
 * paths read `return vgpt_err_set(err, "...", ...);`.  A message longer
 * than err->msg (a very long path) loses its middle, marked "...": the
 * start says what it is about, the end says what is wrong, and both stay.
 * A message may quote bytes from an input (a path, a zip entry name) as they
 * are; whoever prints it as a line escapes them (TSV output, vgpt_log). */
int vgpt_err_set(vgpt_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to an existing message (adds context on the way up). */
int vgpt_err_prefix(vgpt_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
