/* output.h - result lines (tsv / jsonl) and the progress line of vgpt-cli. */
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

/* Writes one result line.  TSV escapes backslash, tab, newline, CR (and
 * NUL) in both columns as \\, \t, \n, \r, \0, so every result is one line
 * of exactly two columns; jsonl escapes as JSON does.  A failed write (a
 * full disk, a closed pipe) returns -1 after printing "vgpt-cli: writing
 * results to standard output: REASON": the run stops at once, exit 2. */
int cli_print_result(FILE *f, out_format fmt, const cli_result *r);
void cli_result_free(cli_result *r);

/* Flushes results out (after each batch): 0, or -1 after that message. */
int cli_output_flush(FILE *f);
/* The end of the run: flush and close, with the same check and message. */
int cli_output_close(FILE *f);

typedef struct cli_progress {
    int enabled;
    int shared_tty; /* stdout and stderr are both terminals */
    int drawn;      /* the line is on screen now */
    long done, errors;
    double t0;
} cli_progress;

void cli_progress_start(cli_progress *p, int setting);
void cli_progress_update(cli_progress *p, int final);
/* Erases the progress line before result lines go to the same terminal. */
void cli_progress_clear(cli_progress *p);
double cli_now(void);

#endif
