/* token_cache.c - see token_cache.h.
 *
 * Three LMDB databases: "tokens" key -> entry (header + floats), "atime"
 * key -> use sequence number, "lru" sequence (big-endian, so LMDB orders
 * it) -> key.  Eviction pops the smallest sequence numbers until the bound
 * holds.
 *
 * Damage.  LMDB maps data.mdb and lock.mdb into memory and trusts them: a
 * page it reads past the end of a file shorter than it believes raises
 * SIGBUS, which kills the process.  So, in order:
 *  1. before mdb_env_open, data.mdb's two meta pages are read with pread and
 *     checked (LMDB's magic and version, the page size, the last used page
 *     and the roots inside the file): a truncated or garbage file is never
 *     mapped, the cache is disabled with one warning;
 *  2. before every operation, data.mdb's size is compared with the largest
 *     size seen (LMDB never shrinks the file): a file truncated while in use
 *     disables the cache before LMDB touches a missing page;
 *  3. every LMDB call runs under a fault guard (sigsetjmp, and a SIGBUS /
 *     SIGSEGV handler that jumps back only for a fault in this thread's
 *     guarded call): what 1 and 2 cannot see (a truncation racing with a
 *     read, a truncated lock.mdb, damaged pages that lead LMDB past the end
 *     of the file) disables the cache instead of killing encoderd.
 * MDB_NOMEMINIT and friends do not help here (they concern the pages LMDB
 * writes, not reads of a mapped file that became shorter), and LMDB cannot
 * be told to read without mapping, hence the guard.  Any LMDB error at run
 * time likewise disables the cache, once, with one warning.
 *
 * Damaged entries.  Every entry carries a 64-bit FNV-1a checksum over its
 * key, header and tokens, verified on every hit: a bad entry is a miss,
 * deleted, counted (stats.damaged) and logged once. */
#include "token_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "sha256.h"

/* ---- entries -------------------------------------------------------- */

#define ENTRY_MAGIC 0x4b544756u /* "VGTK" */
/* 2: a version field and a checksum.  Version 1 had {magic, L, C, 0}, so
 * its L lands in the version field: an old entry is stale, never a hit. */
#define ENTRY_VERSION 2u

typedef struct entry_hdr {
    uint32_t magic, version, L, C;
    uint64_t sum; /* FNV-1a 64 over key, the fields above and the tokens */
} entry_hdr;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* The key is hashed in so that an entry found under another key (a damaged
 * page) is not served as this image's tokens. */
static uint64_t entry_sum(const uint8_t key[32], const entry_hdr *h, const void *tokens, size_t n) {
    uint64_t s = fnv1a(0xcbf29ce484222325ull, key, 32);
    s = fnv1a(s, h, offsetof(entry_hdr, sum));
    return fnv1a(s, tokens, n);
}

size_t vgpt_cache_entry_size(int L, int C) { return sizeof(entry_hdr) + (size_t)L * C * sizeof(float); }

void vgpt_cache_entry_encode(const uint8_t key[32], const float *tokens, int L, int C, void *out) {
    entry_hdr h = {ENTRY_MAGIC, ENTRY_VERSION, (uint32_t)L, (uint32_t)C, 0};
    size_t n = (size_t)L * C * sizeof(float);
    memcpy((uint8_t *)out + sizeof h, tokens, n);
    h.sum = entry_sum(key, &h, tokens, n);
    memcpy(out, &h, sizeof h);
}

/* Writes a one-line reason into why and returns ret. */
static int why_set(int ret, char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int why_set(int ret, char *why, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return ret;
}

int vgpt_cache_entry_decode(const void *buf, size_t len, const uint8_t key[32], int L, int C, float *tokens,
                            char *why, size_t cap) {
    entry_hdr h;
    if (len < sizeof h)
        return why_set(VGPT_ENTRY_DAMAGED, why, cap, "entry is %zu bytes, shorter than its %zu-byte header", len,
                         sizeof h);
    memcpy(&h, buf, sizeof h);
    if (h.magic != ENTRY_MAGIC)
        return why_set(VGPT_ENTRY_DAMAGED, why, cap, "entry starts with 0x%08x, expected the magic 0x%08x", h.magic,
                         ENTRY_MAGIC);
    if (h.version != ENTRY_VERSION)
        return why_set(VGPT_ENTRY_STALE, why, cap, "entry format version %u, expected %u", h.version,
                         ENTRY_VERSION);
    if (h.L != (uint32_t)L || h.C != (uint32_t)C)
        return why_set(VGPT_ENTRY_STALE, why, cap, "entry holds %ux%u tokens, expected %dx%d", h.L, h.C, L, C);
    size_t want = vgpt_cache_entry_size(L, C);
    if (len != want)
        return why_set(VGPT_ENTRY_DAMAGED, why, cap, "entry is %zu bytes, expected %zu for %dx%d tokens", len, want,
                         L, C);
    /* hash the copy that is returned, not the stored bytes, so what was checked is what is used */
    memcpy(tokens, (const uint8_t *)buf + sizeof h, want - sizeof h);
    uint64_t s = entry_sum(key, &h, tokens, want - sizeof h);
    if (s != h.sum)
        return why_set(VGPT_ENTRY_DAMAGED, why, cap, "checksum 0x%016llx stored, the contents hash to 0x%016llx",
                         (unsigned long long)h.sum, (unsigned long long)s);
    return VGPT_ENTRY_OK;
}

/* ---- the cache ------------------------------------------------------ */

/* What to do about a damaged cache, said in every warning about one. */
#define LMDB_FRESH "; delete the directory to start a fresh cache"

struct vgpt_cache {
    MDB_env *env;
    MDB_txn *txn;          /* in progress: the fault path aborts it (it may hold LMDB's writer lock) */
    MDB_dbi tokens, atime, lru;
    int fd;                /* data.mdb, LMDB's descriptor */
    off_t file_bytes;      /* the largest size of data.mdb seen */
    char *map_lo, *map_hi; /* LMDB's map of data.mdb */
    int faults;            /* guarded calls that faulted: a second one abandons the env */
    size_t max_bytes;
    uint64_t seq;
    vgpt_cache_stats st;
    const char *log_name;
    char dir[4096];
};

static void cache_off(vgpt_cache *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cache_off(vgpt_cache *c, const char *fmt, ...) {
    if (c->st.disabled) return;
    char why[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    vgpt_log(c->log_name, "warning: token cache disabled (%s); encoding continues without it", why);
    c->st.disabled = 1;
}

static void lmdb_off(vgpt_cache *c, const char *what, int rc) {
    cache_off(c, "%s: %s: %s", c->dir, what, mdb_strerror(rc));
}

/* ---- the fault guard (point 3 above) -------------------------------- */

static _Thread_local sigjmp_buf *guard_jmp;
static _Thread_local char *guard_lo, *guard_hi;
static struct sigaction guard_prev_bus, guard_prev_segv;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

/* Any SIGBUS while LMDB runs comes from its mapped files; a SIGSEGV is ours
 * only inside the data map, any other one is a bug and must crash as usual.
 * Faults that are not ours go to the handler installed before this one (the
 * sanitizers' reports, or the default action: the fault is re-raised). */
static void guard_handler(int sig, siginfo_t *si, void *uc) {
    sigjmp_buf *jb = guard_jmp;
    char *a = si->si_addr;
    int fault = si->si_code > 0; /* not kill(2) or raise(3) */
    if (jb && fault && (sig == SIGBUS || (a >= guard_lo && a < guard_hi))) {
        guard_jmp = NULL;
        siglongjmp(*jb, sig);
    }
    struct sigaction *prev = sig == SIGBUS ? &guard_prev_bus : &guard_prev_segv;
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, uc);
    } else if (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN) {
        sigaction(sig, prev, NULL); /* returning re-runs the faulting instruction: the default action */
        if (!fault) raise(sig);
    } else {
        prev->sa_handler(sig);
    }
}

/* LMDB's assertions (they call abort()) are tripped by damaged pages as
 * well as by bugs; inside a guarded call they disable the cache instead. */
static _Thread_local char guard_why[200];

static void guard_assert(MDB_env *env, const char *msg) {
    (void)env;
    sigjmp_buf *jb = guard_jmp;
    if (jb) {
        snprintf(guard_why, sizeof guard_why, "%s", msg);
        guard_jmp = NULL;
        siglongjmp(*jb, SIGABRT);
    }
}

/* Installed once, process-wide, on the first cache open: the handler does
 * nothing but chain unless a guarded call is running in the faulting thread. */
static void guard_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &guard_prev_bus);
    sigaction(SIGSEGV, &sa, &guard_prev_segv);
}

/* An env whose files fault cannot be closed safely (closing touches them):
 * it is abandoned here, where it stays reachable so leak checkers do not
 * report the deliberate leak. */
static MDB_env *parked_envs[16];

static void park_env(vgpt_cache *c) {
    static int n;
    if (c->env && n < (int)(sizeof parked_envs / sizeof *parked_envs)) parked_envs[n++] = c->env;
    c->env = NULL;
    c->txn = NULL;
}

typedef int (*cache_op)(vgpt_cache *c, void *arg);
static int guarded(vgpt_cache *c, cache_op op, void *arg);

static int release_op(vgpt_cache *c, void *arg) {
    (void)arg;
    if (c->txn) mdb_txn_abort(c->txn);
    c->txn = NULL;
    if (c->env) mdb_env_close(c->env);
    c->env = NULL;
    return 0;
}

/* The cache's files faulted: disabled for good; the transaction (which may
 * hold LMDB's writer lock, shared with other processes) and the env are
 * released if that does not fault too, else abandoned. */
static void on_fault(vgpt_cache *c, int sig) {
    if (sig != SIGABRT) snprintf(guard_why, sizeof guard_why, "%s", sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
    cache_off(c, "%s: %s while reading its memory-mapped files: data.mdb or lock.mdb was truncated or damaged "
                 "while in use" LMDB_FRESH, c->dir, guard_why);
    if (c->faults++) {
        park_env(c);
        return;
    }
    guarded(c, release_op, NULL);
}

/* Runs op (LMDB calls) under the guard: its LMDB return code, or MDB_PANIC
 * after a fault (the cache is then off and its env gone). */
static int guarded(vgpt_cache *c, cache_op op, void *arg) {
    sigjmp_buf jb;
    int sig = sigsetjmp(jb, 1);
    if (sig) {
        on_fault(c, sig);
        return MDB_PANIC;
    }
    guard_lo = c->map_lo;
    guard_hi = c->map_hi;
    guard_jmp = &jb;
    int rc = op(c, arg);
    guard_jmp = NULL;
    return rc;
}

/* ---- opening -------------------------------------------------------- */

/* mkdir -p: missing parents 0700 (a cache under $HOME is private, as XDG
 * asks of ~/.cache), the cache directory itself 0750 as always. */
static int make_dirs(const char *dir, char *why, size_t cap) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return why_set(-1, why, cap, "%.200s...: path too long", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0700) && errno != EEXIST)
            return why_set(-1, why, cap, "cannot create %s: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0750) && errno != EEXIST) return why_set(-1, why, cap, "cannot create %s: %s", p, strerror(errno));
    return 0;
}

/* LMDB 0.9's meta page as stored (mdb.c: the MDB_page header, then
 * MDB_meta), for the check before mapping; LMDB reads it the same way, in
 * mdb_env_read_header, but never compares it with the file's size. */
typedef struct lmdb_db {
    uint32_t pad; /* in the free-page db: the page size */
    uint16_t flags, depth;
    size_t branch_pages, leaf_pages, overflow_pages, entries, root;
} lmdb_db;

typedef struct lmdb_meta_page {
    size_t pgno;
    uint16_t pad, flags, lower, upper;
    uint32_t magic, version;
    void *address;
    size_t mapsize;
    lmdb_db dbs[2]; /* free pages, main */
    size_t last_pg, txnid;
} lmdb_meta_page;

#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define LMDB_P_META 0x08u
#define LMDB_P_INVALID (~(size_t)0)

static int meta_is_lmdb(const lmdb_meta_page *m, int i, const char *path, char *why, size_t cap) {
    if (!(m->flags & LMDB_P_META) || m->magic != LMDB_MAGIC)
        return why_set(-1, why, cap, "%s is not an LMDB file: page %d is not a meta page with magic 0x%08x" LMDB_FRESH,
                       path, i, LMDB_MAGIC);
    if (m->version != LMDB_DATA_VERSION)
        return why_set(-1, why, cap, "%s has LMDB format version %u, expected %u" LMDB_FRESH, path, m->version,
                       LMDB_DATA_VERSION);
    return 0;
}

/* Every page the meta page says is in use (its last page, the two roots) lies in the file. */
static int meta_fits(const lmdb_meta_page *m, int i, size_t psize, const char *path, off_t size, char *why,
                     size_t cap) {
    size_t pages = (size_t)size / psize;
    if (m->last_pg >= pages)
        return why_set(-1, why, cap, "%s is damaged: meta page %d says page %zu is in use, the file has %lld bytes, "
                       "%zu whole pages of %zu (truncated?)" LMDB_FRESH, path, i, m->last_pg, (long long)size, pages, psize);
    for (int d = 0; d < 2; d++)
        if (m->dbs[d].root != LMDB_P_INVALID && m->dbs[d].root > m->last_pg)
            return why_set(-1, why, cap, "%s is damaged: meta page %d puts a root at page %zu, past its last page "
                           "%zu" LMDB_FRESH, path, i, m->dbs[d].root, m->last_pg);
    return 0;
}

/* Reads both meta pages as LMDB does (the first one gives the page size)
 * and checks them. */
static int check_metas(int fd, const char *path, off_t size, char *why, size_t cap) {
    lmdb_meta_page m[2];
    if (pread(fd, &m[0], sizeof m[0], 0) != (ssize_t)sizeof m[0])
        return why_set(-1, why, cap, "%s is damaged: %lld bytes, shorter than an LMDB meta page" LMDB_FRESH, path,
                       (long long)size);
    if (meta_is_lmdb(&m[0], 0, path, why, cap)) return -1;
    size_t psize = m[0].dbs[0].pad;
    if (psize < 512 || psize > 65536 || (psize & (psize - 1)))
        return why_set(-1, why, cap, "%s is damaged: page size %zu, expected a power of two from 512 to 65536"
                       LMDB_FRESH, path, psize);
    if (pread(fd, &m[1], sizeof m[1], (off_t)psize) != (ssize_t)sizeof m[1])
        return why_set(-1, why, cap, "%s is damaged: %lld bytes, too short for the second meta page at byte %zu"
                       LMDB_FRESH, path, (long long)size, psize);
    if (meta_is_lmdb(&m[1], 1, path, why, cap)) return -1;
    for (int i = 0; i < 2; i++)
        if (meta_fits(&m[i], i, psize, path, size, why, cap)) return -1;
    return 0;
}

/* Point 1 above: checks dir/data.mdb with pread, never mapping it (absent
 * or empty is a new cache); *bytes gets its size. */
static int check_data_file(const char *dir, off_t *bytes, char *why, size_t cap) {
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : why_set(-1, why, cap, "cannot read %s: %s", path, strerror(errno));
    struct stat sb;
    int rc = fstat(fd, &sb) ? why_set(-1, why, cap, "cannot stat %s: %s", path, strerror(errno))
             : sb.st_size > 0 ? check_metas(fd, path, sb.st_size, why, cap) : 0;
    *bytes = rc ? 0 : sb.st_size;
    close(fd);
    return rc;
}

static uint64_t last_seq(vgpt_cache *c) {
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t s = 0;
    if (mdb_cursor_open(c->txn, c->lru, &cur)) return 0;
    if (!mdb_cursor_get(cur, &k, &v, MDB_LAST) && k.mv_size == 8)
        for (int i = 0; i < 8; i++) s = s << 8 | ((uint8_t *)k.mv_data)[i];
    mdb_cursor_close(cur);
    return s;
}

/* Ends c->txn: commits it when rc is 0, else aborts it; returns the outcome. */
static int txn_end(vgpt_cache *c, int rc) {
    if (rc) mdb_txn_abort(c->txn);
    else rc = mdb_txn_commit(c->txn);
    c->txn = NULL;
    return rc;
}

static int open_op(vgpt_cache *c, void *arg) {
    (void)arg;
    int rc;
    MDB_envinfo info;
    if ((rc = mdb_env_create(&c->env)) || (rc = mdb_env_set_assert(c->env, guard_assert)) ||
        (rc = mdb_env_set_maxdbs(c->env, 4)) ||
        (rc = mdb_env_set_mapsize(c->env, c->max_bytes * 2 + (64u << 20))) ||
        (rc = mdb_env_open(c->env, c->dir, MDB_NOTLS, 0640)) || (rc = mdb_env_get_fd(c->env, &c->fd)) ||
        (rc = mdb_env_info(c->env, &info)) || (rc = mdb_txn_begin(c->env, NULL, 0, &c->txn)))
        return rc;
    c->map_lo = info.me_mapaddr;
    c->map_hi = c->map_lo + info.me_mapsize;
    if ((rc = mdb_dbi_open(c->txn, "tokens", MDB_CREATE, &c->tokens)) ||
        (rc = mdb_dbi_open(c->txn, "atime", MDB_CREATE, &c->atime)) ||
        (rc = mdb_dbi_open(c->txn, "lru", MDB_CREATE, &c->lru)))
        return txn_end(c, rc);
    c->seq = last_seq(c) + 1;
    return txn_end(c, 0);
}

/* Point 2 above: 0 if data.mdb is still as long as it was.  A shorter file
 * was truncated under us, and LMDB would fault on its missing pages. */
static int check_size(vgpt_cache *c) {
    struct stat sb;
    if (fstat(c->fd, &sb)) {
        cache_off(c, "cannot stat %s/data.mdb: %s", c->dir, strerror(errno));
        return -1;
    }
    if (sb.st_size < c->file_bytes) {
        cache_off(c, "%s/data.mdb shrank from %lld to %lld bytes while in use (truncated?)" LMDB_FRESH, c->dir,
                  (long long)c->file_bytes, (long long)sb.st_size);
        guarded(c, release_op, NULL);
        return -1;
    }
    c->file_bytes = sb.st_size;
    return 0;
}

static int usable(vgpt_cache *c) { return c && !c->st.disabled && c->env && !check_size(c); }

vgpt_cache *vgpt_cache_open(const char *dir, size_t max_mb, const char *log_name) {
    vgpt_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->log_name = log_name;
    c->max_bytes = max_mb << 20;
    c->fd = -1;
    char why[2048];
    if (snprintf(c->dir, sizeof c->dir, "%s", dir) >= (int)sizeof c->dir) {
        cache_off(c, "%.200s...: path too long", dir);
        return c;
    }
    if (make_dirs(dir, why, sizeof why) || check_data_file(dir, &c->file_bytes, why, sizeof why)) {
        cache_off(c, "%s", why);
        return c;
    }
    pthread_once(&guard_once, guard_install);
    int rc = guarded(c, open_op, NULL);
    if (rc) lmdb_off(c, "open", rc);
    return c;
}

void vgpt_cache_free(vgpt_cache *c) {
    if (!c) return;
    if (c->env) guarded(c, release_op, NULL);
    free(c);
}

void vgpt_cache_key(const uint8_t image_hash[32], const vgpt_image_opts *o, const char *fingerprint,
                    vgpt_precision precision, uint8_t key[32]) {
    vgpt_sha256_ctx s;
    uint8_t settings[3] = {(uint8_t)(o->autorotate != 0), (uint8_t)(o->fast_decode != 0),
                           (uint8_t)(o->accept_truncated != 0)};
    vgpt_sha256_init(&s);
    vgpt_sha256_update(&s, "vgpt-tokens-v1", 14);
    vgpt_sha256_update(&s, image_hash, 32);
    vgpt_sha256_update(&s, settings, sizeof settings);
    vgpt_sha256_update(&s, fingerprint, strlen(fingerprint));
    if (precision != VGPT_FP32) { /* fp32 keys are those written before bf16 existed */
        const char *p = vgpt_precision_name(precision);
        vgpt_sha256_update(&s, p, strlen(p));
    }
    vgpt_sha256_final(&s, key);
}

/* ---- lookups and stores (inside c->txn, a write transaction) ---------- */

static void be64(uint64_t v, uint8_t out[8]) {
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Gives key the newest use sequence number. */
static int touch(vgpt_cache *c, const uint8_t key[32]) {
    MDB_val k = {32, (void *)key}, v;
    uint8_t s[8];
    if (!mdb_get(c->txn, c->atime, &k, &v) && v.mv_size == 8) {
        MDB_val old = {8, v.mv_data};
        mdb_del(c->txn, c->lru, &old, NULL);
    }
    be64(c->seq++, s);
    MDB_val sv = {8, s};
    int rc = mdb_put(c->txn, c->lru, &sv, &k, 0);
    return rc ? rc : mdb_put(c->txn, c->atime, &k, &sv, 0);
}

static int remove_entry(vgpt_cache *c, MDB_val *key) {
    MDB_val v;
    if (!mdb_get(c->txn, c->atime, key, &v) && v.mv_size == 8) {
        MDB_val s = {8, v.mv_data};
        mdb_del(c->txn, c->lru, &s, NULL);
    }
    mdb_del(c->txn, c->atime, key, NULL);
    int rc = mdb_del(c->txn, c->tokens, key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void entry_damaged(vgpt_cache *c, const uint8_t key[32], const char *why) {
    if (c->st.damaged++) return;
    char hex[17];
    for (int i = 0; i < 8; i++) snprintf(hex + 2 * i, 3, "%02x", key[i]);
    vgpt_log(c->log_name, "warning: token cache %s/data.mdb: entry %s... is damaged (%s); dropped it, the image is "
             "encoded again (further damaged entries are only counted: \"damaged\" in the stats line)", c->dir, hex,
             why);
}

typedef struct get_args {
    const uint8_t *key;
    float *tokens;
    int L, C, hit;
} get_args;

static int get_op(vgpt_cache *c, void *arg) {
    get_args *a = arg;
    MDB_val k = {32, (void *)a->key}, v;
    int rc = mdb_txn_begin(c->env, NULL, 0, &c->txn);
    if (rc) return rc;
    rc = mdb_get(c->txn, c->tokens, &k, &v);
    if (rc == MDB_NOTFOUND) return txn_end(c, 0);
    if (rc) return txn_end(c, rc);
    char why[256];
    int verdict = vgpt_cache_entry_decode(v.mv_data, v.mv_size, a->key, a->L, a->C, a->tokens, why, sizeof why);
    if (verdict == VGPT_ENTRY_OK) {
        a->hit = 1;
        return txn_end(c, touch(c, a->key));
    }
    if (verdict == VGPT_ENTRY_DAMAGED) entry_damaged(c, a->key, why);
    return txn_end(c, remove_entry(c, &k)); /* stale or damaged: forget it */
}

int vgpt_cache_get(vgpt_cache *c, const uint8_t key[32], float *tokens, int L, int C) {
    if (!usable(c)) return 0;
    get_args a = {key, tokens, L, C, 0};
    int rc = guarded(c, get_op, &a);
    if (rc) lmdb_off(c, "read", rc);
    a.hit ? c->st.hits++ : c->st.misses++; /* a verified hit stands even if its bookkeeping failed */
    return a.hit;
}

/* Drops least recently used entries until one more of entry_bytes fits the bound. */
static int evict(vgpt_cache *c, size_t entry_bytes) {
    MDB_stat ms;
    int rc = mdb_stat(c->txn, c->tokens, &ms);
    if (rc) return rc;
    size_t n = ms.ms_entries;
    while (n > 0 && (n + 1) * entry_bytes > c->max_bytes) {
        MDB_cursor *cur;
        MDB_val s, key;
        if ((rc = mdb_cursor_open(c->txn, c->lru, &cur))) return rc;
        rc = mdb_cursor_get(cur, &s, &key, MDB_FIRST);
        uint8_t kb[32];
        if (!rc && key.mv_size == 32) memcpy(kb, key.mv_data, 32);
        mdb_cursor_close(cur);
        if (rc || key.mv_size != 32) return rc ? rc : MDB_CORRUPTED;
        MDB_val k = {32, kb};
        if ((rc = remove_entry(c, &k))) return rc;
        c->st.evictions++;
        n--;
    }
    return 0;
}

typedef struct put_args {
    const uint8_t *key;
    const float *tokens;
    int L, C;
} put_args;

static int put_op(vgpt_cache *c, void *arg) {
    put_args *a = arg;
    size_t bytes = vgpt_cache_entry_size(a->L, a->C);
    MDB_val k = {32, (void *)a->key}, v = {bytes, NULL};
    int rc = mdb_txn_begin(c->env, NULL, 0, &c->txn);
    if (rc) return rc;
    if (!(rc = evict(c, bytes)) && !(rc = mdb_put(c->txn, c->tokens, &k, &v, MDB_RESERVE))) {
        vgpt_cache_entry_encode(a->key, a->tokens, a->L, a->C, v.mv_data);
        rc = touch(c, a->key);
    }
    return txn_end(c, rc);
}

void vgpt_cache_put(vgpt_cache *c, const uint8_t key[32], const float *tokens, int L, int C) {
    if (!usable(c) || vgpt_cache_entry_size(L, C) > c->max_bytes) return;
    put_args a = {key, tokens, L, C};
    int rc = guarded(c, put_op, &a);
    if (rc) lmdb_off(c, "write", rc);
    else c->st.puts++;
}

static int stat_op(vgpt_cache *c, void *arg) {
    MDB_stat ms;
    int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &c->txn);
    if (rc) return rc;
    if (!(rc = mdb_stat(c->txn, c->tokens, &ms))) *(uint64_t *)arg = ms.ms_entries;
    mdb_txn_abort(c->txn);
    c->txn = NULL;
    return rc;
}

void vgpt_cache_stats_get(vgpt_cache *c, vgpt_cache_stats *s) {
    memset(s, 0, sizeof *s);
    if (!c) {
        s->disabled = 1;
        return;
    }
    uint64_t entries = 0;
    int rc = usable(c) ? guarded(c, stat_op, &entries) : 0;
    if (rc) lmdb_off(c, "stat", rc);
    *s = c->st;
    if (!s->disabled) s->entries = entries;
}
