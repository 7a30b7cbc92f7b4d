/* output.c - see output.h. */
#include "output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

/* Reports a failed write once, with the errno of the write. */
static int write_failed(void) {
    int e = errno ? errno : EIO;
    fprintf(stderr, "vgpt-cli: writing results to standard output: %s\n", strerror(e));
    return -1;
}

/* TSV's escapes: the bytes that would end a line or a column, the
 * backslash that starts an escape, and NUL (only in a bad input line). */
static const char *tsv_escape(char c) {
    switch (c) {
    case '\\': return "\\\\";
    case '\t': return "\\t";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\0': return "\\0";
    default: return NULL;
    }
}

static void tsv_field(FILE *f, const char *s, size_t len) {
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        const char *esc = tsv_escape(s[i]);
        if (!esc) continue;
        fwrite(s + run, 1, i - run, f);
        fputs(esc, f);
        run = i + 1;
    }
    fwrite(s + run, 1, len - run, f);
}

static void print_tsv(FILE *f, const cli_result *r) {
    tsv_field(f, r->path, r->path_len);
    if (r->error) {
        fputs("\tERROR: ", f);
        tsv_field(f, r->error, strlen(r->error));
    } else {
        fputc('\t', f);
        tsv_field(f, r->caption, strlen(r->caption));
    }
    fputc('\n', f);
}

static void print_jsonl(FILE *f, const cli_result *r) {
    fputs("{\"path\":", f);
    vgpt_json_write_str(f, r->path, r->path_len);
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

int cli_print_result(FILE *f, out_format fmt, const cli_result *r) {
    errno = 0;
    if (fmt == FMT_TSV) print_tsv(f, r);
    else print_jsonl(f, r);
    return ferror(f) ? write_failed() : 0;
}

int cli_output_flush(FILE *f) {
    errno = 0;
    return fflush(f) || ferror(f) ? write_failed() : 0;
}

/* close() reports what a file system deferred (NFS, quotas), so the very
 * last bytes count too. */
int cli_output_close(FILE *f) {
    if (cli_output_flush(f)) {
        fclose(f);
        return -1;
    }
    errno = 0;
    return fclose(f) ? write_failed() : 0;
}

int cli_result_set_path(cli_result *r, const char *path, size_t len, const char *bad) {
    r->path = malloc(len + 1);
    if (!r->path) return -1;
    memcpy(r->path, path, len);
    r->path[len] = 0;
    r->path_len = len;
    if (bad && !(r->error = strdup(bad))) return -1;
    return 0;
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
