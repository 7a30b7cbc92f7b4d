/* safetensors.c - the index of a .safetensors file (Hugging Face's
 * model.safetensors), read in place from the checkpoint's mmap.
 *
 * The format: a u64 little-endian header length N, N bytes of JSON (an
 * object of name -> {"dtype", "shape", "data_offsets": [begin, end]}, plus
 * an optional "__metadata__" of strings), then the raw little-endian data;
 * offsets are relative to the first byte after the header.  Every tensor
 * is dense row-major.  F32 / F16 / BF16 are read; other dtypes (I64, BOOL,
 * ...) are listed and fail on use, as in the zip reader. */
#include <stdio.h>
#include <string.h>

#include "ckpt_impl.h"
#include "json.h"

#define ST_MAX_HEADER (100u << 20) /* the format's own limit */

int vgpt_safetensors_is(const uint8_t *b, size_t n) {
    if (n < 9) return 0;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | b[i];
    return len >= 2 && len <= ST_MAX_HEADER && b[8] == '{';
}

static const struct { const char *name; vgpt_dtype dt; size_t size; } st_types[] = {
    {"F32", VGPT_DT_F32, 4}, {"F16", VGPT_DT_F16, 2}, {"BF16", VGPT_DT_BF16, 2}, {"F64", VGPT_DT_OTHER, 8},
    {"I64", VGPT_DT_OTHER, 8}, {"I32", VGPT_DT_OTHER, 4}, {"I16", VGPT_DT_OTHER, 2}, {"I8", VGPT_DT_OTHER, 1},
    {"U8", VGPT_DT_OTHER, 1}, {"BOOL", VGPT_DT_OTHER, 1},
};

/* One header entry -> one tensor of the index; data is the region after the header. */
static int add_entry(vgpt_ckpt *ck, const vgpt_json *e, const uint8_t *data, uint64_t data_len, vgpt_err *err) {
    const char *path = vgpt_ckpt_path(ck), *name = e->key;
    const vgpt_json *dt = vgpt_json_get(e, "dtype"), *sh = vgpt_json_get(e, "shape"),
                    *off = vgpt_json_get(e, "data_offsets");
    if (e->type != VGPT_JSON_OBJECT || !dt || dt->type != VGPT_JSON_STRING || !sh || sh->type != VGPT_JSON_ARRAY ||
        !off || off->type != VGPT_JSON_ARRAY || off->n != 2)
        return vgpt_err_set(err, "%s: safetensors header: tensor '%s' is not {\"dtype\": str, \"shape\": [...], "
                            "\"data_offsets\": [begin, end]}", path, name);
    size_t k = 0, ntypes = sizeof st_types / sizeof *st_types;
    while (k < ntypes && strcmp(st_types[k].name, dt->str)) k++;
    if (k == ntypes)
        return vgpt_err_set(err, "%s: safetensors header: tensor '%s' has unknown dtype '%s'", path, name, dt->str);
    if (sh->n > VGPT_MAX_DIMS)
        return vgpt_err_set(err, "%s: safetensors header: tensor '%s' has %zu dims (at most %d)", path, name, sh->n,
                            VGPT_MAX_DIMS);
    int64_t shape[VGPT_MAX_DIMS];
    uint64_t numel = 1, bytes;
    for (size_t d = 0; d < sh->n; d++) {
        const vgpt_json *s = &sh->kids[d];
        if (s->type != VGPT_JSON_NUMBER || !s->is_int || s->i < 0 || __builtin_mul_overflow(numel, (uint64_t)s->i, &numel))
            return vgpt_err_set(err, "%s: safetensors header: tensor '%s': shape[%zu] is not a size", path, name, d);
        shape[d] = s->i;
    }
    const vgpt_json *b = &off->kids[0], *f = &off->kids[1];
    if (b->type != VGPT_JSON_NUMBER || !b->is_int || f->type != VGPT_JSON_NUMBER || !f->is_int || b->i < 0 ||
        f->i < b->i || (uint64_t)f->i > data_len)
        return vgpt_err_set(err, "%s: safetensors header: tensor '%s': data_offsets [%lld, %lld] outside the %llu "
                            "data bytes", path, name, (long long)b->i, (long long)f->i, (unsigned long long)data_len);
    if (__builtin_mul_overflow(numel, (uint64_t)st_types[k].size, &bytes) || bytes != (uint64_t)(f->i - b->i))
        return vgpt_err_set(err, "%s: safetensors header: tensor '%s': %s %llu elements need %llu bytes but "
                            "data_offsets span %lld", path, name, dt->str, (unsigned long long)numel,
                            (unsigned long long)(numel * st_types[k].size), (long long)(f->i - b->i));
    size_t esize = st_types[k].dt == VGPT_DT_OTHER ? 0 : st_types[k].size;
    return vgpt_ckpt_add_dense(ck, name, st_types[k].dt, esize, (int)sh->n, shape, data + b->i, err);
}

int vgpt_safetensors_index(vgpt_ckpt *ck, vgpt_err *err) {
    size_t n;
    const uint8_t *b = vgpt_ckpt_bytes(ck, &n);
    const char *path = vgpt_ckpt_path(ck);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | b[i];
    if (len > n - 8)
        return vgpt_err_set(err, "%s: safetensors header is %llu bytes but the file has only %zu after its length "
                            "field (truncated file?)", path, (unsigned long long)len, n - 8);
    char label[4200];
    snprintf(label, sizeof label, "%s: safetensors header", path);
    vgpt_json_doc *doc;
    if (vgpt_json_parse((const char *)b + 8, (size_t)len, label, &doc, err)) return -1;
    const vgpt_json *root = vgpt_json_root(doc);
    int rc = 0;
    if (root->type != VGPT_JSON_OBJECT)
        rc = vgpt_err_set(err, "%s: safetensors header is a JSON %s, expected an object", path,
                          vgpt_json_type_name(root->type));
    for (size_t i = 0; !rc && i < root->n; i++)
        if (strcmp(root->kids[i].key, "__metadata__"))
            rc = add_entry(ck, &root->kids[i], b + 8 + len, n - 8 - len, err);
    vgpt_json_free(doc);
    return rc ? rc : vgpt_ckpt_finish(ck, err);
}
