/* token_cache.h - the visual-token cache: LMDB on the encoder's node.
 *
 * A hit skips the ViT entirely, so captioning an archive again with other
 * decoding settings costs only the decoder.  The cache is an optimisation,
 * never a dependency: if it cannot be opened, is corrupt or fills up, every
 * call degrades to "miss" with one warning in the log, and encoding goes on. */
#ifndef VGPT_TOKEN_CACHE_H
#define VGPT_TOKEN_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

typedef struct vgpt_cache vgpt_cache;

typedef struct vgpt_cache_stats {
    uint64_t hits, misses, puts, evictions, entries, bytes;
    int disabled;
} vgpt_cache_stats;

/* Opens (creating) the cache in dir, bounded to max_mb of token data with
 * least-recently-used eviction.  Never fails: returns a disabled cache
 * (after logging why under log_name) when LMDB cannot be used. */
vgpt_cache *vgpt_cache_open(const char *dir, size_t max_mb, const char *log_name);
void vgpt_cache_free(vgpt_cache *c);

/* key = SHA-256(image content hash, preprocessing settings, model fingerprint). */
void vgpt_cache_key(const uint8_t image_hash[32], const vgpt_image_opts *o, const char *fingerprint, uint8_t key[32]);

/* 1 and tokens (L,C) filled on a hit, 0 on a miss. */
int vgpt_cache_get(vgpt_cache *c, const uint8_t key[32], float *tokens, int L, int C);
void vgpt_cache_put(vgpt_cache *c, const uint8_t key[32], const float *tokens, int L, int C);
void vgpt_cache_stats_get(const vgpt_cache *c, vgpt_cache_stats *s);

#endif
