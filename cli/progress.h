/* progress.h - vgpt-cli's progress line and closing summary, on stderr.
 *
 * A run over an archive lasts days, so the line says how far it is and how
 * long is left: "12,345/1,000,000 (1.2%) 3.9 img/s ETA 2d 23h" when the
 * total is known (the input is a regular file), "12,345 done, 3.9 img/s"
 * otherwise.  On a terminal it is redrawn in place; elsewhere (journald,
 * nohup.out) it is a plain log line every --progress-interval seconds.  The
 * summary counts what was captioned, skipped (already in --output), the
 * errors by kind, the wall time and the throughput, and gives vgpt-cli's
 * own peak RSS and CPU time per line (the daemons' not included). */
#ifndef VGPT_CLI_PROGRESS_H
#define VGPT_CLI_PROGRESS_H

enum { CLI_ERR_MISSING, CLI_ERR_UNREADABLE, CLI_ERR_IMAGE, CLI_ERR_XMP, CLI_ERR_TIMEOUT, CLI_ERR_OTHER,
       CLI_ERR_KINDS };

typedef struct cli_progress {
    int mode;        /* 0 off, 1 redrawn on a terminal, 2 log lines */
    int shared_tty;  /* stdout and stderr are both terminals: erase before results */
    int drawn;       /* the line is on screen now */
    long total;      /* entries in the input, -1 = not known */
    long done;       /* results written by this run */
    long skipped;    /* entries already captioned in --output */
    long errors, kinds[CLI_ERR_KINDS];
    double t0, last, interval;
} cli_progress;

/* setting: -1 auto (on when stderr is a terminal, or always with log lines
 * when `log_default`), 0 off, 1 on.  interval_s: between log lines. */
void cli_progress_start(cli_progress *p, int setting, int log_default, double interval_s);
/* Counts one result line (error = its message, or NULL). */
void cli_progress_count(cli_progress *p, const char *error);
/* Redraws (at most 5 times a second) or logs (every interval) the line. */
void cli_progress_update(cli_progress *p);
/* Erases the progress line before result lines go to the same terminal. */
void cli_progress_clear(cli_progress *p);
/* The closing summary (only when progress is on); out_name names --output. */
void cli_progress_summary(cli_progress *p, const char *out_name, int stopped_by);

/* "1,234,567" into buf; returns buf. */
char *cli_progress_num(char *buf, long v);
/* "2d 23h", "5h 12m", "3m 20s", "45s" into buf (at least 16 bytes). */
char *cli_progress_dur(char *buf, double s);

#endif
