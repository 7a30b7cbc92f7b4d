/* main.c - vgpt-cli: image paths on stdin, captions on stdout. */
#include <stdio.h>

#include "inprocess.h"
#include "options.h"
#include "pipeline.h"
#include "kernels.h"
#include "model.h"

/* --max-tokens past the context could never be honoured: say so before any
 * work starts.  Only the checkpoint's index is read; when it cannot be read
 * here (a --connect client need not see the file) the loader or the
 * decoders report it, and decoderd clamps with a warning. */
static int check_max_tokens(const cli_opts *o) {
    int ctx;
    vgpt_err err;
    if (!o->max_tokens_given || vgpt_model_peek_context(o->model, &ctx, &err)) return 0;
    if (o->gen.max_tokens <= ctx) return 0;
    fprintf(stderr, "vgpt-cli: --max-tokens %d: %s has a context of %d tokens, so at most %d new tokens\n",
            o->gen.max_tokens, o->model, ctx, ctx);
    return 2;
}

int main(int argc, char **argv) {
    vgpt_blas_quiet(argv);
    cli_opts o;
    int rc = cli_parse(argc, argv, &o);
    if (rc == 1) return 0;
    if (rc) return rc;
    if ((rc = check_max_tokens(&o))) return rc;
    if (o.in_process) return cli_run_inprocess(&o, argv[0], stdin, stdout);
    return cli_run_pipeline(&o, argv[0], stdin, stdout);
}
