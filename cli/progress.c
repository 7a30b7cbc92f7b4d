/* progress.c - see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "output.h"

#define REDRAW_S 0.2

static const char *const kind_names[CLI_ERR_KINDS] = {"missing", "unreadable", "not decodable", "xmp",
                                                      "timed out", "other"};

/* Sorts an error line into a kind by its wording (the engine's and the
 * daemons' messages, see lib/image*.c and cli/xmp.c). */
static int error_kind(const char *e) {
    static const struct { const char *needle; int kind; } table[] = {
        {"No such file", CLI_ERR_MISSING},     {": xmp: ", CLI_ERR_XMP},
        {"within --timeout", CLI_ERR_TIMEOUT}, {"Permission denied", CLI_ERR_UNREADABLE},
        {"not a regular file", CLI_ERR_UNREADABLE}, {"empty file", CLI_ERR_UNREADABLE},
        {"NUL byte", CLI_ERR_UNREADABLE},      {"not an image", CLI_ERR_IMAGE},
        {"unsupported", CLI_ERR_IMAGE},        {"libvips", CLI_ERR_IMAGE},
        {"pixels", CLI_ERR_IMAGE},             {"truncated", CLI_ERR_IMAGE}};
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strstr(e, table[i].needle)) return table[i].kind;
    return CLI_ERR_OTHER;
}

void cli_progress_start(cli_progress *p, int setting, int log_default, double interval_s) {
    memset(p, 0, sizeof *p);
    int tty = isatty(STDERR_FILENO);
    if (setting == 0) p->mode = 0;
    else if (tty) p->mode = 1;
    else p->mode = setting > 0 || log_default ? 2 : 0;
    /* Result lines and the progress line share one screen only when both
     * streams are terminals; then the line is erased before results and
     * redrawn after them (as apt or pv do). Files and pipes are untouched. */
    p->shared_tty = p->mode == 1 && isatty(STDOUT_FILENO);
    p->total = -1;
    p->interval = interval_s;
    p->t0 = p->last = cli_now();
}

void cli_progress_count(cli_progress *p, const char *error) {
    p->done++;
    if (!error) return;
    p->errors++;
    p->kinds[error_kind(error)]++;
}

char *cli_progress_num(char *buf, long v) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%ld", v < 0 ? -v : v), k = 0;
    if (v < 0) buf[k++] = '-';
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = 0;
    return buf;
}

char *cli_progress_dur(char *buf, double s) {
    int t = s < 0 ? 0 : s > 1e8 ? 100000000 : (int)(s + 0.5); /* over 3 years: "1157d 9h" */
    if (t >= 86400) snprintf(buf, 16, "%dd %dh", t / 86400 % 100000, t % 86400 / 3600);
    else if (t >= 3600) snprintf(buf, 16, "%dh %dm", t / 3600 % 100, t % 3600 / 60);
    else if (t >= 60) snprintf(buf, 16, "%dm %ds", t / 60 % 100, t % 60);
    else snprintf(buf, 16, "%ds", t % 100);
    return buf;
}

/* The line itself, without a line end. */
static void format_line(const cli_progress *p, char *buf, size_t n) {
    char a[32], b[32], eta[16];
    double dt = cli_now() - p->t0, rate = dt > 0 ? p->done / dt : 0;
    long at = p->done + p->skipped;
    int k;
    if (p->total >= 0) {
        k = snprintf(buf, n, "%s/%s (%.1f%%) %.1f img/s", cli_progress_num(a, at), cli_progress_num(b, p->total),
                     p->total ? 100.0 * at / p->total : 100.0, rate);
        if (rate > 0 && at < p->total && k > 0 && (size_t)k < n)
            snprintf(buf + k, n - k, " ETA %s", cli_progress_dur(eta, (p->total - at) / rate));
    } else {
        snprintf(buf, n, "%s done, %.1f img/s", cli_progress_num(a, at), rate);
    }
    if (p->errors) {
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, ", %s errors", cli_progress_num(a, p->errors));
    }
}

void cli_progress_update(cli_progress *p) {
    double now = cli_now();
    if (!p->mode || now - p->last < (p->mode == 1 ? REDRAW_S : p->interval)) return;
    char line[256];
    p->last = now;
    format_line(p, line, sizeof line);
    if (p->mode == 1) fprintf(stderr, "\r%s\033[K", line);
    else fprintf(stderr, "vgpt-cli: %s\n", line);
    p->drawn = p->mode == 1;
    fflush(stderr);
}

void cli_progress_clear(cli_progress *p) {
    if (!p->shared_tty || !p->drawn) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->drawn = 0;
}

/* This process's peak resident set (VmHWM) in KiB; -1 if unknown. */
static long peak_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

/* Microseconds of this process's own CPU time (user + system) so far: the
 * client's cost, without the daemons'. */
static double own_cpu_us(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

void cli_progress_summary(cli_progress *p, const char *out_name, int stopped_by) {
    if (!p->mode) return;
    char a[32], b[32], c[32], wall[16];
    double dt = cli_now() - p->t0;
    if (p->drawn) fputs("\r\033[K", stderr);
    fprintf(stderr, "vgpt-cli: %s: %s captioned, ", stopped_by ? "stopped" : "done", cli_progress_num(a, p->done - p->errors));
    if (out_name) fprintf(stderr, "%s skipped (already in %s), ", cli_progress_num(b, p->skipped), out_name); /* resume */
    fprintf(stderr, "%s errors", cli_progress_num(c, p->errors));
    const char *sep = " (";
    for (int i = 0; i < CLI_ERR_KINDS; i++) {
        if (!p->kinds[i]) continue;
        fprintf(stderr, "%s%s %s", sep, cli_progress_num(a, p->kinds[i]), kind_names[i]);
        sep = ", ";
    }
    long lines = p->done + p->skipped;
    fprintf(stderr, "%s; wall %s, %.2f img/s; peak RSS %.1f MiB, own CPU %.1f us/line\n", p->errors ? ")" : "",
            cli_progress_dur(wall, dt), dt > 0 ? p->done / dt : 0.0, peak_rss_kib() / 1024.0,
            lines ? own_cpu_us() / lines : 0.0);
    p->drawn = 0;
    fflush(stderr);
}
