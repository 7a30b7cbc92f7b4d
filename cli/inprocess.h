/* inprocess.h - vgpt-cli's in-process mode: decode, encode and caption in
 * this process, batch by batch. */
#ifndef VGPT_CLI_INPROCESS_H
#define VGPT_CLI_INPROCESS_H

#include <stdio.h>

#include "options.h"

/* Reads paths from in, writes results to out.  Returns the exit status. */
int cli_run_inprocess(const cli_opts *o, const char *argv0, FILE *in, FILE *out);

#endif
