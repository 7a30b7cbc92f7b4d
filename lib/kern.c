/* kern.c - which hand-written kernel set this process runs (kern.h). */
#include "kern.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const vgpt_kernels *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static int cpu_level(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return 1;
    return 0;
}

/* The level VGPT_ISA asks for; an unknown value is said once and ignored. */
static int asked_level(void) {
    const char *s = getenv("VGPT_ISA");
    if (!s || !*s) return 2;
    if (!strcmp(s, "generic")) return 0;
    if (!strcmp(s, "avx2")) return 1;
    if (!strcmp(s, "avx512")) return 2;
    fprintf(stderr, "vgpt: VGPT_ISA=%s is not one of generic, avx2, avx512; ignored\n", s);
    return 2;
}

static void choose(void) {
    const vgpt_kernels *sets[] = {&vgpt_kernels_generic, &vgpt_kernels_avx2, &vgpt_kernels_avx512};
    int cpu = cpu_level(), asked = asked_level();
    chosen = sets[asked < cpu ? asked : cpu];
}

const vgpt_kernels *vgpt_kernels_get(void) {
    pthread_once(&chosen_once, choose);
    return chosen;
}
