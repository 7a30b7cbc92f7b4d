/* stop.c - see stop.h.  The flag is the one piece of global state: a signal
 * handler can reach nothing else. */
#include "stop.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal;
static const int stop_signals[3] = {SIGINT, SIGTERM, SIGHUP};

static void stop_on_signal(int sig) {
    if (stop_signal) { /* the second one: die now */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

void cli_stop_install(void) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stop_on_signal; /* no SA_RESTART: a blocking read returns EINTR */
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) sigaddset(&sa.sa_mask, stop_signals[i]);
    for (int i = 0; i < 3; i++)
        if (!sigaction(stop_signals[i], NULL, &old) && old.sa_handler != SIG_IGN)
            sigaction(stop_signals[i], &sa, NULL);
}

int cli_stop_requested(void) { return stop_signal; }

int cli_stop_finish(int rc) {
    int sig = stop_signal;
    if (!sig) return rc;
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    return 128 + sig; /* not reached */
}
