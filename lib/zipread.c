/* zipread.c - central-directory reader for stored zip archives (see zipread.h).
 *
 * Every offset and length read from the file is checked against the buffer
 * before use: a checkpoint may be truncated or hostile. */
#include "zipread.h"

#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CDIR 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define EOCD_LEN 22
#define CDIR_LEN 46
#define LOCAL_LEN 30

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

typedef struct cdir_loc { uint64_t off, size, n; } cdir_loc;

/* The EOCD record sits at the very end, before an optional comment of at
 * most 64 KiB, so scan backwards for its signature. */
static int64_t find_eocd(const uint8_t *b, size_t size) {
    if (size < EOCD_LEN) return -1;
    size_t lo = size > EOCD_LEN + 65535 ? size - EOCD_LEN - 65535 : 0;
    for (size_t i = size - EOCD_LEN + 1; i-- > lo;)
        if (rd32(b + i) == SIG_EOCD && i + EOCD_LEN + rd16(b + i + 20) <= size) return (int64_t)i;
    return -1;
}

/* Zip64: a locator 20 bytes before the EOCD points at the 64-bit EOCD. */
static int read_eocd64(const uint8_t *b, size_t eocd, cdir_loc *loc, const char *fname, vgpt_err *err) {
    if (eocd < 20 || rd32(b + eocd - 20) != SIG_LOC64) return 0;
    uint64_t off = rd64(b + eocd - 20 + 8);
    if (off > eocd - 20 || eocd - 20 - off < 56 || rd32(b + off) != SIG_EOCD64)
        return vgpt_err_set(err, "%s: bad zip64 end-of-central-directory record (truncated or corrupt file)", fname);
    loc->n = rd64(b + off + 32);
    loc->size = rd64(b + off + 40);
    loc->off = rd64(b + off + 48);
    return 1;
}

static int locate_cdir(const uint8_t *b, size_t size, cdir_loc *loc, const char *fname, vgpt_err *err) {
    int64_t e = find_eocd(b, size);
    if (e < 0)
        return vgpt_err_set(err, "%s: no zip end-of-central-directory record (truncated or not a zip archive)", fname);
    size_t eocd = (size_t)e;
    if (rd16(b + eocd + 4) != 0 || rd16(b + eocd + 6) != 0)
        return vgpt_err_set(err, "%s: multi-disk zip archives are not supported", fname);
    loc->n = rd16(b + eocd + 10);
    loc->size = rd32(b + eocd + 12);
    loc->off = rd32(b + eocd + 16);
    int r = read_eocd64(b, eocd, loc, fname, err);
    if (r < 0) return -1;
    uint64_t end = r ? (uint64_t)eocd - 20 : (uint64_t)eocd; /* the directory ends before these records */
    if (loc->off > end || loc->size > end - loc->off)
        return vgpt_err_set(err, "%s: bad zip central directory (offset %llu + size %llu beyond end of file %zu; truncated?)",
                            fname, (unsigned long long)loc->off, (unsigned long long)loc->size, size);
    if (loc->n > loc->size / CDIR_LEN)
        return vgpt_err_set(err, "%s: bad zip central directory (%llu entries cannot fit in %llu bytes)", fname,
                            (unsigned long long)loc->n, (unsigned long long)loc->size);
    return 0;
}

/* Zip64 extra field (id 1): 64-bit versions of exactly those fields whose
 * 32-bit slots hold 0xffffffff, in the order usize, csize, offset. */
static int apply_zip64_extra(const uint8_t *x, size_t xlen, vgpt_zip_entry *e, uint32_t usz, uint32_t csz,
                             uint32_t off) {
    while (xlen >= 4) {
        uint16_t id = rd16(x), len = rd16(x + 2);
        if ((size_t)len > xlen - 4) return -1;
        if (id == 1) {
            const uint8_t *p = x + 4, *end = x + 4 + len;
            if (usz == 0xffffffffu) { if (end - p < 8) return -1; e->size = rd64(p); p += 8; }
            if (csz == 0xffffffffu) { if (end - p < 8) return -1; e->csize = rd64(p); p += 8; }
            if (off == 0xffffffffu) { if (end - p < 8) return -1; e->local_off = rd64(p); }
            return 0;
        }
        x += 4 + len;
        xlen -= 4 + (size_t)len;
    }
    return (usz == 0xffffffffu || csz == 0xffffffffu || off == 0xffffffffu) ? -1 : 0;
}

static int read_entry(const uint8_t *p, const uint8_t *end, vgpt_zip_entry *e, size_t *used, size_t i,
                      const char *fname, vgpt_err *err) {
    if (end - p < CDIR_LEN || rd32(p) != SIG_CDIR)
        return vgpt_err_set(err, "%s: bad zip central directory entry %zu (truncated or corrupt)", fname, i);
    size_t nlen = rd16(p + 28), xlen = rd16(p + 30), clen = rd16(p + 32);
    if ((size_t)(end - p) - CDIR_LEN < nlen + xlen + clen)
        return vgpt_err_set(err, "%s: zip central directory entry %zu overruns the directory", fname, i);
    e->flags = rd16(p + 8);
    e->method = rd16(p + 10);
    uint32_t csz = rd32(p + 20), usz = rd32(p + 24), off = rd32(p + 42);
    e->csize = csz;
    e->size = usz;
    e->local_off = off;
    e->name = (const char *)p + CDIR_LEN;
    e->name_len = nlen;
    if (apply_zip64_extra(p + CDIR_LEN + nlen, xlen, e, usz, csz, off) < 0)
        return vgpt_err_set(err, "%s: zip entry '%.*s': bad zip64 extra field", fname, (int)nlen, e->name);
    *used = CDIR_LEN + nlen + xlen + clen;
    return 0;
}

static int cmp_entry(const void *a, const void *b) {
    const vgpt_zip_entry *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

int vgpt_zip_open(vgpt_zip *z, const void *data, size_t size, const char *fname, vgpt_err *err) {
    memset(z, 0, sizeof *z);
    z->base = data;
    z->size = size;
    cdir_loc loc = {0, 0, 0};
    if (locate_cdir(z->base, size, &loc, fname, err)) return -1;
    z->entries = calloc(loc.n ? loc.n : 1, sizeof *z->entries);
    if (!z->entries) return vgpt_err_set(err, "%s: out of memory indexing %llu zip entries", fname,
                                         (unsigned long long)loc.n);
    const uint8_t *p = z->base + loc.off, *end = p + loc.size;
    for (size_t i = 0; i < loc.n; i++) {
        size_t used = 0;
        if (read_entry(p, end, &z->entries[i], &used, i, fname, err)) {
            vgpt_zip_free(z);
            return -1;
        }
        p += used;
    }
    z->n = loc.n;
    qsort(z->entries, z->n, sizeof *z->entries, cmp_entry);
    return 0;
}

void vgpt_zip_free(vgpt_zip *z) {
    free(z->entries);
    z->entries = NULL;
    z->n = 0;
}

const vgpt_zip_entry *vgpt_zip_find(const vgpt_zip *z, const char *name, size_t name_len) {
    vgpt_zip_entry key = {.name = name, .name_len = name_len};
    return z->n ? bsearch(&key, z->entries, z->n, sizeof key, cmp_entry) : NULL;
}

int vgpt_zip_data(const vgpt_zip *z, const vgpt_zip_entry *e, const uint8_t **out, const char *fname,
                  vgpt_err *err) {
    int nl = (int)e->name_len;
    if (e->flags & 1u)
        return vgpt_err_set(err, "%s: zip entry '%.*s' is encrypted", fname, nl, e->name);
    if (e->method != 0)
        return vgpt_err_set(err, "%s: zip entry '%.*s' is compressed (method %u); torch checkpoints store "
                            "entries uncompressed: re-save with torch.save", fname, nl, e->name, e->method);
    if (e->csize != e->size)
        return vgpt_err_set(err, "%s: zip entry '%.*s': stored size %llu != size %llu", fname, nl, e->name,
                            (unsigned long long)e->csize, (unsigned long long)e->size);
    uint64_t off = e->local_off;
    if (off > z->size || z->size - off < LOCAL_LEN || rd32(z->base + off) != SIG_LOCAL)
        return vgpt_err_set(err, "%s: zip entry '%.*s': bad local header at offset %llu (truncated or corrupt)",
                            fname, nl, e->name, (unsigned long long)off);
    uint64_t start = off + LOCAL_LEN + rd16(z->base + off + 26) + rd16(z->base + off + 28);
    if (start > z->size || z->size - start < e->size)
        return vgpt_err_set(err, "%s: zip entry '%.*s': %llu bytes at offset %llu run past the end of the "
                            "file (%zu bytes; truncated?)", fname, nl, e->name, (unsigned long long)e->size,
                            (unsigned long long)start, z->size);
    *out = z->base + start;
    return 0;
}
