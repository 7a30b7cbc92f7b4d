/* output.c - see output.h. */
#include "output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"

/* Reports a failed write once, with the errno of the write. */
static int write_failed(const cli_sink *s) {
    int e = errno ? errno : EIO;
    fprintf(stderr, "vgpt-cli: writing results to %s: %s\n", s->name, strerror(e));
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

void cli_sink_stdout(cli_sink *s) {
    memset(s, 0, sizeof *s);
    s->f = stdout;
    s->name = "standard output";
}

int cli_print_result(cli_sink *s, out_format fmt, const cli_result *r) {
    errno = 0;
    if (fmt == FMT_TSV) print_tsv(s->f, r);
    else print_jsonl(s->f, r);
    if (s->sync && fflush(s->f)) return write_failed(s);
    return ferror(s->f) ? write_failed(s) : 0;
}

/* fsync(2) too reports a deferred write error (a full disk, NFS). */
static int sync_now(cli_sink *s) {
    s->synced_at = cli_now();
    errno = 0;
    return fsync(fileno(s->f)) && errno != EINVAL ? write_failed(s) : 0;
}

int cli_output_flush(cli_sink *s) {
    errno = 0;
    if (fflush(s->f) || ferror(s->f)) return write_failed(s);
    if (s->sync && cli_now() - s->synced_at >= CLI_SYNC_S) return sync_now(s);
    return 0;
}

/* close() reports what a file system deferred (NFS, quotas), so the very
 * last bytes count too. */
int cli_output_close(cli_sink *s) {
    if (cli_output_flush(s) || (s->sync && sync_now(s))) {
        fclose(s->f);
        return -1;
    }
    errno = 0;
    return fclose(s->f) ? write_failed(s) : 0;
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
