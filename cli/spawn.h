/* spawn.h - the embedded pipeline: with no endpoints configured, vgpt-cli
 * starts preprocd, encoderd and decoderd itself on ipc:// sockets in a
 * private temporary directory, waits for their READY=1 (the sd_notify
 * protocol, on a socket of its own), restarts any that dies (with a
 * backoff, and within limits), and stops them (SIGTERM, then SIGKILL) when
 * done.
 *
 * Every way out of vgpt-cli stops the daemons and removes the directory:
 * a normal or error return (cli_embedded_stop), exit() (an atexit hook),
 * SIGINT, SIGTERM and SIGHUP (a handler does the same with async-signal-
 * safe calls, then vgpt-cli dies of that signal: exit status 128 + N, 130
 * for Ctrl-C, 143 for kill), and a death that runs no code at all (SIGKILL,
 * a crash): the daemons get SIGTERM from the kernel (PR_SET_PDEATHSIG) and
 * a small janitor process, which sees vgpt-cli's end of a socket close,
 * kills what is left and removes the directory. */
#ifndef VGPT_CLI_SPAWN_H
#define VGPT_CLI_SPAWN_H

#include <sys/types.h>

#include "err.h"
#include "precision.h"

#define SPAWN_MAX_ARGS 24
#define SPAWN_BACKOFF_MIN_S 0.1     /* first wait before a restart; doubles per death */
#define SPAWN_BACKOFF_MAX_S 5.0
#define SPAWN_MAX_RESTARTS 5        /* of one daemon within SPAWN_RESTART_WINDOW_S */
#define SPAWN_RESTART_WINDOW_S 60.0
#define SPAWN_MAX_EARLY_DEATHS 3    /* in a row, before READY=1: it cannot start */
#define SPAWN_N_FILES 8             /* what the private directory holds */

typedef struct cli_spawned {
    const char *name;
    char *argv[SPAWN_MAX_ARGS];
    pid_t pid;                       /* 0 = not running */
    int ready;                       /* READY=1 since the last start */
    int restarts;
    int early_deaths;                /* deaths in a row before READY=1 */
    double started_at, restart_at;   /* restart_at: when to start it again (0 = not due) */
    double backoff;                  /* the wait before the next restart */
    double recent[SPAWN_MAX_RESTARTS]; /* times of the last restarts, oldest first */
} cli_spawned;

typedef struct cli_embedded {
    char dir[256];            /* private temp dir holding the sockets */
    char ep_pre[300], ep_enc[300], ep_dec[300], ep_reply[300];
    char notify_path[300];
    char files[SPAWN_N_FILES][280]; /* removed at stop, also from a signal handler */
    int notify_fd;
    int janitor_fd;           /* our end of the janitor's socket (-1 = none) */
    pid_t janitor;
    pid_t owner;              /* vgpt-cli: a forked child never cleans up */
    int verbose;
    cli_spawned d[3];         /* preprocd, encoderd, decoderd */
    char strbuf[8][4096];     /* storage for argv strings */
} cli_embedded;

typedef struct cli_embedded_cfg {
    const char *bindir;       /* where the daemon binaries are */
    const char *model;
    const char *cache_dir;    /* NULL = no token cache */
    int enc_threads, dec_threads, batch;
    vgpt_precision precision;
    int verbose;
} cli_embedded_cfg;

/* Starts all three and waits (up to timeout_s) until each is ready.  One
 * embedded pipeline per process (the signal handler cleans up that one). */
int cli_embedded_start(cli_embedded *e, const cli_embedded_cfg *cfg, double timeout_s, vgpt_err *err);
/* Reaps daemons that exited and restarts them once their backoff has
 * passed; returns how many were restarted now (their in-flight requests are
 * lost and must be re-sent), or -1 when one keeps dying (more than
 * SPAWN_MAX_RESTARTS restarts within SPAWN_RESTART_WINDOW_S, or
 * SPAWN_MAX_EARLY_DEATHS deaths in a row before it was ready): stderr then
 * has why and the end of its log; stop the run (exit 2). */
int cli_embedded_supervise(cli_embedded *e);
/* Stops the daemons and removes the private directory. */
void cli_embedded_stop(cli_embedded *e);

#endif
