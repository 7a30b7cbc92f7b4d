/* token_cache.c - see token_cache.h.
 *
 * Three LMDB databases: "tokens" key -> header + floats, "atime" key -> use
 * sequence number, "lru" sequence (big-endian, so LMDB orders it) -> key.
 * Eviction pops the smallest sequence numbers until the bound holds. */
#include "token_cache.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon.h"
#include "sha256.h"

#define MAGIC 0x4b544756u /* "VGTK" */

typedef struct entry_hdr {
    uint32_t magic, L, C, pad;
} entry_hdr;

struct vgpt_cache {
    MDB_env *env;
    MDB_dbi tokens, atime, lru;
    size_t max_bytes;
    uint64_t seq;
    vgpt_cache_stats st;
    const char *log_name;
};

static void disable(vgpt_cache *c, const char *what, int rc) {
    if (!c->st.disabled)
        vgpt_log(c->log_name, "warning: token cache disabled (%s: %s); encoding continues without it", what,
                 mdb_strerror(rc));
    c->st.disabled = 1;
}

static void be64(uint64_t v, uint8_t out[8]) {
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t last_seq(vgpt_cache *c, MDB_txn *txn) {
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t s = 0;
    if (mdb_cursor_open(txn, c->lru, &cur)) return 0;
    if (!mdb_cursor_get(cur, &k, &v, MDB_LAST) && k.mv_size == 8)
        for (int i = 0; i < 8; i++) s = s << 8 | ((uint8_t *)k.mv_data)[i];
    mdb_cursor_close(cur);
    return s;
}

vgpt_cache *vgpt_cache_open(const char *dir, size_t max_mb, const char *log_name) {
    vgpt_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->log_name = log_name;
    c->max_bytes = max_mb << 20;
    int rc;
    MDB_txn *txn = NULL;
    if (mkdir(dir, 0750) && errno != EEXIST) {
        vgpt_log(log_name, "warning: token cache disabled (cannot create %s: %m)", dir);
        c->st.disabled = 1;
        return c;
    }
    if ((rc = mdb_env_create(&c->env)) || (rc = mdb_env_set_maxdbs(c->env, 4)) ||
        (rc = mdb_env_set_mapsize(c->env, c->max_bytes * 2 + (64u << 20))) ||
        (rc = mdb_env_open(c->env, dir, MDB_NOTLS, 0640)) || (rc = mdb_txn_begin(c->env, NULL, 0, &txn)) ||
        (rc = mdb_dbi_open(txn, "tokens", MDB_CREATE, &c->tokens)) ||
        (rc = mdb_dbi_open(txn, "atime", MDB_CREATE, &c->atime)) ||
        (rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &c->lru))) {
        if (txn) mdb_txn_abort(txn);
        disable(c, dir, rc);
        return c;
    }
    c->seq = last_seq(c, txn) + 1;
    if ((rc = mdb_txn_commit(txn))) disable(c, dir, rc);
    return c;
}

void vgpt_cache_free(vgpt_cache *c) {
    if (!c) return;
    if (c->env) mdb_env_close(c->env);
    free(c);
}

void vgpt_cache_key(const uint8_t image_hash[32], const vgpt_image_opts *o, const char *fingerprint, uint8_t key[32]) {
    vgpt_sha256_ctx s;
    uint8_t settings[3] = {(uint8_t)(o->autorotate != 0), (uint8_t)(o->fast_decode != 0),
                           (uint8_t)(o->accept_truncated != 0)};
    vgpt_sha256_init(&s);
    vgpt_sha256_update(&s, "vgpt-tokens-v1", 14);
    vgpt_sha256_update(&s, image_hash, 32);
    vgpt_sha256_update(&s, settings, sizeof settings);
    vgpt_sha256_update(&s, fingerprint, strlen(fingerprint));
    vgpt_sha256_final(&s, key);
}

/* Gives key the newest use sequence number (inside a write txn). */
static int touch(vgpt_cache *c, MDB_txn *txn, const uint8_t key[32]) {
    MDB_val k = {32, (void *)key}, v;
    uint8_t s[8];
    if (!mdb_get(txn, c->atime, &k, &v) && v.mv_size == 8) {
        MDB_val old = {8, v.mv_data};
        mdb_del(txn, c->lru, &old, NULL);
    }
    be64(c->seq++, s);
    MDB_val sv = {8, s};
    int rc = mdb_put(txn, c->lru, &sv, &k, 0);
    return rc ? rc : mdb_put(txn, c->atime, &k, &sv, 0);
}

static int remove_entry(vgpt_cache *c, MDB_txn *txn, MDB_val *key) {
    MDB_val v;
    if (!mdb_get(txn, c->atime, key, &v) && v.mv_size == 8) {
        MDB_val s = {8, v.mv_data};
        mdb_del(txn, c->lru, &s, NULL);
    }
    mdb_del(txn, c->atime, key, NULL);
    int rc = mdb_del(txn, c->tokens, key, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int vgpt_cache_get(vgpt_cache *c, const uint8_t key[32], float *tokens, int L, int C) {
    if (!c || c->st.disabled) return 0;
    MDB_txn *txn;
    MDB_val k = {32, (void *)key}, v;
    int rc = mdb_txn_begin(c->env, NULL, 0, &txn), hit = 0;
    if (rc) {
        disable(c, "begin", rc);
        return 0;
    }
    size_t want = sizeof(entry_hdr) + (size_t)L * C * sizeof(float);
    rc = mdb_get(txn, c->tokens, &k, &v);
    if (!rc) {
        entry_hdr h = {0, 0, 0, 0};
        memcpy(&h, v.mv_data, v.mv_size >= sizeof h ? sizeof h : 0);
        if (v.mv_size == want && h.magic == MAGIC && (int)h.L == L && (int)h.C == C) {
            memcpy(tokens, (const uint8_t *)v.mv_data + sizeof h, want - sizeof h);
            hit = 1;
            rc = touch(c, txn, key);
        } else {
            rc = remove_entry(c, txn, &k); /* wrong shape or damaged: forget it */
        }
    } else if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    if (rc) {
        mdb_txn_abort(txn);
        disable(c, "read", rc);
    } else if ((rc = mdb_txn_commit(txn))) {
        disable(c, "commit", rc);
    }
    hit ? c->st.hits++ : c->st.misses++;
    return hit;
}

/* Drops least recently used entries until `need` more bytes fit the bound. */
static int evict(vgpt_cache *c, MDB_txn *txn, size_t entry_bytes) {
    MDB_stat ms;
    int rc = mdb_stat(txn, c->tokens, &ms);
    if (rc) return rc;
    size_t n = ms.ms_entries;
    while (n > 0 && (n + 1) * entry_bytes > c->max_bytes) {
        MDB_cursor *cur;
        MDB_val s, key;
        if ((rc = mdb_cursor_open(txn, c->lru, &cur))) return rc;
        rc = mdb_cursor_get(cur, &s, &key, MDB_FIRST);
        uint8_t kb[32];
        if (!rc && key.mv_size == 32) memcpy(kb, key.mv_data, 32);
        mdb_cursor_close(cur);
        if (rc || key.mv_size != 32) return rc ? rc : MDB_CORRUPTED;
        MDB_val k = {32, kb};
        if ((rc = remove_entry(c, txn, &k))) return rc;
        c->st.evictions++;
        n--;
    }
    return 0;
}

void vgpt_cache_put(vgpt_cache *c, const uint8_t key[32], const float *tokens, int L, int C) {
    if (!c || c->st.disabled) return;
    size_t bytes = sizeof(entry_hdr) + (size_t)L * C * sizeof(float);
    if (bytes > c->max_bytes) return;
    MDB_txn *txn;
    int rc = mdb_txn_begin(c->env, NULL, 0, &txn);
    if (rc) {
        disable(c, "begin", rc);
        return;
    }
    MDB_val k = {32, (void *)key}, v = {bytes, NULL};
    if (!(rc = evict(c, txn, bytes)) && !(rc = mdb_put(txn, c->tokens, &k, &v, MDB_RESERVE))) {
        entry_hdr h = {MAGIC, (uint32_t)L, (uint32_t)C, 0};
        memcpy(v.mv_data, &h, sizeof h);
        memcpy((uint8_t *)v.mv_data + sizeof h, tokens, bytes - sizeof h);
        rc = touch(c, txn, key);
    }
    if (rc) {
        mdb_txn_abort(txn);
        disable(c, "write", rc);
        return;
    }
    if ((rc = mdb_txn_commit(txn))) {
        disable(c, "commit", rc);
        return;
    }
    c->st.puts++;
}

void vgpt_cache_stats_get(const vgpt_cache *c, vgpt_cache_stats *s) {
    memset(s, 0, sizeof *s);
    if (!c) {
        s->disabled = 1;
        return;
    }
    *s = c->st;
    MDB_txn *txn;
    MDB_stat ms;
    if (c->st.disabled || mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn)) return;
    if (!mdb_stat(txn, c->tokens, &ms)) s->entries = ms.ms_entries;
    mdb_txn_abort(txn);
}
