/* opts.h - number parsing for command-line options, with messages that name
 * the option and the accepted range: every program's one option parser. */
#ifndef VGPT_OPTS_H
#define VGPT_OPTS_H

#include "precision.h"

/* 0 and *out set, or -1 after printing "prog: invalid value 'v' for --opt: expected ..." */
int vgpt_opt_long(const char *prog, const char *opt, const char *val, long lo, long hi, long *out);
/* --precision fp32|bf16 (lib/precision.h). */
int vgpt_opt_precision(const char *prog, const char *val, vgpt_precision *out);
int vgpt_opt_double(const char *prog, const char *opt, const char *val, double lo, double hi, double *out);
int vgpt_opt_float(const char *prog, const char *opt, const char *val, float lo, float hi, float *out);

#endif
