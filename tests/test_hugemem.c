/* test_hugemem.c - weight memory (hugemem.h): aligned, whole, freed with
 * free(), and advised to huge pages where the kernel offers them (the
 * kernel's own account in /proc/self/smaps, not our say-so). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "hugemem.h"

#define MB ((size_t)1 << 20)

/* The "THPeligible" line of the mapping holding p: 1, 0, or -1 when smaps
 * has no such line (an older kernel). */
static int thp_eligible(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0, v = -1;
    uintptr_t a = (uintptr_t)p;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) in = a >= lo && a < hi;
        else if (in && sscanf(line, "THPeligible: %d", &v) == 1) break;
    }
    if (f) fclose(f);
    return v;
}

/* THP switched off for the whole machine ("[never]"): nothing can be advised. */
static int thp_offered(void) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char s[128] = "";
    if (f) {
        if (!fgets(s, sizeof s, f)) s[0] = 0;
        fclose(f);
    }
    return f && !strstr(s, "[never]");
}

int main(void) {
    check_state st = {0};
    size_t sizes[] = {1, 100, MB, 2 * MB, 9 * MB + 4096 + 64};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        unsigned char *p = vgpt_hugemem_alloc(n);
        size_t align = n >= 2 * MB ? 2 * MB : 64;
        int ok = p && (uintptr_t)p % align == 0;
        if (p) { /* every byte of the rounded size is ours (ASan checks it in build-san) */
            memset(p, 0xa5, (n + 63) / 64 * 64);
            ok = ok && p[0] == 0xa5 && p[n - 1] == 0xa5;
        }
        CHECK(&st, ok, "%zu bytes: usable, %zu-byte aligned", n, align);
        if (p && n >= 2 * MB) {
            int e = thp_eligible(p);
            if (!thp_offered() || e < 0)
                printf("SKIP: %zu bytes: this kernel offers no transparent huge pages to check\n", n);
            else
                CHECK(&st, e == 1, "%zu bytes: advised to huge pages (smaps THPeligible %d)", n, e);
        }
        free(p);
    }
    return check_exit(&st);
}
