/* spawn.c - see spawn.h. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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

#define STOP_GRACE_S 5.0    /* a normal stop: SIGTERM, SIGKILL after this */
#define SIGNAL_GRACE_S 2.0  /* after Ctrl-C or kill the user is waiting: less */
#define JANITOR_GRACE_S 3.0 /* after vgpt-cli died: the kernel sent SIGTERM already */
#define LOG_FILE 5          /* e->files[LOG_FILE + i] is daemon i's log */

static const char *const file_names[SPAWN_N_FILES] = {"pre", "enc", "dec", "reply", "notify",
                                                      "preprocd.log", "encoderd.log", "decoderd.log"};
static const int spawn_signals[3] = {SIGINT, SIGTERM, SIGHUP};

/* The one embedded pipeline a signal or exit() must clean up, and whether
 * it is being torn down (then nothing is started any more). */
static cli_embedded *volatile spawn_live;
static atomic_int spawn_stopping;

static void spawn_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Blocks the signals the handler takes (around a fork, so that a child is
 * never left unrecorded); old receives the previous mask. */
static void spawn_block(sigset_t *old) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < 3; i++) sigaddset(&set, spawn_signals[i]);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

/* --- stopping: async-signal-safe calls only (the signal handler's path) --- */

/* 1 when pid has exited (and is reaped now) or is no child of ours. */
static int spawn_reaped(pid_t pid) {
    pid_t r = waitpid(pid, NULL, WNOHANG);
    return r == pid || (r < 0 && errno == ECHILD);
}

/* SIGTERM to every daemon; SIGKILL to those still there after grace_s. */
static void spawn_kill_all(cli_embedded *e, double grace_s) {
    for (int i = 0; i < 3; i++)
        if (e->d[i].pid > 0) kill(e->d[i].pid, SIGTERM);
    double deadline = vgpt_now() + grace_s;
    for (int i = 0; i < 3; i++) {
        while (e->d[i].pid > 0 && !spawn_reaped(e->d[i].pid)) {
            if (vgpt_now() > deadline) {
                kill(e->d[i].pid, SIGKILL);
                waitpid(e->d[i].pid, NULL, 0);
                break;
            }
            spawn_sleep_ms(10);
        }
        e->d[i].pid = 0;
    }
}

static void spawn_remove_dir(cli_embedded *e) {
    if (!e->dir[0]) return;
    for (int i = 0; i < SPAWN_N_FILES; i++)
        if (e->files[i][0]) unlink(e->files[i]);
    rmdir(e->dir);
    e->dir[0] = 0;
}

/* Daemons stopped, directory removed, and the janitor told that all is done
 * (it sees our end of its socket close, then finds no directory). */
static void spawn_teardown(cli_embedded *e, double grace_s) {
    atomic_store(&spawn_stopping, 1);
    spawn_kill_all(e, grace_s);
    if (e->notify_fd >= 0) close(e->notify_fd);
    e->notify_fd = -1;
    spawn_remove_dir(e);
    if (e->janitor_fd >= 0) close(e->janitor_fd);
    e->janitor_fd = -1;
}

/* SIGINT, SIGTERM, SIGHUP: clean up, then die of the signal so that the
 * exit status says so (128 + N).  A second signal, or one that lands on
 * another thread while the first is being handled, kills at once: the
 * janitor then finishes the cleanup. */
static void spawn_on_signal(int sig) {
    int saved = errno;
    cli_embedded *e = spawn_live;
    if (e && getpid() == e->owner && !atomic_exchange(&spawn_stopping, 1)) spawn_teardown(e, SIGNAL_GRACE_S);
    signal(sig, SIG_DFL);
    raise(sig); /* delivered when the handler returns */
    errno = saved;
}

static void spawn_atexit(void) {
    if (spawn_live) cli_embedded_stop(spawn_live);
}

/* Handlers for the signals that were not ignored when vgpt-cli started (a
 * background job of a script ignores SIGINT, nohup SIGHUP: keep that), and
 * the atexit hook, once. */
static void spawn_install(cli_embedded *e) {
    static int hooked;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = spawn_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) sigaddset(&sa.sa_mask, spawn_signals[i]);
    atomic_store(&spawn_stopping, 0);
    spawn_live = e;
    for (int i = 0; i < 3; i++)
        if (!sigaction(spawn_signals[i], NULL, &old) && old.sa_handler != SIG_IGN)
            sigaction(spawn_signals[i], &sa, NULL);
    if (!hooked++) atexit(spawn_atexit);
}

/* --- the janitor: outlives a vgpt-cli that could run no cleanup ---------- */

/* "/proc/PID/cmdline" without stdio (a fork of a threaded process). */
static void spawn_cmdline_path(char *buf, pid_t pid) {
    char digits[16];
    int n = 0;
    do digits[n++] = (char)('0' + pid % 10); while ((pid /= 10) && n < 15);
    memcpy(buf, "/proc/", 6);
    for (int i = 0; i < n; i++) buf[6 + i] = digits[n - 1 - i];
    memcpy(buf + 6 + n, "/cmdline", 9);
}

/* 1 while pid runs one of this pipeline's daemons: its argv names our
 * directory (a pid the kernel gave to someone else does not). */
static int spawn_is_ours(const cli_embedded *e, pid_t pid) {
    char path[40], buf[4096];
    spawn_cmdline_path(path, pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) close(fd);
    if (n <= 0) return 0;
    for (ssize_t i = 0; i < n; i++)
        if (!buf[i]) buf[i] = ' ';
    buf[n] = 0;
    return strstr(buf, e->dir) != NULL;
}

static void spawn_janitor_kill(const cli_embedded *e, const pid_t *pids) {
    for (int i = 0; i < 3; i++)
        if (pids[i] > 0 && spawn_is_ours(e, pids[i])) kill(pids[i], SIGTERM);
    double deadline = vgpt_now() + JANITOR_GRACE_S;
    for (int i = 0; i < 3; i++) {
        while (pids[i] > 0 && spawn_is_ours(e, pids[i]) && vgpt_now() < deadline) spawn_sleep_ms(20);
        if (pids[i] > 0 && spawn_is_ours(e, pids[i])) kill(pids[i], SIGKILL);
    }
}

/* Reads {slot, pid} messages until vgpt-cli's end closes (however it
 * ended); then, unless vgpt-cli removed the directory itself, stops what
 * is left of the daemons and removes it. */
static void spawn_janitor_main(cli_embedded *e, int fd) {
    for (int i = 0; i < 3; i++) signal(spawn_signals[i], SIG_IGN); /* Ctrl-C reaches the whole process group */
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    prctl(PR_SET_NAME, "vgpt-janitor");
    int null = open("/dev/null", O_RDWR);
    for (int i = 0; i < 3 && null >= 0; i++) dup2(null, i); /* a pipe or $(...) must not wait for us */
    pid_t pids[3] = {0, 0, 0};
    int msg[2];
    for (;;) {
        ssize_t r = read(fd, msg, sizeof msg);
        if (r == (ssize_t)sizeof msg && msg[0] >= 0 && msg[0] < 3) pids[msg[0]] = msg[1];
        if (r == 0 || (r < 0 && errno != EINTR)) break;
    }
    if (access(e->dir, F_OK) == 0) {
        spawn_janitor_kill(e, pids);
        spawn_remove_dir(e);
    }
    _exit(0);
}

static int spawn_janitor_start(cli_embedded *e, vgpt_err *err) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
        return vgpt_err_set(err, "cannot create the janitor's socket: %s", strerror(errno));
    sigset_t old;
    spawn_block(&old);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        spawn_janitor_main(e, sv[1]);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return vgpt_err_set(err, "cannot start the janitor process: fork: %s", strerror(fork_errno));
    }
    e->janitor = pid;
    e->janitor_fd = sv[0];
    return 0;
}

/* Tells the janitor which pid runs daemon slot i now (0 = none). */
static void spawn_tell_janitor(cli_embedded *e, int i, pid_t pid) {
    int msg[2] = {i, (int)pid};
    if (e->janitor_fd >= 0) (void)!send(e->janitor_fd, msg, sizeof msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* --- starting and supervising ------------------------------------------- */

/* In the child: die with vgpt-cli (the kernel's SIGTERM when it dies,
 * however it dies; PR_SET_PDEATHSIG survives the exec, and the parent check
 * covers a vgpt-cli that died before it was set), keep the log aside, and
 * keep off the terminal's stdin and the results' stdout. */
static void spawn_child(cli_embedded *e, int i, pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    for (int k = 0; k < 3; k++) signal(spawn_signals[k], SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) dup2(null, STDIN_FILENO), dup2(null, STDOUT_FILENO);
    if (null > STDERR_FILENO) close(null);
    if (!e->verbose) {
        int fd = open(e->files[LOG_FILE + i], O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) dup2(fd, STDERR_FILENO), close(fd);
    }
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    execv(e->d[i].argv[0], e->d[i].argv);
    fprintf(stderr, "vgpt-cli: cannot run %s: %s\n", e->d[i].argv[0], strerror(errno));
    _exit(127);
}

/* Starts daemon i; its pid, or 0 when tearing down, -1 when fork failed. */
static pid_t spawn_start_one(cli_embedded *e, int i) {
    cli_spawned *s = &e->d[i];
    if (atomic_load(&spawn_stopping)) return 0;
    sigset_t old;
    spawn_block(&old);
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) spawn_child(e, i, parent);
    int fork_errno = errno;
    if (pid > 0) {
        s->pid = pid;
        s->ready = 0;
        s->started_at = vgpt_now();
        spawn_tell_janitor(e, i, pid);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = fork_errno;
    return pid;
}

static void log_tail(const cli_embedded *e, int i) {
    char line[1024];
    FILE *f = fopen(e->files[LOG_FILE + i], "r");
    if (!f) return;
    long n = 0;
    while (fgets(line, sizeof line, f)) n++;
    rewind(f);
    for (long k = 0; fgets(line, sizeof line, f); k++)
        if (k >= n - 5) fprintf(stderr, "  %s: %s", e->d[i].name, line);
    fclose(f);
}

/* Reads one notification: the sender's pid when it says READY=1, 0 for
 * another one, -1 when none is waiting. */
static pid_t read_notify(int fd) {
    char buf[256], ctrl[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {buf, sizeof buf - 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
    ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (n < 0) return -1;
    buf[n] = 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    if (!c || c->cmsg_type != SCM_CREDENTIALS || !strstr(buf, "READY=1")) return 0;
    struct ucred cred;
    memcpy(&cred, CMSG_DATA(c), sizeof cred);
    return cred.pid;
}

/* Marks the daemons that said READY=1; returns how many did. */
static int spawn_read_ready(cli_embedded *e) {
    pid_t who;
    int n = 0;
    while ((who = read_notify(e->notify_fd)) >= 0)
        for (int i = 0; i < 3; i++)
            if (who && e->d[i].pid == who && !e->d[i].ready) {
                e->d[i].ready = 1;
                e->d[i].early_deaths = 0;
                n++;
            }
    return n;
}

static int open_notify(cli_embedded *e, vgpt_err *err) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
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
    char *model = (char *)c->model, *stats = "0", *prec = (char *)vgpt_precision_name(c->precision);
    char **a = e->d[0].argv;
    int n = 0;
    a[n++] = pre; a[n++] = "--listen"; a[n++] = e->ep_pre; a[n++] = "--next"; a[n++] = e->ep_enc;
    a[n++] = "--stats-interval"; a[n++] = stats; a[n] = NULL;
    a = e->d[1].argv;
    n = 0;
    a[n++] = enc; a[n++] = "--listen"; a[n++] = e->ep_enc; a[n++] = "--next"; a[n++] = e->ep_dec;
    a[n++] = "--model"; a[n++] = model; a[n++] = "--threads"; a[n++] = et; a[n++] = "--batch"; a[n++] = b;
    a[n++] = "--stats-interval"; a[n++] = stats; a[n++] = "--precision"; a[n++] = prec;
    if (c->cache_dir) {
        a[n++] = "--cache";
        a[n++] = keep(e, 6, "%s", c->cache_dir);
    }
    a[n] = NULL;
    a = e->d[2].argv;
    n = 0;
    a[n++] = dec; a[n++] = "--listen"; a[n++] = e->ep_dec; a[n++] = "--model"; a[n++] = model;
    a[n++] = "--threads"; a[n++] = dt; a[n++] = "--stats-interval"; a[n++] = stats;
    a[n++] = "--precision"; a[n++] = prec; a[n] = NULL;
}

/* The private directory and the names of everything it will hold. */
static int spawn_make_dir(cli_embedded *e, vgpt_err *err) {
    const char *tmp = getenv("TMPDIR");
    snprintf(e->dir, sizeof e->dir, "%s/vgpt-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(e->dir)) {
        e->dir[0] = 0;
        return vgpt_err_set(err, "cannot create a private directory in %s%s: %s", tmp && *tmp ? "TMPDIR=" : "",
                            tmp && *tmp ? tmp : "/tmp", strerror(errno));
    }
    char dir[sizeof e->dir]; /* a copy: GCC cannot tell that e->dir and e->files never overlap */
    memcpy(dir, e->dir, sizeof dir);
    for (int i = 0; i < SPAWN_N_FILES; i++) snprintf(e->files[i], sizeof e->files[i], "%s/%s", dir, file_names[i]);
    snprintf(e->ep_pre, sizeof e->ep_pre, "ipc://%s", e->files[0]);
    snprintf(e->ep_enc, sizeof e->ep_enc, "ipc://%s", e->files[1]);
    snprintf(e->ep_dec, sizeof e->ep_dec, "ipc://%s", e->files[2]);
    snprintf(e->ep_reply, sizeof e->ep_reply, "ipc://%s", e->files[3]);
    snprintf(e->notify_path, sizeof e->notify_path, "%s", e->files[4]);
    return 0;
}

/* Waits until all three said READY=1; a daemon that exits first fails the start. */
static int spawn_wait_ready(cli_embedded *e, double timeout_s, vgpt_err *err) {
    double deadline = vgpt_now() + timeout_s;
    for (;;) {
        spawn_read_ready(e);
        if (e->d[0].ready && e->d[1].ready && e->d[2].ready) return 0;
        for (int i = 0; i < 3; i++) {
            int status;
            if (e->d[i].ready || waitpid(e->d[i].pid, &status, WNOHANG) != e->d[i].pid) continue;
            e->d[i].pid = 0;
            spawn_tell_janitor(e, i, 0);
            log_tail(e, i);
            return vgpt_err_set(err, "%s exited during start-up (status %d)", e->d[i].name,
                                WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        }
        if (vgpt_now() > deadline) return vgpt_err_set(err, "the pipeline was not ready within %.0f s", timeout_s);
        struct pollfd p = {e->notify_fd, POLLIN, 0};
        poll(&p, 1, 100);
    }
}

static int spawn_start_all(cli_embedded *e, const cli_embedded_cfg *cfg, double timeout_s, vgpt_err *err) {
    if (spawn_make_dir(e, err) || open_notify(e, err) || spawn_janitor_start(e, err)) return -1;
    build_argv(e, cfg);
    if (setenv("NOTIFY_SOCKET", e->notify_path, 1)) /* for the daemons: set here, not between fork and exec */
        return vgpt_err_set(err, "cannot set NOTIFY_SOCKET: %s", strerror(errno));
    for (int i = 0; i < 3; i++) {
        e->d[i].backoff = SPAWN_BACKOFF_MIN_S;
        if (spawn_start_one(e, i) <= 0) return vgpt_err_set(err, "cannot start %s: fork: %s", e->d[i].name, strerror(errno));
    }
    return spawn_wait_ready(e, timeout_s, err);
}

int cli_embedded_start(cli_embedded *e, const cli_embedded_cfg *cfg, double timeout_s, vgpt_err *err) {
    memset(e, 0, sizeof *e);
    e->notify_fd = e->janitor_fd = -1;
    e->owner = getpid();
    e->verbose = cfg->verbose;
    spawn_install(e);
    if (!spawn_start_all(e, cfg, timeout_s, err)) return 0;
    cli_embedded_stop(e); /* nothing is left behind, whatever the caller does */
    return -1;
}

/* Restarts of daemon s within the last SPAWN_RESTART_WINDOW_S. */
static int spawn_recent(const cli_spawned *s, double now) {
    int n = 0;
    for (int k = 0; k < SPAWN_MAX_RESTARTS; k++) n += s->recent[k] > 0 && now - s->recent[k] < SPAWN_RESTART_WINDOW_S;
    return n;
}

/* Daemon i exited with status (from waitpid; -1: it could not be started):
 * schedules its restart after the backoff, or returns -1 when it keeps
 * dying (said on stderr, with the end of its log). */
static int spawn_died(cli_embedded *e, int i, int status, double now) {
    cli_spawned *s = &e->d[i];
    char how[64];
    if (status < 0) snprintf(how, sizeof how, "could not be started: %s", strerror(errno));
    else snprintf(how, sizeof how, "died (%s %d)", WIFSIGNALED(status) ? "signal" : "status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    int early = !s->ready;
    if (early) s->early_deaths++;
    else if (now - s->started_at >= SPAWN_RESTART_WINDOW_S) s->backoff = SPAWN_BACKOFF_MIN_S; /* it had settled */
    s->pid = 0;
    spawn_tell_janitor(e, i, 0);
    if (s->early_deaths >= SPAWN_MAX_EARLY_DEATHS || spawn_recent(s, now) >= SPAWN_MAX_RESTARTS) {
        fprintf(stderr, "vgpt-cli: %s %s%s\n", s->name, how, early ? " before it was ready" : "");
        log_tail(e, i);
        if (s->early_deaths >= SPAWN_MAX_EARLY_DEATHS)
            fprintf(stderr, "vgpt-cli: %s died %d times in a row before it was ready: giving up\n", s->name,
                    s->early_deaths);
        else
            fprintf(stderr, "vgpt-cli: %s died %d times within %.0f s: giving up\n", s->name, spawn_recent(s, now) + 1,
                    SPAWN_RESTART_WINDOW_S);
        return -1;
    }
    fprintf(stderr, "vgpt-cli: %s %s%s; restarting it in %.1f s\n", s->name, how, early ? " before it was ready" : "",
            s->backoff);
    s->restart_at = now + s->backoff;
    s->backoff = s->backoff * 2 < SPAWN_BACKOFF_MAX_S ? s->backoff * 2 : SPAWN_BACKOFF_MAX_S;
    return 0;
}

/* Starts daemon i again now; 1 started, 0 not (tearing down or it failed
 * again: rescheduled), -1 given up. */
static int spawn_restart(cli_embedded *e, int i, double now) {
    cli_spawned *s = &e->d[i];
    s->restart_at = 0;
    memmove(s->recent, s->recent + 1, (SPAWN_MAX_RESTARTS - 1) * sizeof *s->recent);
    s->recent[SPAWN_MAX_RESTARTS - 1] = now;
    s->restarts++;
    pid_t pid = spawn_start_one(e, i);
    if (pid > 0) return 1;
    return pid < 0 && spawn_died(e, i, -1, now) ? -1 : 0;
}

int cli_embedded_supervise(cli_embedded *e) {
    int restarted = 0, status;
    spawn_read_ready(e);
    double now = vgpt_now();
    for (int i = 0; i < 3; i++) {
        cli_spawned *s = &e->d[i];
        if (s->pid > 0 && waitpid(s->pid, &status, WNOHANG) == s->pid && spawn_died(e, i, status, now)) return -1;
        if (s->pid > 0 || !s->restart_at || now < s->restart_at) continue;
        int r = spawn_restart(e, i, now);
        if (r < 0) return -1;
        restarted += r;
    }
    return restarted;
}

void cli_embedded_stop(cli_embedded *e) {
    spawn_teardown(e, STOP_GRACE_S); /* does nothing the second time */
    if (e->janitor > 0) waitpid(e->janitor, NULL, 0);
    e->janitor = 0;
    if (spawn_live == e) spawn_live = NULL;
}
