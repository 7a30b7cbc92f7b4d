/* proto_scan.c - allocation-free structural check of a msgpack frame and
 * envelope recovery (see proto_scan.h for why it exists). */
#include "proto_scan.h"

#include <string.h>

#include "proto.h"

typedef enum { MP_NIL, MP_BOOL, MP_UINT, MP_NINT, MP_FLOAT, MP_STR, MP_BIN, MP_EXT, MP_ARRAY, MP_MAP } mp_kind;

/* One header: u = integer value; n = payload bytes (STR/BIN/EXT/FLOAT) or
 * entries (ARRAY/MAP); body = payload start. */
typedef struct mp_item {
    mp_kind kind;
    uint64_t u;
    uint64_t n;
    const uint8_t *body;
} mp_item;

static uint64_t rd_be(const uint8_t *p, int w) {
    uint64_t v = 0;
    for (int i = 0; i < w; i++) v = v << 8 | p[i];
    return v;
}

/* Reads the header at *pp (not the payload).  0 ok, -1 truncated, -2 0xc1. */
static int mp_header(const uint8_t **pp, const uint8_t *end, mp_item *it) {
    const uint8_t *p = *pp;
    if (p >= end) return -1;
    uint8_t b = *p++;
    int w = 0, ext = 0;
    *it = (mp_item){.kind = MP_UINT};
    if (b <= 0x7f) it->u = b;
    else if (b <= 0x8f) it->kind = MP_MAP, it->n = b & 15;
    else if (b <= 0x9f) it->kind = MP_ARRAY, it->n = b & 15;
    else if (b <= 0xbf) it->kind = MP_STR, it->n = b & 31;
    else if (b >= 0xe0) it->kind = MP_NINT;
    else if (b == 0xc0) it->kind = MP_NIL;
    else if (b == 0xc1) return -2;
    else if (b <= 0xc3) it->kind = MP_BOOL, it->u = b & 1;
    else if (b <= 0xc6) it->kind = MP_BIN, w = 1 << (b - 0xc4);
    else if (b <= 0xc9) it->kind = MP_EXT, w = 1 << (b - 0xc7), ext = 1;
    else if (b <= 0xcb) it->kind = MP_FLOAT, it->n = b == 0xca ? 4 : 8;
    else if (b <= 0xd3) {
        int sz = 1 << ((b - 0xcc) & 3);
        if ((size_t)(end - p) < (size_t)sz) return -1;
        it->u = rd_be(p, sz);
        p += sz;
        /* signed formats holding a negative value */
        if (b >= 0xd0 && (it->u >> (8 * sz - 1)) & 1) it->kind = MP_NINT;
    } else if (b <= 0xd8) it->kind = MP_EXT, it->n = 1u << (b - 0xd4), ext = 1;
    else if (b <= 0xdb) it->kind = MP_STR, w = 1 << (b - 0xd9);
    else if (b <= 0xdd) it->kind = MP_ARRAY, w = b == 0xdc ? 2 : 4;
    else it->kind = MP_MAP, w = b == 0xde ? 2 : 4;
    if ((size_t)(end - p) < (size_t)(w + ext)) return -1;
    if (w) it->n = rd_be(p, w), p += w;
    p += ext; /* the ext type byte */
    it->body = p;
    *pp = p;
    return 0;
}

static const char *mp_kind_name(mp_kind k) {
    static const char *names[] = {"nil", "bool", "integer", "negative integer", "float",
                                  "string", "binary", "ext", "array", "map"};
    return names[k];
}

int vgpt_proto_valid_rt(const char *s, size_t n) {
    return n >= 1 && n <= VGPT_PROTO_MAX_REPLY_TO && !memchr(s, 0, n);
}

static int key_is(const uint8_t *key, size_t key_len, const char *want) {
    return key && key_len == strlen(want) && !memcmp(key, want, key_len);
}

/* Records a top-level value if its key is part of the envelope.  A key seen
 * twice makes that field ambiguous (has_* = 2): it is then not used. */
static void note(int *has, uint64_t *dst, uint64_t v) {
    if (*has == 0) *dst = v;
    *has = *has ? 2 : 1;
}

static void note_envelope(vgpt_scan_env *env, const uint8_t *key, size_t key_len, const mp_item *it) {
    if (key_is(key, key_len, "v")) note(&env->has_v, &env->v, it->kind == MP_UINT ? it->u : UINT64_MAX);
    if (key_is(key, key_len, "t")) note(&env->has_t, &env->t, it->kind == MP_UINT ? it->u : 0);
    if (key_is(key, key_len, "id")) {
        note(&env->has_id, &env->id, it->u);
        if (it->kind != MP_UINT) env->has_id = 2;
    }
    if (key_is(key, key_len, "rt")) {
        env->has_rt = env->has_rt ? 2 : 1;
        if (it->kind != MP_STR || !vgpt_proto_valid_rt((const char *)it->body, it->n)) env->has_rt = 2;
        else if (env->has_rt == 1) env->rt = (const char *)it->body, env->rt_len = it->n;
    }
}

int vgpt_proto_scan(const uint8_t *buf, size_t len, vgpt_scan_env *env, vgpt_err *err) {
    const uint8_t *p = buf, *end = buf + len;
    uint64_t left[VGPT_PROTO_MAX_DEPTH + 1]; /* entries still to read per open container */
    uint64_t top_total = 0;                  /* items (keys + values) in the top-level map */
    const uint8_t *key = NULL;               /* last top-level key, if a string */
    size_t key_len = 0;
    int depth = 0, objects = 0;
    left[0] = 1;
    while (depth >= 0) {
        if (left[depth] == 0) { depth--; continue; }
        left[depth]--;
        size_t off = (size_t)(p - buf);
        mp_item it;
        int rc = mp_header(&p, end, &it);
        if (rc == -1) return vgpt_err_set(err, "frame: truncated msgpack at byte %zu of %zu", off, len);
        if (rc == -2) return vgpt_err_set(err, "frame: byte 0xc1 at offset %zu is not msgpack", off);
        if (++objects > VGPT_PROTO_MAX_OBJECTS)
            return vgpt_err_set(err, "frame: more than %d msgpack objects", VGPT_PROTO_MAX_OBJECTS);
        if (depth == 0 && it.kind != MP_MAP)
            return vgpt_err_set(err, "frame: expected a msgpack map, got %s", mp_kind_name(it.kind));
        int in_top = depth == 1;
        int is_key = in_top && (top_total - left[1] - 1) % 2 == 0;
        if (it.kind == MP_ARRAY || it.kind == MP_MAP) {
            if (it.n > VGPT_PROTO_MAX_ENTRIES)
                return vgpt_err_set(err, "frame: %s at offset %zu has %llu entries, limit %d",
                                    mp_kind_name(it.kind), off, (unsigned long long)it.n, VGPT_PROTO_MAX_ENTRIES);
            if (depth + 1 > VGPT_PROTO_MAX_DEPTH) /* the top-level map is level 1 */
                return vgpt_err_set(err, "frame: msgpack nested deeper than %d at offset %zu",
                                    VGPT_PROTO_MAX_DEPTH, off);
            left[++depth] = it.kind == MP_MAP ? 2 * it.n : it.n;
            if (is_key) key = NULL;
            else if (in_top) note_envelope(env, key, key_len, &it); /* e.g. "id": [...]: unusable */
            if (depth == 1) top_total = 2 * it.n;
            continue;
        }
        if (it.kind == MP_STR || it.kind == MP_BIN || it.kind == MP_EXT || it.kind == MP_FLOAT) {
            if ((uint64_t)(end - p) < it.n)
                return vgpt_err_set(err, "frame: truncated msgpack: %s of %llu bytes at offset %zu overruns the "
                                    "%zu-byte frame", mp_kind_name(it.kind), (unsigned long long)it.n, off, len);
            p += it.n;
        }
        if (is_key) {
            key = it.kind == MP_STR ? it.body : NULL;
            key_len = it.kind == MP_STR ? it.n : 0;
        } else if (in_top) {
            note_envelope(env, key, key_len, &it);
        }
    }
    if (p != end)
        return vgpt_err_set(err, "frame: %zu trailing bytes after the msgpack map", (size_t)(end - p));
    return 0;
}
