/* test_ckpt.c - checkpoint reader, writer, pickle machine and fp16 helpers.
 *
 *   test_ckpt            self-contained: C writer -> C reader round trip,
 *                        crafted bad inputs, truncations, 2000-flip fuzz
 *   test_ckpt CASEDIR    also checks the torch.save cases made by
 *                        tests/ckpt_cases.py (and the vgpt-mkckpt files
 *                        tests/ckpt.sh lists there) and leaves cwriter*.pth
 *                        with their manifests and <stem>.wrapper.json for
 *                        its torch.load check (tests/ckpt.sh does this) */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ckpt.h"
#include "ckpt_write.h"
#include "half.h"
#include "json.h"
#include "pickle.h"
#include "zipread.h"

typedef struct { uint64_t s; } rng;
static uint64_t rnd(rng *r) {
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

static int spit(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int one_line(const vgpt_err *e) { return e->msg[0] && !strchr(e->msg, '\n'); }

static int starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

/* ---- fp16 / bf16 ---- */

static void test_half(check_state *st) {
    int bad_rt = 0, bad_bulk = 0;
    uint16_t all[65536];
    float wide[65536];
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    vgpt_half_to_float_n(all, wide, 65536);
    for (uint32_t i = 0; i < 65536; i++) {
        float f = vgpt_half_to_float((uint16_t)i);
        if (!isnan(f) && vgpt_float_to_half(f) != i) bad_rt++;
        if (!isnan(f) && vgpt_float_to_bits(wide[i]) != vgpt_float_to_bits(f)) bad_bulk++;
    }
    CHECK(st, bad_rt == 0, "half: all 63488 non-NaN fp16 values survive fp16->fp32->fp16 (%d bad)", bad_rt);
    CHECK(st, bad_bulk == 0, "half: bulk converter equals scalar converter (%d bad)", bad_bulk);
    CHECK(st, vgpt_half_to_float(0x3c00) == 1.0f && vgpt_half_to_float(0x7bff) == 65504.0f &&
              vgpt_half_to_float(0x0001) == 0x1p-24f && vgpt_half_to_float(0xfc00) == -INFINITY,
          "half: 1, 65504, smallest subnormal, -inf decode");
    CHECK(st, vgpt_float_to_half(65519.0f) == 0x7bff && vgpt_float_to_half(65520.0f) == 0x7c00 &&
              vgpt_float_to_half(1.0f + 0x1p-11f) == 0x3c00 && vgpt_float_to_half(1.0f + 3 * 0x1p-11f) == 0x3c02 &&
              vgpt_float_to_half(0x1p-25f) == 0 && vgpt_float_to_half(0x1.8p-25f) == 1,
          "half: round-to-nearest-even, overflow and subnormal rounding");
    CHECK(st, vgpt_bf16_to_float(0x3f80) == 1.0f && vgpt_float_to_bf16(1.0f + 0x1p-8f) == 0x3f80 &&
              vgpt_float_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "bf16: decode and round-to-nearest-even");
}

/* ---- pickle machine on crafted streams ---- */

static int parse_err(const uint8_t *p, size_t n, vgpt_err *e) {
    vgpt_pickle *pk = NULL;
    const vgpt_pkval *v;
    int rc = vgpt_pickle_parse(p, n, "x.pth", &pk, &v, e);
    vgpt_pickle_free(pk);
    return rc;
}

static void test_pickle(check_state *st) {
    vgpt_err e = {{0}};
    static const uint8_t unknown[] = {0x80, 2, '}', 0xfe};
    CHECK(st, parse_err(unknown, sizeof unknown, &e) && strstr(e.msg, "opcode 0xfe at offset 3"),
          "pickle: unknown opcode named with offset: %s", e.msg);
    static const uint8_t under[] = {0x80, 2, 's', '.'};
    CHECK(st, parse_err(under, sizeof under, &e) && strstr(e.msg, "underflow"), "pickle: stack underflow: %s", e.msg);
    static const uint8_t longstr[] = {0x80, 2, 'X', 0xff, 0xff, 0xff, 0x7f, 'a', '.'};
    CHECK(st, parse_err(longstr, sizeof longstr, &e) && strstr(e.msg, "past the end"),
          "pickle: string length beyond data: %s", e.msg);
    static const uint8_t bigmemo[] = {0x80, 2, 'N', 'r', 0xff, 0xff, 0xff, 0xff, '.'};
    CHECK(st, parse_err(bigmemo, sizeof bigmemo, &e) && strstr(e.msg, "memo"), "pickle: huge memo index: %s", e.msg);
    static const uint8_t badget[] = {0x80, 2, 'h', 9, '.'};
    CHECK(st, parse_err(badget, sizeof badget, &e) && strstr(e.msg, "memo"), "pickle: unset memo key: %s", e.msg);
    static const uint8_t nostop[] = {0x80, 2, '}'};
    CHECK(st, parse_err(nostop, sizeof nostop, &e) && strstr(e.msg, "no STOP"), "pickle: missing STOP: %s", e.msg);
    size_t n = 100000;
    uint8_t *marks = malloc(n);
    memset(marks, '(', n);
    CHECK(st, parse_err(marks, n, &e) && strstr(e.msg, "MARK"), "pickle: 100000 nested MARKs bounded: %s", e.msg);
    /* a list appended to itself through the memo, a REDUCE of an unknown
     * global and a 10-byte LONG1 must parse without executing anything */
    static const uint8_t odd[] = {0x80, 2, ']', 'q', 0, 'h', 0, 'a', '0', 'c', 'o', 's', '\n', 's', 'y', 's', 't',
                                  'e', 'm', '\n', 'X', 2, 0, 0, 0, 'l', 's', 0x85, 'R', '0', 0x8a, 10, 1, 2, 3, 4, 5,
                                  6, 7, 8, 9, 10, 'h', 0, '.'};
    vgpt_pickle *pk = NULL;
    const vgpt_pkval *v = NULL;
    int rc = vgpt_pickle_parse(odd, sizeof odd, "x.pth", &pk, &v, &e);
    CHECK(st, rc == 0 && v->type == VGPT_PK_LIST && v->n == 1 && v->items[0] == v,
          "pickle: self-referencing list, os.system REDUCE stays opaque (%s)", rc ? e.msg : "ok");
    vgpt_pickle_free(pk);
    free(marks);
}

/* ---- the C writer ---- */

typedef struct sample {
    const char *name;
    vgpt_dtype dt;
    int ndim;
    int64_t shape[5];
    const char *tie; /* tie to this earlier sample instead of new data */
} sample;

static const sample samples[] = {
    {"w.f32", VGPT_DT_F32, 2, {3, 5}, NULL},
    {"w.f16", VGPT_DT_F16, 1, {12}, NULL},
    {"w.tied", VGPT_DT_F32, 2, {3, 5}, "w.f32"},
    {"w.scalar", VGPT_DT_F32, 0, {0}, NULL},
    {"w.empty", VGPT_DT_F32, 2, {0, 4}, NULL},
    {"w.5d", VGPT_DT_F32, 5, {2, 1, 3, 1, 2}, NULL},
    {"w.big", VGPT_DT_F32, 2, {1000, 70}, NULL},
    {"w.f16mat", VGPT_DT_F16, 2, {4, 6}, NULL},
    {"w.f16tied", VGPT_DT_F16, 2, {4, 6}, "w.f16mat"},
};
#define N_SAMPLES (sizeof samples / sizeof *samples)

static int64_t numel_of(const sample *s) {
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++) n *= s->shape[d];
    return n;
}

static size_t source_of(size_t i) {
    while (samples[i].tie)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(samples[j].name, samples[i].tie)) { i = j; break; }
    return i;
}

/* Deterministic contents of sample k: fp32 values, and their half bits. */
static void sample_data(size_t k, float *f32, uint16_t *f16) {
    static const float special[12] = {0.0f, -0.0f, 1.0f, 65504.0f, -65504.0f, 6e-8f, INFINITY, -INFINITY,
                                      NAN, 0.333f, 1e-6f, 70000.0f};
    rng r = {0x9e3779b97f4a7c15ull * (k + 1)};
    int64_t n = numel_of(&samples[k]);
    for (int64_t i = 0; i < n; i++) {
        float v = (float)((int64_t)(rnd(&r) % 2000001) - 1000000) / 250000.0f;
        if (k == 1) v = special[i % 12];
        f32[i] = v;
        if (samples[k].dt == VGPT_DT_F16) {
            f16[i] = vgpt_float_to_half(v);
            f32[i] = vgpt_half_to_float(f16[i]); /* what a reader must give back */
        }
    }
}

/* The training wrapper of the C writer's files: every kind of JSON value
 * the writer pickles, edge numbers, a repeated key and escapes included;
 * ckpt_cases.py compares torch.load's 'config' with json.load of the same
 * text, types and key order included. */
static const char train_config[] =
    "{\"vocab_size\": 50258, \"context_length\": 256, \"drop_rate\": 0.1, \"qkv_bias\": true, \"off\": false,"
    " \"none\": null, \"cross_attention_pos\": [3, 6, 9], \"vision_encoder_type\": \"torchvision_vit_b_16\","
    " \"learning_rate\": 1e-4, \"huge\": 1e300, \"denormal\": 5e-324, \"neg\": -123456789, \"k2\": 65535,"
    " \"k4\": 65536, \"i32min\": -2147483648, \"i64max\": 9223372036854775807,"
    " \"i64min\": -9223372036854775808, \"negzero\": -0.0, \"intzero\": -0, \"exp\": 1e5, \"dup\": 1,"
    " \"utf8\": \"caf\\u00e9 \\u2603 \\ud83d\\ude00 \\\"q\\\" \\\\\", \"nul\": \"a\\u0000b\", \"\\u00fcber\": 1,"
    " \"nested\": {\"empty_obj\": {}, \"empty_list\": [], \"list\": [1, 2.5, \"x\", [null, true]]}, \"dup\": 2}";
#define TRAIN_EPOCH 123456789012LL /* needs an 8-byte LONG1 */
#define TRAIN_LOSS 2.3f

typedef enum { WRAP_MINIMAL, WRAP_TRAINING, WRAP_BARE } wrap_kind;

static int set_training(vgpt_ckpt_writer *w, vgpt_err *e) {
    vgpt_json_doc *doc;
    if (vgpt_json_parse(train_config, strlen(train_config), "train_config", &doc, e)) return -1;
    vgpt_ckpt_training t = {vgpt_json_root(doc), TRAIN_EPOCH, TRAIN_LOSS, "GPTModal"};
    int rc = vgpt_ckpt_writer_set_training(w, &t, e);
    vgpt_json_free(doc); /* the writer keeps no pointer into it */
    return rc;
}

static int write_samples(const char *path, int flags, wrap_kind wrap, vgpt_err *e) {
    vgpt_ckpt_writer *w;
    if (vgpt_ckpt_writer_open(path, flags | (wrap == WRAP_BARE ? VGPT_CKPT_WRITE_BARE : 0), &w, e)) return -1;
    for (size_t i = 0; i < N_SAMPLES; i++) {
        const sample *s = &samples[i];
        if (s->tie) {
            if (vgpt_ckpt_writer_tie(w, s->name, s->tie, e)) goto bad;
            continue;
        }
        size_t n = (size_t)numel_of(s);
        float *f = malloc((n + 1) * sizeof *f);
        uint16_t *h = malloc((n + 1) * sizeof *h);
        sample_data(i, f, h);
        int rc = vgpt_ckpt_writer_add(w, s->name, s->dt, s->ndim, s->shape, s->dt == VGPT_DT_F16 ? (void *)h : (void *)f, e);
        free(f);
        free(h);
        if (rc) goto bad;
    }
    if (wrap == WRAP_TRAINING && set_training(w, e)) goto bad;
    return vgpt_ckpt_writer_finish(w, e);
bad:
    vgpt_ckpt_writer_abort(w);
    return -1;
}

static void csv(FILE *f, const int64_t *v, int n) {
    if (!n) fputs(" -", f);
    for (int d = 0; d < n; d++) fprintf(f, "%c%lld", d ? ',' : ' ', (long long)v[d]);
}

/* Same manifest format as ckpt_cases.py writes for torch's files. */
static int write_manifest(const char *dir, const char *stem) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.manifest", dir, stem);
    FILE *m = fopen(path, "w");
    if (!m) return -1;
    fprintf(m, "count %zu\n", N_SAMPLES);
    for (size_t i = 0; i < N_SAMPLES; i++) {
        const sample *s = &samples[i];
        size_t k = source_of(i), n = (size_t)numel_of(s);
        float *f = malloc((n + 1) * sizeof *f);
        uint16_t *h = malloc((n + 1) * sizeof *h);
        sample_data(k, f, h);
        snprintf(path, sizeof path, "%s/%s.%zu.f32", dir, stem, i);
        int rc = spit(path, f, n * sizeof *f);
        free(f);
        free(h);
        if (rc) { fclose(m); return -1; }
        int64_t stride[5], acc = 1;
        for (int d = s->ndim - 1; d >= 0; d--) { stride[d] = acc; acc *= s->shape[d]; }
        fprintf(m, "%s %s 1 0 %zu %s.%zu.f32", s->name, vgpt_dtype_name(s->dt), k, stem, i);
        csv(m, s->shape, s->ndim);
        csv(m, stride, s->ndim);
        fputc('\n', m);
    }
    return fclose(m);
}

/* <stem>.wrapper.json: what ckpt_cases.py verify-writer must find around
 * the state dict. */
static int write_wrapper_json(const char *dir, const char *stem, wrap_kind wrap) {
    static const char *const names[] = {"minimal", "training", "bare"};
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.wrapper.json", dir, stem);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"wrapper\": \"%s\"", names[wrap]);
    if (wrap == WRAP_TRAINING)
        fprintf(f, ", \"epoch\": %lld, \"loss\": %.9g, \"model_class\": \"GPTModal\", \"config\": %s",
                TRAIN_EPOCH, (double)TRAIN_LOSS, train_config);
    fputs("}\n", f);
    return fclose(f);
}

/* ---- checking a checkpoint against a manifest ---- */

typedef struct mline {
    char name[128], dtype[16], raw[128];
    int contig, ndim;
    long long off;
    int group;
    int64_t shape[VGPT_MAX_DIMS], stride[VGPT_MAX_DIMS];
} mline;

static int parse_csv(const char *s, int64_t *out) {
    if (!strcmp(s, "-")) return 0;
    int n = 0;
    for (char *end; *s && n < VGPT_MAX_DIMS; s = *end ? end + 1 : end) out[n++] = strtoll(s, &end, 10);
    return n;
}

static int read_manifest(const char *path, mline **out, size_t *count, size_t *expect) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024], shape[256], stride[256];
    size_t n = 0, cap = 0;
    mline *m = NULL;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "count %zu", expect) == 1) continue;
        if (n == cap) m = realloc(m, (cap = cap ? 2 * cap : 16) * sizeof *m);
        mline *x = &m[n];
        if (sscanf(line, "%127s %15s %d %lld %d %127s %255s %255s", x->name, x->dtype, &x->contig, &x->off,
                   &x->group, x->raw, shape, stride) != 8)
            continue;
        x->ndim = parse_csv(shape, x->shape);
        parse_csv(stride, x->stride);
        n++;
    }
    fclose(f);
    *out = m;
    *count = n;
    return 0;
}

static int same_shape(const vgpt_tensor *t, const mline *m) {
    if (t->ndim != m->ndim) return 0;
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] != m->shape[d] || t->stride[d] != m->stride[d]) return 0;
    return 1;
}

/* Values must equal the manifest's raw fp32 file bit for bit. */
static int same_values(const vgpt_ckpt *ck, const vgpt_tensor *t, const char *dir, const mline *m) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, m->raw);
    size_t len;
    uint8_t *want = check_slurp(path, &len);
    float *got = malloc((size_t)t->numel * sizeof *got + 1);
    vgpt_err e;
    int ok = want && got && len == (size_t)t->numel * 4 && vgpt_ckpt_read_f32(ck, t, got, &e) == 0 &&
             memcmp(want, got, len) == 0;
    free(want);
    free(got);
    return ok;
}

/* Storage sharing: same group <=> same storage key, and data pointers one
 * storage apart by exactly the difference of the storage offsets. */
static int ties_ok(const vgpt_ckpt *ck, const mline *m, size_t n) {
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            const vgpt_tensor *a = vgpt_ckpt_find(ck, m[i].name), *b = vgpt_ckpt_find(ck, m[j].name);
            if (!a || !b) return 0;
            if ((m[i].group == m[j].group) != !strcmp(a->storage_key, b->storage_key)) return 0;
            size_t es = vgpt_dtype_size(a->dtype);
            if (m[i].group == m[j].group && es && a->numel && b->numel &&
                (const char *)a->data - (const char *)b->data != (m[i].off - m[j].off) * (long long)es)
                return 0;
        }
    return 1;
}

static void check_manifest(check_state *st, const char *dir, const char *stem, int torch_made) {
    char path[1024], mpath[1024];
    snprintf(path, sizeof path, "%s/%s.pth", dir, stem);
    snprintf(mpath, sizeof mpath, "%s/%s.manifest", dir, stem);
    mline *m = NULL;
    size_t n = 0, expect = 0;
    vgpt_ckpt *ck = NULL;
    vgpt_err e = {{0}};
    int rm = read_manifest(mpath, &m, &n, &expect);
    CHECK(st, rm == 0 && n > 0, "%s: manifest readable", stem);
    int rc = vgpt_ckpt_open(path, &ck, &e);
    CHECK(st, rc == 0, "%s: opens (%s)", stem, rc ? e.msg : "ok");
    if (rc || rm) { free(m); return; }
    CHECK(st, vgpt_ckpt_count(ck) == expect, "%s: %zu tensors listed, expected %zu", stem, vgpt_ckpt_count(ck), expect);
    int bad_meta = 0, bad_vals = 0, bad_align = 0, n_vals = 0;
    for (size_t i = 0; i < n; i++) {
        const vgpt_tensor *t = vgpt_ckpt_find(ck, m[i].name);
        if (!t || strcmp(vgpt_dtype_name(t->dtype), m[i].dtype) || !same_shape(t, &m[i]) || t->contiguous != m[i].contig) {
            printf("  %s: metadata differs\n", m[i].name);
            bad_meta++;
            continue;
        }
        if (t->dtype == VGPT_DT_OTHER) continue;
        n_vals++;
        if (!same_values(ck, t, dir, &m[i])) { printf("  %s: values differ\n", m[i].name); bad_vals++; }
        uintptr_t start = (uintptr_t)t->data - (uintptr_t)(m[i].off * (long long)vgpt_dtype_size(t->dtype));
        if (torch_made && t->numel && start % 64) bad_align++;
    }
    CHECK(st, bad_meta == 0, "%s: dtype, shape, stride, contiguity of %zu tensors as the manifest says (%d bad)", stem, n, bad_meta);
    CHECK(st, bad_vals == 0, "%s: values of %d tensors bit-exact vs the manifest's fp32 values (%d bad)", stem, n_vals, bad_vals);
    CHECK(st, bad_align == 0, "%s: storages used in place, 64-byte aligned (%d bad)", stem, bad_align);
    CHECK(st, ties_ok(ck, m, n), "%s: shared storages (ties, views with storage offsets) reported correctly", stem);
    const vgpt_tensor *other = NULL;
    for (size_t i = 0; i < vgpt_ckpt_count(ck); i++)
        if (vgpt_ckpt_at(ck, i)->dtype == VGPT_DT_OTHER) other = vgpt_ckpt_at(ck, i);
    if (other) {
        float tmp[64];
        int r = other->numel <= 64 ? vgpt_ckpt_read_f32(ck, other, tmp, &e) : -1;
        CHECK(st, r && strstr(e.msg, other->name) && strstr(e.msg, "not supported"),
              "%s: reading a non-float tensor fails clearly: %s", stem, e.msg);
    }
    vgpt_ckpt_free(ck);
    free(m);
}

/* ---- bad inputs ---- */

static void expect_open_error(check_state *st, const char *path, const char *sub, const char *what) {
    vgpt_ckpt *ck = NULL;
    vgpt_err e = {{0}};
    int rc = vgpt_ckpt_open(path, &ck, &e);
    CHECK(st, rc == -1 && !ck && one_line(&e) && starts_with(e.msg, path) && strstr(e.msg, sub),
          "%s -> error naming the file: %s", what, e.msg);
    vgpt_ckpt_free(ck);
}

/* Every prefix must fail cleanly (the buffers are exact-size mallocs, so
 * ASan flags any read past the end). */
static void test_truncations(check_state *st, const uint8_t *blob, size_t len, const char *what) {
    int bad = 0, tried = 0;
    vgpt_err e = {{0}};
    for (size_t k = 0; k < 200; k++) {
        size_t cut = k < 100 ? len * k / 100 : len - (k - 99); /* spread, then the last 101 bytes */
        if (cut >= len) continue;
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, blob, cut);
        vgpt_ckpt *ck = NULL;
        tried++;
        if (vgpt_ckpt_open_mem(p, cut, "cut.pth", &ck, &e) != -1 || !one_line(&e) || !starts_with(e.msg, "cut.pth: "))
            bad++;
        vgpt_ckpt_free(ck);
        free(p);
    }
    CHECK(st, bad == 0, "%s: %d truncations each fail with a one-line error (%d bad)", what, tried, bad);
}

/* Random byte flips: open must never crash; when it succeeds every tensor
 * must be readable. */
static void test_fuzz(check_state *st, const uint8_t *blob, size_t len, const char *what, int iters) {
    rng r = {0x1234567ull + len};
    int opened = 0, failed = 0, bad_msg = 0;
    for (int it = 0; it < iters; it++) {
        uint8_t *p = malloc(len);
        memcpy(p, blob, len);
        int flips = 1 + (int)(rnd(&r) % 8);
        for (int k = 0; k < flips; k++) {
            size_t tail = len < 4096 ? len : 4096; /* pickle + directory live near the end */
            size_t at = (rnd(&r) & 1) ? len - 1 - rnd(&r) % tail : rnd(&r) % len;
            p[at] = (rnd(&r) & 3) ? (uint8_t)rnd(&r) : (uint8_t)(p[at] ^ (1u << (rnd(&r) % 8)));
        }
        vgpt_ckpt *ck = NULL;
        vgpt_err e = {{0}};
        if (vgpt_ckpt_open_mem(p, len, "fuzz.pth", &ck, &e) == 0) {
            opened++;
            for (size_t i = 0; i < vgpt_ckpt_count(ck); i++) {
                const vgpt_tensor *t = vgpt_ckpt_at(ck, i);
                if (t->numel > (1 << 22)) continue; /* stride-0 views can claim huge sizes */
                float *dst = malloc((size_t)t->numel * sizeof *dst + 1);
                vgpt_ckpt_read_f32(ck, t, dst, &e);
                free(dst);
            }
        } else {
            failed++;
            if (!one_line(&e) || !starts_with(e.msg, "fuzz.pth: ")) bad_msg++;
        }
        vgpt_ckpt_free(ck);
        free(p);
    }
    CHECK(st, opened + failed == iters && bad_msg == 0,
          "%s: %d random corruptions, no crash (%d opened, %d refused, %d bad messages)", what, iters, opened, failed, bad_msg);
}

/* Mutations of torch's data.pkl fed straight to the pickle machine. */
static void test_pickle_fuzz(check_state *st, const uint8_t *blob, size_t len) {
    vgpt_zip z;
    vgpt_err e = {{0}};
    const vgpt_zip_entry *ent = NULL;
    const uint8_t *pkl = NULL;
    int rc = vgpt_zip_open(&z, blob, len, "wrapped_fp32.pth", &e);
    if (!rc) ent = vgpt_zip_find(&z, "wrapped_fp32/data.pkl", 21);
    CHECK(st, ent && vgpt_zip_data(&z, ent, &pkl, "wrapped_fp32.pth", &e) == 0, "zip: data.pkl found (%s)", e.msg);
    if (!pkl) { if (!rc) vgpt_zip_free(&z); return; }
    size_t n = (size_t)ent->size;
    rng r = {42};
    int ok = 0, refused = 0, bad_msg = 0;
    for (int it = 0; it < 5000; it++) {
        size_t m = (rnd(&r) % 5 == 0) ? 1 + rnd(&r) % n : n; /* sometimes truncated too */
        uint8_t *p = malloc(m);
        memcpy(p, pkl, m);
        for (int k = 1 + (int)(rnd(&r) % 4); k > 0; k--) p[rnd(&r) % m] = (uint8_t)rnd(&r);
        vgpt_pickle *pk = NULL;
        const vgpt_pkval *v;
        if (vgpt_pickle_parse(p, m, "f.pth", &pk, &v, &e) == 0) ok++;
        else if (refused++, !one_line(&e) || !starts_with(e.msg, "f.pth: data.pkl: ")) bad_msg++;
        vgpt_pickle_free(pk);
        free(p);
    }
    vgpt_zip_free(&z);
    CHECK(st, ok + refused == 5000 && bad_msg == 0, "pickle: 5000 mutated data.pkl parse or fail cleanly (%d parsed, "
          "%d refused, %d bad messages)", ok, refused, bad_msg);
}

static void test_bad_inputs(check_state *st, const char *dir) {
    char path[1024];
    expect_open_error(st, dir, "a folder without model.safetensors or pytorch_model.bin", "directory");
    snprintf(path, sizeof path, "%s/does-not-exist.pth", dir);
    expect_open_error(st, path, "cannot open", "missing file");
    snprintf(path, sizeof path, "%s/c_empty.pth", dir);
    spit(path, "", 0);
    expect_open_error(st, path, "empty file", "empty file");
    snprintf(path, sizeof path, "%s/c_text.pth", dir);
    spit(path, "just text\n", 10);
    expect_open_error(st, path, "not a checkpoint vgpt reads", "text file");
    static const uint8_t legacy[] = {0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
    snprintf(path, sizeof path, "%s/c_legacy.pth", dir);
    spit(path, legacy, sizeof legacy);
    expect_open_error(st, path, "legacy torch.save protocol version: data.pkl: truncated pickle", "legacy torch.save magic alone");
    static const uint8_t eocd_only[22] = {'P', 'K', 5, 6};
    snprintf(path, sizeof path, "%s/c_emptyzip.pth", dir);
    spit(path, eocd_only, sizeof eocd_only);
    expect_open_error(st, path, "data.pkl", "empty zip archive");
}

/* ---- the writer ---- */

/* The wrapper's other keys and the loss tensor are no state-dict entries. */
static void check_ignored(check_state *st, const char *path, const char *stem) {
    vgpt_ckpt *ck = NULL;
    vgpt_err e = {{0}};
    int rc = vgpt_ckpt_open(path, &ck, &e);
    int hidden = !rc && !vgpt_ckpt_find(ck, "loss") && !vgpt_ckpt_find(ck, "config") &&
                 !vgpt_ckpt_find(ck, "model_state_dict") && vgpt_ckpt_count(ck) == N_SAMPLES;
    CHECK(st, hidden, "writer: %s: reader lists the %zu state-dict tensors only (%s)", stem, N_SAMPLES,
          rc ? e.msg : "ok");
    vgpt_ckpt_free(ck);
}

static void test_writer_files(check_state *st, const char *dir) {
    static const struct { const char *stem; int flags; wrap_kind wrap; } files[] = {
        {"cwriter", 0, WRAP_MINIMAL},
        {"cwriter64", VGPT_CKPT_WRITE_ZIP64, WRAP_TRAINING},
        {"cwriter_bare", 0, WRAP_BARE},
        {"cwriter_train", 0, WRAP_TRAINING},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[1024];
        vgpt_err e = {{0}};
        const char *stem = files[i].stem;
        snprintf(path, sizeof path, "%s/%s.pth", dir, stem);
        int rc = write_samples(path, files[i].flags, files[i].wrap, &e);
        CHECK(st, rc == 0, "writer: %s written (%s)", stem, rc ? e.msg : "ok");
        CHECK(st, write_manifest(dir, stem) == 0 && write_wrapper_json(dir, stem, files[i].wrap) == 0,
              "writer: %s manifest and wrapper.json written", stem);
        if (rc) continue;
        check_manifest(st, dir, stem, 1);
        check_ignored(st, path, stem);
    }
}

/* Misuse of the API fails with a message naming the file. */
static void test_writer_errors(check_state *st, const char *dir) {
    char path[1024];
    vgpt_err e = {{0}};
    vgpt_ckpt_writer *w;
    snprintf(path, sizeof path, "%s/c_dup.pth", dir);
    int64_t two = 2;
    float v[2] = {1, 2};
    int rc = vgpt_ckpt_writer_open(path, 0, &w, &e);
    int r1 = rc ? -1 : vgpt_ckpt_writer_add(w, "a", VGPT_DT_F32, 1, &two, v, &e);
    int r2 = rc ? 0 : vgpt_ckpt_writer_add(w, "a", VGPT_DT_F32, 1, &two, v, &e);
    CHECK(st, r1 == 0 && r2 == -1 && strstr(e.msg, "added twice"), "writer: duplicate name refused: %s", e.msg);
    int r3 = rc ? 0 : vgpt_ckpt_writer_tie(w, "b", "nope", &e);
    CHECK(st, r3 == -1 && strstr(e.msg, "no such tensor"), "writer: tie to unknown tensor refused: %s", e.msg);
    vgpt_json_doc *list = NULL;
    int r4 = vgpt_json_parse("[1]", 3, "list", &list, &e);
    vgpt_ckpt_training notobj = {vgpt_json_root(list), 1, 1.0f, "GPTModal"};
    r4 = rc || r4 ? 0 : vgpt_ckpt_writer_set_training(w, &notobj, &e);
    vgpt_json_free(list);
    CHECK(st, r4 == -1 && strstr(e.msg, path) && strstr(e.msg, "config must be a JSON object, got array"),
          "writer: training wrapper with a non-object config refused: %s", e.msg);
    int r5 = rc ? -1 : set_training(w, &e), r6 = rc ? 0 : set_training(w, &e);
    CHECK(st, r5 == 0 && r6 == -1 && strstr(e.msg, "set twice"), "writer: training wrapper set twice refused: %s",
          e.msg);
    if (!rc) vgpt_ckpt_writer_abort(w);
    CHECK(st, access(path, F_OK) != 0, "writer: abort leaves no file behind");
    rc = vgpt_ckpt_writer_open(path, VGPT_CKPT_WRITE_BARE, &w, &e);
    int r7 = rc ? 0 : set_training(w, &e);
    CHECK(st, r7 == -1 && strstr(e.msg, path) && strstr(e.msg, "bare"), "writer: training wrapper on a bare "
          "state dict refused: %s", e.msg);
    if (!rc) vgpt_ckpt_writer_abort(w);
}

static void test_writer(check_state *st, const char *dir) {
    test_writer_files(st, dir);
    test_writer_errors(st, dir);
}

/* ---- torch's files (tests/ckpt_cases.py) ---- */

static void test_torch_cases(check_state *st, const char *dir) {
    char path[1024], line[256];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(st, f != NULL, "torch cases: %s readable", path);
    if (!f) return;
    while (fscanf(f, "%255s", line) == 1) check_manifest(st, dir, line, 1);
    fclose(f);
    snprintf(path, sizeof path, "%s/errors.txt", dir);
    f = fopen(path, "r");
    CHECK(st, f != NULL, "torch cases: %s readable", path);
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *bar = strchr(line, '|');
        if (!bar) continue;
        *bar = 0;
        char *sub = bar + 1;
        sub[strcspn(sub, "\n")] = 0;
        snprintf(path, sizeof path, "%s/%s", dir, line);
        if (strcmp(sub, "OK")) {
            expect_open_error(st, path, sub, line);
            continue;
        }
        vgpt_ckpt *ck = NULL;
        vgpt_err e = {{0}};
        int rc = vgpt_ckpt_open(path, &ck, &e);
        const vgpt_tensor *t = rc ? NULL : vgpt_ckpt_find(ck, "tok_emb.weight");
        float got[40] = {0};
        CHECK(st, t && t->numel == 40 && vgpt_ckpt_read_f32(ck, t, got, &e) == 0 && got[0] != 0.0f,
              "%s (unaligned zipfile rewrite) opens and reads (%s)", line, rc ? e.msg : "ok");
        vgpt_ckpt_free(ck);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/wrapped_fp32.pth", dir);
    size_t len;
    uint8_t *blob = check_slurp(path, &len);
    CHECK(st, blob != NULL, "torch cases: %s readable", path);
    if (!blob) return;
    test_pickle_fuzz(st, blob, len);
    test_truncations(st, blob, len, "wrapped_fp32.pth");
    test_fuzz(st, blob, len, "wrapped_fp32.pth", 2000);
    free(blob);
}

static int mkdir_p(const char *dir) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(tmp, 0755); *p = '/'; }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

/* tests/fuzz-corpus-ckpt: inputs the fuzzer found interesting (e.g. a zip
 * entry name holding a newline): each opens, or fails naming the file. */
static void test_fuzz_corpus(check_state *st) {
    char exe[4096], dir[4200], path[4600];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return;
    exe[n] = 0;
    for (int up = 0; up < 3; up++) *strrchr(exe, '/') = 0; /* <repo>/build/tests/x -> <repo> */
    snprintf(dir, sizeof dir, "%s/tests/fuzz-corpus-ckpt", exe);
    DIR *d = opendir(dir);
    CHECK(st, d != NULL, "fuzz regressions: %s exists", dir);
    if (!d) return;
    int count = 0, bad = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        uint8_t *b = check_slurp(path, &len);
        if (!b) continue;
        vgpt_ckpt *ck;
        vgpt_err err = {{0}};
        count++;
        if (vgpt_ckpt_open_mem(b, len, e->d_name, &ck, &err) == 0) vgpt_ckpt_free(ck);
        else if (!strstr(err.msg, e->d_name)) bad++, printf("info: %s: message does not name the file: %s\n", e->d_name, err.msg);
        free(b);
    }
    closedir(d);
    CHECK(st, count > 0 && bad == 0, "fuzz regressions: %d inputs open or fail naming the file", count);
}

int main(int argc, char **argv) {
    check_state st = {0, 0};
    char dir[512];
    const char *cache = getenv("VGPT_CACHE");
    if (argc > 1) snprintf(dir, sizeof dir, "%s", argv[1]);
    else snprintf(dir, sizeof dir, "%s/test_ckpt.%ld", cache && *cache ? cache : "build/cache", (long)getpid());
    if (mkdir_p(dir)) {
        printf("FAIL: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    test_half(&st);
    test_pickle(&st);
    test_bad_inputs(&st, dir);
    test_writer(&st, dir);
    test_fuzz_corpus(&st);
    static const char *const fuzzed[] = {"cwriter.pth", "cwriter_train.pth"}; /* minimal and training wrapper */
    for (int i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, fuzzed[i]);
        size_t len = 0;
        uint8_t *blob = check_slurp(path, &len);
        CHECK(&st, blob != NULL, "writer: %s readable for fuzzing", fuzzed[i]);
        if (!blob) continue;
        test_truncations(&st, blob, len, fuzzed[i]);
        test_fuzz(&st, blob, len, fuzzed[i], 2000);
        free(blob);
    }
    if (argc > 1) test_torch_cases(&st, dir);
    else {
        char cmd[1100];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) printf("note: could not remove %s\n", dir);
    }
    printf("%d passed, %d failed\n", st.passed, st.failed);
    return check_exit(&st);
}
