/* check.h - the tiny test harness shared by all C tests.
 *
 * Each CHECK prints "PASS: name" or "FAIL: name (why)"; tests/run.sh adds
 * those lines up into the final "N passed, N failed". */
#ifndef VGPT_CHECK_H
#define VGPT_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { int passed, failed; } check_state;

#define CHECK(st, cond, ...)                                         \
    do {                                                             \
        if (cond) {                                                  \
            (st)->passed++;                                          \
            printf("PASS: ");                                        \
        } else {                                                     \
            (st)->failed++;                                          \
            printf("FAIL: ");                                        \
        }                                                            \
        printf(__VA_ARGS__);                                         \
        printf("%s\n", (cond) ? "" : "  [" #cond "]");               \
        fflush(stdout);                                              \
    } while (0)

/* Makes (mkdir -p) a scratch directory $VGPT_CACHE/NAME.PID, or
 * <repo>/build/cache/NAME.PID beside the test binary; 0 on success. */
static inline int check_scratch_dir(char *dir, size_t cap, const char *name) {
    const char *cache = getenv("VGPT_CACHE");
    char base[4096], exe[4096], cmd[8400];
    if (cache && *cache) snprintf(base, sizeof base, "%s", cache);
    else {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return -1;
        exe[n] = 0;
        for (int up = 0; up < 3; up++) *strrchr(exe, '/') = 0; /* <repo>/build/tests/x -> <repo> */
        snprintf(base, sizeof base, "%.4000s/build/cache", exe);
    }
    snprintf(dir, cap, "%.4000s/%.200s.%d", base, name, (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static inline int check_exit(const check_state *st) { return st->failed ? 1 : 0; }

/* A whole file in a malloc'd buffer (*len bytes); NULL if it cannot be read. */
static inline void *check_slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = n >= 0 ? malloc(n > 0 ? (size_t)n : 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) free(b), b = NULL;
    fclose(f);
    if (b) *len = (size_t)n;
    return b;
}

#endif
