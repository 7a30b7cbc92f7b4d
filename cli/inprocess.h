/* inprocess.h - vgpt-cli's in-process mode: decode, encode and caption in
 * this process, batch by batch. */
#ifndef VGPT_CLI_INPROCESS_H
#define VGPT_CLI_INPROCESS_H

#include <stdio.h>

#include "options.h"

/* Reads the paths and writes the results (see job.h).  Returns the exit
 * status, or dies of a stop signal once what was finished is written. */
int cli_run_inprocess(const cli_opts *o, const char *argv0);

#endif
