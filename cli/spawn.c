/* spawn.c - see spawn.h. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"

static pid_t start_one(cli_embedded *e, cli_spawned *s, int verbose) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    /* child: die with vgpt-cli, report readiness to it, keep its log aside */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    setenv("NOTIFY_SOCKET", e->notify_path, 1);
    if (!verbose) {
        char log[400];
        snprintf(log, sizeof log, "%s/%s.log", e->dir, s->name);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(s->argv[0], s->argv);
    fprintf(stderr, "vgpt-cli: cannot run %s: %s\n", s->argv[0], strerror(errno));
    _exit(127);
}

static void log_tail(const cli_embedded *e, const char *name) {
    char path[400], line[1024];
    snprintf(path, sizeof path, "%s/%s.log", e->dir, name);
    FILE *f = fopen(path, "r");
    if (!f) return;
    long n = 0;
    while (fgets(line, sizeof line, f)) n++;
    rewind(f);
    for (long i = 0; fgets(line, sizeof line, f); i++)
        if (i >= n - 5) fprintf(stderr, "  %s: %s", name, line);
    fclose(f);
}

/* Reads one notification; returns the sender's pid when it says READY=1. */
static pid_t read_notify(int fd) {
    char buf[256], ctrl[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {buf, sizeof buf - 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n <= 0) return 0;
    buf[n] = 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (!c || c->cmsg_type != SCM_CREDENTIALS || !strstr(buf, "READY=1")) return 0;
    struct ucred cred;
    memcpy(&cred, CMSG_DATA(c), sizeof cred);
    return cred.pid;
}

static int open_notify(cli_embedded *e, vgpt_err *err) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(e->notify_path, sizeof e->notify_path, "%s/notify", e->dir);
    if (strlen(e->notify_path) >= sizeof sa.sun_path)
        return vgpt_err_set(err, "temporary directory path too long for a unix socket: %s", e->dir);
    memcpy(sa.sun_path, e->notify_path, strlen(e->notify_path) + 1);
    int one = 1;
    e->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (e->notify_fd < 0 || bind(e->notify_fd, (struct sockaddr *)&sa, sizeof sa) ||
        setsockopt(e->notify_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one))
        return vgpt_err_set(err, "cannot create the readiness socket %s: %s", e->notify_path, strerror(errno));
    return 0;
}

/* argv strings live in e->strbuf so a restart can reuse them. */
static char *keep(cli_embedded *e, int slot, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static char *keep(cli_embedded *e, int slot, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->strbuf[slot], sizeof e->strbuf[slot], fmt, ap);
    va_end(ap);
    return e->strbuf[slot];
}

static void build_argv(cli_embedded *e, const cli_embedded_cfg *c) {
    static const char *names[3] = {"preprocd", "encoderd", "decoderd"};
    for (int i = 0; i < 3; i++) e->d[i].name = names[i];
    char *pre = keep(e, 0, "%s/preprocd", c->bindir), *enc = keep(e, 1, "%s/encoderd", c->bindir);
    char *dec = keep(e, 2, "%s/decoderd", c->bindir);
    char *et = keep(e, 3, "%d", c->enc_threads), *dt = keep(e, 4, "%d", c->dec_threads);
    char *b = keep(e, 5, "%d", c->batch);
    char *model = (char *)c->model, *stats = "0";
    char **a = e->d[0].argv;
    int n = 0;
    a[n++] = pre; a[n++] = "--listen"; a[n++] = e->ep_pre; a[n++] = "--next"; a[n++] = e->ep_enc;
    a[n++] = "--stats-interval"; a[n++] = stats; a[n] = NULL;
    a = e->d[1].argv;
    n = 0;
    a[n++] = enc; a[n++] = "--listen"; a[n++] = e->ep_enc; a[n++] = "--next"; a[n++] = e->ep_dec;
    a[n++] = "--model"; a[n++] = model; a[n++] = "--threads"; a[n++] = et; a[n++] = "--batch"; a[n++] = b;
    a[n++] = "--stats-interval"; a[n++] = stats;
    if (c->cache_dir) {
        a[n++] = "--cache";
        a[n++] = keep(e, 6, "%s", c->cache_dir);
    }
    a[n] = NULL;
    a = e->d[2].argv;
    n = 0;
    a[n++] = dec; a[n++] = "--listen"; a[n++] = e->ep_dec; a[n++] = "--model"; a[n++] = model;
    a[n++] = "--threads"; a[n++] = dt; a[n++] = "--stats-interval"; a[n++] = stats; a[n] = NULL;
}

int cli_embedded_start(cli_embedded *e, const cli_embedded_cfg *cfg, double timeout_s, vgpt_err *err) {
    memset(e, 0, sizeof *e);
    e->notify_fd = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(e->dir, sizeof e->dir, "%s/vgpt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(e->dir)) return vgpt_err_set(err, "cannot create a private directory in %s: %s", e->dir, strerror(errno));
    snprintf(e->ep_pre, sizeof e->ep_pre, "ipc://%s/pre", e->dir);
    snprintf(e->ep_enc, sizeof e->ep_enc, "ipc://%s/enc", e->dir);
    snprintf(e->ep_dec, sizeof e->ep_dec, "ipc://%s/dec", e->dir);
    snprintf(e->ep_reply, sizeof e->ep_reply, "ipc://%s/reply", e->dir);
    if (open_notify(e, err)) return -1;
    build_argv(e, cfg);
    int ready[3] = {0, 0, 0}, n_ready = 0;
    for (int i = 0; i < 3; i++) e->d[i].pid = start_one(e, &e->d[i], cfg->verbose);
    double deadline = vgpt_now() + timeout_s;
    while (n_ready < 3) {
        struct pollfd p = {e->notify_fd, POLLIN, 0};
        poll(&p, 1, 100);
        pid_t who;
        while ((who = read_notify(e->notify_fd)) > 0)
            for (int i = 0; i < 3; i++)
                if (e->d[i].pid == who && !ready[i]) ready[i] = 1, n_ready++;
        for (int i = 0; i < 3; i++) {
            int status;
            if (ready[i] || waitpid(e->d[i].pid, &status, WNOHANG) != e->d[i].pid) continue;
            e->d[i].pid = 0;
            log_tail(e, e->d[i].name);
            return vgpt_err_set(err, "%s exited during start-up (status %d)", e->d[i].name,
                                WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
        if (vgpt_now() > deadline) return vgpt_err_set(err, "the pipeline was not ready within %.0f s", timeout_s);
    }
    return 0;
}

int cli_embedded_supervise(cli_embedded *e) {
    int restarted = 0, status;
    for (int i = 0; i < 3; i++) {
        if (e->d[i].pid <= 0 || waitpid(e->d[i].pid, &status, WNOHANG) != e->d[i].pid) continue;
        fprintf(stderr, "vgpt-cli: %s (pid %d) died (%s %d); restarting it\n", e->d[i].name, (int)e->d[i].pid,
                WIFSIGNALED(status) ? "signal" : "status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        e->d[i].pid = start_one(e, &e->d[i], 0);
        e->d[i].restarts++;
        restarted++;
    }
    pid_t who;
    while ((who = read_notify(e->notify_fd)) > 0) { /* late READY=1 of restarted daemons */
    }
    return restarted;
}

void cli_embedded_stop(cli_embedded *e) {
    for (int i = 0; i < 3; i++)
        if (e->d[i].pid > 0) kill(e->d[i].pid, SIGTERM);
    double deadline = vgpt_now() + 5;
    for (int i = 0; i < 3; i++) {
        while (e->d[i].pid > 0 && waitpid(e->d[i].pid, NULL, WNOHANG) == 0) {
            if (vgpt_now() > deadline) kill(e->d[i].pid, SIGKILL);
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        e->d[i].pid = 0;
    }
    if (e->notify_fd >= 0) close(e->notify_fd);
    if (!e->dir[0]) return;
    const char *files[] = {"pre", "enc", "dec", "reply", "notify", "preprocd.log", "encoderd.log", "decoderd.log"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s/%s", e->dir, files[i]);
        unlink(p);
    }
    rmdir(e->dir);
}
