/* daemon.c - see daemon.h. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

double vgpt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void vgpt_log(const char *name, const char *fmt, ...) {
    char msg[VGPT_ERR_MAX + 512], stamp[32] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one entry, one line: quoted input (a path with a newline) must not
     * forge log lines, nor drive a terminal with escapes */
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    if (!getenv("JOURNAL_STREAM")) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    }
    fprintf(stderr, "%s%s[%d]: %s\n", stamp, name, (int)getpid(), msg);
}

/* The one piece of process-wide state in vgpt: the write end of the signal
 * self-pipe.  A signalfd alone is not enough because OpenBLAS starts its
 * threads before main() can block signals in them, so SIGTERM may land on
 * any thread; the handler, wherever it runs, only writes the signal number
 * into this pipe (async-signal-safe), and the event loop polls the read end. */
static int signal_pipe_wr = -1;

static void on_signal(int sig) {
    unsigned char b = (unsigned char)sig;
    int saved = errno;
    (void)!write(signal_pipe_wr, &b, 1);
    errno = saved;
}

int vgpt_signals_open(vgpt_err *err) {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC)) return vgpt_err_set(err, "pipe: %s", strerror(errno));
    signal_pipe_wr = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return fds[0];
}

int vgpt_signals_read(int fd) {
    unsigned char b;
    return read(fd, &b, 1) == 1 ? b : 0;
}

void vgpt_sd_notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    socklen_t len = sizeof sa;
    if (path[0] == '@') { /* abstract namespace */
        sa.sun_path[0] = 0;
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    (void)!sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    close(fd);
}
