/* sha256.h - SHA-256, for content hashes of image bytes (the visual-token
 * cache key): a collision would silently give one photo another's caption,
 * so the hash must be cryptographic. */
#ifndef VGPT_SHA256_H
#define VGPT_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct vgpt_sha256_ctx {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t n;
} vgpt_sha256_ctx;

void vgpt_sha256_init(vgpt_sha256_ctx *s);
void vgpt_sha256_update(vgpt_sha256_ctx *s, const void *data, size_t len);
void vgpt_sha256_final(vgpt_sha256_ctx *s, uint8_t out[32]);
void vgpt_sha256(const void *data, size_t len, uint8_t out[32]);
/* out must hold 65 bytes. */
void vgpt_hex(const uint8_t *in, size_t n, char *out);

#endif
