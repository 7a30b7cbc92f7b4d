/* resume.c - see resume.h. */
#include "resume.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

#define OUT_BUF (1 << 16)

/* FNV-1a, then a final mix (splitmix64); never 0, the empty slot. */
static uint64_t path_hash(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    h ^= h >> 30, h *= 0xbf58476d1ce4e5b9ull, h ^= h >> 27, h *= 0x94d049bb133111ebull, h ^= h >> 31;
    return h ? h : 1;
}

static int set_add(cli_resume *r, uint64_t h) {
    if (2 * (r->n + 1) > r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        uint64_t *s = calloc(cap, sizeof *s);
        if (!s) return -1;
        for (size_t i = 0; i < r->cap; i++) {
            if (!r->slots[i]) continue;
            size_t j = r->slots[i] & (cap - 1);
            while (s[j]) j = (j + 1) & (cap - 1);
            s[j] = r->slots[i];
        }
        free(r->slots);
        r->slots = s, r->cap = cap;
    }
    size_t j = h & (r->cap - 1);
    while (r->slots[j] && r->slots[j] != h) j = (j + 1) & (r->cap - 1);
    r->n += !r->slots[j];
    r->slots[j] = h;
    return 0;
}

int cli_resume_has(const cli_resume *r, const char *path, size_t len) {
    if (!r || !r->n) return 0;
    uint64_t h = path_hash(path, len);
    for (size_t j = h & (r->cap - 1); r->slots[j]; j = (j + 1) & (r->cap - 1))
        if (r->slots[j] == h) return 1;
    return 0;
}

void cli_resume_free(cli_resume *r) {
    free(r->slots);
    memset(r, 0, sizeof *r);
}

/* A TSV line's first column, unescaped in place (output.c's escapes). */
static int tsv_path(char *line, size_t n, size_t *plen, int *is_error) {
    char *tab = memchr(line, '\t', n);
    if (!tab) return -1;
    size_t k = 0;
    for (char *s = line; s < tab; s++) {
        if (*s != '\\') { line[k++] = *s; continue; }
        if (++s == tab) return -1;
        const char *from = "\\tnr0", *to = "\\\t\n\r";
        const char *f = strchr(from, *s);
        if (!f || !*s) return -1;
        line[k++] = to[f - from]; /* "0" maps to the NUL after the string */
    }
    *plen = k;
    *is_error = (size_t)(line + n - tab) > 8 && !memcmp(tab + 1, "ERROR: ", 7);
    return 0;
}

/* Parses one whole result line (without its newline): the path's hash and
 * whether it is an error line; -1 when it is no result line of fmt. */
static int parse_line(char *line, size_t n, out_format fmt, uint64_t *h, int *is_error) {
    if (fmt == FMT_TSV) {
        size_t plen;
        if (tsv_path(line, n, &plen, is_error)) return -1;
        *h = path_hash(line, plen);
        return 0;
    }
    vgpt_json_doc *doc;
    if (vgpt_json_parse(line, n, "line", &doc, NULL)) return -1;
    const vgpt_json *root = vgpt_json_root(doc), *p = vgpt_json_get(root, "path");
    int ok = p && p->type == VGPT_JSON_STRING && (vgpt_json_get(root, "caption") || vgpt_json_get(root, "error"));
    if (ok) {
        *h = path_hash(p->str, p->len);
        *is_error = vgpt_json_get(root, "error") != NULL;
    }
    vgpt_json_free(doc);
    return ok ? 0 : -1;
}

/* Pass one: the set, the count of error lines, and where the last whole
 * line ends. */
static int scan(cli_resume *r, FILE *f, const cli_opts *o, off_t *good_end, vgpt_err *err) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    *good_end = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') { r->torn_bytes = n; break; }
        lineno++;
        uint64_t h;
        int is_error;
        if (parse_line(line, (size_t)n - 1, o->format, &h, &is_error)) {
            rc = vgpt_err_set(err, "%s:%ld: not a vgpt-cli %s result line (expected %s); refusing to append to "
                              "this file (is it the right --output, and the same --format?)", o->output, lineno,
                              o->format == FMT_TSV ? "tsv" : "jsonl",
                              o->format == FMT_TSV ? "PATH<TAB>CAPTION" : "{\"path\":..,\"caption\":..}");
            break;
        }
        *good_end += n;
        if (is_error && o->retry_errors) { r->dropped++; continue; }
        if (set_add(r, h)) { rc = vgpt_err_set(err, "out of memory reading %s", o->output); break; }
        r->kept++;
    }
    if (!rc && ferror(f)) rc = vgpt_err_set(err, "%s: read error: %s", o->output, strerror(errno));
    free(line);
    return rc;
}

/* Pass two, when error lines are to be retried: the file without them,
 * written beside it, synced and renamed over it (a kill leaves either). */
static int drop_errors(const cli_opts *o, FILE *in, vgpt_err *err) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.vgpt-tmp", o->output);
    struct stat st;
    FILE *out = fopen(tmp, "w");
    if (!out) return vgpt_err_set(err, "%s: cannot create (to rewrite %s without its error lines): %s", tmp,
                                  o->output, strerror(errno));
    if (!fstat(fileno(in), &st)) fchmod(fileno(out), st.st_mode & 07777);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    rewind(in);
    while ((n = getline(&line, &cap, in)) > 0 && line[n - 1] == '\n') {
        uint64_t h;
        int is_error = 0;
        char *copy = malloc((size_t)n);
        if (copy) memcpy(copy, line, (size_t)n);
        if (copy && !parse_line(copy, (size_t)n - 1, o->format, &h, &is_error) && is_error) { free(copy); continue; }
        free(copy);
        fwrite(line, 1, (size_t)n, out);
    }
    free(line);
    int bad = fflush(out) || ferror(out) || fsync(fileno(out));
    if (fclose(out) || bad || rename(tmp, o->output)) {
        int e = errno;
        unlink(tmp);
        return vgpt_err_set(err, "%s: cannot rewrite it without its error lines: %s", o->output, strerror(e));
    }
    return 0;
}

/* Reads what is there (if anything) and repairs it. */
static int load(cli_resume *r, const cli_opts *o, vgpt_err *err) {
    FILE *f = fopen(o->output, "r");
    if (!f) return errno == ENOENT ? 0 : vgpt_err_set(err, "%s: cannot read: %s", o->output, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return vgpt_err_set(err, "%s: not a regular file (expected the results file to write or resume)", o->output);
    }
    off_t good_end;
    int rc = scan(r, f, o, &good_end, err);
    if (!rc && r->dropped) rc = drop_errors(o, f, err);
    else if (!rc && r->torn_bytes && truncate(o->output, good_end))
        rc = vgpt_err_set(err, "%s: cannot cut off its torn last line: %s", o->output, strerror(errno));
    fclose(f);
    return rc;
}

int cli_resume_open(cli_resume *r, const cli_opts *o, cli_sink *s, vgpt_err *err) {
    memset(r, 0, sizeof *r);
    memset(s, 0, sizeof *s);
    if (load(r, o, err)) return -1;
    int fd = open(o->output, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0 || !(s->f = fdopen(fd, "a"))) {
        if (fd >= 0) close(fd);
        return vgpt_err_set(err, "%s: cannot open for appending results: %s", o->output, strerror(errno));
    }
    setvbuf(s->f, NULL, _IOFBF, OUT_BUF);
    s->name = o->output;
    s->sync = 1;
    s->synced_at = cli_now();
    return 0;
}
