/* job.h - what every mode of vgpt-cli shares around the captioning: the
 * input (standard input or --input, its total when it is a regular file,
 * the paths --output already holds skipped), where results go (standard
 * output or --output), the XMP write of each caption (--xmp), the progress
 * line and the closing summary.  inprocess.c and pipeline.c only turn
 * entries into results. */
#ifndef VGPT_CLI_JOB_H
#define VGPT_CLI_JOB_H

#include "input.h"
#include "options.h"
#include "output.h"
#include "progress.h"
#include "resume.h"
#include "xmp.h"

typedef struct cli_job {
    const cli_opts *o;
    cli_input in;
    int in_fd;          /* --input's descriptor, or -1 */
    cli_sink out;
    cli_resume resume;
    cli_progress pg;
    cli_xmp xmp;
    long failed;        /* error lines written */
} cli_job;

/* Opens input and output (reading and repairing --output); 0, or 2 after a
 * message on stderr. */
int cli_job_open(cli_job *j, const cli_opts *o);
/* The next entry not done already; as cli_input_next, and 0 once a stop
 * (SIGINT, SIGTERM, SIGHUP) was asked for. */
int cli_job_next(cli_job *j, cli_entry *e, int wait);
/* Writes the caption into the photo's XMP (--xmp; a failure turns the
 * result into an error line), then the result line; frees r.  -1 when the
 * output failed (reported: stop at once). */
int cli_job_emit(cli_job *j, cli_result *r);
/* After a batch of results: flush (and fsync when due), redraw progress. */
int cli_job_flush(cli_job *j);
/* The end: close, summary; returns the exit status (0, 1, or 2 when input
 * or output failed or `broken`).  The caller cleans up, then passes it
 * through cli_stop_finish (which dies of a stop signal). */
int cli_job_finish(cli_job *j, int broken);
/* Frees what is left after a failure before the end. */
void cli_job_free(cli_job *j);

#endif
