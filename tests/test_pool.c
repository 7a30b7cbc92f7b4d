/* test_pool.c - the pool's jobs (every part once, the caller back only
 * when all are done, sleeping workers woken: pool.c skips the wake-up
 * system calls when nobody sleeps) and the default thread count's cgroup
 * quota walk, on a fake hierarchy (a real cgroup needs root and a writable
 * cgroupfs, which CI and chroots may not have; tests/lifecycle.sh tries the
 * real one too). */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "check.h"
#include "pool.h"

#define JOB_PARTS_MAX 8

typedef struct pool_job {
    _Atomic int runs[JOB_PARTS_MAX]; /* times each part ran */
    _Atomic int by_worker;          /* parts run off the caller's thread */
    pthread_t caller;
    long part_ns;                   /* each part's length */
} pool_job;

static void sleep_ns(long ns) {
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};
    nanosleep(&ts, NULL);
}

static void job_part(void *arg, int part, int n_parts) {
    pool_job *j = arg;
    if (part < JOB_PARTS_MAX && n_parts <= JOB_PARTS_MAX) atomic_fetch_add(&j->runs[part], 1);
    if (!pthread_equal(pthread_self(), j->caller)) atomic_fetch_add(&j->by_worker, 1);
    if (j->part_ns) sleep_ns(j->part_ns);
}

/* A lost wake-up of the caller hangs: fail instead of waiting for CI's limit. */
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL: a pool job never finished (lost wake-up)\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(1);
}

/* jobs back to back (workers still spinning), after gaps longer than the
 * spin (workers asleep), and on a pool of more threads than CPUs (no spin:
 * every wait is a sleep).  Returns the jobs in which a worker ran a part. */
static int pool_jobs(check_state *st, int threads, int jobs, long gap_ns, long part_ns, const char *what) {
    vgpt_pool *p = vgpt_pool_new(threads);
    int n = vgpt_pool_size(p), exact = 1, helped = 0;
    for (int k = 0; k < jobs; k++) {
        pool_job j = {.caller = pthread_self(), .part_ns = part_ns};
        vgpt_pool_run(p, job_part, &j);
        for (int i = 0; i < n; i++) exact &= atomic_load(&j.runs[i]) == 1; /* all done on return */
        helped += atomic_load(&j.by_worker) > 0;
        if (gap_ns) sleep_ns(gap_ns);
    }
    vgpt_pool_free(p);
    CHECK(st, exact && n == threads, "%s: %d jobs of %d parts, each part run once, all done when the caller returns",
          what, jobs, n);
    return helped;
}

static void put(const char *dir, const char *name, const char *text) {
    char p[4400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) fputs(text, f), fclose(f);
}

int main(void) {
    check_state st = {0};
    char root[4096], a[4200], b[4300];
    if (check_scratch_dir(root, sizeof root, "test_pool")) {
        printf("FAIL: no scratch directory\n");
        return 1;
    }
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/a/b", root);
    mkdir(a, 0700);
    mkdir(b, 0700);
    CHECK(&st, vgpt_cpu_quota_walk(root, "/a/b", 1) == 0, "v2: no cpu.max anywhere: no quota");
    put(b, "cpu.max", "max 100000\n");
    put(a, "cpu.max", "100000 100000\n");
    CHECK(&st, vgpt_cpu_quota_walk(root, "/a/b", 1) == 1, "v2: a parent's 1-CPU quota binds the child ('max')");
    put(b, "cpu.max", "250000 100000\n");
    put(a, "cpu.max", "max 100000\n");
    CHECK(&st, vgpt_cpu_quota_walk(root, "/a/b", 1) == 3, "v2: 2.5 CPUs round up to 3");
    put(a, "cpu.max", "150000 100000\n");
    CHECK(&st, vgpt_cpu_quota_walk(root, "/a/b", 1) == 2, "v2: the smallest quota on the way up wins");
    put(b, "cpu.cfs_quota_us", "-1\n");
    put(b, "cpu.cfs_period_us", "100000\n");
    put(a, "cpu.cfs_quota_us", "50000\n");
    put(a, "cpu.cfs_period_us", "100000\n");
    CHECK(&st, vgpt_cpu_quota_walk(root, "/a/b", 0) == 1, "v1: half a CPU on the parent rounds up to 1");
    CHECK(&st, vgpt_cpu_quota_walk(root, "", 0) == 0, "v1: the mount itself has no quota");
    CHECK(&st, vgpt_cpu_count() >= 1, "this process may use %d CPUs", vgpt_cpu_count());

    signal(SIGALRM, on_alarm);
    alarm(120);
    pool_jobs(&st, 2, 20000, 0, 0, "back to back");
    pool_jobs(&st, 4, 300, 50000, 0, "4 threads, gaps beyond the spin");
    /* a part of 2 ms after 3 ms asleep: a worker that is woken takes the
     * other part long before the caller is done with its own */
    int helped = pool_jobs(&st, 2, 40, 3000000, 2000000, "2 threads, workers asleep between jobs");
    CHECK(&st, helped >= 20, "a sleeping worker is woken for the next job (it ran a part in %d of 40 jobs)", helped);
    pool_jobs(&st, vgpt_cpu_count() + 2, 500, 20000, 0, "more threads than CPUs (no spinning)");
    alarm(0);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) printf("info: could not remove %s\n", root);
    return check_exit(&st);
}
