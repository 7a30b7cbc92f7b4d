/* token_cache.h - the visual-token cache: LMDB on the encoder's node.
 *
 * A hit skips the ViT entirely, so captioning an archive again with other
 * decoding settings costs only the decoder.  The cache is an optimisation,
 * never a dependency: if it cannot be opened, is corrupt, is damaged while
 * in use or fills up, every call degrades to "miss" with one warning in the
 * log, and encoding goes on.  A damaged entry is never served: each carries
 * a checksum that every hit verifies. */
#ifndef VGPT_TOKEN_CACHE_H
#define VGPT_TOKEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "precision.h"

typedef struct vgpt_cache vgpt_cache;

typedef struct vgpt_cache_stats {
    uint64_t hits, misses, puts, evictions, entries, bytes;
    uint64_t damaged; /* entries that failed their checks on a lookup, dropped */
    int disabled;
} vgpt_cache_stats;

/* Opens (creating it and its missing parents) the cache in dir, bounded to
 * max_mb of token data with least-recently-used eviction.  Never fails:
 * returns a disabled cache (after logging why under log_name) when LMDB
 * cannot be used or dir/data.mdb is damaged. */
vgpt_cache *vgpt_cache_open(const char *dir, size_t max_mb, const char *log_name);
void vgpt_cache_free(vgpt_cache *c);

/* key = SHA-256(image content hash, preprocessing settings, model
 * fingerprint, precision of the products): bf16 tokens never answer an
 * fp32 request, nor the reverse. */
void vgpt_cache_key(const uint8_t image_hash[32], const vgpt_image_opts *o, const char *fingerprint,
                    vgpt_precision precision, uint8_t key[32]);

/* 1 and tokens (L,C) filled on a hit, 0 on a miss (tokens then undefined). */
int vgpt_cache_get(vgpt_cache *c, const uint8_t key[32], float *tokens, int L, int C);
void vgpt_cache_put(vgpt_cache *c, const uint8_t key[32], const float *tokens, int L, int C);
/* Not const: reading the entry count can find the cache damaged and disable it. */
void vgpt_cache_stats_get(vgpt_cache *c, vgpt_cache_stats *s);

/* The stored form of one entry, callable on any buffer (the fuzz target
 * feeds it arbitrary bytes): a header (magic, format version, L, C, a 64-bit
 * checksum over key, header and tokens), then L*C native floats. */
enum { VGPT_ENTRY_OK = 0, VGPT_ENTRY_STALE = 1, VGPT_ENTRY_DAMAGED = 2 };

/* Bytes of the stored entry of L x C tokens. */
size_t vgpt_cache_entry_size(int L, int C);
/* Writes key's entry for tokens (L, C >= 1) into out, vgpt_cache_entry_size(L, C) bytes. */
void vgpt_cache_entry_encode(const uint8_t key[32], const float *tokens, int L, int C, void *out);
/* Checks len bytes at buf as key's entry of L x C tokens (L, C >= 1) and
 * copies its tokens out.  VGPT_ENTRY_OK; VGPT_ENTRY_STALE for an entry that
 * is intact but of another format version or shape; VGPT_ENTRY_DAMAGED for
 * anything else (bad magic, size or checksum).  On anything but OK, why
 * (cap bytes) gets a one-line reason and tokens are undefined. */
int vgpt_cache_entry_decode(const void *buf, size_t len, const uint8_t key[32], int L, int C, float *tokens,
                            char *why, size_t cap);

#endif
