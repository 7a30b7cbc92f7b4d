/* opts.c - see opts.h. */
#include "opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int vgpt_opt_long(const char *prog, const char *opt, const char *val, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: invalid value '%s' for --%s: expected an integer from %ld to %ld\n", prog, val, opt, lo,
                hi);
        return -1;
    }
    *out = v;
    return 0;
}

int vgpt_opt_precision(const char *prog, const char *val, vgpt_precision *out) {
    if (!vgpt_precision_parse(val, out)) return 0;
    fprintf(stderr, "%s: invalid value '%s' for --precision: expected fp32 or bf16\n", prog, val);
    return -1;
}

int vgpt_opt_double(const char *prog, const char *opt, const char *val, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: invalid value '%s' for --%s: expected a number from %g to %g\n", prog, val, opt, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int vgpt_opt_float(const char *prog, const char *opt, const char *val, float lo, float hi, float *out) {
    double v;
    if (vgpt_opt_double(prog, opt, val, lo, hi, &v)) return -1;
    *out = (float)v;
    return 0;
}
