/* pool.c - see pool.h.  A job is fn over parts 0..n-1, and any thread may
 * run any part: a shared counter hands them out, so the caller alone can
 * finish a job whose workers have not woken (or are waiting for a core).
 * Idle workers sleep on a futex.  They spin briefly first only when the
 * pool has no more threads than the CPUs this process may use: on a shared
 * core, spinning only delays the thread that holds the work.  A futex
 * wake is a system call and a decoding step runs ~75 jobs: it is made only
 * when a thread has said it is going to sleep (sleepers, caller_asleep),
 * so jobs that follow each other within the spin make none. */
#include "pool.h"

#include <errno.h>
#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPIN_ROUNDS 2000 /* ~10-100 us of pause: covers the gap between a step's jobs */

struct vgpt_pool {
    int n;                  /* threads, the caller included; also the parts of every job */
    int wake;               /* workers woken per job: no more than the other CPUs can run */
    int spin;               /* pause rounds before sleeping; 0 when oversubscribed */
    pthread_t *threads;
    _Atomic unsigned gen;   /* bumped per job: the workers' futex word */
    _Atomic int next;       /* next part to hand out */
    _Atomic int done;       /* parts finished: the caller's futex word */
    _Atomic int sleepers;   /* workers in (or about to be in) futex_wait on gen */
    _Atomic int caller_asleep; /* the caller in (or about to be in) futex_wait on done */
    _Atomic int stop;
    _Atomic(vgpt_pool_fn) fn;
    void *_Atomic arg;
};

static void futex_wait(void *addr, int val) {
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(void *addr, int n) {
    if (n > 0) syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Runs parts until none is left.  A part is claimed before fn and arg are
 * read, so a worker that woke late for an earlier job can only ever run a
 * part of the job in progress, with that job's fn and arg. */
static void pool_run_parts(vgpt_pool *p) {
    int k;
    while ((k = atomic_fetch_add_explicit(&p->next, 1, memory_order_acq_rel)) < p->n) {
        vgpt_pool_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        fn(atomic_load_explicit(&p->arg, memory_order_relaxed), k, p->n);
        /* seq_cst with the caller's flag (a Dekker pair): either it sees
         * done complete, or this thread sees it asleep and wakes it */
        if (atomic_fetch_add(&p->done, 1) + 1 == p->n && atomic_load(&p->caller_asleep)) futex_wake(&p->done, 1);
    }
}

/* Waits for a job after *seen; 0 when the pool is being freed. */
static int pool_wait_job(vgpt_pool *p, unsigned *seen) {
    unsigned g;
    for (int spins = 0; (g = atomic_load_explicit(&p->gen, memory_order_acquire)) == *seen; spins++) {
        if (spins < p->spin) {
            _mm_pause();
            continue;
        }
        atomic_fetch_add(&p->sleepers, 1); /* before gen is read again, inside futex_wait */
        futex_wait(&p->gen, (int)*seen);
        atomic_fetch_sub(&p->sleepers, 1);
    }
    *seen = g;
    return !atomic_load(&p->stop);
}

static void *pool_worker(void *arg) {
    vgpt_pool *p = arg;
    unsigned seen = 0;
    while (pool_wait_job(p, &seen)) pool_run_parts(p);
    return NULL;
}

vgpt_pool *vgpt_pool_new(int n_threads) {
    vgpt_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads > 1 ? n_threads : 1;
    p->threads = calloc(p->n, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    int cpus = vgpt_cpu_count();
    p->spin = p->n <= cpus ? SPIN_ROUNDS : 0; /* before the workers read it */
    for (int i = 1; i < p->n; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_worker, p)) {
            p->n = i; /* run with the threads we got */
            break;
        }
    }
    p->wake = (cpus < p->n ? cpus : p->n) - 1; /* read by the caller only */
    return p;
}

void vgpt_pool_free(vgpt_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    futex_wake(&p->gen, 0x7fffffff);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p);
}

int vgpt_pool_size(const vgpt_pool *p) { return p ? p->n : 1; }

void vgpt_pool_run(vgpt_pool *p, vgpt_pool_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->next, 0, memory_order_release); /* publishes fn, arg, done */
    atomic_fetch_add(&p->gen, 1); /* seq_cst: a worker that did not see it is counted in sleepers */
    if (atomic_load(&p->sleepers)) futex_wake(&p->gen, p->wake);
    pool_run_parts(p);
    int d;
    for (int spins = 0; (d = atomic_load_explicit(&p->done, memory_order_acquire)) < p->n; spins++) {
        if (spins < p->spin) {
            _mm_pause();
            continue;
        }
        atomic_store(&p->caller_asleep, 1);
        if ((d = atomic_load(&p->done)) < p->n) futex_wait(&p->done, d);
        atomic_store(&p->caller_asleep, 0);
    }
}

/* --- CPUs this process may use ------------------------------------------ */

static int pool_affinity_cpus(void) {
    for (int size = 1024; size <= 1 << 18; size *= 2) { /* machines with more CPUs than cpu_set_t holds */
        cpu_set_t *set = CPU_ALLOC(size);
        if (!set) break;
        size_t bytes = CPU_ALLOC_SIZE(size);
        int rc = sched_getaffinity(0, bytes, set), n = rc ? 0 : CPU_COUNT_S(bytes, set);
        CPU_FREE(set);
        if (!rc) return n;
        if (errno != EINVAL) break;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* CPUs allowed by one cgroup directory's quota (v2 cpu.max "QUOTA PERIOD"
 * or v1 cpu.cfs_quota_us / cpu.cfs_period_us), rounded up; 0 = no quota. */
static int pool_quota_cpus(const char *dir, int v2) {
    char path[8400];
    long long quota = -1, period = 0;
    snprintf(path, sizeof path, "%s/%s", dir, v2 ? "cpu.max" : "cpu.cfs_quota_us");
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = v2 ? fscanf(f, "%lld %lld", &quota, &period) == 2 : fscanf(f, "%lld", &quota) == 1;
    fclose(f);
    if (!ok || quota <= 0) return 0; /* "max" (v2) or -1 (v1): no quota */
    if (!v2) {
        snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
        if (!(f = fopen(path, "r"))) return 0;
        ok = fscanf(f, "%lld", &period) == 1;
        fclose(f);
    }
    if (!ok || period <= 0) return 0;
    long long n = (quota + period - 1) / period;
    return n > 1 << 20 ? 1 << 20 : (int)n;
}

/* This process's cgroup path for the cpu controller (v2: the "0::" line). */
static int pool_cgroup_path(int v2, char *out, size_t cap) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[4096];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        line[strcspn(line, ":")] = 0;
        char *ctrls = c1 + 1, *path = c2 + 1;
        path[strcspn(path, "\n")] = 0;
        if (v2) found = !strcmp(line, "0") && !*ctrls;
        else
            for (char *s, *t = strtok_r(ctrls, ",", &s); t && !found; t = strtok_r(NULL, ",", &s))
                found = !strcmp(t, "cpu");
        if (found) snprintf(out, cap, "%s", path);
    }
    if (f) fclose(f);
    return found;
}

/* Where the cpu controller's hierarchy is mounted: mount point and the
 * hierarchy path it shows (its root; "/" unless a container bind-mounts a
 * subtree). */
static int pool_cgroup_mount(int v2, char *mnt, char *root, size_t cap) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[8192];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f)) {
        char r[4096], m[4096], fstype[64], super[1024];
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", r, m) != 2 ||
            sscanf(dash, " - %63s %*s %1023s", fstype, super) != 2)
            continue;
        if (v2) found = !strcmp(fstype, "cgroup2");
        else if (!strcmp(fstype, "cgroup"))
            for (char *s, *t = strtok_r(super, ",", &s); t && !found; t = strtok_r(NULL, ",", &s))
                found = !strcmp(t, "cpu");
        if (found) snprintf(mnt, cap, "%s", m), snprintf(root, cap, "%s", r);
    }
    if (f) fclose(f);
    return found;
}

int vgpt_cpu_quota_walk(const char *mnt, const char *rel, int v2) {
    char dir[8300];
    snprintf(dir, sizeof dir, "%s%s", mnt, rel);
    size_t floor_len = strlen(mnt);
    int best = 0;
    for (;;) {
        int q = pool_quota_cpus(dir, v2);
        if (q > 0 && (!best || q < best)) best = q;
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < floor_len) break;
        *slash = 0;
    }
    return best;
}

/* This process's cgroup quota, from /proc/self/cgroup and the mounts. */
static int pool_cgroup_cpus(int v2) {
    char path[4096], mnt[4096], root[4096];
    if (!pool_cgroup_path(v2, path, sizeof path) || !pool_cgroup_mount(v2, mnt, root, sizeof mnt)) return 0;
    size_t rl = strcmp(root, "/") ? strlen(root) : 0;
    return vgpt_cpu_quota_walk(mnt, !strncmp(path, root, rl) ? path + rl : "", v2);
}

int vgpt_cpu_count(void) {
    int n = pool_affinity_cpus();
    for (int v2 = 1; v2 >= 0; v2--) {
        int q = pool_cgroup_cpus(v2);
        if (q > 0 && q < n) n = q;
    }
    return n > 0 ? n : 1;
}
