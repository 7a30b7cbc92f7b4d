/* pipeline.h - vgpt-cli as a client of the daemon pipeline: every input
 * line becomes an IMAGE request; results come back on our own PULL socket
 * (reply_to) in any order and are printed in input order.
 *
 * Nothing is lost: every request in flight has a deadline and is re-sent
 * when it passes (or at once when the embedded supervisor restarts a
 * daemon); results are de-duplicated by request id; the in-flight window is
 * bounded so the pipeline is never flooded. */
#ifndef VGPT_CLI_PIPELINE_H
#define VGPT_CLI_PIPELINE_H

#include <stdio.h>

#include "options.h"

/* Reads the paths and writes the results (see job.h).  Returns the exit
 * status, or dies of a stop signal once what came back is written. */
int cli_run_pipeline(const cli_opts *o, const char *argv0);

#endif
