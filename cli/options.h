/* options.h - vgpt-cli's command line, parsed once into a struct. */
#ifndef VGPT_CLI_OPTIONS_H
#define VGPT_CLI_OPTIONS_H

#include "curve.h"
#include "generate.h"
#include "image.h"
#include "precision.h"

typedef enum { FMT_TSV, FMT_JSONL } out_format;
typedef enum { XMP_NONE, XMP_SIDECAR, XMP_EMBED } xmp_mode;

typedef struct cli_opts {
    const char *model;     /* --model or $VGPT_MODEL */
    out_format format;
    vgpt_gen_opts gen;
    int max_tokens_given;  /* --max-tokens was on the command line (else 50, clamped quietly) */
    /* which other decoding settings the command line gave: the rest may come
     * from the model folder's own defaults (HF generation_config.json) */
    int mode_given, beams_given, ngram_given, lp_given, stop_given;
    vgpt_image_opts image;
    int in_process;        /* --in-process: everything in this process */
    const char *connect;   /* --connect: preprocd endpoint(s) of running daemons */
    const char *reply;     /* --reply: our result endpoint (bind) in connect mode */
    const char *cache_dir; /* embedded encoderd's token cache; NULL = none */
    int window;            /* requests in flight at most */
    double retry_after;    /* seconds before a request is re-sent */
    double timeout;        /* --timeout: give a request up after this many seconds; 0 = never */
    vgpt_curve_opts curve; /* --curve-key / --curve-server-key / --curve-peers (connect mode) */
    int enc_threads, dec_threads;
    int no_cache;
    char cache_buf[4096];
    int batch;             /* images per encoder pass */
    int threads;
    vgpt_precision precision; /* --precision: of the matrix products */
    int null_input;        /* -0/--null: paths on stdin end with NUL, not newline */
    int progress;          /* -1 auto (stderr is a tty, or --output), 0 off, 1 on */
    double progress_interval; /* --progress-interval: seconds between log lines (not a tty) */
    const char *input;     /* --input FILE: the paths, instead of standard input */
    const char *output;    /* --output FILE: results appended there, resumed from there */
    int retry_errors;      /* resuming: retry the error lines in --output (--no-retry-errors: 0) */
    xmp_mode xmp;          /* --xmp sidecar|embed */
    int xmp_base_name;     /* --xmp-sidecar-name base: photo.xmp, not photo.jpg.xmp */
    int xmp_overwrite;     /* --xmp-overwrite: replace a description vgpt did not write */
    int verbose;
} cli_opts;

/* Returns 0 to run, 1 when --help/--version was printed, 2 on a usage error
 * (message already printed to stderr). */
int cli_parse(int argc, char **argv, cli_opts *o);

#endif
