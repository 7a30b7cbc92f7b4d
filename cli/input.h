/* input.h - the image paths vgpt-cli reads on standard input, one entry at a
 * time, the same way in every mode.
 *
 * Lines (default): a newline ends an entry, a CR before it is dropped,
 * blank lines are skipped.  A NUL byte cannot be part of a path, so a line
 * holding one becomes an error entry (its result line says so) instead of
 * being cut there.  With -0/--null a NUL byte ends an entry and the bytes
 * are taken exactly (newlines, CRs and spaces are part of the path), as
 * `find -print0` writes them; empty entries are skipped.
 *
 * The descriptor is read directly (no stdio buffer), so a caller can poll it
 * and print results while a slow producer has not finished the next line. */
#ifndef VGPT_CLI_INPUT_H
#define VGPT_CLI_INPUT_H

#include <stddef.h>

typedef struct cli_input {
    int fd;
    int null_sep;      /* -0: entries end with NUL */
    char *buf;         /* bytes read, [start, len) not yet returned */
    size_t start, len, cap;
    int eof;           /* end of input or a read error: no more reads */
    int error;         /* errno of a read error; 0 = none */
    long entry;        /* entries read so far (lines, blank ones included) */
    char why[160];     /* a bad entry's message */
} cli_input;

/* One entry: path[0..len) (NUL-terminated after len; valid until the next
 * call).  bad is NULL, or why the entry is not a path. */
typedef struct cli_entry {
    const char *path;
    size_t len;
    const char *bad;
} cli_entry;

void cli_input_init(cli_input *in, int fd, int null_sep);
/* 1 with *e set; 0 at the end of input or after a read error (in->error);
 * -1 when wait is 0 and no whole entry can be read without blocking. */
int cli_input_next(cli_input *in, cli_entry *e, int wait);
/* Prints "vgpt-cli: reading standard input: REASON" when a read failed;
 * returns 1 then (the run must exit 2), else 0. */
int cli_input_failed(const cli_input *in);
void cli_input_free(cli_input *in);

#endif
