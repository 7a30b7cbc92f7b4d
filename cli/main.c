/* main.c - vgpt-cli: image paths on stdin (or --input), captions on stdout
 * (or --output, resumable, and into the photos' XMP with --xmp). */
#include <signal.h>
#include <stdio.h>

#include "inprocess.h"
#include "options.h"
#include "pipeline.h"
#include "kernels.h"
#include "model.h"
#include "pool.h"

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

/* Settings the command line left open come from the model folder's own
 * generation defaults when it has them (a Hugging Face captioner's
 * generation_config.json: beam 4, 15 new tokens for the common one).  An
 * unreadable model is left to the loader to report. */
static int apply_model_defaults(cli_opts *o) {
    vgpt_gen_opts d = o->gen;
    vgpt_err err;
    int rc = vgpt_model_peek_gen(o->model, &d, &err);
    if (rc == -1) return 0;
    if (rc == -2) { /* settings vgpt cannot follow: fine when the command line chose its own */
        if (o->mode_given) return 0;
        fprintf(stderr, "vgpt-cli: %s\n", err.msg);
        return 2;
    }
    if (rc == 0) return 0;
    if (!o->mode_given) o->gen.mode = d.mode;
    if (o->gen.mode == VGPT_BEAM && !o->beams_given && d.mode == VGPT_BEAM) o->gen.beams = d.beams;
    if (!o->max_tokens_given) o->gen.max_tokens = d.max_tokens;
    if (!o->ngram_given) o->gen.no_repeat_ngram = d.no_repeat_ngram;
    if (!o->lp_given) o->gen.length_penalty = d.length_penalty;
    if (!o->stop_given) o->gen.early_stopping = d.early_stopping;
    return 0;
}

/* --verbose: the thread count in use and where the default comes from. */
static void report_threads(const cli_opts *o) {
    if (!o->verbose) return;
    int cpus = vgpt_cpu_count();
    fprintf(stderr, "vgpt-cli: threads: %d (this process may use %d CPU%s: affinity and cgroup quota)", o->threads,
            cpus, cpus == 1 ? "" : "s");
    if (!o->in_process && (o->enc_threads || o->dec_threads))
        fprintf(stderr, "; encoderd %d, decoderd %d", o->enc_threads ? o->enc_threads : o->threads,
                o->dec_threads ? o->dec_threads : o->threads);
    fputc('\n', stderr);
}

int main(int argc, char **argv) {
    vgpt_process_tune(argv);
    /* A closed stdout (`vgpt-cli | head`) is EPIPE from the write, not a
     * silent death by SIGPIPE: the run stops through its one exit path,
     * which stops the daemons and removes the private directory (exit 2).
     * The daemons get SIGPIPE's default back before their exec. */
    signal(SIGPIPE, SIG_IGN);
    cli_opts o;
    int rc = cli_parse(argc, argv, &o);
    if (rc == 1) return 0;
    if (rc) return rc;
    if ((rc = check_max_tokens(&o)) || (rc = apply_model_defaults(&o))) return rc;
    report_threads(&o);
    if (o.in_process) return cli_run_inprocess(&o, argv[0]);
    return cli_run_pipeline(&o, argv[0]);
}
