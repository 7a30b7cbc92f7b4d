/* pool.c - see pool.h.  Jobs are published by bumping a generation counter;
 * workers spin on it for a short while, then futex-wait. */
#include "pool.h"

#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPIN_ROUNDS 20000 /* ~50-100 us of pause: covers the gap between a step's jobs */

struct vgpt_pool {
    int n;
    pthread_t *threads;
    _Atomic unsigned gen;     /* bumped per job; futex word */
    _Atomic int remaining;    /* workers still running the current job */
    _Atomic int stop;
    vgpt_pool_fn fn;
    void *arg;
    struct worker { vgpt_pool *p; int id; } *w;
};

static void futex_wait(_Atomic unsigned *addr, unsigned val) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic unsigned *addr) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    vgpt_pool *p = w->p;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) _mm_pause();
            else futex_wait(&p->gen, seen);
        }
        seen = g;
        if (atomic_load(&p->stop)) return NULL;
        p->fn(p->arg, w->id, p->n);
        atomic_fetch_sub_explicit(&p->remaining, 1, memory_order_release);
    }
}

vgpt_pool *vgpt_pool_new(int n_threads) {
    vgpt_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads > 1 ? n_threads : 1;
    p->threads = calloc(p->n, sizeof *p->threads);
    p->w = calloc(p->n, sizeof *p->w);
    if (!p->threads || !p->w) {
        vgpt_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < p->n; i++) {
        p->w[i] = (struct worker){p, i};
        if (pthread_create(&p->threads[i], NULL, worker_main, &p->w[i])) {
            p->n = i; /* run with the threads we got */
            break;
        }
    }
    return p;
}

void vgpt_pool_free(vgpt_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    futex_wake_all(&p->gen);
    for (int i = 1; i < p->n && p->threads; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p->w);
    free(p);
}

int vgpt_pool_size(const vgpt_pool *p) { return p ? p->n : 1; }

void vgpt_pool_run(vgpt_pool *p, vgpt_pool_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->remaining, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    futex_wake_all(&p->gen);
    fn(arg, 0, p->n);
    /* workers still inside fn hold a chunk; yield so a descheduled one can finish it */
    for (int spins = 0; atomic_load_explicit(&p->remaining, memory_order_acquire) > 0; spins++) {
        if (spins < SPIN_ROUNDS) _mm_pause();
        else sched_yield();
    }
}
