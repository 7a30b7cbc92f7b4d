/* proto_scan.h - internal to libvgptproto: a structural pass over one
 * msgpack frame before msgpack-c turns it into an object tree.
 *
 * msgpack-c allocates 24 bytes per announced array/map entry before it has
 * seen them, so a 5-byte header can ask for gigabytes; this pass walks the
 * headers without allocating, enforces the README's limits (depth, entries,
 * object count, no trailing bytes) and, as it goes, picks up the envelope
 * ("v", "t", "id", "rt") so that even a frame that is cut short or broken
 * later can still be answered with an ERROR. */
#ifndef VGPT_PROTO_SCAN_H
#define VGPT_PROTO_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct vgpt_scan_env {
    int has_v, has_t, has_id, has_rt; /* 0 absent, 1 read, 2 unusable (repeated or wrong type) */
    uint64_t v, t, id;
    const char *rt; /* into the frame, rt_len bytes, not NUL-terminated */
    size_t rt_len;
} vgpt_scan_env;

/* 0 when buf[0..len) is exactly one well-formed msgpack map within the
 * limits; else -1 with the reason.  env gets the envelope fields that were
 * read before the end or the failure, either way. */
int vgpt_proto_scan(const uint8_t *buf, size_t len, vgpt_scan_env *env, vgpt_err *err);

/* A valid reply_to: 1..VGPT_PROTO_MAX_REPLY_TO bytes, no NUL. */
int vgpt_proto_valid_rt(const char *s, size_t n);

#endif
