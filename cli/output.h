/* output.h - result lines (tsv / jsonl) of vgpt-cli, and where they go. */
#ifndef VGPT_CLI_OUTPUT_H
#define VGPT_CLI_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include "options.h"

/* One input line's outcome: either caption (+ tokens) or error is set. */
typedef struct cli_result {
    char *path;      /* NUL-terminated; path_len bytes (a bad entry may hold NULs) */
    size_t path_len;
    char *caption;
    int32_t *tokens;
    int n_tokens;
    char *error;
} cli_result;

/* Copies the input entry's path (and its error, if it is not a path);
 * -1 when out of memory. */
int cli_result_set_path(cli_result *r, const char *path, size_t len, const char *bad);

/* Where result lines go: standard output, or the --output file (then every
 * line is flushed on its own, so that a kill leaves at most one torn last
 * line, and the file is fsynced every CLI_SYNC_S seconds and at the end). */
#define CLI_SYNC_S 2.0
typedef struct cli_sink {
    FILE *f;
    const char *name;  /* "standard output" or the file's path, for messages */
    int sync;          /* 1 = a file: flush each line, fsync now and then */
    double synced_at;
} cli_sink;

/* Results to standard output. */
void cli_sink_stdout(cli_sink *s);

/* Writes one result line.  TSV escapes backslash, tab, newline, CR (and
 * NUL) in both columns as \\, \t, \n, \r, \0, so every result is one line
 * of exactly two columns; jsonl escapes as JSON does.  A failed write (a
 * full disk, a closed pipe) returns -1 after printing "vgpt-cli: writing
 * results to NAME: REASON": the run stops at once, exit 2. */
int cli_print_result(cli_sink *s, out_format fmt, const cli_result *r);
void cli_result_free(cli_result *r);

/* Flushes results out (after each batch; an fsync when one is due): 0, or
 * -1 after that message. */
int cli_output_flush(cli_sink *s);
/* The end of the run: flush, fsync and close, with the same check and message. */
int cli_output_close(cli_sink *s);

double cli_now(void);

#endif
