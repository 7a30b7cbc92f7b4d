/* output.h - result lines (tsv / jsonl) and the progress line of vgpt-cli. */
#ifndef VGPT_CLI_OUTPUT_H
#define VGPT_CLI_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include "options.h"

/* One input line's outcome: either caption (+ tokens) or error is set. */
typedef struct cli_result {
    char *path;
    char *caption;
    int32_t *tokens;
    int n_tokens;
    char *error;
} cli_result;

void cli_print_result(FILE *f, out_format fmt, const cli_result *r);
void cli_result_free(cli_result *r);

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
