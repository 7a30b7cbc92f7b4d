/* proto_unpack.c - frame -> vgpt_msg, checking every field against
 * proto/README.md.  Bytes and tensors stay in the caller's buffer; only
 * short strings, the caption's token ids and (rarely) a misaligned tensor
 * are copied into storage the msg owns (m->priv). */
#include <math.h>
#include <stdarg.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "proto_scan.h"

#define MAX_BLOCKS 8

typedef struct msg_priv {
    void *blocks[MAX_BLOCKS];
    int n;
} msg_priv;

/* Decoding state: the message being filled and where errors go. */
typedef struct dec {
    vgpt_msg *m;
    msg_priv *priv;
    vgpt_err *err;
    char where[64]; /* "IMAGE id 7", for messages */
} dec;

static int fail(dec *d, const char *field, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(dec *d, const char *field, const char *fmt, ...) {
    char why[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return vgpt_err_set(d->err, "frame (%s): field \"%s\": %s", d->where, field, why);
}

static void describe(const msgpack_object *o, char *buf, size_t n) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: snprintf(buf, n, "nil"); break;
    case MSGPACK_OBJECT_BOOLEAN: snprintf(buf, n, "bool %s", o->via.boolean ? "true" : "false"); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: snprintf(buf, n, "integer %llu", (unsigned long long)o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: snprintf(buf, n, "negative integer %lld", (long long)o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: snprintf(buf, n, "float %g", o->via.f64); break;
    case MSGPACK_OBJECT_STR: snprintf(buf, n, "a string of %u bytes", o->via.str.size); break;
    case MSGPACK_OBJECT_BIN: snprintf(buf, n, "binary of %u bytes", o->via.bin.size); break;
    case MSGPACK_OBJECT_ARRAY: snprintf(buf, n, "an array of %u", o->via.array.size); break;
    case MSGPACK_OBJECT_MAP: snprintf(buf, n, "a map of %u", o->via.map.size); break;
    default: snprintf(buf, n, "an ext value"); break;
    }
}

static int wrong(dec *d, const char *field, const char *expected, const msgpack_object *o) {
    char got[64];
    describe(o, got, sizeof got);
    return fail(d, field, "expected %s, got %s", expected, got);
}

static void *keep(dec *d, size_t n, size_t align) {
    if (d->priv->n == MAX_BLOCKS) return NULL;
    n = (n + align - 1) / align * align;
    void *p = aligned_alloc(align, n ? n : align);
    if (p) d->priv->blocks[d->priv->n++] = p;
    return p;
}

/* Looks key up in map; a known key given twice is ambiguous, so rejected. */
static int find(dec *d, const msgpack_object_map *map, const char *key, const char *field,
                const msgpack_object **out) {
    size_t klen = strlen(key);
    *out = NULL;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != klen || memcmp(k->via.str.ptr, key, klen)) continue;
        if (*out) return fail(d, field, "given twice");
        *out = &map->ptr[i].val;
    }
    return 0;
}

/* Unsigned integer field in [lo, hi].  *out unchanged when absent and optional. */
static int get_uint(dec *d, const msgpack_object_map *map, const char *key, const char *field, int required,
                    uint64_t lo, uint64_t hi, uint64_t *out) {
    const msgpack_object *o;
    if (find(d, map, key, field, &o)) return -1;
    if (!o) return required ? fail(d, field, "missing") : 0;
    char expected[96];
    snprintf(expected, sizeof expected, "an integer from %llu to %llu", (unsigned long long)lo,
             (unsigned long long)hi);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 < lo || o->via.u64 > hi)
        return wrong(d, field, expected, o);
    *out = o->via.u64;
    return 0;
}

static int get_int(dec *d, const msgpack_object_map *map, const char *key, const char *field, int lo, int hi,
                   int *out) {
    uint64_t v = (uint64_t)*out;
    if (get_uint(d, map, key, field, 0, (uint64_t)lo, (uint64_t)hi, &v)) return -1;
    *out = (int)v;
    return 0;
}

/* bool, or the integers 0 / 1 */
static int get_bool(dec *d, const msgpack_object_map *map, const char *key, const char *field, int *out) {
    const msgpack_object *o;
    if (find(d, map, key, field, &o)) return -1;
    if (!o) return 0;
    if (o->type == MSGPACK_OBJECT_BOOLEAN) *out = o->via.boolean;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= 1) *out = (int)o->via.u64;
    else return wrong(d, field, "a bool", o);
    return 0;
}

/* float32, float64 or integer, finite, in [lo, hi] (lo exclusive if lo_open) */
static int get_float(dec *d, const msgpack_object_map *map, const char *key, const char *field, double lo,
                     int lo_open, double hi, float *out) {
    const msgpack_object *o;
    if (find(d, map, key, field, &o)) return -1;
    if (!o) return 0;
    double v;
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) v = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) v = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) v = (double)o->via.i64;
    else return wrong(d, field, "a number", o);
    /* range-check the double (an out-of-range cast is UB), then the float the receiver uses */
    float f = isfinite(v) && v >= lo && v <= hi ? (float)v : NAN;
    if (!isfinite(f) || f > hi || f < lo || (lo_open && f == lo)) {
        char expected[96];
        snprintf(expected, sizeof expected, "a number in %c%g, %g]", lo_open ? '(' : '[', lo, hi);
        return wrong(d, field, expected, o);
    }
    *out = f;
    return 0;
}

/* String of lo..hi bytes, copied NUL-terminated (into dst if given, else
 * into storage the msg owns).  no_nul: C strings the receiver will use. */
static int get_str(dec *d, const msgpack_object_map *map, const char *key, const char *field, int required,
                   size_t lo, size_t hi, int no_nul, char *dst, const char **out, size_t *out_len) {
    const msgpack_object *o;
    if (find(d, map, key, field, &o)) return -1;
    if (!o) return required ? fail(d, field, "missing") : 0;
    char expected[96];
    snprintf(expected, sizeof expected, "a string of %zu to %zu bytes%s", lo, hi, no_nul ? " without NUL" : "");
    size_t n = o->via.str.size;
    if (o->type != MSGPACK_OBJECT_STR || n < lo || n > hi || (no_nul && memchr(o->via.str.ptr, 0, n)))
        return wrong(d, field, expected, o);
    char *s = dst ? dst : keep(d, n + 1, 1);
    if (!s) return fail(d, field, "out of memory");
    memcpy(s, o->via.str.ptr, n);
    s[n] = 0;
    *out = s;
    *out_len = n;
    return 0;
}

static int get_bin(dec *d, const msgpack_object_map *map, const char *key, const char *field, int required,
                   size_t lo, size_t hi, const msgpack_object **out) {
    if (find(d, map, key, field, out)) return -1;
    if (!*out) return required ? fail(d, field, "missing") : 0;
    const msgpack_object *o = *out;
    char expected[96];
    snprintf(expected, sizeof expected, "binary of %zu to %zu bytes", lo, hi);
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size < lo || o->via.bin.size > hi)
        return wrong(d, field, expected, o);
    return 0;
}

/* Sub-map field ("img", "gen", "tensor"): *out NULL when absent. */
static int get_map(dec *d, const msgpack_object_map *map, const char *key, int required,
                   const msgpack_object_map **out) {
    const msgpack_object *o;
    *out = NULL;
    if (find(d, map, key, key, &o)) return -1;
    if (!o) return required ? fail(d, key, "missing") : 0;
    if (o->type != MSGPACK_OBJECT_MAP) return wrong(d, key, "a map", o);
    *out = &o->via.map;
    return 0;
}

static int get_img(dec *d, const msgpack_object_map *top) {
    const msgpack_object_map *im;
    if (get_map(d, top, "img", 0, &im)) return -1;
    if (!im) return 0;
    vgpt_image_opts *o = &d->m->img;
    uint64_t mp = o->max_pixels;
    if (get_bool(d, im, "ar", "img.ar", &o->autorotate) || get_bool(d, im, "fd", "img.fd", &o->fast_decode) ||
        get_bool(d, im, "tr", "img.tr", &o->accept_truncated) ||
        get_uint(d, im, "mp", "img.mp", 0, 0, UINT64_MAX, &mp))
        return -1;
    o->max_pixels = mp;
    return 0;
}

static int get_gen(dec *d, const msgpack_object_map *top) {
    const msgpack_object_map *g;
    if (get_map(d, top, "gen", 0, &g)) return -1;
    if (!g) return 0;
    vgpt_gen_opts *o = &d->m->gen;
    int mode = (int)o->mode, stop = (int)o->early_stopping;
    uint64_t seed = o->seed;
    if (get_int(d, g, "mode", "gen.mode", 0, 2, &mode) ||
        get_int(d, g, "beams", "gen.beams", 1, VGPT_GEN_MAX_BEAMS, &o->beams) ||
        get_int(d, g, "maxt", "gen.maxt", 1, VGPT_GEN_MAX_TOKENS, &o->max_tokens) ||
        get_int(d, g, "nrng", "gen.nrng", 0, VGPT_GEN_MAX_NGRAM, &o->no_repeat_ngram) ||
        get_float(d, g, "lp", "gen.lp", -VGPT_GEN_MAX_LENGTH_PENALTY, 0, VGPT_GEN_MAX_LENGTH_PENALTY,
                  &o->length_penalty) ||
        get_int(d, g, "es", "gen.es", VGPT_STOP_HEURISTIC, VGPT_STOP_NEVER, &stop) ||
        get_float(d, g, "temp", "gen.temp", 0, 0, VGPT_GEN_MAX_TEMPERATURE, &o->temperature) ||
        get_int(d, g, "topk", "gen.topk", 0, VGPT_GEN_MAX_TOP_K, &o->top_k) ||
        get_float(d, g, "topp", "gen.topp", 0, 1, 1, &o->top_p) ||
        get_uint(d, g, "seed", "gen.seed", 0, 0, UINT64_MAX, &seed))
        return -1;
    o->mode = (vgpt_mode)mode;
    o->early_stopping = (vgpt_stop)stop;
    o->seed = seed;
    return 0;
}

static void shape_str(const vgpt_wire_tensor *w, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%s [", vgpt_wire_dtype_name(w->dtype));
    for (int i = 0; i < w->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)w->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* "shape": 1..4 dims, each 1..2^31-1; *elems = their product (<= 2^40). */
static int get_shape(dec *d, const msgpack_object_map *t, vgpt_wire_tensor *w, uint64_t *elems) {
    const msgpack_object *o;
    if (find(d, t, "shape", "tensor.shape", &o)) return -1;
    if (!o) return fail(d, "tensor.shape", "missing");
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 || o->via.array.size > 4)
        return wrong(d, "tensor.shape", "an array of 1 to 4 dimensions", o);
    w->ndim = (int)o->via.array.size;
    *elems = 1;
    for (int i = 0; i < w->ndim; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        char field[32];
        snprintf(field, sizeof field, "tensor.shape[%d]", i);
        if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 < 1 || e->via.u64 > INT32_MAX)
            return wrong(d, field, "an integer from 1 to 2147483647", e);
        w->shape[i] = (int64_t)e->via.u64;
        if (*elems > (UINT64_C(1) << 40) / e->via.u64)
            return fail(d, "tensor.shape", "more than 2^40 elements");
        *elems *= e->via.u64;
    }
    return 0;
}

/* What each message type may carry (README "Tensors"). */
static int check_kind(dec *d, const vgpt_wire_tensor *w) {
    char got[96];
    shape_str(w, got, sizeof got);
    if (d->m->type == VGPT_MSG_PREPROCESSED) {
        if (w->dtype != VGPT_WIRE_U8 || w->ndim != 3 || w->shape[0] != VGPT_IMAGE_SIZE ||
            w->shape[1] != VGPT_IMAGE_SIZE || w->shape[2] != 3)
            return fail(d, "tensor", "expected u8 [224,224,3], got %s", got);
        return 0;
    }
    if ((w->dtype != VGPT_WIRE_F32 && w->dtype != VGPT_WIRE_F16) || w->ndim != 2 ||
        w->shape[0] > VGPT_PROTO_MAX_TOK_L || w->shape[1] > VGPT_PROTO_MAX_TOK_C)
        return fail(d, "tensor", "expected f32 or f16 [1..%d,1..%d], got %s", VGPT_PROTO_MAX_TOK_L,
                    VGPT_PROTO_MAX_TOK_C, got);
    return 0;
}

static int get_tensor(dec *d, const msgpack_object_map *top) {
    const msgpack_object_map *t;
    const msgpack_object *data;
    vgpt_wire_tensor *w = &d->m->tensor;
    uint64_t dt = 0, elems = 0;
    if (get_map(d, top, "tensor", 1, &t) || get_uint(d, t, "dt", "tensor.dt", 1, 1, 3, &dt)) return -1;
    w->dtype = (vgpt_wire_dtype)dt;
    if (get_shape(d, t, w, &elems) || check_kind(d, w) ||
        get_bin(d, t, "data", "tensor.data", 1, 0, UINT32_MAX, &data))
        return -1;
    size_t es = vgpt_wire_dtype_size(w->dtype);
    if (elems * es != data->via.bin.size) {
        char got[96];
        shape_str(w, got, sizeof got);
        return fail(d, "tensor.data", "%s needs %llu bytes, got %u", got, (unsigned long long)(elems * es),
                    data->via.bin.size);
    }
    w->nbytes = data->via.bin.size;
    w->data = data->via.bin.ptr;
    if ((uintptr_t)w->data % es) { /* the receive buffer left it misaligned: one aligned copy */
        void *copy = keep(d, w->nbytes, 64);
        if (!copy) return fail(d, "tensor.data", "out of memory (%zu bytes)", w->nbytes);
        memcpy(copy, w->data, w->nbytes);
        w->data = copy;
    }
    return 0;
}

static int get_tokens(dec *d, const msgpack_object_map *top) {
    const msgpack_object *o;
    if (get_bin(d, top, "toks", "toks", 0, 0, (size_t)VGPT_PROTO_MAX_TOKENS * 4, &o)) return -1;
    if (!o) return 0;
    if (o->via.bin.size % 4) return wrong(d, "toks", "binary of int32 (a multiple of 4 bytes)", o);
    int n = (int)(o->via.bin.size / 4);
    int32_t *t = keep(d, (size_t)n * 4, 4);
    if (!t) return fail(d, "toks", "out of memory");
    const uint8_t *b = (const uint8_t *)o->via.bin.ptr;
    for (int i = 0; i < n; i++, b += 4) {
        uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        if (u > INT32_MAX) return fail(d, "toks", "token %d is negative", i);
        t[i] = (int32_t)u;
    }
    d->m->tokens = t;
    d->m->n_tokens = n;
    return 0;
}

static int get_hash(dec *d, const msgpack_object_map *top) {
    const msgpack_object *o;
    if (get_bin(d, top, "hash", "hash", 0, 32, 32, &o)) return -1;
    if (o) memcpy(d->m->hash, o->via.bin.ptr, 32), d->m->has_hash = 1;
    return 0;
}

static int get_image_payload(dec *d, const msgpack_object_map *top) {
    vgpt_msg *m = d->m;
    const msgpack_object *b;
    if (get_str(d, top, "path", "path", 0, 1, VGPT_PROTO_MAX_PATH, 1, NULL, &m->path, &m->path_len) ||
        get_bin(d, top, "bytes", "bytes", 0, 1, UINT32_MAX, &b))
        return -1;
    if (b) m->bytes = b->via.bin.ptr, m->n_bytes = b->via.bin.size;
    if (!m->path == !b) return fail(d, m->path ? "path" : "bytes", "an IMAGE needs exactly one of path and bytes");
    return 0;
}

/* TOKENS "mfp": 16 lowercase hex digits, optional. */
static int get_model_fp(dec *d, const msgpack_object_map *top) {
    const char *s;
    size_t n;
    if (get_str(d, top, "mfp", "mfp", 0, 16, 16, 1, d->m->model_fp, &s, &n)) return -1;
    for (size_t i = 0; d->m->model_fp[0] && i < 16; i++)
        if (!strchr("0123456789abcdef", d->m->model_fp[i]) || !d->m->model_fp[i])
            return fail(d, "mfp", "expected 16 lowercase hex digits");
    return 0;
}

/* Fields beyond the envelope, per message type. */
static int get_payload(dec *d, const msgpack_object_map *top) {
    vgpt_msg *m = d->m;
    switch (m->type) {
    case VGPT_MSG_IMAGE: return get_img(d, top) || get_gen(d, top) || get_image_payload(d, top) ? -1 : 0;
    case VGPT_MSG_PREPROCESSED:
        return get_img(d, top) || get_gen(d, top) || get_hash(d, top) || get_tensor(d, top) ? -1 : 0;
    case VGPT_MSG_TOKENS:
        return get_img(d, top) || get_gen(d, top) || get_hash(d, top) ||
                       get_bool(d, top, "ch", "ch", &m->cache_hit) || get_model_fp(d, top) || get_tensor(d, top)
                   ? -1
                   : 0;
    case VGPT_MSG_CAPTION:
        return get_str(d, top, "cap", "cap", 1, 0, VGPT_PROTO_MAX_CAPTION, 0, NULL, &m->caption,
                       &m->caption_len) ||
                       get_tokens(d, top) || get_float(d, top, "sc", "sc", -1e30, 0, 1e30, &m->score)
                   ? -1
                   : 0;
    case VGPT_MSG_ERROR:
        return get_str(d, top, "stage", "stage", 1, 1, VGPT_PROTO_MAX_STAGE, 1, NULL, &m->stage, &m->stage_len) ||
                       get_str(d, top, "err", "err", 1, 1, VGPT_PROTO_MAX_ERROR, 0, NULL, &m->error,
                               &m->error_len)
                   ? -1
                   : 0;
    }
    return -1;
}

/* "v", "t", "id", "rt", "at"; the version decides how to read the rest. */
static int get_envelope(dec *d, const msgpack_object_map *top) {
    vgpt_msg *m = d->m;
    const msgpack_object *v;
    if (find(d, top, "v", "v", &v)) return -1;
    if (!v) return fail(d, "v", "missing (no protocol version)");
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return wrong(d, "v", "an integer", v);
    if (v->via.u64 != VGPT_PROTO_VERSION)
        return fail(d, "v", "unsupported protocol version %llu (this build speaks version %d)",
                    (unsigned long long)v->via.u64, VGPT_PROTO_VERSION);
    uint64_t t = 0, at = 0;
    size_t rt_len = 0;
    if (get_uint(d, top, "t", "t", 1, 1, 5, &t)) return -1;
    m->type = (vgpt_msg_type)t;
    /* only requests carry a reply_to: answers are never answered (no loops) */
    int request = m->type == VGPT_MSG_IMAGE || m->type == VGPT_MSG_PREPROCESSED || m->type == VGPT_MSG_TOKENS;
    if (get_uint(d, top, "id", "id", 1, 0, UINT64_MAX, &m->id) ||
        (request && get_str(d, top, "rt", "rt", 1, 1, VGPT_PROTO_MAX_REPLY_TO, 1, m->reply_buf, &m->reply_to,
                            &rt_len)) ||
        get_uint(d, top, "at", "at", 0, 0, UINT32_MAX, &at))
        return -1;
    m->attempt = (uint32_t)at;
    snprintf(d->where, sizeof d->where, "%s id %llu", vgpt_msg_type_name(m->type), (unsigned long long)m->id);
    return 0;
}

static int decode_tree(dec *d, const void *buf, size_t len) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = msgpack_unpack_next(&up, buf, len, &off), ret = -1;
    if (rc != MSGPACK_UNPACK_SUCCESS || off != len || up.data.type != MSGPACK_OBJECT_MAP)
        vgpt_err_set(d->err, "frame: msgpack-c could not unpack it (code %d)", rc);
    else
        ret = get_envelope(d, &up.data.via.map) || get_payload(d, &up.data.via.map) ? -1 : 0;
    msgpack_unpacked_destroy(&up);
    return ret;
}

/* Failure: keep only the envelope the scan could read (README "Receiving"). */
static void partial(vgpt_msg *m, const vgpt_scan_env *env) {
    vgpt_msg_free(m);
    vgpt_msg_init(m, env->has_t == 1 && env->t >= 1 && env->t <= 5 ? (vgpt_msg_type)env->t : 0);
    if (env->has_id == 1 && env->has_rt == 1 && m->type != VGPT_MSG_CAPTION && m->type != VGPT_MSG_ERROR) {
        m->id = env->id;
        memcpy(m->reply_buf, env->rt, env->rt_len);
        m->reply_buf[env->rt_len] = 0;
        m->reply_to = m->reply_buf;
    }
}

int vgpt_msg_unpack(const void *buf, size_t len, vgpt_msg *m, vgpt_err *err) {
    vgpt_msg_init(m, 0);
    vgpt_scan_env env = {0};
    static const uint8_t empty[1];
    if (!buf && len) return vgpt_err_set(err, "frame: NULL buffer");
    if (!buf) buf = empty; /* no arithmetic on NULL */
    if (vgpt_proto_scan(buf, len, &env, err)) return partial(m, &env), -1;
    dec d = {.m = m, .err = err, .where = "type and id unknown"};
    if (env.has_t == 1 && env.has_id == 1)
        snprintf(d.where, sizeof d.where, "%s id %llu", vgpt_msg_type_name((vgpt_msg_type)env.t),
                 (unsigned long long)env.id);
    d.priv = m->priv = calloc(1, sizeof(msg_priv));
    if (!d.priv) return vgpt_err_set(err, "frame (%s): out of memory", d.where);
    if (decode_tree(&d, buf, len)) return partial(m, &env), -1;
    return 0;
}

void vgpt_msg_free(vgpt_msg *m) {
    msg_priv *p = m->priv;
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->blocks[i]);
    free(p);
    m->priv = NULL;
}
