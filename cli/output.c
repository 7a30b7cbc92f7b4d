/* output.c - see output.h. */
#include "output.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

void cli_print_result(FILE *f, out_format fmt, const cli_result *r) {
    if (fmt == FMT_TSV) {
        if (r->error)
            fprintf(f, "%s\tERROR: %s\n", r->path, r->error);
        else
            fprintf(f, "%s\t%s\n", r->path, r->caption);
        return;
    }
    fputs("{\"path\":", f);
    vgpt_json_write_str(f, r->path, strlen(r->path));
    if (r->error) {
        fputs(",\"error\":", f);
        vgpt_json_write_str(f, r->error, strlen(r->error));
    } else {
        fputs(",\"caption\":", f);
        vgpt_json_write_str(f, r->caption, strlen(r->caption));
        fputs(",\"tokens\":[", f);
        for (int i = 0; i < r->n_tokens; i++) fprintf(f, i ? ",%d" : "%d", r->tokens[i]);
        fputc(']', f);
    }
    fputs("}\n", f);
}

void cli_result_free(cli_result *r) {
    free(r->path);
    free(r->caption);
    free(r->tokens);
    free(r->error);
    memset(r, 0, sizeof *r);
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, int setting) {
    memset(p, 0, sizeof *p);
    p->enabled = setting < 0 ? isatty(STDERR_FILENO) : setting;
    /* Result lines and the progress line share one screen only when both
     * streams are terminals; then the line is erased before results and
     * redrawn after them (as apt or pv do). Files and pipes are untouched. */
    p->shared_tty = p->enabled && isatty(STDERR_FILENO) && isatty(STDOUT_FILENO);
    p->t0 = cli_now();
    cli_progress_update(p, 0); /* on screen from the start, before the model loads */
}

void cli_progress_clear(cli_progress *p) {
    if (!p->shared_tty || !p->drawn) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->drawn = 0;
}

void cli_progress_update(cli_progress *p, int final) {
    if (!p->enabled) return;
    double dt = cli_now() - p->t0;
    fprintf(stderr, "\r%ld done, %ld errors, %.2f images/s, %.0f s%s", p->done, p->errors,
            dt > 0 ? p->done / dt : 0.0, dt, p->shared_tty ? "\033[K" : "");
    p->drawn = !final;
    if (final) fputc('\n', stderr);
    fflush(stderr);
}
