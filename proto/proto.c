/* proto.c - vgpt_msg -> frame (msgpack-c packer), plus the small helpers
 * every stage uses.  Layout and field names follow proto/README.md; the
 * encoder puts the envelope first (so a receiver can still answer a frame it
 * cannot finish reading) and pads tensors so their bytes start at a multiple
 * of VGPT_PROTO_DATA_ALIGN from the frame start (so receivers can use them
 * in place as float arrays). */
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

void vgpt_msg_init(vgpt_msg *m, vgpt_msg_type type) {
    memset(m, 0, sizeof *m);
    m->type = type;
    vgpt_gen_opts_default(&m->gen);
    vgpt_image_opts_default(&m->img);
}

void vgpt_msg_follow(vgpt_msg *out, vgpt_msg_type type, const vgpt_msg *req) {
    vgpt_msg_init(out, type);
    out->id = req->id;
    out->reply_to = req->reply_to;
    out->attempt = req->attempt;
    out->img = req->img;
    out->gen = req->gen;
}

const char *vgpt_msg_type_name(vgpt_msg_type t) {
    switch (t) {
    case VGPT_MSG_IMAGE: return "IMAGE";
    case VGPT_MSG_PREPROCESSED: return "PREPROCESSED";
    case VGPT_MSG_TOKENS: return "TOKENS";
    case VGPT_MSG_CAPTION: return "CAPTION";
    case VGPT_MSG_ERROR: return "ERROR";
    }
    return "UNKNOWN";
}

const char *vgpt_wire_dtype_name(vgpt_wire_dtype dt) {
    switch (dt) {
    case VGPT_WIRE_U8: return "u8";
    case VGPT_WIRE_F32: return "f32";
    case VGPT_WIRE_F16: return "f16";
    }
    return "unknown-dtype";
}

size_t vgpt_wire_dtype_size(vgpt_wire_dtype dt) {
    switch (dt) {
    case VGPT_WIRE_U8: return 1;
    case VGPT_WIRE_F32: return 4;
    case VGPT_WIRE_F16: return 2;
    }
    return 0;
}

/* Packing state: msgpack-c returns non-zero when the buffer cannot grow. */
typedef struct enc {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int bad;
} enc;

static size_t slen(const char *s, size_t n) { return s && !n ? strlen(s) : n; }

static void key(enc *e, const char *k) {
    size_t n = strlen(k);
    e->bad |= msgpack_pack_str(&e->pk, n) | msgpack_pack_str_body(&e->pk, k, n);
}
static void kv_int(enc *e, const char *k, int64_t v) { key(e, k), e->bad |= msgpack_pack_int64(&e->pk, v); }
static void kv_uint(enc *e, const char *k, uint64_t v) { key(e, k), e->bad |= msgpack_pack_uint64(&e->pk, v); }
static void kv_float(enc *e, const char *k, float v) { key(e, k), e->bad |= msgpack_pack_float(&e->pk, v); }
static void kv_bool(enc *e, const char *k, int v) {
    key(e, k), e->bad |= v ? msgpack_pack_true(&e->pk) : msgpack_pack_false(&e->pk);
}
static void kv_str(enc *e, const char *k, const char *s, size_t n) {
    key(e, k), e->bad |= msgpack_pack_str(&e->pk, n) | msgpack_pack_str_body(&e->pk, s ? s : "", n);
}
static void kv_bin(enc *e, const char *k, const void *b, size_t n) {
    key(e, k), e->bad |= msgpack_pack_bin(&e->pk, n) | msgpack_pack_bin_body(&e->pk, b ? b : "", n);
}

static void pack_img(enc *e, const vgpt_image_opts *o) {
    key(e, "img");
    e->bad |= msgpack_pack_map(&e->pk, 4);
    kv_bool(e, "ar", o->autorotate), kv_bool(e, "fd", o->fast_decode), kv_bool(e, "tr", o->accept_truncated);
    kv_uint(e, "mp", o->max_pixels);
}

static void pack_gen(enc *e, const vgpt_gen_opts *o) {
    key(e, "gen");
    int stop = o->early_stopping != VGPT_STOP_HEURISTIC; /* absent = false: older frames stay byte for byte */
    e->bad |= msgpack_pack_map(&e->pk, 9 + stop);
    kv_int(e, "mode", o->mode), kv_int(e, "beams", o->beams), kv_int(e, "maxt", o->max_tokens);
    kv_int(e, "nrng", o->no_repeat_ngram), kv_float(e, "lp", o->length_penalty);
    if (stop) kv_int(e, "es", o->early_stopping);
    kv_float(e, "temp", o->temperature), kv_int(e, "topk", o->top_k), kv_float(e, "topp", o->top_p);
    kv_uint(e, "seed", o->seed);
}

/* {"dt", "shape", "pad", "data"}: "pad" is sized so the data bytes start at
 * a multiple of VGPT_PROTO_DATA_ALIGN (bin8 header 2 bytes, "data" key 5,
 * data header 2/3/5 bytes for bin8/16/32). */
static void pack_tensor(enc *e, const vgpt_wire_tensor *t) {
    static const uint8_t zeros[VGPT_PROTO_DATA_ALIGN];
    int ndim = t->ndim < 0 ? 0 : t->ndim > 4 ? 4 : t->ndim;
    key(e, "tensor");
    e->bad |= msgpack_pack_map(&e->pk, 4);
    kv_int(e, "dt", t->dtype);
    key(e, "shape");
    e->bad |= msgpack_pack_array(&e->pk, (size_t)ndim);
    for (int i = 0; i < ndim; i++) e->bad |= msgpack_pack_int64(&e->pk, t->shape[i]);
    key(e, "pad");
    size_t hd = t->nbytes < 256 ? 2 : t->nbytes < 65536 ? 3 : 5;
    size_t pad = (VGPT_PROTO_DATA_ALIGN - (e->sb.size + 2 + 5 + hd) % VGPT_PROTO_DATA_ALIGN) % VGPT_PROTO_DATA_ALIGN;
    e->bad |= msgpack_pack_bin(&e->pk, pad) | msgpack_pack_bin_body(&e->pk, zeros, pad);
    kv_bin(e, "data", t->data, t->nbytes);
}

/* int32 ids as little-endian bytes, whatever the host order. */
static void pack_tokens(enc *e, const int32_t *tok, int n) {
    uint8_t chunk[1024];
    key(e, "toks");
    e->bad |= msgpack_pack_bin(&e->pk, (size_t)n * 4);
    for (int i = 0; i < n;) {
        int k = 0;
        for (; k < (int)sizeof chunk / 4 && i < n; k++, i++) {
            uint32_t u = (uint32_t)tok[i];
            chunk[4 * k] = (uint8_t)u, chunk[4 * k + 1] = (uint8_t)(u >> 8);
            chunk[4 * k + 2] = (uint8_t)(u >> 16), chunk[4 * k + 3] = (uint8_t)(u >> 24);
        }
        e->bad |= msgpack_pack_bin_body(&e->pk, chunk, (size_t)k * 4);
    }
}

/* The score is informational: one that is not a finite float is left out. */
static int has_score(const vgpt_msg *m) { return isfinite(m->score) && fabsf(m->score) <= 1e30f; }

/* Only requests carry "rt": an answer (CAPTION, ERROR) can never be answered,
 * so a misdirected one cannot start a loop of ERRORs between stages. */
static int is_request(vgpt_msg_type t) {
    return t == VGPT_MSG_IMAGE || t == VGPT_MSG_PREPROCESSED || t == VGPT_MSG_TOKENS;
}

static size_t n_fields(const vgpt_msg *m) {
    size_t n = 3 + (m->reply_to && is_request(m->type)) + 1; /* v, t, id, [rt], at */
    switch (m->type) {
    case VGPT_MSG_IMAGE: return n + 2 + (m->path != NULL) + (m->bytes != NULL);
    case VGPT_MSG_PREPROCESSED: return n + 3 + (m->has_hash != 0);
    case VGPT_MSG_TOKENS: return n + 4 + (m->has_hash != 0) + (m->model_fp[0] != 0);
    case VGPT_MSG_CAPTION: return n + 1 + (m->n_tokens > 0) + has_score(m);
    case VGPT_MSG_ERROR: return n + 2;
    }
    return n;
}

static void pack_msg(enc *e, const vgpt_msg *m) {
    e->bad |= msgpack_pack_map(&e->pk, n_fields(m));
    kv_uint(e, "v", VGPT_PROTO_VERSION), kv_uint(e, "t", m->type), kv_uint(e, "id", m->id);
    if (m->reply_to && is_request(m->type)) kv_str(e, "rt", m->reply_to, strlen(m->reply_to));
    kv_uint(e, "at", m->attempt);
    if (is_request(m->type)) pack_img(e, &m->img), pack_gen(e, &m->gen);
    if (m->type == VGPT_MSG_IMAGE) {
        if (m->path) kv_str(e, "path", m->path, slen(m->path, m->path_len));
        if (m->bytes) kv_bin(e, "bytes", m->bytes, m->n_bytes);
    } else if (m->type == VGPT_MSG_PREPROCESSED || m->type == VGPT_MSG_TOKENS) {
        if (m->has_hash) kv_bin(e, "hash", m->hash, 32);
        if (m->type == VGPT_MSG_TOKENS) kv_bool(e, "ch", m->cache_hit);
        if (m->type == VGPT_MSG_TOKENS && m->model_fp[0]) kv_str(e, "mfp", m->model_fp, strlen(m->model_fp));
        pack_tensor(e, &m->tensor);
    } else if (m->type == VGPT_MSG_CAPTION) {
        kv_str(e, "cap", m->caption, slen(m->caption, m->caption_len));
        if (m->n_tokens > 0) pack_tokens(e, m->tokens, m->n_tokens);
        if (has_score(m)) kv_float(e, "sc", m->score);
    } else if (m->type == VGPT_MSG_ERROR) {
        kv_str(e, "stage", m->stage, slen(m->stage, m->stage_len));
        kv_str(e, "err", m->error, slen(m->error, m->error_len));
    }
}

int vgpt_msg_pack(const vgpt_msg *m, void **out, size_t *len, vgpt_err *err) {
    *out = NULL, *len = 0;
    const char *tn = vgpt_msg_type_name(m->type);
    if (!strcmp(tn, "UNKNOWN")) return vgpt_err_set(err, "encode: unknown message type %d", (int)m->type);
    if (m->type == VGPT_MSG_CAPTION && m->n_tokens > 0 && !m->tokens)
        return vgpt_err_set(err, "encode CAPTION id %llu: n_tokens %d but tokens is NULL",
                            (unsigned long long)m->id, m->n_tokens);
    if (m->reply_to && strnlen(m->reply_to, VGPT_PROTO_MAX_REPLY_TO + 1) > VGPT_PROTO_MAX_REPLY_TO)
        return vgpt_err_set(err, "encode %s id %llu: reply_to longer than %d bytes", tn, (unsigned long long)m->id,
                            VGPT_PROTO_MAX_REPLY_TO);
    enc e = {.bad = 0};
    size_t cap = 1024 + slen(m->path, m->path_len) + m->n_bytes + m->tensor.nbytes +
                 slen(m->caption, m->caption_len) + (m->n_tokens > 0 ? (size_t)m->n_tokens * 4 : 0) +
                 slen(m->stage, m->stage_len) + slen(m->error, m->error_len);
    msgpack_sbuffer_init(&e.sb);
    e.sb.data = malloc(cap); /* one allocation for the usual frame; msgpack-c grows it if needed */
    e.sb.alloc = e.sb.data ? cap : 0;
    msgpack_packer_init(&e.pk, &e.sb, msgpack_sbuffer_write);
    pack_msg(&e, m);
    if (e.bad) {
        msgpack_sbuffer_destroy(&e.sb);
        return vgpt_err_set(err, "encode %s id %llu: out of memory (%zu bytes)", tn, (unsigned long long)m->id, cap);
    }
    /* Never send what the next stage would reject. */
    vgpt_msg check;
    int rc = vgpt_msg_unpack(e.sb.data, e.sb.size, &check, err);
    vgpt_msg_free(&check);
    if (rc) {
        msgpack_sbuffer_destroy(&e.sb);
        return vgpt_err_prefix(err, "encode");
    }
    *out = e.sb.data, *len = e.sb.size;
    return 0;
}
