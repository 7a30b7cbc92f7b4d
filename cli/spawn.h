/* spawn.h - the embedded pipeline: with no endpoints configured, vgpt-cli
 * starts preprocd, encoderd and decoderd itself on ipc:// sockets in a
 * private temporary directory, waits for their READY=1 (the sd_notify
 * protocol, on a socket of its own), restarts any that dies, and stops them
 * (SIGTERM, then SIGKILL) when done. */
#ifndef VGPT_CLI_SPAWN_H
#define VGPT_CLI_SPAWN_H

#include <sys/types.h>

#include "err.h"

#define SPAWN_MAX_ARGS 24

typedef struct cli_spawned {
    const char *name;
    char *argv[SPAWN_MAX_ARGS];
    pid_t pid;
    int restarts;
} cli_spawned;

typedef struct cli_embedded {
    char dir[256];            /* private temp dir holding the sockets */
    char ep_pre[300], ep_enc[300], ep_dec[300], ep_reply[300];
    char notify_path[300];
    int notify_fd;
    cli_spawned d[3];             /* preprocd, encoderd, decoderd */
    char strbuf[8][4096];     /* storage for argv strings */
} cli_embedded;

typedef struct cli_embedded_cfg {
    const char *bindir;       /* where the daemon binaries are */
    const char *model;
    const char *cache_dir;    /* NULL = no token cache */
    int enc_threads, dec_threads, batch;
    int verbose;
} cli_embedded_cfg;

/* Starts all three and waits (up to timeout_s) until each is ready. */
int cli_embedded_start(cli_embedded *e, const cli_embedded_cfg *cfg, double timeout_s, vgpt_err *err);
/* Restarts daemons that exited; returns how many were restarted (their
 * in-flight requests are lost and must be re-sent). */
int cli_embedded_supervise(cli_embedded *e);
void cli_embedded_stop(cli_embedded *e);

#endif
