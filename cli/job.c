/* job.c - see job.h. */
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stop.h"

#define COUNT_CHUNK (1 << 20)

/* Entries from the input's current offset to its end, read with pread so
 * that the offset stays where it is; -1 when it is not a regular file (a
 * pipe has no total).  Counted as cli_input splits them: non-blank lines,
 * or non-empty NUL-terminated entries. */
static long count_entries(int fd, int null_sep) {
    struct stat st;
    off_t at = lseek(fd, 0, SEEK_CUR);
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || at < 0) return -1;
    char *buf = malloc(COUNT_CHUNK);
    if (!buf) return -1;
    long n = 0;
    int in_entry = 0;
    ssize_t r;
    while ((r = pread(fd, buf, COUNT_CHUNK, at)) > 0) {
        for (ssize_t i = 0; i < r; i++) {
            char c = buf[i];
            if (c == (null_sep ? '\0' : '\n')) n += in_entry, in_entry = 0;
            else if (null_sep || (c != ' ' && c != '\t' && c != '\r' && c != '\v' && c != '\f')) in_entry = 1;
        }
        at += r;
    }
    free(buf);
    return r < 0 ? -1 : n + in_entry;
}

static int open_input(cli_job *j, const cli_opts *o) {
    int fd = STDIN_FILENO;
    j->in_fd = -1;
    if (o->input) {
        fd = open(o->input, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) || S_ISDIR(st.st_mode)) {
            fprintf(stderr, "vgpt-cli: --input %s: cannot read the list of paths: %s\n", o->input,
                    fd < 0 ? strerror(errno) : "is a directory");
            if (fd >= 0) close(fd);
            return 2;
        }
        j->in_fd = fd;
    }
    cli_input_init(&j->in, fd, o->null_input);
    j->pg.total = count_entries(fd, o->null_input);
    return 0;
}

int cli_job_open(cli_job *j, const cli_opts *o) {
    vgpt_err err;
    memset(j, 0, sizeof *j);
    j->o = o;
    j->in_fd = -1;
    cli_progress_start(&j->pg, o->progress, o->output != NULL, o->progress_interval);
    if (o->output) {
        if (cli_resume_open(&j->resume, o, &j->out, &err)) {
            fprintf(stderr, "vgpt-cli: %s\n", err.msg);
            cli_resume_free(&j->resume);
            return 2;
        }
    } else {
        cli_sink_stdout(&j->out);
    }
    if (cli_xmp_init(&j->xmp, o, &err)) {
        fprintf(stderr, "vgpt-cli: %s\n", err.msg);
        cli_job_free(j);
        return 2;
    }
    if (open_input(j, o)) {
        cli_job_free(j);
        return 2;
    }
    if (o->verbose && o->output)
        fprintf(stderr, "vgpt-cli: %s: %ld results kept, %ld error lines to retry, %ld torn bytes cut\n", o->output,
                j->resume.kept, j->resume.dropped, j->resume.torn_bytes);
    cli_progress_update(&j->pg); /* on screen from the start, before the model loads */
    return 0;
}

int cli_job_next(cli_job *j, cli_entry *e, int wait) {
    for (;;) {
        if (cli_stop_requested()) return 0;
        int r = cli_input_next(&j->in, e, wait);
        if (r <= 0) return cli_stop_requested() ? 0 : r;
        if (e->bad || !cli_resume_has(&j->resume, e->path, e->len)) return 1;
        j->pg.skipped++;
    }
}

int cli_job_emit(cli_job *j, cli_result *r) {
    vgpt_err err;
    if (!r->error && j->xmp.on && cli_xmp_write(&j->xmp, j->o, r->path, r->caption, &err)) {
        free(r->caption);
        r->caption = NULL;
        r->error = strdup(err.msg);
        if (!r->error) r->error = strdup("out of memory");
    }
    cli_progress_clear(&j->pg);
    int rc = cli_print_result(&j->out, j->o->format, r);
    j->failed += r->error != NULL;
    cli_progress_count(&j->pg, r->error);
    cli_result_free(r);
    return rc;
}

int cli_job_flush(cli_job *j) {
    if (cli_output_flush(&j->out)) return -1;
    cli_progress_update(&j->pg);
    return 0;
}

int cli_job_finish(cli_job *j, int broken) {
    int read_failed = !broken && !cli_stop_requested() && cli_input_failed(&j->in);
    int write_failed = 0;
    if (!broken) { /* a broken output was reported already: no second message */
        write_failed = cli_output_close(&j->out);
        j->out.f = NULL;
    }
    cli_progress_summary(&j->pg, j->o->output, cli_stop_requested());
    cli_job_free(j);
    return broken || read_failed || write_failed ? 2 : j->failed ? 1 : 0;
}

void cli_job_free(cli_job *j) {
    if (j->out.f && j->out.f != stdout) fclose(j->out.f);
    j->out.f = NULL;
    cli_input_free(&j->in);
    if (j->in_fd >= 0) close(j->in_fd);
    j->in_fd = -1;
    cli_resume_free(&j->resume);
    cli_xmp_shutdown(&j->xmp);
}
