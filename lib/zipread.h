/* zipread.h - index a zip archive held in memory (an mmap'd checkpoint).
 *
 * torch.save writes a zip of stored (uncompressed) entries, so reading one is
 * only a matter of walking the central directory and finding where each
 * entry's bytes start.  Nothing is copied: entry names and data point into
 * the caller's buffer.  Zip64 records are understood; compressed or
 * encrypted entries are indexed but refused by vgpt_zip_data(). */
#ifndef VGPT_ZIPREAD_H
#define VGPT_ZIPREAD_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct vgpt_zip_entry {
    const char *name;   /* not NUL-terminated; name_len bytes */
    size_t name_len;
    uint64_t local_off; /* offset of the local file header */
    uint64_t size;      /* uncompressed size */
    uint64_t csize;     /* compressed size */
    uint16_t method;    /* 0 = stored */
    uint16_t flags;
} vgpt_zip_entry;

typedef struct vgpt_zip {
    const uint8_t *base;
    size_t size;
    vgpt_zip_entry *entries;
    size_t n;
} vgpt_zip;

/* Indexes the archive in [data, data+size).  `fname` only labels errors. */
int vgpt_zip_open(vgpt_zip *z, const void *data, size_t size, const char *fname, vgpt_err *err);
void vgpt_zip_free(vgpt_zip *z);

/* Exact-name lookup; NULL when absent. */
const vgpt_zip_entry *vgpt_zip_find(const vgpt_zip *z, const char *name, size_t name_len);

/* Points *out at the entry's bytes after checking the local header, that the
 * entry is stored (not compressed / encrypted) and lies inside the archive. */
int vgpt_zip_data(const vgpt_zip *z, const vgpt_zip_entry *e, const uint8_t **out,
                  const char *fname, vgpt_err *err);

#endif
