/* ckpt_legacy.c - the pre-1.6 torch.save stream (what torch writes with
 * _use_new_zipfile_serialization=False, and what some 2021-22 hub uploads
 * are): five pickles in a row, then the storages' bytes.
 *
 *   pickle 1  the magic number 0x1950a86a20f9469cfc6c
 *   pickle 2  the protocol version, 1001
 *   pickle 3  sys_info: {'protocol_version', 'little_endian', 'type_sizes'}
 *   pickle 4  the object, storages as persistent ids
 *             ('storage', torch.XStorage, key, location, numel, None)
 *   pickle 5  the list of storage keys, in the order their bytes follow
 *   then per key: u64 little-endian element count, count * element bytes
 *
 * Nothing is executed (pickle.c); the state dict is picked and checked by
 * the code the zip reader uses (ckpt_impl.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_impl.h"

static const uint8_t legacy_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                       0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};

int vgpt_legacy_is(const uint8_t *b, size_t n) {
    return n >= sizeof legacy_magic && b[0] == 0x80 && !memcmp(b + 2, legacy_magic + 2, sizeof legacy_magic - 2);
}

typedef struct lg_storage {
    const char *key;
    size_t elem_size; /* 0 until a tensor names it */
    int64_t numel;
    const uint8_t *data;
    uint64_t size;
} lg_storage;

typedef struct lg {
    const char *path;
    lg_storage *st;
    size_t n;
} lg;

static lg_storage *lg_find(const lg *g, const char *key) {
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->st[i].key, key)) return &g->st[i];
    return NULL;
}

/* Element sizes come from the storages the object's tensors name (walked
 * to a small depth: a state dict, or one under "model_state_dict"). */
static void note_types(lg *g, const vgpt_pkval *v, int depth) {
    if (!v || depth > 3) return;
    if (v->type == VGPT_PK_TENSOR && v->t->storage && v->t->storage->type == VGPT_PK_STORAGE) {
        const vgpt_pk_storage *s = &v->t->storage->st;
        lg_storage *e = lg_find(g, s->key);
        if (e && !e->elem_size) e->elem_size = s->elem_size, e->numel = s->numel;
        return;
    }
    if (v->type == VGPT_PK_DICT || v->type == VGPT_PK_LIST || v->type == VGPT_PK_TUPLE)
        for (size_t i = 0; i < v->n; i++) note_types(g, v->items[i], depth + 1);
}

static uint64_t rd_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The storages' bytes follow the key list in its order. */
static int lg_locate(lg *g, const uint8_t *b, size_t n, size_t pos, vgpt_err *err) {
    for (size_t i = 0; i < g->n; i++) {
        lg_storage *s = &g->st[i];
        if (!s->elem_size)
            return vgpt_err_set(err, "%s: legacy torch.save stream: storage '%s' is used by no tensor of a known "
                                "element type, so its bytes cannot be skipped", g->path, s->key);
        if (n - pos < 8)
            return vgpt_err_set(err, "%s: legacy torch.save stream truncated at storage '%s' (offset %zu)", g->path,
                                s->key, pos);
        uint64_t count = rd_u64(b + pos), bytes;
        pos += 8;
        if (__builtin_mul_overflow(count, (uint64_t)s->elem_size, &bytes) || bytes > n - pos)
            return vgpt_err_set(err, "%s: legacy torch.save stream: storage '%s' claims %llu elements, more than "
                                "the %zu bytes left", g->path, s->key, (unsigned long long)count, n - pos);
        if ((int64_t)count != s->numel)
            return vgpt_err_set(err, "%s: legacy torch.save stream: storage '%s' has %llu elements, its persistent "
                                "id says %lld", g->path, s->key, (unsigned long long)count, (long long)s->numel);
        s->data = b + pos;
        s->size = bytes;
        pos += bytes;
    }
    return 0;
}

static int lg_storage_fn(void *arg, const char *key, const char *label, const uint8_t **data, uint64_t *size,
                         vgpt_err *err) {
    const lg_storage *s = lg_find(arg, key);
    if (!s || !s->data)
        return vgpt_err_set(err, "%s: storage '%s' is not in the stream's key list", label, key);
    *data = s->data;
    *size = s->size;
    return 0;
}

/* Pickle 2 is the protocol version 1001, pickle 3 says the byte order. */
static int check_header(const char *path, const vgpt_pkval *proto, const vgpt_pkval *info, vgpt_err *err) {
    if (proto->type != VGPT_PK_INT || proto->i != 1001)
        return vgpt_err_set(err, "%s: legacy torch.save stream: protocol version is not 1001", path);
    const vgpt_pkval *le = vgpt_pk_dict_get(info, "little_endian");
    if (le && le->type == VGPT_PK_BOOL && !le->i)
        return vgpt_err_set(err, "%s: legacy torch.save stream was written on a big-endian machine", path);
    return 0;
}

static int lg_keys(lg *g, const vgpt_pkval *keys, vgpt_err *err) {
    if (keys->type != VGPT_PK_LIST)
        return vgpt_err_set(err, "%s: legacy torch.save stream: the storage key list is a %s", g->path,
                            vgpt_pk_type_name(keys->type));
    g->st = calloc(keys->n ? keys->n : 1, sizeof *g->st);
    if (!g->st) return vgpt_err_set(err, "%s: out of memory", g->path);
    for (size_t i = 0; i < keys->n; i++) {
        if (keys->items[i]->type != VGPT_PK_STR)
            return vgpt_err_set(err, "%s: legacy torch.save stream: storage key %zu is a %s, not a str", g->path, i,
                                vgpt_pk_type_name(keys->items[i]->type));
        g->st[g->n++].key = keys->items[i]->s;
    }
    return 0;
}

int vgpt_legacy_index(vgpt_ckpt *ck, vgpt_err *err) {
    size_t n, pos = 2 + sizeof legacy_magic - 2, used;
    const uint8_t *b = vgpt_ckpt_bytes(ck, &n);
    lg g = {.path = vgpt_ckpt_path(ck)};
    vgpt_pickle *pk[4] = {0};
    const vgpt_pkval *v[4];
    char label[4200];
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        static const char *const what[] = {"protocol version", "sys_info", "object", "storage key list"};
        snprintf(label, sizeof label, "%s: legacy torch.save %s", g.path, what[i]);
        rc = vgpt_pickle_parse_prefix(b + pos, n - pos, label, &pk[i], &v[i], &used, err);
        pos += used;
    }
    if (!rc) rc = check_header(g.path, v[0], v[1], err);
    if (!rc) rc = lg_keys(&g, v[3], err);
    if (!rc) note_types(&g, v[2], 0);
    if (!rc) rc = lg_locate(&g, b, n, pos, err);
    if (!rc) rc = vgpt_ckpt_collect(ck, v[2], lg_storage_fn, &g, err);
    free(g.st);
    for (int i = 0; i < 4; i++) vgpt_pickle_free(pk[i]);
    return rc;
}
