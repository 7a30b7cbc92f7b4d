/* test_pool.c - the default thread count's cgroup quota walk, on a fake
 * hierarchy (a real cgroup needs root and a writable cgroupfs, which CI and
 * chroots may not have; tests/lifecycle.sh tries the real one too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "pool.h"

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
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd)) printf("info: could not remove %s\n", root);
    return check_exit(&st);
}
