/* proto.h - the vgpt wire format (libvgptproto): one msgpack map per ZeroMQ
 * frame, versioned, validated on receive, tensors not copied.
 *
 * proto/README.md is the normative spec; this header is its C binding.  Any
 * stage may receive any bytes from anywhere, so vgpt_msg_unpack checks every
 * field and range and never trusts a length.  vgpt_msg_pack runs the same
 * checks on what it produced, so a frame one stage sends is never one the next
 * stage rejects. */
#ifndef VGPT_PROTO_H
#define VGPT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "gen_opts.h"
#include "image_opts.h"

#define VGPT_PROTO_VERSION 1

/* Limits (README "Limits"); a frame outside them is malformed. */
#define VGPT_PROTO_MAX_REPLY_TO 255   /* bytes, excluding the NUL */
#define VGPT_PROTO_MAX_PATH 4095
#define VGPT_PROTO_MAX_ERROR 4095
#define VGPT_PROTO_MAX_STAGE 63
#define VGPT_PROTO_MAX_CAPTION 65535
#define VGPT_PROTO_MAX_TOKENS 131072  /* CAPTION "toks" entries */
#define VGPT_PROTO_MAX_TOK_L 1024     /* TOKENS tensor [L, C] */
#define VGPT_PROTO_MAX_TOK_C 8192
#define VGPT_PROTO_MAX_DEPTH 8        /* msgpack nesting (top-level map = 1) */
#define VGPT_PROTO_MAX_ENTRIES 256    /* entries of one array or map */
#define VGPT_PROTO_MAX_OBJECTS 4096   /* msgpack objects in one frame */
#define VGPT_PROTO_DATA_ALIGN 64      /* encoders align tensor bytes to this offset */

typedef enum {
    VGPT_MSG_IMAGE = 1,
    VGPT_MSG_PREPROCESSED = 2,
    VGPT_MSG_TOKENS = 3,
    VGPT_MSG_CAPTION = 4,
    VGPT_MSG_ERROR = 5
} vgpt_msg_type;

typedef enum { VGPT_WIRE_U8 = 1, VGPT_WIRE_F32 = 2, VGPT_WIRE_F16 = 3 } vgpt_wire_dtype;

/* data: raw little-endian elements, row-major, nbytes = prod(shape) * elem
 * size.  After decode, data is aligned to the element size and points into
 * the receive buffer whenever that buffer allows it (always for frames our
 * encoder made in a malloc'd / zmq buffer); otherwise into one aligned copy
 * owned by the msg. */
typedef struct vgpt_wire_tensor {
    vgpt_wire_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} vgpt_wire_tensor;

/* On decode every const char * field is a NUL-terminated copy owned by the
 * msg (its _len excludes the NUL) and bytes / tensor.data point into the
 * receive buffer.  On encode a string whose _len is 0 is measured with strlen. */
typedef struct vgpt_msg {
    vgpt_msg_type type;
    uint64_t id;          /* request id, unique per client run */
    const char *reply_to; /* NUL-terminated endpoint (decode copies it into reply_buf); only
                             IMAGE, PREPROCESSED, TOKENS carry it on the wire */
    char reply_buf[256];
    uint32_t attempt;     /* re-send count, for logs */
    vgpt_image_opts img;  /* carried by IMAGE, PREPROCESSED (for the cache key), TOKENS unchanged */
    vgpt_gen_opts gen;    /* carried through every stage to decoderd */
    /* IMAGE: exactly one of path (a file the preprocd reads; honoured only under --allow-root dirs) or bytes */
    const char *path;
    size_t path_len;
    const void *bytes;
    size_t n_bytes;
    /* PREPROCESSED: tensor = u8 [224,224,3]; hash = 32-byte content hash of the raw image bytes */
    uint8_t hash[32];
    int has_hash;
    /* TOKENS: tensor = f32 (or f16) [L,C] visual tokens; cache_hit flag for stats;
     * model_fp: the encoding model's fingerprint (16 hex digits, "" = not sent) */
    int cache_hit;
    char model_fp[17];
    vgpt_wire_tensor tensor;
    /* CAPTION */
    const char *caption;
    size_t caption_len;
    const int32_t *tokens; /* decode: points into an internal array owned by the msg */
    int n_tokens;
    float score;           /* optional caption score (sum log p, length-normalised for beams) */
    /* ERROR */
    const char *stage; /* "preprocd", "encoderd", "decoderd", "client" */
    size_t stage_len;
    const char *error;
    size_t error_len;
    /* internal: copies the pointers above reference (strings, tokens, realigned tensor) */
    void *priv;
} vgpt_msg;

/* Zero + defaults (vgpt_gen_opts_default, vgpt_image_opts_default). */
void vgpt_msg_init(vgpt_msg *m, vgpt_msg_type type);

/* The next stage's message for request req: type, plus req's id, reply_to,
 * attempt and settings (img, gen) carried forward. */
void vgpt_msg_follow(vgpt_msg *out, vgpt_msg_type type, const vgpt_msg *req);

/* Encodes m into a malloc'd buffer (*out, *len) ready for zmq_send; the
 * caller frees it with free().  Fails (nothing allocated) when m would not
 * pass vgpt_msg_unpack, naming the bad field. */
int vgpt_msg_pack(const vgpt_msg *m, void **out, size_t *len, vgpt_err *err);

/* Decodes buf[0..len).  Pointers in m reference buf and m->priv: buf must
 * outlive m, and m must be released with vgpt_msg_free.
 *
 * On success m->priv is non-NULL.  On failure returns -1 with a one-line
 * reason, m->priv is NULL (release is a harmless no-op) and m holds whatever
 * of the envelope could be read ("partial decode"): m->id and m->reply_to
 * (into m->reply_buf) are set when both the top-level "id" and a valid "rt"
 * were read before the failure and "t" did not say CAPTION or ERROR, else
 * m->reply_to is NULL; m->type is set when "t" was a known type, else 0.
 * A receiver then sends an ERROR to m->reply_to, or counts and logs a drop
 * when it is NULL (README "Receiving"). */
int vgpt_msg_unpack(const void *buf, size_t len, vgpt_msg *m, vgpt_err *err);

/* Frees what decode allocated; m's fields become invalid.  Safe on a msg
 * that was only initialised or whose decode failed. */
void vgpt_msg_free(vgpt_msg *m);

/* "IMAGE", "PREPROCESSED", ... ; "UNKNOWN" for anything else. */
const char *vgpt_msg_type_name(vgpt_msg_type t);
const char *vgpt_wire_dtype_name(vgpt_wire_dtype dt);
/* Bytes per element: 1, 4, 2; 0 for an unknown dtype. */
size_t vgpt_wire_dtype_size(vgpt_wire_dtype dt);

#endif
