/* daemon.h - what every vgpt daemon does the same way: log lines on stderr
 * (journald adds its own timestamps under systemd), SIGTERM/SIGINT/SIGHUP as
 * bytes on a self-pipe the event loop polls, sd_notify readiness without
 * libsystemd, and a monotonic clock.  The throughput line is node.c's. */
#ifndef VGPT_DAEMON_H
#define VGPT_DAEMON_H

#include <stdint.h>

#include "err.h"

/* "name: message\n" on stderr, with a UTC timestamp when stderr is not journald. */
void vgpt_log(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Catches SIGTERM, SIGINT and SIGHUP (ignores SIGPIPE) and returns an fd
 * that becomes readable when one arrives (poll it with the sockets). */
int vgpt_signals_open(vgpt_err *err);
/* Reads one pending signal number from the fd (0 when none). */
int vgpt_signals_read(int fd);

/* Sends `state` (e.g. "READY=1", "STOPPING=1", "STATUS=...") to $NOTIFY_SOCKET
 * if set; silently does nothing otherwise. */
void vgpt_sd_notify(const char *state);

/* Monotonic seconds. */
double vgpt_now(void);

#endif
