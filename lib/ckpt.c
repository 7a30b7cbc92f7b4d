/* ckpt.c - torch.save zip checkpoints -> a table of named tensors (ckpt.h).
 *
 * Layers: zipread.c finds the entries, pickle.c turns data.pkl into values
 * without executing anything, and this file picks the state dict, checks
 * every tensor against the bytes of its storage and exposes them in place. */
#include "ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt_impl.h"
#include "file.h"
#include "half.h"
#include "pickle.h"
#include "zipread.h"

struct vgpt_ckpt {
    char *path;
    const uint8_t *map;   /* file bytes */
    size_t size;
    int mapped;           /* map came from mmap (else the caller owns it) */
    int fd;               /* the mapped file, for vgpt_ckpt_copy; -1 if none */
    vgpt_tensor *tensors; /* in state-dict order */
    size_t n;
    size_t *by_name;      /* indices sorted by name, for find() */
    void **owned;         /* aligned copies of misaligned storages */
    const uint8_t **owned_src;
    size_t *owned_size;   /* bytes of each copy: a damaged zip may give two entries one offset, other sizes */
    size_t n_owned;
};

/* What index() needs while it works; freed before open() returns. */
typedef struct ctx {
    vgpt_ckpt *ck;
    vgpt_zip zip;
    const char *top;      /* archive top folder, e.g. "archive" */
    size_t top_len;
    vgpt_err *err;
    vgpt_storage_fn storage; /* a storage's bytes by key (zip entry, legacy offset) */
    void *storage_arg;
} ctx;

size_t vgpt_dtype_size(vgpt_dtype dt) {
    return dt == VGPT_DT_F32 ? 4 : dt == VGPT_DT_F16 || dt == VGPT_DT_BF16 ? 2 : 0;
}

const char *vgpt_dtype_name(vgpt_dtype dt) {
    static const char *const names[] = {"float32", "float16", "bfloat16", "other"};
    return (unsigned)dt <= VGPT_DT_OTHER ? names[dt] : "?";
}

const char *vgpt_ckpt_path(const vgpt_ckpt *ck) { return ck->path; }
const uint8_t *vgpt_ckpt_bytes(const vgpt_ckpt *ck, size_t *size) {
    *size = ck->size;
    return ck->map;
}
size_t vgpt_ckpt_count(const vgpt_ckpt *ck) { return ck->n; }
const vgpt_tensor *vgpt_ckpt_at(const vgpt_ckpt *ck, size_t i) { return i < ck->n ? &ck->tensors[i] : NULL; }

/* ---- the archive ---- */

/* torch >= 1.6 writes a zip; older versions a bare pickle stream that starts
 * with the pickled magic number 0x1950a86a20f9469cfc6c (LONG1, 10 bytes). */
static int check_magic(const ctx *c) {
    const uint8_t *b = c->ck->map;
    size_t n = c->ck->size;
    static const uint8_t legacy[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    (void)legacy; /* the legacy stream is read by ckpt_legacy.c */
    if (n >= 4 && b[0] == 'P' && b[1] == 'K' && ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6))) return 0;
    return vgpt_err_set(c->err, "%s: not a checkpoint vgpt reads (expected a torch.save zip archive, a legacy "
                        "torch.save stream or a safetensors file)", c->ck->path);
}

/* The pickle is "<top>/data.pkl" for an arbitrary single-level <top>. */
static int find_pickle(ctx *c, const uint8_t **pkl, size_t *pkl_len) {
    for (size_t i = 0; i < c->zip.n; i++) {
        const vgpt_zip_entry *e = &c->zip.entries[i];
        if (e->name_len < 10 || memcmp(e->name + e->name_len - 9, "/data.pkl", 9)) continue;
        if (memchr(e->name, '/', e->name_len - 9)) continue;
        c->top = e->name;
        c->top_len = e->name_len - 9;
        *pkl_len = (size_t)e->size;
        return vgpt_zip_data(&c->zip, e, pkl, c->ck->path, c->err);
    }
    return vgpt_err_set(c->err, "%s: zip archive has no <folder>/data.pkl entry (not a torch.save checkpoint)",
                        c->ck->path);
}

static const vgpt_zip_entry *find_member(const ctx *c, const char *rel);

/* vgpt_storage_fn for the zip: the entry <top>/data/<key>. */
static int zip_storage(void *arg, const char *key, const char *label, const uint8_t **data, uint64_t *size,
                       vgpt_err *err) {
    const ctx *c = arg;
    char rel[300];
    snprintf(rel, sizeof rel, "data/%s", key);
    const vgpt_zip_entry *e = find_member(c, rel);
    if (!e)
        return vgpt_err_set(err, "%s: storage entry '%.*s/%s' missing from the archive", label, (int)c->top_len,
                            c->top, rel);
    *size = e->size;
    return vgpt_zip_data(&c->zip, e, data, label, err);
}

static const vgpt_zip_entry *find_member(const ctx *c, const char *rel) {
    char name[512];
    int n = snprintf(name, sizeof name, "%.*s/%s", (int)c->top_len, c->top, rel);
    if (n < 0 || (size_t)n >= sizeof name) return NULL;
    return vgpt_zip_find(&c->zip, name, (size_t)n);
}

/* Optional "<top>/byteorder": absent in older files, where little is implied. */
static int check_byteorder(const ctx *c) {
    const vgpt_zip_entry *e = find_member(c, "byteorder");
    if (!e) return 0;
    const uint8_t *d;
    if (vgpt_zip_data(&c->zip, e, &d, c->ck->path, c->err)) return -1;
    size_t n = (size_t)e->size;
    while (n && (d[n - 1] == '\n' || d[n - 1] == '\r')) n--;
    if (n == 6 && !memcmp(d, "little", 6)) return 0;
    return vgpt_err_set(c->err, "%s: byteorder is '%.*s', expected 'little' (big-endian checkpoints are not "
                        "supported)", c->ck->path, (int)(n < 16 ? n : 16), (const char *)d);
}

/* ---- tensors ---- */

static int checked_mul(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_mul_overflow(a, b, out); }
static int checked_add(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_add_overflow(a, b, out); }

/* Elements from the storage start that the view touches (0 when empty). */
static int view_extent(const vgpt_pk_tensor *t, int64_t *numel, uint64_t *extent) {
    uint64_t n = 1, last = (uint64_t)t->offset;
    for (int d = 0; d < t->ndim; d++)
        if (checked_mul(n, (uint64_t)t->shape[d], &n)) return -1;
    *numel = (int64_t)n;
    if (n > (uint64_t)INT64_MAX) return -1;
    if (n == 0) { *extent = 0; return 0; }
    for (int d = 0; d < t->ndim; d++) {
        uint64_t span;
        if (checked_mul((uint64_t)(t->shape[d] - 1), (uint64_t)t->stride[d], &span) || checked_add(last, span, &last))
            return -1;
    }
    return checked_add(last, 1, extent);
}

static int is_contiguous(const vgpt_tensor *t) {
    int64_t want = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != want) return 0;
        want *= t->shape[d];
    }
    return 1;
}

/* Storage bytes as an aligned pointer: in place when aligned (always, for
 * torch's 64-byte padded archives), else a copy owned by the checkpoint. */
static int storage_bytes(ctx *c, const uint8_t *src, size_t size, size_t align, const uint8_t **out) {
    vgpt_ckpt *ck = c->ck;
    if (align <= 1 || (uintptr_t)src % align == 0) { *out = src; return 0; }
    /* one copy per storage, so tied tensors keep sharing one pointer */
    for (size_t i = 0; i < ck->n_owned; i++)
        if (ck->owned_src[i] == src && ck->owned_size[i] == size) { *out = ck->owned[i]; return 0; }
    void **o = realloc(ck->owned, (ck->n_owned + 1) * sizeof *o);
    if (o) ck->owned = o;
    const uint8_t **s = o ? realloc(ck->owned_src, (ck->n_owned + 1) * sizeof *s) : NULL;
    if (s) ck->owned_src = s;
    size_t *z = s ? realloc(ck->owned_size, (ck->n_owned + 1) * sizeof *z) : NULL;
    if (z) ck->owned_size = z;
    void *copy = z ? malloc(size ? size : 1) : NULL;
    if (!copy) return vgpt_err_set(c->err, "%s: out of memory copying a misaligned storage", ck->path);
    memcpy(copy, src, size);
    ck->owned[ck->n_owned] = copy;
    ck->owned_size[ck->n_owned] = size;
    ck->owned_src[ck->n_owned++] = src;
    *out = copy;
    return 0;
}

/* Binds t->data to its storage entry after checking that every element the
 * view addresses lies inside the entry. */
static int bind_data(ctx *c, vgpt_tensor *t, const vgpt_pk_tensor *pt) {
    const vgpt_pk_storage *st = &pt->storage->st;
    const char *path = c->ck->path;
    const uint8_t *src = NULL;
    uint64_t esize = 0;
    char label[768];
    snprintf(label, sizeof label, "%s: tensor '%s'", path, t->name);
    if (c->storage(c->storage_arg, st->key, label, &src, &esize, c->err)) return -1;
    uint64_t extent, need;
    if (view_extent(pt, &t->numel, &extent) || checked_mul(extent, st->elem_size, &need))
        return vgpt_err_set(c->err, "%s: tensor '%s': size / stride / offset overflow", path, t->name);
    if (need > esize)
        return vgpt_err_set(c->err, "%s: tensor '%s': storage '%s' too small: %llu bytes, the tensor's view needs "
                            "%llu (offset %lld, %d dims)", path, t->name, st->key, (unsigned long long)esize,
                            (unsigned long long)need, (long long)pt->offset, pt->ndim);
    if (st->elem_size == 0) return 0; /* unknown storage type: listed, never read */
    const uint8_t *base = NULL;
    if (storage_bytes(c, src, (size_t)esize, st->elem_size, &base)) return -1;
    t->data = base + (size_t)pt->offset * st->elem_size * (t->numel > 0);
    return 0;
}

static int add_tensor(ctx *c, const char *name, const vgpt_pk_tensor *pt, size_t *cap) {
    vgpt_ckpt *ck = c->ck;
    if (ck->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        vgpt_tensor *q = realloc(ck->tensors, nc * sizeof *q);
        if (!q) return vgpt_err_set(c->err, "%s: out of memory", ck->path);
        ck->tensors = q;
        *cap = nc;
    }
    vgpt_tensor *t = &ck->tensors[ck->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->storage_key = strdup(pt->storage->st.key);
    if (!t->name || !t->storage_key) {
        free((void *)t->name);
        free((void *)t->storage_key);
        return vgpt_err_set(c->err, "%s: out of memory", ck->path);
    }
    ck->n++;
    t->dtype = pt->storage->st.dtype;
    t->ndim = pt->ndim;
    memcpy(t->shape, pt->shape, sizeof t->shape);
    memcpy(t->stride, pt->stride, sizeof t->stride);
    if (bind_data(c, t, pt)) return -1;
    t->contiguous = is_contiguous(t);
    return 0;
}

/* ---- the state dict ---- */

static const vgpt_pkval *pick_state_dict(const ctx *c, const vgpt_pkval *top) {
    if (top->type != VGPT_PK_DICT) {
        vgpt_err_set(c->err, "%s: data.pkl: top-level object is a %s, expected a dict (a state dict or "
                     "{'model_state_dict': ...})", c->ck->path, vgpt_pk_type_name(top->type));
        return NULL;
    }
    const vgpt_pkval *sd = vgpt_pk_dict_get(top, "model_state_dict");
    if (!sd) return top;
    if (sd->type != VGPT_PK_DICT) {
        vgpt_err_set(c->err, "%s: data.pkl: 'model_state_dict' is a %s, expected a dict", c->ck->path,
                     vgpt_pk_type_name(sd->type));
        return NULL;
    }
    return sd;
}

static int cmp_name_idx(const void *a, const void *b, void *arg) {
    const vgpt_tensor *t = arg;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int r = strcmp(t[x].name, t[y].name);
    return r ? r : (x > y) - (x < y);
}

static void drop_tensor(vgpt_tensor *t) {
    free((void *)t->name);
    free((void *)t->storage_key);
    t->name = t->storage_key = NULL;
}

/* A dict may repeat a key (SETITEM twice); as in Python the last one wins.
 * Drops earlier duplicates, keeps state-dict order, builds the name index. */
static int build_index(ctx *c) {
    vgpt_ckpt *ck = c->ck;
    ck->by_name = malloc((ck->n ? ck->n : 1) * sizeof *ck->by_name);
    if (!ck->by_name) return vgpt_err_set(c->err, "%s: out of memory", ck->path);
    for (size_t i = 0; i < ck->n; i++) ck->by_name[i] = i;
    qsort_r(ck->by_name, ck->n, sizeof *ck->by_name, cmp_name_idx, ck->tensors);
    for (size_t i = 0; i + 1 < ck->n; i++)
        if (!strcmp(ck->tensors[ck->by_name[i]].name, ck->tensors[ck->by_name[i + 1]].name))
            drop_tensor(&ck->tensors[ck->by_name[i]]);
    size_t m = 0;
    for (size_t i = 0; i < ck->n; i++)
        if (ck->tensors[i].name) ck->tensors[m++] = ck->tensors[i];
    ck->n = m;
    for (size_t i = 0; i < ck->n; i++) ck->by_name[i] = i;
    qsort_r(ck->by_name, ck->n, sizeof *ck->by_name, cmp_name_idx, ck->tensors);
    return 0;
}

int vgpt_ckpt_finish(vgpt_ckpt *ck, vgpt_err *err) {
    ctx c = {.ck = ck, .err = err};
    if (ck->n == 0)
        return vgpt_err_set(err, "%s: no tensors found (expected a state dict of name -> tensor, bare or "
                            "under 'model_state_dict')", ck->path);
    return build_index(&c);
}

int vgpt_ckpt_collect(vgpt_ckpt *ck, const vgpt_pkval *top, vgpt_storage_fn fn, void *arg, vgpt_err *err) {
    ctx c = {.ck = ck, .err = err, .storage = fn, .storage_arg = arg};
    const vgpt_pkval *sd = pick_state_dict(&c, top);
    if (!sd) return -1;
    size_t cap = ck->n;
    for (size_t i = 0; i + 1 < sd->n; i += 2) {
        const vgpt_pkval *k = sd->items[i], *v = sd->items[i + 1];
        if (k->type != VGPT_PK_STR || v->type != VGPT_PK_TENSOR) continue;
        if (add_tensor(&c, k->s, v->t, &cap)) return -1;
    }
    return vgpt_ckpt_finish(ck, err);
}

int vgpt_ckpt_add_dense(vgpt_ckpt *ck, const char *name, vgpt_dtype dt, size_t elem_size, int ndim,
                        const int64_t *shape, const uint8_t *src, vgpt_err *err) {
    ctx c = {.ck = ck, .err = err};
    vgpt_tensor *q = realloc(ck->tensors, (ck->n + 1) * sizeof *q);
    if (!q) return vgpt_err_set(err, "%s: out of memory", ck->path);
    ck->tensors = q;
    vgpt_tensor *t = &ck->tensors[ck->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->storage_key = strdup(name);
    if (!t->name || !t->storage_key) {
        drop_tensor(t);
        return vgpt_err_set(err, "%s: out of memory", ck->path);
    }
    ck->n++;
    t->dtype = dt;
    t->ndim = ndim;
    t->numel = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        t->shape[d] = shape[d];
        t->stride[d] = t->numel;
        t->numel *= shape[d];
    }
    t->contiguous = 1;
    if (elem_size == 0) return 0;
    const uint8_t *base;
    if (storage_bytes(&c, src, (size_t)t->numel * elem_size, elem_size, &base)) return -1;
    t->data = base;
    return 0;
}

static int index_archive(vgpt_ckpt *ck, vgpt_err *err) {
    if (vgpt_safetensors_is(ck->map, ck->size)) return vgpt_safetensors_index(ck, err);
    if (vgpt_legacy_is(ck->map, ck->size)) return vgpt_legacy_index(ck, err);
    ctx c = {.ck = ck, .err = err, .storage = zip_storage};
    c.storage_arg = &c;
    const uint8_t *pkl;
    size_t pkl_len = 0;
    vgpt_pickle *pk = NULL;
    const vgpt_pkval *top;
    int rc = -1;
    if (check_magic(&c) || vgpt_zip_open(&c.zip, ck->map, ck->size, ck->path, err)) return -1;
    if (find_pickle(&c, &pkl, &pkl_len) || check_byteorder(&c)) goto done;
    if (vgpt_pickle_parse(pkl, pkl_len, ck->path, &pk, &top, err)) goto done;
    rc = vgpt_ckpt_collect(ck, top, c.storage, c.storage_arg, err);
done:
    vgpt_pickle_free(pk);
    vgpt_zip_free(&c.zip);
    return rc;
}

/* ---- open / close ---- */

static vgpt_ckpt *new_ckpt(const char *path, vgpt_err *err) {
    vgpt_ckpt *ck = calloc(1, sizeof *ck);
    if (ck) ck->fd = -1;
    if (ck) ck->path = strdup(path);
    if (!ck || !ck->path) {
        free(ck);
        vgpt_err_set(err, "%s: out of memory", path);
        return NULL;
    }
    return ck;
}

int vgpt_ckpt_open_mem(const void *data, size_t size, const char *name, vgpt_ckpt **out, vgpt_err *err) {
    *out = NULL;
    vgpt_ckpt *ck = new_ckpt(name, err);
    if (!ck) return -1;
    ck->map = data;
    ck->size = size;
    if (size == 0) {
        vgpt_err_set(err, "%s: empty file (expected a torch.save checkpoint)", name);
        vgpt_ckpt_free(ck);
        return -1;
    }
    if (index_archive(ck, err)) {
        vgpt_ckpt_free(ck);
        return -1;
    }
    *out = ck;
    return 0;
}

int vgpt_ckpt_resolve(const char *path, char *out, size_t cap, vgpt_err *err) {
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        if ((size_t)snprintf(out, cap, "%s", path) >= cap) return vgpt_err_set(err, "%s: path too long", path);
        return 0;
    }
    static const char *const names[] = {"model.safetensors", "pytorch_model.bin"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        if ((size_t)snprintf(out, cap, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", names[i]) >= cap)
            return vgpt_err_set(err, "%s: path too long", path);
        if (stat(out, &sb) == 0) return 0;
    }
    return vgpt_err_set(err, "%s: a folder without model.safetensors or pytorch_model.bin (download the weights "
                        "from the model page into it, or name the checkpoint file)", path);
}

int vgpt_ckpt_open(const char *given, vgpt_ckpt **out, vgpt_err *err) {
    *out = NULL;
    char path[4096];
    if (vgpt_ckpt_resolve(given, path, sizeof path, err)) return -1;
    struct stat sb;
    int fd = vgpt_file_open(path, "a checkpoint file", &sb, err);
    if (fd < 0) return -1;
    if (sb.st_size == 0) {
        close(fd);
        return vgpt_err_set(err, "%s: empty file (expected a torch.save checkpoint)", path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    if (map == MAP_FAILED) {
        close(fd);
        return vgpt_err_set(err, "%s: cannot mmap checkpoint: %s", path, strerror(e));
    }
    vgpt_ckpt *ck = new_ckpt(path, err);
    if (!ck) {
        close(fd);
        munmap(map, (size_t)sb.st_size);
        return -1;
    }
    ck->fd = fd;
    ck->map = map;
    ck->size = (size_t)sb.st_size;
    ck->mapped = 1;
    if (index_archive(ck, err)) {
        vgpt_ckpt_free(ck);
        return -1;
    }
    *out = ck;
    return 0;
}

void vgpt_ckpt_drop_pages(const vgpt_ckpt *ck, const void *p, size_t bytes) {
    uintptr_t lo = (uintptr_t)p, hi = lo + bytes, base = (uintptr_t)ck->map, page = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (!ck->mapped || lo < base || hi > base + ck->size) return;
    lo = (lo + page - 1) & ~(page - 1); /* whole pages only: neighbours may share the edges */
    hi &= ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void vgpt_ckpt_copy(const vgpt_ckpt *ck, void *dst, const void *p, size_t bytes) {
    uintptr_t lo = (uintptr_t)p, base = (uintptr_t)ck->map;
    if (ck->fd >= 0 && lo >= base && lo + bytes <= base + ck->size &&
        pread(ck->fd, dst, bytes, (off_t)(lo - base)) == (ssize_t)bytes)
        return;
    memcpy(dst, p, bytes); /* not in the file, or a short read: the mapping has the same bytes */
}

void vgpt_ckpt_drop_all(const vgpt_ckpt *ck) {
    if (ck->mapped) vgpt_ckpt_drop_pages(ck, ck->map, ck->size);
}

void vgpt_ckpt_free(vgpt_ckpt *ck) {
    if (!ck) return;
    for (size_t i = 0; i < ck->n; i++) drop_tensor(&ck->tensors[i]);
    for (size_t i = 0; i < ck->n_owned; i++) free(ck->owned[i]);
    free(ck->owned);
    free(ck->owned_src);
    free(ck->owned_size);
    free(ck->tensors);
    free(ck->by_name);
    if (ck->mapped) munmap((void *)ck->map, ck->size);
    if (ck->fd >= 0) close(ck->fd);
    free(ck->path);
    free(ck);
}

const vgpt_tensor *vgpt_ckpt_find(const vgpt_ckpt *ck, const char *name) {
    size_t lo = 0, hi = ck->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const vgpt_tensor *t = &ck->tensors[ck->by_name[mid]];
        int r = strcmp(t->name, name);
        if (!r) return t;
        if (r < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ---- reading values ---- */

static float elem_f32(const vgpt_tensor *t, int64_t off) {
    if (t->dtype == VGPT_DT_F32) {
        float f;
        memcpy(&f, (const float *)t->data + off, sizeof f);
        return f;
    }
    uint16_t h = ((const uint16_t *)t->data)[off];
    return t->dtype == VGPT_DT_F16 ? vgpt_half_to_float(h) : vgpt_bf16_to_float(h);
}

int vgpt_ckpt_read_f32(const vgpt_ckpt *ck, const vgpt_tensor *t, float *dst, vgpt_err *err) {
    if (t->dtype == VGPT_DT_OTHER || !t->data)
        return vgpt_err_set(err, "%s: tensor '%s': dtype %s is not supported (expected float32, float16 or "
                            "bfloat16)", ck->path, t->name, vgpt_dtype_name(t->dtype));
    size_t n = (size_t)t->numel;
    if (t->contiguous) {
        if (t->dtype == VGPT_DT_F32) memcpy(dst, t->data, n * sizeof *dst);
        else if (t->dtype == VGPT_DT_F16) vgpt_half_to_float_n(t->data, dst, n);
        else vgpt_bf16_to_float_n(t->data, dst, n);
        return 0;
    }
    /* Strided view: walk a row-major counter over the dims. */
    int64_t idx[VGPT_MAX_DIMS] = {0}, off = 0;
    for (size_t i = 0; i < n; i++) {
        dst[i] = elem_f32(t, off);
        for (int d = t->ndim - 1; d >= 0; d--) {
            off += t->stride[d];
            if (++idx[d] < t->shape[d]) break;
            off -= t->stride[d] * t->shape[d];
            idx[d] = 0;
        }
    }
    return 0;
}
