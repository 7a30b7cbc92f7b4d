/* ckpt_write.c - torch.save-compatible checkpoint writer (see ckpt_write.h).
 *
 * Layout written, in order: one stored entry per storage ("<top>/data/<k>",
 * data 64-byte aligned), "<top>/data.pkl", "<top>/version" = "3\n",
 * "<top>/byteorder" = "little", the central directory, a zip64 end record +
 * locator (as torch writes them) and the classic end record.
 *
 * The pickle is built at finish from the tensor list; the training wrapper's
 * other keys are pickled when they are set (vgpt_ckpt_writer_set_training),
 * so the caller's config tree need not outlive that call. */
#include "ckpt_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALIGN 64
#define U32_MAX 0xffffffffu

typedef struct buf { uint8_t *p; size_t n, cap; int oom; } buf;

/* A loss saved from the training loop lives on the GPU it was computed on. */
#define LOSS_LOCATION "cuda:0"

typedef struct wentry { char *name; uint64_t off, size; uint32_t crc; } wentry;
typedef struct wstorage { vgpt_dtype dtype; int64_t numel; const char *location; } wstorage;
typedef struct wtensor { char *name; size_t storage; int ndim; int64_t shape[VGPT_MAX_DIMS]; } wtensor;

struct vgpt_ckpt_writer {
    char *path, *tmp;
    FILE *f;
    uint64_t pos;         /* bytes written so far */
    int force_zip64, bare;
    int training;         /* tail holds the training wrapper's other keys */
    buf tail;
    char top[128];        /* archive folder: the file's stem, as torch names it */
    wentry *e;
    size_t ne, cape;
    wstorage *s;
    size_t ns, caps;
    wtensor *t;
    size_t nt, capt;
    uint32_t crc[8][256]; /* slicing-by-8 CRC-32 tables */
};

/* ---- small helpers ---- */

static int grow(void *arr, size_t *cap, size_t need, size_t el) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*(void **)arr, nc * el);
    if (!q) return -1;
    *(void **)arr = q;
    *cap = nc;
    return 0;
}

static void put(buf *b, const void *p, size_t n) {
    if (b->oom || grow(&b->p, &b->cap, b->n + n, 1)) { b->oom = 1; return; }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void put8(buf *b, unsigned v) { uint8_t c = (uint8_t)v; put(b, &c, 1); }
static void put16(buf *b, unsigned v) { put8(b, v & 0xff); put8(b, (v >> 8) & 0xff); }
static void put32(buf *b, uint32_t v) { put16(b, v & 0xffff); put16(b, v >> 16); }
static void put64(buf *b, uint64_t v) { put32(b, (uint32_t)v); put32(b, (uint32_t)(v >> 32)); }

static void crc_init(uint32_t t[8][256]) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        t[0][i] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
}

static uint32_t crc32_of(uint32_t t[8][256], const uint8_t *p, size_t n) {
    uint32_t c = ~0u;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t a = c ^ (uint32_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t b = (uint32_t)(p[4] | p[5] << 8 | p[6] << 16 | (uint32_t)p[7] << 24);
        c = t[7][a & 0xff] ^ t[6][(a >> 8) & 0xff] ^ t[5][(a >> 16) & 0xff] ^ t[4][a >> 24] ^ t[3][b & 0xff] ^
            t[2][(b >> 8) & 0xff] ^ t[1][(b >> 16) & 0xff] ^ t[0][b >> 24];
    }
    while (n--) c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

static int write_raw(vgpt_ckpt_writer *w, const void *p, size_t n, vgpt_err *err) {
    if (n && fwrite(p, 1, n, w->f) != n) return vgpt_err_set(err, "%s: write failed: %s", w->path, strerror(errno));
    w->pos += n;
    return 0;
}

/* ---- zip entries ---- */

static int needs_zip64(const vgpt_ckpt_writer *w, uint64_t off, uint64_t size) {
    return w->force_zip64 || off >= U32_MAX || size >= U32_MAX;
}

/* Local header; its extra field carries zip64 sizes when needed and the
 * "FB" padding torch uses so that the data starts on a 64-byte boundary. */
static void local_header(buf *h, const vgpt_ckpt_writer *w, const char *name, uint64_t size, uint32_t crc) {
    size_t nlen = strlen(name);
    int z64 = needs_zip64(w, w->pos, size);
    uint64_t start = w->pos + 30 + nlen + (z64 ? 20 : 0) + 4;
    unsigned pad = (unsigned)((ALIGN - start % ALIGN) % ALIGN);
    put32(h, 0x04034b50u);
    put16(h, z64 ? 45 : 20);
    put16(h, 0x0800); /* names are UTF-8 */
    put16(h, 0);      /* stored */
    put16(h, 0);      /* time */
    put16(h, 0x21);   /* date: 1980-01-01 */
    put32(h, crc);
    put32(h, z64 ? U32_MAX : (uint32_t)size);
    put32(h, z64 ? U32_MAX : (uint32_t)size);
    put16(h, (unsigned)nlen);
    put16(h, (z64 ? 20 : 0) + 4 + pad);
    put(h, name, nlen);
    if (z64) { put16(h, 1); put16(h, 16); put64(h, size); put64(h, size); }
    put16(h, 0x4246); /* "FB" */
    put16(h, pad);
    for (unsigned i = 0; i < pad; i++) put8(h, 'Z');
}

static int write_entry(vgpt_ckpt_writer *w, const char *rel, const void *data, uint64_t size, vgpt_err *err) {
    if (grow(&w->e, &w->cape, w->ne + 1, sizeof *w->e)) return vgpt_err_set(err, "%s: out of memory", w->path);
    wentry *e = &w->e[w->ne];
    size_t nlen = strlen(w->top) + 1 + strlen(rel);
    if (!(e->name = malloc(nlen + 1))) return vgpt_err_set(err, "%s: out of memory", w->path);
    snprintf(e->name, nlen + 1, "%s/%s", w->top, rel);
    w->ne++;
    e->off = w->pos;
    e->size = size;
    e->crc = crc32_of(w->crc, data, (size_t)size);
    buf h = {0};
    local_header(&h, w, e->name, size, e->crc);
    int rc = h.oom ? vgpt_err_set(err, "%s: out of memory", w->path) : write_raw(w, h.p, h.n, err);
    free(h.p);
    return rc ? rc : write_raw(w, data, (size_t)size, err);
}

static void central_entry(buf *b, const vgpt_ckpt_writer *w, const wentry *e) {
    size_t nlen = strlen(e->name);
    int z64 = needs_zip64(w, e->off, e->size);
    put32(b, 0x02014b50u);
    put16(b, z64 ? 45 : 20); /* made by */
    put16(b, z64 ? 45 : 20); /* needed */
    put16(b, 0x0800);
    put16(b, 0);
    put16(b, 0);
    put16(b, 0x21);
    put32(b, e->crc);
    put32(b, z64 ? U32_MAX : (uint32_t)e->size);
    put32(b, z64 ? U32_MAX : (uint32_t)e->size);
    put16(b, (unsigned)nlen);
    put16(b, z64 ? 28 : 0);
    put16(b, 0); /* comment */
    put16(b, 0); /* disk */
    put16(b, 0); /* internal attributes */
    put32(b, 0); /* external attributes */
    put32(b, z64 ? U32_MAX : (uint32_t)e->off);
    put(b, e->name, nlen);
    if (z64) { put16(b, 1); put16(b, 24); put64(b, e->size); put64(b, e->size); put64(b, e->off); }
}

static void end_records(buf *b, const vgpt_ckpt_writer *w, uint64_t cd_off, uint64_t cd_size) {
    uint64_t eocd64 = cd_off + cd_size;
    int z64 = w->force_zip64 || w->ne >= 0xffff || cd_off >= U32_MAX || cd_size >= U32_MAX;
    put32(b, 0x06064b50u);
    put64(b, 44);
    put16(b, 45);
    put16(b, 45);
    put32(b, 0);
    put32(b, 0);
    put64(b, w->ne);
    put64(b, w->ne);
    put64(b, cd_size);
    put64(b, cd_off);
    put32(b, 0x07064b50u); /* locator */
    put32(b, 0);
    put64(b, eocd64);
    put32(b, 1);
    put32(b, 0x06054b50u);
    put16(b, 0);
    put16(b, 0);
    put16(b, z64 ? 0xffff : (unsigned)w->ne);
    put16(b, z64 ? 0xffff : (unsigned)w->ne);
    put32(b, z64 ? U32_MAX : (uint32_t)cd_size);
    put32(b, z64 ? U32_MAX : (uint32_t)cd_off);
    put16(b, 0);
}

/* ---- the pickle ---- */

static void pk_int(buf *b, int64_t v) {
    if (v >= 0 && v < 256) { put8(b, 'K'); put8(b, (unsigned)v); }
    else if (v >= 0 && v < 65536) { put8(b, 'M'); put16(b, (unsigned)v); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { put8(b, 'J'); put32(b, (uint32_t)(int32_t)v); }
    else { put8(b, 0x8a); put8(b, 8); put64(b, (uint64_t)v); } /* LONG1 */
}

static void pk_strn(buf *b, const char *s, size_t n) {
    put8(b, 'X');
    put32(b, (uint32_t)n);
    put(b, s, n);
}

static void pk_str(buf *b, const char *s) { pk_strn(b, s, strlen(s)); }

/* BINFLOAT: a big-endian IEEE double. */
static void pk_float(buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    put8(b, 'G');
    for (int i = 7; i >= 0; i--) put8(b, (unsigned)(u >> (8 * i)) & 0xff);
}

static void pk_global(buf *b, const char *mod, const char *name) {
    put8(b, 'c');
    put(b, mod, strlen(mod));
    put8(b, '\n');
    put(b, name, strlen(name));
    put8(b, '\n');
}

static void pk_tuple(buf *b, const int64_t *v, int n) {
    if (n == 0) { put8(b, ')'); return; }
    if (n > 3) put8(b, '(');
    for (int i = 0; i < n; i++) pk_int(b, v[i]);
    put8(b, n == 1 ? 0x85 : n == 2 ? 0x86 : n == 3 ? 0x87 : 't');
}

/* _rebuild_tensor_v2(persid(('storage', torch.XStorage, key, location,
 * numel)), 0, shape, stride, requires_grad, OrderedDict()) */
static void pk_rebuild(buf *b, const vgpt_ckpt_writer *w, size_t storage, int ndim, const int64_t *shape,
                       int requires_grad) {
    const wstorage *s = &w->s[storage];
    int64_t stride[VGPT_MAX_DIMS], acc = 1;
    for (int d = ndim - 1; d >= 0; d--) { stride[d] = acc; acc *= shape[d]; }
    char key[32];
    snprintf(key, sizeof key, "%zu", storage);
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    put8(b, '(');
    put8(b, '(');
    pk_str(b, "storage");
    pk_global(b, "torch", s->dtype == VGPT_DT_F16 ? "HalfStorage" : "FloatStorage");
    pk_str(b, key);
    pk_str(b, s->location);
    pk_int(b, s->numel);
    put8(b, 't');
    put8(b, 'Q');
    pk_int(b, 0);
    pk_tuple(b, shape, ndim);
    pk_tuple(b, stride, ndim);
    put8(b, requires_grad ? 0x88 : 0x89); /* NEWTRUE / NEWFALSE */
    pk_global(b, "collections", "OrderedDict");
    put8(b, ')');
    put8(b, 'R');
    put8(b, 't');
    put8(b, 'R');
}

/* OrderedDict(name -> tensor) */
static void pk_state_dict(buf *b, const vgpt_ckpt_writer *w) {
    pk_global(b, "collections", "OrderedDict");
    put8(b, ')');
    put8(b, 'R');
    if (!w->nt) return;
    put8(b, '(');
    for (size_t i = 0; i < w->nt; i++) {
        pk_str(b, w->t[i].name);
        pk_rebuild(b, w, w->t[i].storage, w->t[i].ndim, w->t[i].shape, 0);
    }
    put8(b, 'u');
}

/* A JSON value as json.load would give it (see ckpt_write.h); depth is
 * bounded by the JSON parser. */
static void pk_json(buf *b, const vgpt_json *v) {
    switch (v->type) {
    case VGPT_JSON_NULL: put8(b, 'N'); break;
    case VGPT_JSON_BOOL: put8(b, v->boolean ? 0x88 : 0x89); break;
    case VGPT_JSON_NUMBER: if (v->is_int) pk_int(b, v->i); else pk_float(b, v->num); break;
    case VGPT_JSON_STRING: pk_strn(b, v->str, v->len); break;
    case VGPT_JSON_ARRAY:
    case VGPT_JSON_OBJECT: {
        int obj = v->type == VGPT_JSON_OBJECT;
        put8(b, obj ? '}' : ']');
        if (!v->n) break;
        put8(b, '(');
        for (size_t i = 0; i < v->n; i++) {
            if (obj) pk_strn(b, v->kids[i].key, v->kids[i].key_len);
            pk_json(b, &v->kids[i]);
        }
        put8(b, obj ? 'u' : 'e'); /* SETITEMS / APPENDS */
        break;
    }
    }
}

static void build_pickle(buf *b, const vgpt_ckpt_writer *w) {
    put8(b, 0x80);
    put8(b, 2);
    if (w->bare) pk_state_dict(b, w);
    else {
        put8(b, '}');
        put8(b, '(');
        pk_str(b, "model_state_dict");
        pk_state_dict(b, w);
        if (w->training) put(b, w->tail.p, w->tail.n);
        put8(b, 'u');
    }
    put8(b, '.');
}

/* ---- public API ---- */

static void free_writer(vgpt_ckpt_writer *w) {
    for (size_t i = 0; i < w->ne; i++) free(w->e[i].name);
    for (size_t i = 0; i < w->nt; i++) free(w->t[i].name);
    free(w->e);
    free(w->s);
    free(w->t);
    free(w->tail.p);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* torch names the archive folder after the file's stem. */
static void set_top(vgpt_ckpt_writer *w, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = 0;
    for (; base[n] && base[n] != '.' && n + 1 < sizeof w->top; n++) {
        char ch = base[n];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-';
        w->top[n] = ok ? ch : '_';
    }
    w->top[n] = 0;
    if (!n) snprintf(w->top, sizeof w->top, "archive");
}

int vgpt_ckpt_writer_open(const char *path, int flags, vgpt_ckpt_writer **out, vgpt_err *err) {
    *out = NULL;
    vgpt_ckpt_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path) + 16;
    if (!w || !(w->path = strdup(path)) || !(w->tmp = malloc(n))) {
        if (w) free_writer(w);
        return vgpt_err_set(err, "%s: out of memory", path);
    }
    snprintf(w->tmp, n, "%s.tmp%ld", path, (long)getpid());
    w->force_zip64 = flags & VGPT_CKPT_WRITE_ZIP64;
    w->bare = !!(flags & VGPT_CKPT_WRITE_BARE);
    set_top(w, path);
    crc_init(w->crc);
    if (!(w->f = fopen(w->tmp, "wb"))) {
        int e = errno;
        free_writer(w);
        return vgpt_err_set(err, "%s: cannot create: %s", path, strerror(e));
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);
    *out = w;
    return 0;
}

static const wtensor *find_tensor(const vgpt_ckpt_writer *w, const char *name) {
    for (size_t i = 0; i < w->nt; i++)
        if (!strcmp(w->t[i].name, name)) return &w->t[i];
    return NULL;
}

static wtensor *new_tensor(vgpt_ckpt_writer *w, const char *name, vgpt_err *err) {
    if (find_tensor(w, name)) {
        vgpt_err_set(err, "%s: tensor '%s' added twice", w->path, name);
        return NULL;
    }
    if (grow(&w->t, &w->capt, w->nt + 1, sizeof *w->t)) {
        vgpt_err_set(err, "%s: out of memory", w->path);
        return NULL;
    }
    wtensor *t = &w->t[w->nt];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) {
        vgpt_err_set(err, "%s: out of memory", w->path);
        return NULL;
    }
    w->nt++;
    return t;
}

/* Appends storage w->ns and streams its bytes to "data/<index>". */
static int add_storage(vgpt_ckpt_writer *w, vgpt_dtype dtype, int64_t numel, const char *location, const void *data,
                       vgpt_err *err) {
    if (grow(&w->s, &w->caps, w->ns + 1, sizeof *w->s)) return vgpt_err_set(err, "%s: out of memory", w->path);
    char rel[40];
    snprintf(rel, sizeof rel, "data/%zu", w->ns);
    w->s[w->ns++] = (wstorage){dtype, numel, location};
    return write_entry(w, rel, data, (uint64_t)numel * vgpt_dtype_size(dtype), err);
}

int vgpt_ckpt_writer_add(vgpt_ckpt_writer *w, const char *name, vgpt_dtype dtype, int ndim, const int64_t *shape,
                         const void *data, vgpt_err *err) {
    if (dtype != VGPT_DT_F32 && dtype != VGPT_DT_F16)
        return vgpt_err_set(err, "%s: tensor '%s': writer supports float32 and float16, got %s", w->path, name,
                            vgpt_dtype_name(dtype));
    if (ndim < 0 || ndim > VGPT_MAX_DIMS)
        return vgpt_err_set(err, "%s: tensor '%s': %d dims, expected 0..%d", w->path, name, ndim, VGPT_MAX_DIMS);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (shape[d] && numel > INT64_MAX / 8 / shape[d]))
            return vgpt_err_set(err, "%s: tensor '%s': bad shape", w->path, name);
        numel *= shape[d];
    }
    if (grow(&w->s, &w->caps, w->ns + 1, sizeof *w->s)) /* so that t never names a missing storage */
        return vgpt_err_set(err, "%s: out of memory", w->path);
    wtensor *t = new_tensor(w, name, err);
    if (!t) return -1;
    t->storage = w->ns;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    return add_storage(w, dtype, numel, "cpu", data, err);
}

int vgpt_ckpt_writer_tie(vgpt_ckpt_writer *w, const char *name, const char *existing, vgpt_err *err) {
    const wtensor *src = find_tensor(w, existing);
    if (!src) return vgpt_err_set(err, "%s: cannot tie '%s' to '%s': no such tensor", w->path, name, existing);
    size_t i = (size_t)(src - w->t);
    wtensor *t = new_tensor(w, name, err); /* may move w->t */
    if (!t) return -1;
    const wtensor *s = &w->t[i];
    t->storage = s->storage;
    t->ndim = s->ndim;
    memcpy(t->shape, s->shape, sizeof t->shape);
    return 0;
}

int vgpt_ckpt_writer_set_training(vgpt_ckpt_writer *w, const vgpt_ckpt_training *t, vgpt_err *err) {
    if (w->bare) return vgpt_err_set(err, "%s: a bare state dict has no training wrapper", w->path);
    if (w->training) return vgpt_err_set(err, "%s: training wrapper set twice", w->path);
    if (!t->config || t->config->type != VGPT_JSON_OBJECT)
        return vgpt_err_set(err, "%s: training wrapper: config must be a JSON object, got %s", w->path,
                            t->config ? vgpt_json_type_name(t->config->type) : "nothing");
    if (!t->model_class) return vgpt_err_set(err, "%s: training wrapper: no model_class", w->path);
    size_t loss_storage = w->ns;
    if (add_storage(w, VGPT_DT_F32, 1, LOSS_LOCATION, &t->loss, err)) return -1;
    buf *b = &w->tail;
    pk_str(b, "config");
    pk_json(b, t->config);
    pk_str(b, "epoch");
    pk_int(b, t->epoch);
    pk_str(b, "loss");
    pk_rebuild(b, w, loss_storage, 0, NULL, 1);
    pk_str(b, "model_class");
    pk_str(b, t->model_class);
    if (b->oom) return vgpt_err_set(err, "%s: out of memory", w->path);
    w->training = 1;
    return 0;
}

static int finish_archive(vgpt_ckpt_writer *w, vgpt_err *err) {
    buf b = {0};
    build_pickle(&b, w);
    int rc = b.oom ? vgpt_err_set(err, "%s: out of memory", w->path) : write_entry(w, "data.pkl", b.p, b.n, err);
    free(b.p);
    if (rc || write_entry(w, "version", "3\n", 2, err) || write_entry(w, "byteorder", "little", 6, err)) return -1;
    uint64_t cd_off = w->pos;
    buf cd = {0};
    for (size_t i = 0; i < w->ne; i++) central_entry(&cd, w, &w->e[i]);
    uint64_t cd_size = cd.n;
    end_records(&cd, w, cd_off, cd_size);
    rc = cd.oom ? vgpt_err_set(err, "%s: out of memory", w->path) : write_raw(w, cd.p, cd.n, err);
    free(cd.p);
    return rc;
}

int vgpt_ckpt_writer_finish(vgpt_ckpt_writer *w, vgpt_err *err) {
    int rc = finish_archive(w, err);
    if (fclose(w->f) && !rc) rc = vgpt_err_set(err, "%s: write failed: %s", w->path, strerror(errno));
    w->f = NULL;
    if (!rc && rename(w->tmp, w->path))
        rc = vgpt_err_set(err, "%s: cannot rename %s into place: %s", w->path, w->tmp, strerror(errno));
    if (rc) unlink(w->tmp);
    free_writer(w);
    return rc;
}

void vgpt_ckpt_writer_abort(vgpt_ckpt_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    unlink(w->tmp);
    free_writer(w);
}
