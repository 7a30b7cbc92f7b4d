/* test_token_cache.c - hits, misses, LRU eviction under the size bound,
 * persistence across reopen, and degrading to "no cache" when the
 * directory is unusable or the data file is garbage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "token_cache.h"

enum { L = 8, C = 1024 }; /* 32 KiB per entry */

static void key_of(int i, uint8_t key[32]) {
    uint8_t h[32] = {0};
    vgpt_image_opts o;
    vgpt_image_opts_default(&o);
    h[0] = (uint8_t)i;
    h[1] = (uint8_t)(i >> 8);
    vgpt_cache_key(h, &o, "fp", key);
}

static void fill(float *t, int i) {
    for (int k = 0; k < L * C; k++) t[k] = (float)(i * 1000 + k);
}

int main(void) {
    check_state st = {0};
    char dir[] = "/tmp/vgpt-cache-test-XXXXXX";
    if (!mkdtemp(dir)) return 2;
    static float t[L * C], got[L * C];
    uint8_t key[32];
    vgpt_cache_stats s;

    vgpt_cache *c = vgpt_cache_open(dir, 1, "test"); /* 1 MiB: ~31 entries */
    key_of(1, key);
    CHECK(&st, vgpt_cache_get(c, key, got, L, C) == 0, "empty cache misses");
    fill(t, 1);
    vgpt_cache_put(c, key, t, L, C);
    CHECK(&st, vgpt_cache_get(c, key, got, L, C) == 1 && !memcmp(got, t, sizeof t), "put then get returns the tokens");
    CHECK(&st, vgpt_cache_get(c, key, got, L, C / 2) == 0, "a different shape is a miss");
    for (int i = 2; i < 60; i++) {
        key_of(i, key);
        fill(t, i);
        vgpt_cache_put(c, key, t, L, C);
        if (i % 5 == 0) { /* keep entry 2 recently used */
            key_of(2, key);
            vgpt_cache_get(c, key, got, L, C);
        }
    }
    vgpt_cache_stats_get(c, &s);
    CHECK(&st, s.entries * (L * C * 4 + 16) <= (1u << 20) && s.evictions > 0,
          "size bound holds with eviction (%llu entries, %llu evictions)", (unsigned long long)s.entries,
          (unsigned long long)s.evictions);
    key_of(2, key);
    CHECK(&st, vgpt_cache_get(c, key, got, L, C) == 1, "a recently used entry survives eviction");
    key_of(3, key);
    CHECK(&st, vgpt_cache_get(c, key, got, L, C) == 0, "the least recently used entry was evicted");
    vgpt_cache_free(c);

    c = vgpt_cache_open(dir, 1, "test");
    key_of(59, key);
    fill(t, 59);
    CHECK(&st, vgpt_cache_get(c, key, got, L, C) == 1 && !memcmp(got, t, sizeof t), "entries survive a reopen");
    vgpt_cache_free(c);

    char path[256];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    FILE *f = fopen(path, "wb");
    for (int i = 0; f && i < 100000; i++) fputc(i * 7 & 255, f);
    if (f) fclose(f);
    c = vgpt_cache_open(dir, 1, "test");
    vgpt_cache_stats_get(c, &s);
    CHECK(&st, s.disabled || vgpt_cache_get(c, key, got, L, C) == 0, "a garbage data file degrades to no cache");
    vgpt_cache_put(c, key, t, L, C); /* must not crash either way */
    vgpt_cache_free(c);

    c = vgpt_cache_open("/proc/vgpt-no-such-dir", 1, "test");
    vgpt_cache_stats_get(c, &s);
    CHECK(&st, s.disabled && vgpt_cache_get(c, key, got, L, C) == 0, "an unusable directory degrades to no cache");
    vgpt_cache_free(c);

    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    if (system(path)) return 2;
    return check_exit(&st);
}
