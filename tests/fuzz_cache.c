/* fuzz_cache.c - libFuzzer harness over the token cache's entry decoder
 * (vgpt_cache_entry_decode: what every cache hit goes through before its
 * tokens are used), with ASan/UBSan.  Run with `make fuzz-cache`.
 *
 * Input: byte 0 picks L (1..16), byte 1 picks C (1..64), byte 2 the mode.
 *  - mode bit 0 clear: the rest is a stored entry, decoded as it is.  The
 *    promises: a verdict of OK, STALE or DAMAGED; anything but OK has a
 *    one-line reason; an accepted entry is exactly what the encoder writes
 *    for the tokens it returned (so nothing but a valid entry is accepted).
 *  - mode bit 0 set: bytes 3-4 (a position) and 5 (a bit mask) say how to
 *    damage a valid entry, the rest are its tokens.  The entry must decode
 *    to those tokens bit for bit; with the bits at that position flipped
 *    (mask != 0), cut to that length (mode bit 1) or looked up under
 *    another key (mode bit 2) it must not be OK.
 * With VGPT_FUZZ_SEEDS=dir it writes seed inputs of both kinds and exits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token_cache.h"

enum { MAX_L = 16, MAX_C = 64, HDR = 3 };

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_cache: %s: %s\n", what, detail);
    abort();
}

static const uint8_t key_a[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t key_b[32] = {1, 2, 3, 4, 5, 6, 7, 8, 10};
static float tokens[MAX_L * MAX_C];
static uint8_t entry[sizeof tokens + 64], again[sizeof tokens + 64];

static int decode(const void *buf, size_t len, const uint8_t *key, int L, int C) {
    char why[256] = "";
    int v = vgpt_cache_entry_decode(buf, len, key, L, C, tokens, why, sizeof why);
    if (v != VGPT_ENTRY_OK && v != VGPT_ENTRY_STALE && v != VGPT_ENTRY_DAMAGED) die("decode", "unknown verdict");
    if (v != VGPT_ENTRY_OK && (!why[0] || strchr(why, '\n'))) die("rejected", "missing or multi-line reason");
    return v;
}

/* Arbitrary bytes as a stored entry. */
static void fuzz_stored(const uint8_t *data, size_t size, int L, int C) {
    if (decode(data, size, key_a, L, C) != VGPT_ENTRY_OK) return;
    if (size != vgpt_cache_entry_size(L, C)) die("accepted", "an entry of the wrong size");
    vgpt_cache_entry_encode(key_a, tokens, L, C, again);
    if (memcmp(again, data, size)) die("accepted", "an entry the encoder would not write for its tokens");
}

/* A valid entry of the input's tokens, then damaged as the input says. */
static void fuzz_damaged(const uint8_t *data, size_t size, int mode, int L, int C) {
    if (size < 3) return;
    size_t pos = data[0] | (size_t)data[1] << 8, n = vgpt_cache_entry_size(L, C);
    size_t nt = (size_t)L * C * sizeof(float);
    uint8_t mask = data[2];
    static uint8_t src[sizeof tokens];
    memset(src, 0, sizeof src);
    memcpy(src, data + 3, size - 3 < nt ? size - 3 : nt);
    vgpt_cache_entry_encode(key_a, (const float *)src, L, C, entry);
    if (decode(entry, n, key_a, L, C) != VGPT_ENTRY_OK) die("round trip", "a fresh entry does not decode");
    if (memcmp(tokens, src, nt)) die("round trip", "decoded tokens differ from the encoded ones");
    if (mode & 4 && decode(entry, n, key_b, L, C) == VGPT_ENTRY_OK) die("accepted", "an entry under another key");
    if (mode & 2 && decode(entry, pos % n, key_a, L, C) == VGPT_ENTRY_OK) die("accepted", "a truncated entry");
    if (mask) {
        entry[pos % n] ^= mask;
        if (decode(entry, n, key_a, L, C) == VGPT_ENTRY_OK) die("accepted", "an entry with flipped bits");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < HDR) return 0;
    int L = 1 + data[0] % MAX_L, C = 1 + data[1] % MAX_C, mode = data[2];
    if (mode & 1) fuzz_damaged(data + HDR, size - HDR, mode, L, C);
    else fuzz_stored(data + HDR, size - HDR, L, C);
    return 0;
}

/* ---- seed corpus ---- */

static void write_seed(const char *dir, const char *name, const uint8_t *b, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f)) die("cannot write seed", path);
}

static void write_seeds(const char *dir) {
    static uint8_t in[HDR + sizeof entry];
    const int shapes[][2] = {{1, 1}, {3, 5}, {8, 64}, {16, 64}};
    for (int s = 0; s < 4; s++) {
        int L = shapes[s][0], C = shapes[s][1];
        size_t n = vgpt_cache_entry_size(L, C);
        for (int i = 0; i < L * C; i++) tokens[i] = (float)i * 0.25f - 3.0f;
        in[0] = (uint8_t)(L - 1), in[1] = (uint8_t)(C - 1), in[2] = 0;
        vgpt_cache_entry_encode(key_a, tokens, L, C, in + HDR);
        char name[64];
        snprintf(name, sizeof name, "stored-%dx%d", L, C);
        write_seed(dir, name, in, HDR + n);
        in[2] = 1 | 2 | 4, in[3] = 30, in[4] = 0, in[5] = 0x10;
        memcpy(in + HDR + 3, tokens, (size_t)L * C * sizeof(float));
        snprintf(name, sizeof name, "damaged-%dx%d", L, C);
        write_seed(dir, name, in, HDR + 3 + (size_t)L * C * sizeof(float));
    }
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
