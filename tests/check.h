/* check.h - the tiny test harness shared by all C tests.
 *
 * Each CHECK prints "PASS: name" or "FAIL: name (why)"; tests/run.sh adds
 * those lines up into the final "N passed, N failed". */
#ifndef VGPT_CHECK_H
#define VGPT_CHECK_H

#include <stdio.h>

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

static inline int check_exit(const check_state *st) { return st->failed ? 1 : 0; }

#endif
