/* fuzz_proto.c - libFuzzer harness over the wire-format decoder (every
 * message type goes through vgpt_msg_unpack), with ASan/UBSan.
 *
 * Beyond "no crash", each input checks the decoder's promises: a rejection
 * has a one-line reason and at most a valid envelope; an accepted frame has
 * consistent, readable fields and re-encodes to a frame that decodes to the
 * same message.  With VGPT_FUZZ_SEEDS=dir it writes one valid frame of every
 * type there (the seed corpus) and exits.  Run with `make fuzz-proto`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_proto: %s: %s\n", what, detail);
    abort();
}

/* Reads every byte a decoded pointer claims, so ASan checks each range. */
static unsigned touch(const void *p, size_t n) {
    const volatile uint8_t *b = p;
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) s += b[i];
    return s;
}

static void check_fields(const vgpt_msg *m) {
    if (m->reply_to && (m->reply_to != m->reply_buf || !strlen(m->reply_to) || strlen(m->reply_to) > 255))
        die("accepted", "bad reply_to");
    if (m->path && m->path[m->path_len]) die("accepted", "path not NUL-terminated");
    if (m->caption && m->caption[m->caption_len]) die("accepted", "caption not NUL-terminated");
    if (m->stage && m->stage[m->stage_len]) die("accepted", "stage not NUL-terminated");
    if (m->error && m->error[m->error_len]) die("accepted", "error not NUL-terminated");
    touch(m->bytes, m->n_bytes);
    touch(m->tokens, (size_t)m->n_tokens * 4);
    if (m->tensor.data) {
        size_t n = vgpt_wire_dtype_size(m->tensor.dtype);
        for (int i = 0; i < m->tensor.ndim; i++) n *= (size_t)m->tensor.shape[i];
        if (n != m->tensor.nbytes || (uintptr_t)m->tensor.data % vgpt_wire_dtype_size(m->tensor.dtype))
            die("accepted", "tensor nbytes or alignment inconsistent");
        touch(m->tensor.data, m->tensor.nbytes);
    }
}

/* encode(decode(x)) decodes to the same message. */
static void check_round_trip(const vgpt_msg *m) {
    void *buf;
    size_t len;
    vgpt_err err = {{0}};
    if (vgpt_msg_pack(m, &buf, &len, &err)) die("accepted frame does not re-encode", err.msg);
    vgpt_msg d;
    if (vgpt_msg_unpack(buf, len, &d, &err)) die("re-encoded frame does not decode", err.msg);
    int same = d.type == m->type && d.id == m->id && d.attempt == m->attempt && d.n_bytes == m->n_bytes &&
               d.path_len == m->path_len && d.caption_len == m->caption_len && d.n_tokens == m->n_tokens &&
               d.error_len == m->error_len && d.stage_len == m->stage_len && d.tensor.nbytes == m->tensor.nbytes &&
               d.has_hash == m->has_hash && !memcmp(d.hash, m->hash, 32) &&
               (!m->tensor.nbytes || !memcmp(d.tensor.data, m->tensor.data, m->tensor.nbytes)) &&
               (!m->n_bytes || !memcmp(d.bytes, m->bytes, m->n_bytes)) && (!d.reply_to) == (!m->reply_to);
    vgpt_msg_free(&d);
    free(buf);
    if (!same) die("round trip", "re-encoded message differs");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vgpt_msg m;
    vgpt_err err = {{0}};
    if (vgpt_msg_unpack(data, size, &m, &err) == 0) {
        check_fields(&m);
        check_round_trip(&m);
    } else {
        if (!err.msg[0] || strchr(err.msg, '\n')) die("rejected", "missing or multi-line reason");
        if (m.priv) die("rejected", "storage left allocated");
        if (m.reply_to && (!strlen(m.reply_to) || strlen(m.reply_to) > 255)) die("rejected", "bad recovered reply_to");
    }
    vgpt_msg_free(&m);
    return 0;
}

/* ---- seed corpus: one valid frame per type ---- */

static void write_seed(const char *dir, const char *name, const vgpt_msg *m) {
    void *buf;
    size_t len;
    vgpt_err err;
    if (vgpt_msg_pack(m, &buf, &len, &err)) die("seed", err.msg);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f)) die("cannot write seed", path);
    free(buf);
}

static void write_seeds(const char *dir) {
    static uint8_t img[224 * 224 * 3];
    static float tok[4 * 8];
    static uint16_t half[2 * 3];
    static const int32_t ids[3] = {64, 3290, 50256};
    vgpt_msg m;
    vgpt_msg_init(&m, VGPT_MSG_IMAGE);
    m.id = 1, m.reply_to = "ipc:///tmp/c/reply", m.path = "/srv/a.jpg";
    write_seed(dir, "image-path", &m);
    m.path = NULL, m.bytes = "\xff\xd8\xff\xe0", m.n_bytes = 4, m.attempt = 2;
    write_seed(dir, "image-bytes", &m);
    m.type = VGPT_MSG_PREPROCESSED, m.bytes = NULL, m.n_bytes = 0, m.has_hash = 1;
    m.tensor = (vgpt_wire_tensor){VGPT_WIRE_U8, 3, {224, 224, 3}, img, sizeof img};
    write_seed(dir, "preprocessed", &m);
    m.type = VGPT_MSG_TOKENS, m.cache_hit = 1;
    m.tensor = (vgpt_wire_tensor){VGPT_WIRE_F32, 2, {4, 8}, tok, sizeof tok};
    write_seed(dir, "tokens-f32", &m);
    m.tensor = (vgpt_wire_tensor){VGPT_WIRE_F16, 2, {2, 3}, half, sizeof half};
    write_seed(dir, "tokens-f16", &m);
    vgpt_msg_init(&m, VGPT_MSG_CAPTION);
    m.id = 2, m.reply_to = "tcp://127.0.0.1:5555", m.caption = "a dog", m.tokens = ids, m.n_tokens = 3;
    write_seed(dir, "caption", &m);
    vgpt_msg_init(&m, VGPT_MSG_ERROR);
    m.id = 3, m.stage = "decoderd", m.error = "out of memory";
    write_seed(dir, "error", &m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *dir = getenv("VGPT_FUZZ_SEEDS");
    if (dir) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}
