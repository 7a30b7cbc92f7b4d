/* main.c - vgpt-cli: image paths on stdin, captions on stdout. */
#include <stdio.h>

#include "inprocess.h"
#include "options.h"
#include "pipeline.h"
#include "kernels.h"

int main(int argc, char **argv) {
    vgpt_blas_quiet(argv);
    cli_opts o;
    int rc = cli_parse(argc, argv, &o);
    if (rc == 1) return 0;
    if (rc) return rc;
    if (o.in_process) return cli_run_inprocess(&o, argv[0], stdin, stdout);
    return cli_run_pipeline(&o, argv[0], stdin, stdout);
}
