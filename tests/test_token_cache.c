/* test_token_cache.c - hits, misses, LRU eviction under the size bound,
 * persistence across reopen; degrading to "no cache", never faulting, when
 * the directory is unusable or data.mdb is garbage, truncated before start
 * or truncated while in use (data.mdb or lock.mdb); damaged entries never
 * served (a miss, dropped, logged once); old-format entries are misses;
 * missing parent directories are created 0700; the entry codec's checks.
 *
 * Each scenario runs in a child process with its own directory and its
 * stderr (the cache's log) in a file, so a scenario that crashes is a FAIL
 * line naming it, and the others still run. */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "token_cache.h"

enum { L = 8, C = 1024 }; /* 32 KiB per entry */

static char logpath[4200];

static void key_of(int i, uint8_t key[32]) {
    uint8_t h[32] = {0};
    vgpt_image_opts o;
    vgpt_image_opts_default(&o);
    h[0] = (uint8_t)i;
    h[1] = (uint8_t)(i >> 8);
    vgpt_cache_key(h, &o, "fp", VGPT_FP32, key);
}

/* The precision is part of the key: bf16 tokens never answer an fp32 request. */
static void test_key_precision(check_state *st) {
    uint8_t h[32] = {0}, a[32], b[32], a2[32];
    vgpt_image_opts o;
    vgpt_image_opts_default(&o);
    vgpt_cache_key(h, &o, "fp", VGPT_FP32, a);
    vgpt_cache_key(h, &o, "fp", VGPT_BF16, b);
    vgpt_cache_key(h, &o, "fp", VGPT_FP32, a2);
    CHECK(st, memcmp(a, b, 32) != 0 && memcmp(a, a2, 32) == 0, "cache key: fp32 and bf16 keys differ, fp32 is stable");
}

static void fill(float *t, int i) {
    for (int k = 0; k < L * C; k++) t[k] = (float)(i * 100000 + k);
}

static void put_n(vgpt_cache *c, int from, int to) {
    static float t[L * C];
    uint8_t key[32];
    for (int i = from; i < to; i++) {
        key_of(i, key);
        fill(t, i);
        vgpt_cache_put(c, key, t, L, C);
    }
}

/* 1 if entry i is a hit with the right tokens, 0 on a miss, -1 on a hit with wrong tokens. */
static int get_i(vgpt_cache *c, int i) {
    static float t[L * C], got[L * C];
    uint8_t key[32];
    key_of(i, key);
    fill(t, i);
    if (!vgpt_cache_get(c, key, got, L, C)) return 0;
    return memcmp(got, t, sizeof t) ? -1 : 1;
}

/* Lines of this scenario's log containing needle. */
static int log_count(const char *needle) {
    fflush(stderr);
    FILE *f = fopen(logpath, "r");
    char line[4096];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += strstr(line, needle) != NULL;
    if (f) fclose(f);
    return n;
}

static int truncate_file(const char *dir, const char *name, off_t size) {
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return truncate(p, size);
}

static int disabled(vgpt_cache *c) {
    vgpt_cache_stats s;
    vgpt_cache_stats_get(c, &s);
    return s.disabled;
}

/* ---- scenarios ------------------------------------------------------- */

static void scenario_basics(check_state *st, const char *dir) {
    static float t[L * C], got[L * C];
    uint8_t key[32];
    vgpt_cache_stats s;
    vgpt_cache *c = vgpt_cache_open(dir, 1, "test"); /* 1 MiB: ~31 entries */
    key_of(1, key);
    CHECK(st, vgpt_cache_get(c, key, got, L, C) == 0, "empty cache misses");
    fill(t, 1);
    vgpt_cache_put(c, key, t, L, C);
    CHECK(st, get_i(c, 1) == 1, "put then get returns the tokens");
    CHECK(st, vgpt_cache_get(c, key, got, L, C / 2) == 0, "a different shape is a miss");
    for (int i = 2; i < 60; i++) {
        put_n(c, i, i + 1);
        if (i % 5 == 0) get_i(c, 2); /* keep entry 2 recently used */
    }
    vgpt_cache_stats_get(c, &s);
    CHECK(st, s.entries * vgpt_cache_entry_size(L, C) <= (1u << 20) && s.evictions > 0,
          "size bound holds with eviction (%llu entries, %llu evictions)", (unsigned long long)s.entries,
          (unsigned long long)s.evictions);
    CHECK(st, get_i(c, 2) == 1, "a recently used entry survives eviction");
    CHECK(st, get_i(c, 3) == 0, "the least recently used entry was evicted");
    vgpt_cache_free(c);
    c = vgpt_cache_open(dir, 1, "test");
    CHECK(st, get_i(c, 59) == 1, "entries survive a reopen");
    vgpt_cache_free(c);
    CHECK(st, log_count("warning") == 0, "a healthy cache logs no warning");
}

static void scenario_garbage(check_state *st, const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "wb");
    for (int i = 0; f && i < 100000; i++) fputc(i * 7 & 255, f);
    if (f) fclose(f);
    vgpt_cache *c = vgpt_cache_open(dir, 1, "test");
    CHECK(st, disabled(c) && get_i(c, 1) == 0, "a garbage data file degrades to no cache");
    put_n(c, 1, 2); /* must not crash either way */
    vgpt_cache_free(c);
    CHECK(st, log_count("data.mdb is not an LMDB file") == 1, "the warning names the file and what was expected");

    c = vgpt_cache_open("/proc/vgpt-no-such-dir", 1, "test");
    CHECK(st, disabled(c) && get_i(c, 1) == 0, "an unusable directory degrades to no cache");
    vgpt_cache_free(c);
}

/* Overwrites with noise everything after the two meta pages: the metas pass
 * every check, the pages they point at are garbage. */
static void scenario_garbage_pages(check_state *st, const char *dir) {
    vgpt_cache *c = vgpt_cache_open(dir, 4, "test");
    put_n(c, 0, 40);
    vgpt_cache_free(c);
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "r+b");
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 8192, SEEK_SET);
        uint32_t x = 12345;
        for (long i = 8192; i < n; i++) fputc((int)((x = x * 1103515245u + 12345u) >> 24), f);
        fclose(f);
    }
    c = vgpt_cache_open(dir, 4, "test");
    int hits = 0;
    for (int i = 0; i < 40; i++) hits += get_i(c, i) != 0;
    put_n(c, 40, 50);
    vgpt_cache_stats s;
    vgpt_cache_stats_get(c, &s);
    vgpt_cache_free(c);
    CHECK(st, hits == 0, "garbage pages behind valid meta pages: no fault, every lookup a miss (%d hits)", hits);
}

/* D1: `truncate -s 5000 data.mdb` between runs killed encoderd with SIGBUS at start-up. */
static void scenario_truncated_at_rest(check_state *st, const char *dir) {
    vgpt_cache *c = vgpt_cache_open(dir, 4, "test");
    put_n(c, 0, 20);
    vgpt_cache_free(c);
    truncate_file(dir, "data.mdb", 5000);
    c = vgpt_cache_open(dir, 4, "test");
    CHECK(st, disabled(c), "a data.mdb truncated to 5000 bytes: the cache opens disabled");
    CHECK(st, get_i(c, 1) == 0, "... lookups miss");
    put_n(c, 20, 21);
    vgpt_cache_free(c);
    CHECK(st, log_count("warning: token cache disabled") == 1 && log_count("data.mdb is damaged") == 1 &&
                  log_count("truncated?") == 1,
          "... with one warning naming data.mdb and saying it looks truncated");

    truncate_file(dir, "data.mdb", 4096 + 100); /* the second meta page cut short */
    c = vgpt_cache_open(dir, 4, "test");
    CHECK(st, disabled(c) && get_i(c, 1) == 0, "a data.mdb cut inside its second meta page: disabled, no fault");
    vgpt_cache_free(c);
}

/* D2: data.mdb truncated while encoderd runs (a fault on the next lookup). */
static void scenario_truncated_in_use(check_state *st, const char *dir) {
    vgpt_cache *c = vgpt_cache_open(dir, 4, "test");
    put_n(c, 0, 20);
    CHECK(st, get_i(c, 3) == 1, "a hit before the damage");
    truncate_file(dir, "data.mdb", 5000);
    CHECK(st, get_i(c, 3) == 0 && disabled(c), "data.mdb truncated while open: the next lookup misses, cache off");
    put_n(c, 20, 22);
    CHECK(st, get_i(c, 20) == 0, "... puts and lookups go on without it");
    vgpt_cache_free(c);
    CHECK(st, log_count("warning: token cache disabled") == 1 && log_count("shrank") == 1,
          "... one warning, saying data.mdb shrank");
    c = vgpt_cache_open(dir, 4, "test");
    CHECK(st, disabled(c) && get_i(c, 3) == 0, "... and the next start opens it disabled");
    vgpt_cache_free(c);
}

/* D2, the guard: lock.mdb (LMDB's shared lock table, also mapped) truncated
 * while open faults inside LMDB itself, beyond what a size check can see. */
static void scenario_lock_truncated_in_use(check_state *st, const char *dir) {
    vgpt_cache *c = vgpt_cache_open(dir, 4, "test");
    put_n(c, 0, 5);
    CHECK(st, get_i(c, 1) == 1, "a hit before the damage");
    truncate_file(dir, "lock.mdb", 0);
    CHECK(st, get_i(c, 1) == 0 && disabled(c), "lock.mdb truncated while open: the fault disables the cache");
    put_n(c, 5, 6);
    vgpt_cache_free(c);
    CHECK(st, log_count("warning: token cache disabled") == 1 && log_count("SIGBUS") == 1,
          "... one warning, naming the fault");
}

/* The fault guard must not swallow a fault outside the cache. */
static void scenario_unrelated_fault(check_state *st, const char *dir) {
    (void)st;
    vgpt_cache *c = vgpt_cache_open(dir, 4, "test");
    put_n(c, 0, 2);
    get_i(c, 1);
    char path[4200];
    snprintf(path, sizeof path, "%s/other", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ftruncate(fd, 8192)) return;
    volatile char *m = mmap(NULL, 8192, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED || ftruncate(fd, 0)) return;
    printf("reading a truncated mapping outside the cache:\n");
    fflush(stdout);
    char x = m[100]; /* SIGBUS */
    printf("read %d from it and went on\n", x);
    fflush(stdout);
    exit(3);
}

/* D8: damaged contents were served as hits. */
static int corrupt_payload(const char *dir, int i) {
    static float t[L * C];
    fill(t, i);
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    size_t n = 0;
    uint8_t *b = check_slurp(path, &n);
    int found = 0;
    for (size_t at = 0; b && at + 256 <= n; at++) {
        if (memcmp(b + at, t, 256)) continue;
        b[at + 1000] ^= 0x40; /* one bit of one float */
        found++;
    }
    FILE *f = b && found ? fopen(path, "r+b") : NULL;
    if (f) fwrite(b, 1, n, f), fclose(f);
    free(b);
    return found;
}

static void scenario_damaged_entries(check_state *st, const char *dir) {
    vgpt_cache *c = vgpt_cache_open(dir, 4, "test");
    put_n(c, 0, 6);
    vgpt_cache_free(c);
    int found = corrupt_payload(dir, 1) + corrupt_payload(dir, 2);
    c = vgpt_cache_open(dir, 4, "test");
    int r1 = get_i(c, 1), r2 = get_i(c, 2);
    CHECK(st, found >= 2 && r1 == 0 && r2 == 0, "entries with a flipped bit are misses, not hits (%d, %d)", r1, r2);
    CHECK(st, get_i(c, 3) == 1 && !disabled(c), "... the other entries still hit, the cache stays on");
    CHECK(st, log_count("is damaged") == 1 && log_count("checksum") == 1,
          "... logged once for both, naming the checksum");
    CHECK(st, get_i(c, 1) == 0 && log_count("is damaged") == 1, "... a damaged entry is dropped (no second report)");
    put_n(c, 1, 2);
    CHECK(st, get_i(c, 1) == 1, "... and stored again on the next encode");
    vgpt_cache_free(c);
}

/* Entries written by the previous format ({magic, L, C, 0} + floats, no
 * checksum) must be misses, not hits nor "damage". */
static void scenario_old_format(check_state *st, const char *dir) {
    vgpt_cache *c = vgpt_cache_open(dir, 4, "test");
    put_n(c, 0, 1);
    vgpt_cache_free(c);
    static float t[L * C];
    static uint8_t v1[16 + sizeof t];
    uint32_t h[4] = {0x4b544756u, L, C, 0};
    fill(t, 7);
    memcpy(v1, h, 16);
    memcpy(v1 + 16, t, sizeof t);
    uint8_t key[32];
    key_of(7, key);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {32, key}, v = {sizeof v1, v1};
    int rc = mdb_env_create(&env) || mdb_env_set_maxdbs(env, 4) || mdb_env_open(env, dir, 0, 0640) ||
             mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, "tokens", 0, &dbi) ||
             mdb_put(txn, dbi, &k, &v, 0) || mdb_txn_commit(txn);
    mdb_env_close(env);
    c = vgpt_cache_open(dir, 4, "test");
    CHECK(st, !rc && get_i(c, 7) == 0, "an entry in the old format (no checksum) is a miss");
    put_n(c, 7, 8);
    CHECK(st, get_i(c, 7) == 1 && log_count("warning") == 0, "... replaced on the next put, without any warning");
    vgpt_cache_free(c);
}

/* D12: the default ~/.cache/vgpt/tokens on a fresh account. */
static void scenario_missing_parents(check_state *st, const char *dir) {
    char deep[4200], p[4200];
    snprintf(deep, sizeof deep, "%s/home/.cache/vgpt/tokens", dir);
    vgpt_cache *c = vgpt_cache_open(deep, 4, "test");
    put_n(c, 0, 1);
    CHECK(st, !disabled(c) && get_i(c, 0) == 1, "a cache whose parent directories are missing works");
    vgpt_cache_free(c);
    const char *parts[] = {"home", "home/.cache", "home/.cache/vgpt"};
    int ok = 1;
    struct stat sb;
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, parts[i]);
        ok &= !stat(p, &sb) && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700;
    }
    CHECK(st, ok, "... the parents are created with mode 0700");
    c = vgpt_cache_open(deep, 4, "test");
    CHECK(st, get_i(c, 0) == 1 && log_count("warning") == 0, "... and an existing tree is reused without warnings");
    vgpt_cache_free(c);
}

/* The codec on its own: what the fuzz target checks on arbitrary bytes. */
static void scenario_entry_codec(check_state *st, const char *dir) {
    (void)dir;
    enum { l = 3, c = 5 };
    float t[l * c], got[l * c];
    uint8_t key[32], other[32], buf[512];
    char why[256];
    size_t n = vgpt_cache_entry_size(l, c);
    for (int i = 0; i < l * c; i++) t[i] = (float)i - 7.5f;
    key_of(1, key);
    key_of(2, other);
    vgpt_cache_entry_encode(key, t, l, c, buf);
    CHECK(st, vgpt_cache_entry_decode(buf, n, key, l, c, got, why, sizeof why) == VGPT_ENTRY_OK &&
                  !memcmp(got, t, sizeof t), "an encoded entry decodes to its tokens");
    CHECK(st, vgpt_cache_entry_decode(buf, n, other, l, c, got, why, sizeof why) == VGPT_ENTRY_DAMAGED,
          "an entry under another key is damaged (%s)", why);
    CHECK(st, vgpt_cache_entry_decode(buf, n, key, l, c + 1, got, why, sizeof why) == VGPT_ENTRY_STALE,
          "another shape is stale (%s)", why);
    int all = 1;
    for (size_t at = 0; at < n; at++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[at] ^= (uint8_t)(1 << bit);
            int v = vgpt_cache_entry_decode(buf, n, key, l, c, got, why, sizeof why);
            all &= v != VGPT_ENTRY_OK && why[0] && !strchr(why, '\n');
            buf[at] ^= (uint8_t)(1 << bit);
        }
    }
    CHECK(st, all, "every single-bit flip of an entry is caught, with a one-line reason");
    all = 1;
    for (size_t len = 0; len < n; len++)
        all &= vgpt_cache_entry_decode(buf, len, key, l, c, got, why, sizeof why) == VGPT_ENTRY_DAMAGED;
    buf[n] = 0;
    all &= vgpt_cache_entry_decode(buf, n + 1, key, l, c, got, why, sizeof why) == VGPT_ENTRY_DAMAGED;
    CHECK(st, all, "every truncated or extended entry is damaged");
}

/* ---- the runner ------------------------------------------------------ */

typedef void (*scenario_fn)(check_state *st, const char *dir);

/* Runs fn in a child; returns its wait status. */
static int run_child(const char *base, const char *name, scenario_fn fn) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", base, name);
    snprintf(logpath, sizeof logpath, "%s/%s.log", base, name);
    if (mkdir(dir, 0700)) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) dup2(fd, 2), close(fd);
        check_state cs = {0};
        fn(&cs, dir);
        fflush(stdout);
        exit(cs.failed ? 1 : 0);
    }
    int status = -1;
    if (pid > 0) waitpid(pid, &status, 0);
    size_t n = 0;
    char *log = check_slurp(logpath, &n);
    if (log && n) fprintf(stderr, "--- %s's log:\n%.*s", name, (int)n, log);
    free(log);
    return status;
}

static void run(check_state *st, const char *base, const char *name, scenario_fn fn) {
    int status = run_child(base, name, fn);
    if (status != -1 && WIFEXITED(status)) {
        if (WEXITSTATUS(status)) st->failed++; /* the child printed its FAIL lines */
        return;
    }
    CHECK(st, 0, "%s: the scenario ran to its end (%s %d)", name, status == -1 ? "not started" : "killed by signal",
          status == -1 ? 0 : WTERMSIG(status));
}

int main(void) {
    check_state st = {0};
    char base[4096], cmd[4200];
    if (check_scratch_dir(base, sizeof base, "test_token_cache")) return 2;
    test_key_precision(&st);
    run(&st, base, "basics", scenario_basics);
    run(&st, base, "garbage", scenario_garbage);
    run(&st, base, "garbage_pages", scenario_garbage_pages);
    run(&st, base, "truncated_at_rest", scenario_truncated_at_rest);
    run(&st, base, "truncated_in_use", scenario_truncated_in_use);
    run(&st, base, "lock_truncated_in_use", scenario_lock_truncated_in_use);
    run(&st, base, "damaged_entries", scenario_damaged_entries);
    run(&st, base, "old_format", scenario_old_format);
    run(&st, base, "missing_parents", scenario_missing_parents);
    run(&st, base, "entry_codec", scenario_entry_codec);
    /* expected to die: by SIGBUS, or by the sanitizer's report of it (exit 1); 3 = it went on */
    int status = run_child(base, "unrelated_fault", scenario_unrelated_fault);
    CHECK(&st, status != -1 && ((WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) ||
                                (WIFEXITED(status) && WEXITSTATUS(status) == 1)),
          "a SIGBUS outside the cache still ends the process (wait status 0x%x)", (unsigned)status);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd)) return 2;
    return check_exit(&st);
}
