/* test_proto.c - the wire format (proto/README.md) and the ZeroMQ helpers.
 *
 * Round trips of every message type with every field, zero-copy tensors,
 * every way a frame can be malformed (each field given a wrong type or an
 * out-of-range value, missing, duplicated; truncation at every length;
 * thousands of seeded random mutations), envelope recovery for error
 * replies, and PUSH/PULL/replier traffic over ipc:// in a temp dir. */
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* Truncation tests hide the tail of one buffer from ASan instead of copying
 * every prefix into its own allocation (150k prefixes of 150 kB). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HIDE(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNHIDE(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define HIDE(p, n) ((void)(p), (void)(n))
#define UNHIDE(p, n) ((void)(p), (void)(n))
#endif
#include "proto.h"
#include "zsock.h"

static check_state st;
static char big[70000]; /* 'a' * n, for oversize strings */

/* ---- valid messages of every type, every field set to a non-default ---- */

typedef struct fixture {
    uint8_t img[224 * 224 * 3];
    float tok[64 * 768];
    uint16_t half[2 * 3];
    uint8_t raw[100];
    int32_t ids[5];
} fixture;

static void base(vgpt_msg *m, vgpt_msg_type t, uint64_t id) {
    vgpt_msg_init(m, t);
    m->id = id;
    m->reply_to = "ipc:///tmp/vgpt-client-123/reply";
    m->attempt = 3;
    m->img = (vgpt_image_opts){.autorotate = 0, .fast_decode = 1, .accept_truncated = 1, .max_pixels = 12345678};
    m->gen = (vgpt_gen_opts){.mode = VGPT_SAMPLE, .beams = 5, .max_tokens = 77, .no_repeat_ngram = 4,
                             .length_penalty = -0.5f, .early_stopping = VGPT_STOP_NEVER, .temperature = 0.25f,
                             .top_k = 40, .top_p = 0.75f, .seed = UINT64_C(0xfeedfacecafebeef)};
}

static void make(vgpt_msg *m, fixture *f, int which) {
    switch (which) {
    case 0: /* IMAGE by path */
        base(m, VGPT_MSG_IMAGE, UINT64_C(0xfedcba9876543210));
        m->path = "/srv/photos/2024/0001.jpg";
        break;
    case 1: /* IMAGE by bytes */
        base(m, VGPT_MSG_IMAGE, 1);
        m->bytes = f->raw, m->n_bytes = sizeof f->raw;
        break;
    case 2:
        base(m, VGPT_MSG_PREPROCESSED, 2);
        for (int i = 0; i < 32; i++) m->hash[i] = (uint8_t)(i * 7 + 1);
        m->has_hash = 1;
        m->tensor = (vgpt_wire_tensor){VGPT_WIRE_U8, 3, {224, 224, 3}, f->img, sizeof f->img};
        break;
    case 3:
        base(m, VGPT_MSG_TOKENS, 3);
        for (int i = 0; i < 32; i++) m->hash[i] = (uint8_t)(255 - i);
        m->has_hash = 1;
        m->cache_hit = 1;
        m->tensor = (vgpt_wire_tensor){VGPT_WIRE_F32, 2, {64, 768}, f->tok, sizeof f->tok};
        break;
    case 4: /* small f16 TOKENS, for mutation tests */
        base(m, VGPT_MSG_TOKENS, 4);
        m->tensor = (vgpt_wire_tensor){VGPT_WIRE_F16, 2, {2, 3}, f->half, sizeof f->half};
        break;
    case 5:
        vgpt_msg_init(m, VGPT_MSG_CAPTION);
        m->id = 5, m->reply_to = "tcp://10.0.0.7:5555", m->attempt = 1;
        m->caption = "a dog runs on the beach";
        m->tokens = f->ids, m->n_tokens = 5;
        m->score = -3.25f;
        break;
    default:
        vgpt_msg_init(m, VGPT_MSG_ERROR);
        m->id = 6, m->reply_to = "ipc:///tmp/r";
        m->stage = "encoderd";
        m->error = "/x.jpg: not an image (expected JPEG, PNG, ...)";
        break;
    }
}
#define N_FIX 7

static void fill(fixture *f) {
    for (size_t i = 0; i < sizeof f->img; i++) f->img[i] = (uint8_t)(i * 31 + 7);
    for (size_t i = 0; i < 64 * 768; i++) f->tok[i] = (float)i * 0.001f - 7.0f;
    for (int i = 0; i < 6; i++) f->half[i] = (uint16_t)(0x3c00 + i);
    for (size_t i = 0; i < sizeof f->raw; i++) f->raw[i] = (uint8_t)(255 - i);
    int32_t ids[5] = {64, 3290, 4539, 0, 50256};
    memcpy(f->ids, ids, sizeof ids);
}

static int str_eq(const char *a, size_t alen, const char *b) {
    return a && b && alen == strlen(b) && !memcmp(a, b, alen) && a[alen] == 0;
}

static int same_opts(const vgpt_msg *a, const vgpt_msg *b) {
    const vgpt_gen_opts *g = &a->gen, *h = &b->gen;
    return a->img.autorotate == b->img.autorotate && a->img.fast_decode == b->img.fast_decode &&
           a->img.accept_truncated == b->img.accept_truncated && a->img.max_pixels == b->img.max_pixels &&
           g->mode == h->mode && g->beams == h->beams && g->max_tokens == h->max_tokens &&
           g->no_repeat_ngram == h->no_repeat_ngram && g->length_penalty == h->length_penalty &&
           g->early_stopping == h->early_stopping && g->temperature == h->temperature && g->top_k == h->top_k && g->top_p == h->top_p && g->seed == h->seed;
}

static int same_tensor(const vgpt_wire_tensor *a, const vgpt_wire_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim || a->nbytes != b->nbytes) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return !memcmp(a->data, b->data, a->nbytes);
}

/* Every field of the type survives; the envelope always. */
static int same_msg(const vgpt_msg *a, const vgpt_msg *b) {
    if (a->type != b->type || a->id != b->id || a->attempt != b->attempt) return 0;
    if (a->type >= VGPT_MSG_CAPTION && b->reply_to) return 0; /* answers carry no reply_to */
    if (a->type < VGPT_MSG_CAPTION && (!b->reply_to || strcmp(a->reply_to, b->reply_to) || b->reply_to != b->reply_buf))
        return 0;
    switch (a->type) {
    case VGPT_MSG_IMAGE:
        if (!same_opts(a, b)) return 0;
        if (a->path) return str_eq(b->path, b->path_len, a->path) && !b->bytes;
        return !b->path && b->n_bytes == a->n_bytes && !memcmp(a->bytes, b->bytes, a->n_bytes);
    case VGPT_MSG_PREPROCESSED:
    case VGPT_MSG_TOKENS:
        return same_opts(a, b) && b->has_hash == a->has_hash && !memcmp(a->hash, b->hash, 32) &&
               a->cache_hit == b->cache_hit && same_tensor(&a->tensor, &b->tensor);
    case VGPT_MSG_CAPTION:
        return str_eq(b->caption, b->caption_len, a->caption) && b->n_tokens == a->n_tokens &&
               !memcmp(a->tokens, b->tokens, (size_t)a->n_tokens * 4) && a->score == b->score;
    case VGPT_MSG_ERROR:
        return str_eq(b->stage, b->stage_len, a->stage) && str_eq(b->error, b->error_len, a->error);
    }
    return 0;
}

static int encode(const vgpt_msg *m, void **buf, size_t *len) {
    vgpt_err err = {{0}};
    int rc = vgpt_msg_pack(m, buf, len, &err);
    if (rc) printf("  encode %s: %s\n", vgpt_msg_type_name(m->type), err.msg);
    return rc;
}

static void test_round_trips(fixture *f) {
    for (int w = 0; w < N_FIX; w++) {
        vgpt_msg m, d;
        void *buf;
        size_t len;
        make(&m, f, w);
        if (encode(&m, &buf, &len)) {
            CHECK(&st, 0, "round trip %d (%s): encode", w, vgpt_msg_type_name(m.type));
            continue;
        }
        vgpt_err err = {{0}};
        int rc = vgpt_msg_unpack(buf, len, &d, &err);
        if (rc) printf("  %s\n", err.msg);
        CHECK(&st, rc == 0 && same_msg(&m, &d), "round trip %d (%s, %zu bytes): every field survives", w,
              vgpt_msg_type_name(m.type), len);
        if (m.tensor.data) {
            const char *p = d.tensor.data, *b = buf;
            CHECK(&st, p >= b && p + d.tensor.nbytes <= b + len && (p - b) % VGPT_PROTO_DATA_ALIGN == 0,
                  "round trip %d: tensor data is zero-copy, at a %d-byte aligned offset of the frame", w,
                  VGPT_PROTO_DATA_ALIGN);
        }
        if (m.bytes) {
            const char *p = d.bytes, *b = buf;
            CHECK(&st, p >= b && p + d.n_bytes <= b + len, "round trip %d: image bytes are zero-copy", w);
        }
        vgpt_msg_free(&d);
        vgpt_msg_free(&d); /* twice is harmless */
        free(buf);
    }
}

/* A frame at an odd address: the tensor is realigned by one copy. */
static void test_misaligned(fixture *f) {
    vgpt_msg m, d;
    void *buf;
    size_t len;
    make(&m, f, 3);
    if (encode(&m, &buf, &len)) return;
    char *odd = malloc(len + 1);
    memcpy(odd + 1, buf, len);
    vgpt_err err = {{0}};
    int rc = vgpt_msg_unpack(odd + 1, len, &d, &err);
    CHECK(&st, rc == 0 && (uintptr_t)d.tensor.data % 4 == 0 && same_tensor(&m.tensor, &d.tensor),
          "misaligned frame: f32 tensor realigned, values intact");
    vgpt_msg_free(&d);
    free(odd);
    free(buf);
}

/* ---- frame surgery: unpack a valid frame, change one field, re-pack ---- */

static msgpack_object o_uint(uint64_t v) {
    msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
    o.via.u64 = v;
    return o;
}
static msgpack_object o_neg(int64_t v) {
    msgpack_object o = {.type = MSGPACK_OBJECT_NEGATIVE_INTEGER};
    o.via.i64 = v;
    return o;
}
static msgpack_object o_f64(double v) {
    msgpack_object o = {.type = MSGPACK_OBJECT_FLOAT64};
    o.via.f64 = v;
    return o;
}
static msgpack_object o_str(const char *s, size_t n) {
    msgpack_object o = {.type = MSGPACK_OBJECT_STR};
    o.via.str.ptr = s, o.via.str.size = (uint32_t)n;
    return o;
}
static msgpack_object o_bin(const void *s, size_t n) {
    msgpack_object o = {.type = MSGPACK_OBJECT_BIN};
    o.via.bin.ptr = s, o.via.bin.size = (uint32_t)n;
    return o;
}
static msgpack_object o_nil(void) { return (msgpack_object){.type = MSGPACK_OBJECT_NIL}; }
static msgpack_object o_arr(msgpack_object *items, uint32_t n) {
    msgpack_object o = {.type = MSGPACK_OBJECT_ARRAY};
    o.via.array.ptr = items, o.via.array.size = n;
    return o;
}

enum { SET, DEL, DUP };

/* Applies op to "key", "map.key" or "map.key[i]" in root; 0 if the path exists. */
static int apply(msgpack_object *root, const char *path, int op, msgpack_object val, msgpack_object_kv **extra) {
    char seg[64];
    msgpack_object *cur = root;
    for (const char *p = path;;) {
        size_t n = strcspn(p, ".[");
        snprintf(seg, sizeof seg, "%.*s", (int)n, p);
        p += n;
        msgpack_object_map *map = &cur->via.map;
        uint32_t i = 0;
        while (i < map->size && !(map->ptr[i].key.via.str.size == strlen(seg) &&
                                   !memcmp(map->ptr[i].key.via.str.ptr, seg, strlen(seg))))
            i++;
        if (i == map->size) return -1;
        if (*p == '[') {
            cur = &map->ptr[i].val.via.array.ptr[atoi(p + 1)];
            *cur = val;
            return 0;
        }
        if (*p == '.') {
            cur = &map->ptr[i].val, p++;
            continue;
        }
        if (op == SET) map->ptr[i].val = val;
        if (op == DEL) map->ptr[i] = map->ptr[--map->size];
        if (op == DUP) {
            *extra = malloc((map->size + 1) * sizeof **extra);
            memcpy(*extra, map->ptr, map->size * sizeof **extra);
            (*extra)[map->size] = map->ptr[i];
            map->ptr = *extra, map->size++;
        }
        return 0;
    }
}

/* The frame of fixture `which` with one edit; malloc'd, NULL if no such path. */
static void *edited(fixture *f, int which, const char *path, int op, msgpack_object val, size_t *len) {
    vgpt_msg m;
    void *buf;
    size_t blen;
    make(&m, f, which);
    if (encode(&m, &buf, &blen)) return NULL;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_next(&up, buf, blen, &off);
    msgpack_object_kv *extra = NULL;
    void *out = NULL;
    if (!apply(&up.data, path, op, val, &extra)) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, up.data);
        out = sb.data, *len = sb.size;
    }
    free(extra);
    msgpack_unpacked_destroy(&up);
    free(buf);
    return out;
}

/* Decoding the edited frame must fail, say `needle`, and (when the
 * envelope is intact and the type has a reply_to) still give id/reply_to. */
static void expect_bad(fixture *f, int which, const char *path, int op, msgpack_object val, const char *needle,
                       const char *label) {
    size_t len;
    void *buf = edited(f, which, path, op, val, &len);
    if (!buf) {
        CHECK(&st, 0, "%s: fixture %d has no field %s", label, which, path);
        return;
    }
    vgpt_msg d, ref;
    make(&ref, f, which);
    vgpt_err err = {{0}};
    int rc = vgpt_msg_unpack(buf, len, &d, &err);
    int envelope_ok = strcmp(path, "id") && strcmp(path, "rt") && strcmp(path, "t");
    int request = ref.type < VGPT_MSG_CAPTION;
    int recovered = d.reply_to && !strcmp(d.reply_to, ref.reply_to) && d.id == ref.id;
    /* a bad id or rt must not be answered; otherwise a request is, an answer never */
    int reply_ok = request && envelope_ok ? recovered : strcmp(path, "t") ? !d.reply_to : 1;
    CHECK(&st, rc == -1 && strstr(err.msg, needle) && !strchr(err.msg, '\n') && reply_ok,
          "rejects %s %s: \"%s\"%s", vgpt_msg_type_name(ref.type), label, err.msg,
          !request ? " (no reply_to: answers are not answered)" : envelope_ok ? " (id, reply_to recovered)" : "");
    vgpt_msg_free(&d);
    free(buf);
}

#define BAD(which, path, val, needle, label) expect_bad(f, which, path, SET, val, needle, label)

static void test_field_types(fixture *f) {
    static const char nul_s[] = "ipc://a\0b";
    msgpack_object empty[1], five[5];
    for (int i = 0; i < 5; i++) five[i] = o_uint(2);
    /* envelope */
    BAD(0, "v", o_uint(2), "unsupported protocol version 2 (this build speaks version 1)", "v=2");
    BAD(0, "v", o_str("1", 1), "\"v\"", "v as string");
    BAD(0, "t", o_uint(6), "\"t\"", "t=6");
    BAD(0, "t", o_uint(0), "\"t\"", "t=0");
    BAD(0, "id", o_neg(-1), "\"id\"", "negative id");
    BAD(0, "id", o_str("7", 1), "\"id\"", "id as string");
    BAD(0, "rt", o_uint(1), "\"rt\"", "rt as integer");
    BAD(0, "rt", o_str("", 0), "\"rt\"", "empty rt");
    BAD(0, "rt", o_str(big, 256), "\"rt\"", "256-byte rt");
    BAD(0, "rt", o_str(nul_s, sizeof nul_s - 1), "\"rt\"", "rt with NUL");
    BAD(0, "at", o_uint(UINT64_C(1) << 32), "\"at\"", "at=2^32");
    BAD(0, "at", o_f64(1.5), "\"at\"", "at as float");
    /* options */
    BAD(0, "img", o_uint(1), "\"img\"", "img as integer");
    BAD(0, "img.ar", o_uint(2), "\"img.ar\"", "img.ar=2");
    BAD(0, "img.fd", o_str("y", 1), "\"img.fd\"", "img.fd as string");
    BAD(0, "img.tr", o_f64(1.0), "\"img.tr\"", "img.tr as float");
    BAD(0, "img.mp", o_neg(-5), "\"img.mp\"", "negative img.mp");
    BAD(0, "gen", o_arr(empty, 0), "\"gen\"", "gen as array");
    BAD(0, "gen.mode", o_uint(3), "\"gen.mode\"", "gen.mode=3");
    BAD(0, "gen.beams", o_uint(0), "\"gen.beams\"", "gen.beams=0");
    BAD(0, "gen.beams", o_uint(65), "\"gen.beams\"", "gen.beams=65");
    BAD(0, "gen.maxt", o_uint(0), "\"gen.maxt\"", "gen.maxt=0");
    BAD(0, "gen.maxt", o_uint(100001), "\"gen.maxt\"", "gen.maxt=100001");
    BAD(0, "gen.nrng", o_neg(-1), "\"gen.nrng\"", "gen.nrng=-1");
    BAD(0, "gen.lp", o_f64(NAN), "\"gen.lp\"", "gen.lp=NaN");
    BAD(0, "gen.lp", o_f64(10.5), "\"gen.lp\"", "gen.lp=10.5");
    BAD(0, "gen.es", o_uint(3), "\"gen.es\"", "gen.es=3");
    BAD(0, "gen.es", o_str("never", 5), "\"gen.es\"", "gen.es as string");
    BAD(0, "gen.temp", o_f64(-0.1), "\"gen.temp\"", "gen.temp=-0.1");
    BAD(0, "gen.temp", o_f64(INFINITY), "\"gen.temp\"", "gen.temp=inf");
    BAD(0, "gen.topk", o_uint((1 << 20) + 1), "\"gen.topk\"", "gen.topk=2^20+1");
    BAD(0, "gen.topp", o_f64(0), "\"gen.topp\"", "gen.topp=0");
    BAD(0, "gen.topp", o_f64(1e-300), "\"gen.topp\"", "gen.topp=1e-300 (0 as float)");
    BAD(0, "gen.topp", o_str("0.9", 3), "\"gen.topp\"", "gen.topp as string");
    BAD(0, "gen.seed", o_neg(-1), "\"gen.seed\"", "gen.seed=-1");
    /* IMAGE payload */
    BAD(0, "path", o_bin("x", 1), "\"path\"", "path as binary");
    BAD(0, "path", o_str("", 0), "\"path\"", "empty path");
    BAD(0, "path", o_str(big, 4096), "\"path\"", "4096-byte path");
    BAD(0, "path", o_str("/a\0b", 4), "\"path\"", "path with NUL");
    BAD(1, "bytes", o_str("x", 1), "\"bytes\"", "bytes as string");
    BAD(1, "bytes", o_bin("", 0), "\"bytes\"", "empty bytes");
    expect_bad(f, 0, "path", DEL, o_nil(), "exactly one of path and bytes", "IMAGE without path or bytes");
    /* PREPROCESSED / TOKENS */
    BAD(2, "hash", o_bin(big, 31), "\"hash\"", "31-byte hash");
    BAD(2, "hash", o_str(big, 32), "\"hash\"", "hash as string");
    BAD(3, "ch", o_uint(2), "\"ch\"", "ch=2");
    BAD(2, "tensor", o_uint(0), "\"tensor\"", "tensor as integer");
    BAD(2, "tensor.dt", o_uint(4), "\"tensor.dt\"", "dt=4");
    BAD(2, "tensor.dt", o_uint(2), "expected u8 [224,224,3], got f32", "f32 PREPROCESSED");
    BAD(3, "tensor.dt", o_uint(1), "expected f32 or f16", "u8 TOKENS");
    BAD(2, "tensor.shape", o_uint(3), "\"tensor.shape\"", "shape as integer");
    BAD(2, "tensor.shape", o_arr(empty, 0), "\"tensor.shape\"", "empty shape");
    BAD(2, "tensor.shape", o_arr(five, 5), "\"tensor.shape\"", "5-d shape");
    BAD(2, "tensor.shape[0]", o_neg(-224), "\"tensor.shape[0]\"", "negative dim");
    BAD(2, "tensor.shape[1]", o_uint(0), "\"tensor.shape[1]\"", "zero dim");
    BAD(2, "tensor.shape[2]", o_uint(UINT64_C(1) << 31), "\"tensor.shape[2]\"", "dim 2^31");
    BAD(2, "tensor.shape[2]", o_str("3", 1), "\"tensor.shape[2]\"", "dim as string");
    BAD(2, "tensor.shape[2]", o_uint(4), "u8 [224,224,3], got u8 [224,224,4]", "shape [224,224,4]");
    BAD(3, "tensor.shape[0]", o_uint(1025), "got f32 [1025,768]", "L=1025");
    BAD(3, "tensor.shape[1]", o_uint(8193), "got f32 [64,8193]", "C=8193");
    BAD(3, "tensor.shape[0]", o_uint(32), "needs 98304 bytes, got 196608", "shape/nbytes mismatch");
    msgpack_object huge[4] = {o_uint(INT32_MAX), o_uint(INT32_MAX), o_uint(INT32_MAX), o_uint(INT32_MAX)};
    BAD(3, "tensor.shape", o_arr(huge, 4), "more than 2^40 elements", "4 dims of 2^31-1");
    BAD(2, "tensor.data", o_bin(big, 10), "needs 150528 bytes, got 10",
        "data too short");
    BAD(2, "tensor.data", o_str("abc", 3), "\"tensor.data\"", "data as string");
    expect_bad(f, 2, "tensor.data", DEL, o_nil(), "\"tensor.data\": missing", "tensor without data");
    expect_bad(f, 3, "tensor", DEL, o_nil(), "\"tensor\": missing", "TOKENS without tensor");
    /* CAPTION / ERROR */
    BAD(5, "cap", o_uint(1), "\"cap\"", "cap as integer");
    BAD(5, "cap", o_str(big, 65536), "\"cap\"", "65536-byte caption");
    BAD(5, "toks", o_bin("abc", 3), "\"toks\"", "3-byte toks");
    BAD(5, "toks", o_bin("\xff\xff\xff\xff", 4), "token 0 is negative", "negative token");
    BAD(5, "toks", o_arr(five, 5), "\"toks\"", "toks as array");
    BAD(5, "sc", o_str("1", 1), "\"sc\"", "sc as string");
    BAD(5, "sc", o_f64(NAN), "\"sc\"", "sc=NaN");
    expect_bad(f, 5, "cap", DEL, o_nil(), "\"cap\": missing", "CAPTION without cap");
    BAD(6, "stage", o_str("", 0), "\"stage\"", "empty stage");
    BAD(6, "stage", o_str(big, 64), "\"stage\"", "64-byte stage");
    BAD(6, "err", o_str(big, 4096), "\"err\"", "4096-byte err");
    BAD(6, "err", o_uint(3), "\"err\"", "err as integer");
    expect_bad(f, 6, "stage", DEL, o_nil(), "\"stage\": missing", "ERROR without stage");
    /* envelope keys missing / duplicated */
    expect_bad(f, 3, "v", DEL, o_nil(), "no protocol version", "frame without v");
    expect_bad(f, 3, "rt", DEL, o_nil(), "\"rt\": missing", "TOKENS without rt");
    expect_bad(f, 3, "id", DUP, o_nil(), "\"id\": given twice", "duplicate id");
    expect_bad(f, 0, "gen.beams", DUP, o_nil(), "\"gen.beams\": given twice", "duplicate gen.beams");
}

static int has_bytes(const void *buf, size_t len, const char *what, size_t n) {
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp((const char *)buf + i, what, n)) return 1;
    return 0;
}

/* Unknown keys are ignored; CAPTION/ERROR may omit rt; missing options take defaults. */
static void test_forward_compat(fixture *f) {
    size_t len;
    void *buf;
    vgpt_err err = {{0}};
    vgpt_msg d;
    /* rename "at" to an unknown key "zz-future" holding a map */
    vgpt_msg m;
    make(&m, f, 0);
    void *good;
    size_t glen;
    if (encode(&m, &good, &glen)) return;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_next(&up, good, glen, &off);
    msgpack_object_map *top = &up.data.via.map;
    msgpack_object nested = o_nil();
    for (uint32_t i = 0; i < top->size; i++)
        if (top->ptr[i].key.via.str.size == 3 && !memcmp(top->ptr[i].key.via.str.ptr, "gen", 3))
            nested = top->ptr[i].val;
    for (uint32_t i = 0; i < top->size; i++)
        if (top->ptr[i].key.via.str.size == 2 && !memcmp(top->ptr[i].key.via.str.ptr, "at", 2))
            top->ptr[i].key = o_str("zz-future", 9), top->ptr[i].val = nested;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, up.data);
    int rc = vgpt_msg_unpack(sb.data, sb.size, &d, &err);
    CHECK(&st, rc == 0 && d.attempt == 0 && d.id == m.id && str_eq(d.path, d.path_len, m.path),
          "unknown top-level key (a nested map) is ignored; missing \"at\" defaults to 0 %s", rc ? err.msg : "");
    vgpt_msg_free(&d);
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&up);
    free(good);

    /* "es" (early_stopping) came later: false is left out, so that such a
     * frame is the one an earlier encoder wrote, and absent means false */
    make(&m, f, 0);
    m.gen.early_stopping = VGPT_STOP_HEURISTIC;
    if (encode(&m, &good, &glen)) return;
    rc = vgpt_msg_unpack(good, glen, &d, &err);
    CHECK(&st, rc == 0 && !has_bytes(good, glen, "\xa2" "es", 3) && d.gen.early_stopping == VGPT_STOP_HEURISTIC &&
                   d.gen.beams == m.gen.beams,
          "gen.es false is not written (frames as before it), and reads back as false");
    vgpt_msg_free(&d);
    free(good);

    buf = edited(f, 0, "gen.beams", DEL, o_nil(), &len);
    rc = vgpt_msg_unpack(buf, len, &d, &err);
    vgpt_gen_opts def;
    vgpt_gen_opts_default(&def);
    CHECK(&st, rc == 0 && d.gen.beams == def.beams && d.gen.max_tokens == 77,
          "missing gen.beams takes the default, other gen fields kept");
    vgpt_msg_free(&d);
    free(buf);

    /* an ERROR carrying "rt" (say, from another implementation) still gives no reply_to */
    vgpt_msg e;
    make(&e, f, 6);
    void *ebuf;
    size_t elen;
    if (encode(&e, &ebuf, &elen)) return;
    msgpack_unpacked_init(&up);
    off = 0;
    msgpack_unpack_next(&up, ebuf, elen, &off);
    msgpack_object_kv kv[16];
    memcpy(kv, up.data.via.map.ptr, up.data.via.map.size * sizeof *kv);
    kv[up.data.via.map.size].key = o_str("rt", 2), kv[up.data.via.map.size].val = o_str("ipc://loop", 10);
    up.data.via.map.ptr = kv, up.data.via.map.size++;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, up.data);
    rc = vgpt_msg_unpack(sb.data, sb.size, &d, &err);
    CHECK(&st, rc == 0 && d.type == VGPT_MSG_ERROR && d.reply_to == NULL,
          "an ERROR frame with \"rt\" decodes with reply_to NULL (answers are never answered)");
    vgpt_msg_free(&d);
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&up);
    free(ebuf);
}

static void test_encode_refuses(fixture *f) {
    vgpt_msg m;
    void *buf = (void *)1;
    size_t len = 1;
    vgpt_err err = {{0}};
    make(&m, f, 0);
    m.bytes = "x", m.n_bytes = 1;
    int rc = vgpt_msg_pack(&m, &buf, &len, &err);
    CHECK(&st, rc == -1 && !buf && !len && strstr(err.msg, "exactly one"),
          "encode refuses IMAGE with both path and bytes: %s", err.msg);
    make(&m, f, 2);
    m.tensor.shape[0] = 225;
    rc = vgpt_msg_pack(&m, &buf, &len, &err);
    CHECK(&st, rc == -1 && strstr(err.msg, "224"),
          "encode refuses a [225,224,3] PREPROCESSED tensor: %s", err.msg);
    make(&m, f, 3);
    m.reply_to = NULL;
    rc = vgpt_msg_pack(&m, &buf, &len, &err);
    CHECK(&st, rc == -1 && strstr(err.msg, "\"rt\""),
          "encode refuses TOKENS without reply_to: %s", err.msg);
    make(&m, f, 3);
    m.gen.beams = -1;
    rc = vgpt_msg_pack(&m, &buf, &len, &err);
    CHECK(&st, rc == -1 && strstr(err.msg, "gen.beams"),
          "encode refuses gen.beams=-1: %s", err.msg);
    vgpt_msg_init(&m, (vgpt_msg_type)9);
    rc = vgpt_msg_pack(&m, &buf, &len, &err);
    CHECK(&st, rc == -1 && strstr(err.msg, "type 9"),
          "encode refuses message type 9: %s", err.msg);
}

/* ---- structure: not a map, truncation, trailing bytes, limits ---- */

static int rejects(const void *buf, size_t len, const char *needle) {
    vgpt_msg d;
    vgpt_err err = {{0}};
    int rc = vgpt_msg_unpack(buf, len, &d, &err);
    vgpt_msg_free(&d);
    if (rc == 0 || !err.msg[0] || (needle && !strstr(err.msg, needle))) {
        printf("  (got rc %d: %s)\n", rc, err.msg);
        return 0;
    }
    return 1;
}

static void test_structure(fixture *f) {
    CHECK(&st, rejects("", 0, "truncated"), "empty frame rejected");
    CHECK(&st, rejects(NULL, 0, "truncated"), "NULL, 0 frame rejected");
    CHECK(&st, rejects("\x93\x01\x02\x03", 4, "expected a msgpack map, got array"), "array frame rejected");
    CHECK(&st, rejects("\x2a", 1, "got integer"), "integer frame rejected");
    CHECK(&st, rejects("\xa3" "abc", 4, "got string"), "string frame rejected");
    CHECK(&st, rejects("\xc0", 1, "got nil"), "nil frame rejected");
    CHECK(&st, rejects("\xc1", 1, "0xc1"), "byte 0xc1 rejected");
    CHECK(&st, rejects("\xdf\xff\xff\xff\xff", 5, "entries"), "map announcing 2^32-1 entries rejected (no allocation)");
    CHECK(&st, rejects("\x81\xa1x\xdd\x00\x10\x00\x00", 8, "entries"), "array announcing 2^20 entries rejected");
    CHECK(&st, rejects("\x81\xa1x\xc6\x7f\xff\xff\xff", 8, "overruns"), "bin longer than the frame rejected");
    uint8_t deep[64] = {0x81, 0xa1, 'x'}; /* {"x": [[[...[nil]...]]]} */
    size_t n = 3;
    while (n < 22) deep[n++] = 0x91;
    deep[n++] = 0xc0;
    CHECK(&st, rejects(deep, n, "nested deeper"), "nesting deeper than %d rejected", VGPT_PROTO_MAX_DEPTH);

    for (int w = 0; w < N_FIX; w++) {
        vgpt_msg m;
        uint8_t *buf;
        size_t len;
        make(&m, f, w);
        if (encode(&m, (void **)&buf, &len)) continue;
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, buf, len);
        copy[len] = 0xc0;
        CHECK(&st, rejects(copy, len + 1, "trailing"), "%s with a trailing byte rejected", vgpt_msg_type_name(m.type));
        /* every truncation: rejected, never read past the end (ASan), and
         * once the envelope is complete id + reply_to are recovered */
        int bad = 0, recovered = 0;
        for (size_t cut = 0; cut < len; cut++) {
            vgpt_msg d;
            vgpt_err err = {{0}};
            HIDE(buf + cut, len - cut);
            if (vgpt_msg_unpack(buf, cut, &d, &err) != -1 || !err.msg[0]) bad++;
            UNHIDE(buf + cut, len - cut);
            if (cut == len - 1)
                recovered = d.type == m.type && (m.type >= VGPT_MSG_CAPTION
                                                     ? !d.reply_to
                                                     : d.reply_to && !strcmp(d.reply_to, m.reply_to) && d.id == m.id);
            vgpt_msg_free(&d);
        }
        CHECK(&st, bad == 0, "%s truncated at each of %zu lengths: all rejected", vgpt_msg_type_name(m.type), len);
        CHECK(&st, recovered, "%s cut one byte short: %s", vgpt_msg_type_name(m.type),
              m.type < VGPT_MSG_CAPTION ? "id, type, reply_to recovered for the error reply"
                                        : "type recovered, no reply_to (answers are not answered)");
        free(copy);
        free(buf);
    }
}

/* ---- seeded random mutations of valid frames ---- */

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* Mutates a copy of frame into out (capacity len + 16); returns its length. */
static size_t mutate(const uint8_t *frame, size_t len, uint8_t *out, uint64_t *rng) {
    static const uint8_t magic[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xc4, 0xc6,
                                    0xca, 0xcb, 0xcf, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    memcpy(out, frame, len);
    /* most mutations land in the first 400 bytes, where the structure is */
    size_t span = len < 400 || rng_next(rng) % 4 == 0 ? len : 400;
    int edits = 1 + (int)(rng_next(rng) % 4);
    for (int e = 0; e < edits && len; e++) {
        size_t at = rng_next(rng) % span;
        switch (rng_next(rng) % 6) {
        case 0: out[at] ^= (uint8_t)(1u << (rng_next(rng) % 8)); break;
        case 1: out[at] = magic[rng_next(rng) % sizeof magic]; break;
        case 2: out[at] = (uint8_t)rng_next(rng); break;
        case 3: len = at; break; /* truncate */
        case 4: memmove(out + at, out + at + 1, len - at - 1), len--; break;
        default:
            memmove(out + at + 1, out + at, len - at), out[at] = (uint8_t)rng_next(rng), len++;
            span += span < len;
            break;
        }
        if (span > len) span = len;
        if (!span) break;
    }
    return len;
}

static void test_mutations(fixture *f) {
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int runs = 0, accepted = 0, bad = 0;
    for (int w = 0; w < N_FIX; w++) {
        vgpt_msg m;
        uint8_t *frame;
        size_t len;
        make(&m, f, w);
        if (encode(&m, (void **)&frame, &len)) continue;
        uint8_t *out = malloc(len + 16 + 4 * 16);
        for (int i = 0; i < 1000; i++, runs++) {
            size_t n = mutate(frame, len, out, &rng);
            uint8_t *exact = malloc(n ? n : 1); /* exact size, so ASan sees any overread */
            memcpy(exact, out, n);
            vgpt_msg d;
            vgpt_err err = {{0}};
            int rc = vgpt_msg_unpack(exact, n, &d, &err);
            if (rc == 0) {
                /* whatever decode accepts, encode must be able to send */
                void *re;
                size_t relen;
                accepted++;
                if (vgpt_msg_pack(&d, &re, &relen, &err)) bad++, printf("  re-encode: %s\n", err.msg);
                else free(re);
            } else if (!err.msg[0] || strchr(err.msg, '\n')) {
                bad++;
            }
            vgpt_msg_free(&d);
            free(exact);
        }
        free(out);
        free(frame);
    }
    CHECK(&st, bad == 0 && runs == 1000 * N_FIX,
          "%d seeded random mutations: no crash, every rejection has a one-line reason, every accepted frame "
          "re-encodes (%d accepted)", runs, accepted);
}

/* ---- ZeroMQ: PUSH/PULL, replier, limits ---- */

static int recv_timeout(void *s, zmq_msg_t *msg, int ms, vgpt_err *err) {
    zmq_pollitem_t it = {.socket = s, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, ms) <= 0) return 1;
    return vgpt_zsock_recv(s, msg, ZMQ_DONTWAIT, err);
}

static void test_zmq_pipeline(void *ctx, const char *dir, fixture *f) {
    char in[256], in2[256];
    vgpt_err err = {{0}};
    snprintf(in, sizeof in, "ipc://%s/in", dir);
    snprintf(in2, sizeof in2, "ipc://%s/in2", dir);
    void *pull = vgpt_zsock_pull_bind(ctx, in, &err), *pull2 = vgpt_zsock_pull_bind(ctx, in2, &err);
    char csv[600];
    snprintf(csv, sizeof csv, " %s , %s", in, in2);
    void *push = vgpt_zsock_push_connect(ctx, csv, &err);
    CHECK(&st, pull && pull2 && push, "bind two PULLs, PUSH connects to \"ep1,ep2\" %s", err.msg);
    if (!pull || !pull2 || !push) return;
    int tmo = 5000;
    zmq_setsockopt(push, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
    usleep(100000); /* let both connections come up so ZMQ_IMMEDIATE spreads the frames */

    vgpt_msg m;
    make(&m, f, 3);
    int ok = 1, got = 0, zero_copy = 1;
    for (int i = 0; i < 10; i++) {
        void *buf;
        size_t len;
        m.id = 100 + (uint64_t)i;
        ok &= encode(&m, &buf, &len) == 0 && vgpt_zsock_send_owned(push, buf, len, 0, &err) == 0;
    }
    int per[2] = {0, 0};
    for (int tries = 0; got < 10 && tries < 100; tries++) {
        for (int k = 0; k < 2; k++) {
            zmq_msg_t z;
            zmq_msg_init(&z);
            if (recv_timeout(k ? pull2 : pull, &z, 50, &err) == 0) {
                vgpt_msg d;
                const char *b = zmq_msg_data(&z);
                if (vgpt_msg_unpack(b, zmq_msg_size(&z), &d, &err) == 0 && d.id >= 100 && d.id < 110 &&
                    same_tensor(&m.tensor, &d.tensor)) {
                    got++, per[k]++;
                    const char *p = d.tensor.data;
                    zero_copy &= p >= b && p < b + zmq_msg_size(&z);
                }
                vgpt_msg_free(&d);
            }
            zmq_msg_close(&z);
        }
    }
    CHECK(&st, ok && got == 10, "10 TOKENS frames over ipc:// arrive intact (%d + %d across the two PULLs)",
          per[0], per[1]);
    CHECK(&st, per[0] > 0 && per[1] > 0, "PUSH balances across both endpoints of the list");
    CHECK(&st, zero_copy, "received tensors point into the zmq message (zero copy)");

    /* a 2-part message is drained and reported */
    zmq_send(push, "a", 1, ZMQ_SNDMORE);
    zmq_send(push, "b", 1, 0);
    int rc = 1;
    for (int tries = 0; rc == 1 && tries < 40; tries++) {
        zmq_msg_t z;
        zmq_msg_init(&z);
        rc = recv_timeout(tries % 2 ? pull2 : pull, &z, 50, &err);
        zmq_msg_close(&z);
    }
    CHECK(&st, rc == -1 && strstr(err.msg, "2-part"), "multi-part message dropped with a reason: %s", err.msg);
    zmq_close(push);
    zmq_close(pull);
    zmq_close(pull2);
}

static void test_replier(void *ctx, const char *dir) {
    char reply[256];
    vgpt_err err = {{0}};
    snprintf(reply, sizeof reply, "ipc://%s/reply", dir);
    void *client = vgpt_zsock_pull_bind(ctx, reply, &err);
    vgpt_replier *r = vgpt_replier_new(ctx);
    if (!client || !r) {
        CHECK(&st, 0, "client PULL and replier: %s", err.msg);
        return;
    }
    int rc = vgpt_reply_error(r, 42, reply, 2, "encoderd", "model not loaded", &err);
    zmq_msg_t z;
    zmq_msg_init(&z);
    vgpt_msg d;
    int got = rc == 0 && recv_timeout(client, &z, 3000, &err) == 0 &&
              vgpt_msg_unpack(zmq_msg_data(&z), zmq_msg_size(&z), &d, &err) == 0;
    CHECK(&st, got && d.type == VGPT_MSG_ERROR && d.id == 42 && d.attempt == 2 && !strcmp(d.stage, "encoderd") &&
                   !strcmp(d.error, "model not loaded"),
          "vgpt_reply_error reaches reply_to as an ERROR frame %s", got ? "" : err.msg);
    if (got) vgpt_msg_free(&d);
    zmq_msg_close(&z);

    /* 70 reply_to endpoints nobody listens on: queued, never blocking, LRU keeps <= 64 sockets */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int fails = 0;
    for (int i = 0; i < 70; i++) {
        char ep[256];
        snprintf(ep, sizeof ep, "ipc://%s/gone-%d", dir, i);
        fails += vgpt_replier_send(r, ep, "x", 1, &err) != 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    CHECK(&st, fails == 0 && s < 2.0, "replier: 70 absent reply_to endpoints, no blocking (%.3f s)", s);
    rc = vgpt_reply_error(r, 43, reply, 0, "decoderd", "again", &err);
    zmq_msg_init(&z);
    got = rc == 0 && recv_timeout(client, &z, 3000, &err) == 0 &&
          vgpt_msg_unpack(zmq_msg_data(&z), zmq_msg_size(&z), &d, &err) == 0;
    CHECK(&st, got && d.id == 43, "replier: the evicted endpoint is reopened and still delivers");
    if (got) vgpt_msg_free(&d);
    zmq_msg_close(&z);

    rc = vgpt_replier_send(r, "bogus://nowhere", "x", 1, &err);
    CHECK(&st, rc == -1 && strstr(err.msg, "bogus://nowhere"), "replier: invalid endpoint named: %s", err.msg);
    rc = vgpt_reply_error(r, 44, NULL, 0, "preprocd", "x", &err);
    CHECK(&st, rc == -1 && strstr(err.msg, "44"), "reply_error without reply_to fails (count a drop): %s", err.msg);
    vgpt_replier_free(r);
    zmq_close(client);
}

static void test_limits(void *ctx, const char *dir) {
    char ep[256], nope[256];
    vgpt_err err = {{0}};
    snprintf(ep, sizeof ep, "ipc://%s/small", dir);
    void *pull = vgpt_zsock_pull_bind_max(ctx, ep, 1024, &err);
    void *push = vgpt_zsock_push_connect(ctx, ep, &err);
    if (!pull || !push) {
        CHECK(&st, 0, "bind/connect %s: %s", ep, err.msg);
        return;
    }
    int tmo = 3000;
    zmq_setsockopt(push, ZMQ_SNDTIMEO, &tmo, sizeof tmo);
    static char blob[4096];
    int sent = vgpt_zsock_send(push, blob, sizeof blob, 0, &err);
    zmq_msg_t z;
    zmq_msg_init(&z);
    int rc = recv_timeout(pull, &z, 500, &err);
    zmq_msg_close(&z);
    CHECK(&st, sent == 0 && rc == 1, "ZMQ_MAXMSGSIZE: a 4096-byte frame to a 1024-byte input is dropped");
    int ok = 0;
    for (int i = 0; i < 30 && !ok; i++) { /* the peer was disconnected; it reconnects */
        vgpt_zsock_send(push, "small", 5, ZMQ_DONTWAIT, &err);
        zmq_msg_init(&z);
        ok = recv_timeout(pull, &z, 100, &err) == 0 && zmq_msg_size(&z) == 5;
        zmq_msg_close(&z);
    }
    CHECK(&st, ok, "ZMQ_MAXMSGSIZE: small frames flow again after the drop");
    zmq_close(push);
    zmq_close(pull);

    snprintf(nope, sizeof nope, "ipc://%s/nobody", dir);
    push = vgpt_zsock_push_connect(ctx, nope, &err);
    rc = push ? vgpt_zsock_send(push, "x", 1, ZMQ_DONTWAIT, &err) : -1;
    CHECK(&st, rc == 1, "PUSH with ZMQ_IMMEDIATE and no live peer: send would block, returns 1 (%s)", err.msg);
    if (push) zmq_close(push);
    void *s = vgpt_zsock_pull_bind(ctx, "ipc:///nonexistent-dir-vgpt/x", &err);
    CHECK(&st, !s && strstr(err.msg, "ipc:///nonexistent-dir-vgpt/x"), "bind failure names the endpoint: %s",
          err.msg);
    s = vgpt_zsock_push_connect(ctx, " , ", &err);
    CHECK(&st, !s && strstr(err.msg, "endpoints"), "empty endpoint list rejected: %s", err.msg);
    s = vgpt_zsock_push_connect(ctx, "ipc:///tmp/ok,nope://x", &err);
    CHECK(&st, !s && strstr(err.msg, "nope://x"), "bad endpoint in a list named: %s", err.msg);
}

int main(void) {
    memset(big, 'a', sizeof big);
    fixture *f = calloc(1, sizeof *f);
    fill(f);
    test_round_trips(f);
    test_misaligned(f);
    test_field_types(f);
    test_forward_compat(f);
    test_encode_refuses(f);
    test_structure(f);
    test_mutations(f);

    char dir[] = "/tmp/vgpt-proto-XXXXXX";
    void *ctx = zmq_ctx_new();
    if (!mkdtemp(dir) || !ctx) {
        CHECK(&st, 0, "temp dir and zmq context");
    } else {
        test_zmq_pipeline(ctx, dir, f);
        test_replier(ctx, dir);
        test_limits(ctx, dir);
        zmq_ctx_term(ctx);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) printf("warning: could not remove %s\n", dir);
    }
    free(f);
    printf("%d passed, %d failed\n", st.passed, st.failed);
    return check_exit(&st);
}
