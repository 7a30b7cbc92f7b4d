/* options.h - vgpt-cli's command line, parsed once into a struct. */
#ifndef VGPT_CLI_OPTIONS_H
#define VGPT_CLI_OPTIONS_H

#include "decode.h"
#include "image.h"

typedef enum { FMT_TSV, FMT_JSONL } out_format;

typedef struct cli_opts {
    const char *model;     /* --model or $VGPT_MODEL */
    out_format format;
    vgpt_gen_opts gen;
    vgpt_image_opts image;
    int in_process;
    int batch;             /* images per encoder pass */
    int threads;
    int progress;          /* -1 auto (stderr is a tty), 0 off, 1 on */
    int verbose;
} cli_opts;

/* Returns 0 to run, 1 when --help/--version was printed, 2 on a usage error
 * (message already printed to stderr). */
int cli_parse(int argc, char **argv, cli_opts *o);

#endif
