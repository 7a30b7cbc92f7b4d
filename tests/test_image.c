/* test_image.c - image preprocessing against the PIL/torchvision goldens in
 * shared/testdata/images (MANIFEST.tsv), plus the options and failure modes.
 *
 * Repo root: $VGPT_ROOT, else three levels up from this binary
 * (<root>/build/tests/test_image).  Test images: $VGPT_SHARED/testdata/images,
 * else <root>/../shared/testdata/images. */
#include <dirent.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <vips/vips.h>

#include "check.h"
#include "family.h"
#include "image.h"
#include "image_resize.h"

#define S VGPT_IMAGE_SIZE
/* snprintf whose truncation is acceptable here (paths come from the repo). */
#define FMT(dst, cap, ...) ((void)(snprintf(dst, cap, __VA_ARGS__) < 0))
#define IMAGES_MAX (PATH_MAX + 64)
#define N (S * S * 3)

static const float MEAN[3] = {0.485f, 0.456f, 0.406f};
static const float STD[3] = {0.229f, 0.224f, 0.225f};

static void find_dirs(const char *argv0, char *root, char *images) {
    const char *r = getenv("VGPT_ROOT");
    if (r) {
        FMT(root, PATH_MAX, "%s", r);
    } else {
        char buf[PATH_MAX];
        if (!realpath(argv0, buf)) FMT(buf, sizeof buf, "build/tests/test_image");
        for (int i = 0; i < 3; i++) {
            char *slash = strrchr(buf, '/');
            if (slash) *slash = 0;
            else FMT(buf, sizeof buf, ".");
        }
        FMT(root, PATH_MAX, "%s", buf);
    }
    const char *sh = getenv("VGPT_SHARED");
    if (sh) FMT(images, IMAGES_MAX, "%.4000s/testdata/images", sh);
    else FMT(images, IMAGES_MAX, "%s/../shared/testdata/images", root);
}

/* dst = a "/" b, or "" if it does not fit (then the open fails visibly). */
static void path_join(char *dst, size_t cap, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb + 2 > cap) {
        dst[0] = 0;
        return;
    }
    memcpy(dst, a, la);
    dst[la] = '/';
    memcpy(dst + la + 1, b, lb + 1);
}

/* golden f32 [3][224][224] -> u8 [224][224][3] (inverse of Normalize; the
 * float error is far below half a level, so rounding recovers the exact u8). */
static int golden_u8(const char *path, float *g, uint8_t *u) {
    size_t len = 0;
    float *f = check_slurp(path, &len);
    if (!f || len != N * sizeof(float)) return free(f), -1;
    memcpy(g, f, len);
    free(f);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < S * S; i++) {
            double v = rint(((double)g[c * S * S + i] * STD[c] + MEAN[c]) * 255.0);
            u[3 * i + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    return 0;
}

typedef struct { int maxdiff, same; double meandiff; } cmp_t;

static cmp_t compare(const uint8_t *a, const uint8_t *b) {
    cmp_t c = {0, 0, 0};
    for (int i = 0; i < N; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        c.maxdiff = d > c.maxdiff ? d : c.maxdiff;
        c.same += d == 0;
        c.meandiff += d;
    }
    c.meandiff /= N;
    return c;
}

/* Distance in units in the last place between two finite floats. */
static uint32_t ulps(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4), memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    return (uint32_t)(ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia);
}

typedef struct {
    char file[512], expected[16], golden[512];
} row_t;

static int read_manifest(const char *images, row_t **rows) {
    char path[PATH_MAX + 32];
    path_join(path, sizeof path, images, "MANIFEST.tsv");
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[8192];
    int n = 0, cap = 64;
    *rows = calloc((size_t)cap, sizeof(row_t));
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "file\t", 5)) continue;
        char *col[6] = {0};
        char *p = line;
        for (int i = 0; i < 6 && p; i++) {
            col[i] = p;
            p = strchr(p, '\t');
            if (p) *p++ = 0;
        }
        if (!col[5]) continue;
        if (n == cap) *rows = realloc(*rows, sizeof(row_t) * (size_t)(cap *= 2));
        row_t *r = &(*rows)[n++];
        FMT(r->file, sizeof r->file, "%.500s", col[0]);
        FMT(r->expected, sizeof r->expected, "%.8s", col[2]);
        FMT(r->golden, sizeof r->golden, "%.500s", col[5]);
    }
    fclose(f);
    return n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long maxrss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

static void test_manifest(check_state *st, const char *images, const row_t *rows, int n) {
    uint8_t *out = malloc(N), *gold = malloc(N);
    float *g = malloc(N * sizeof(float)), *norm = malloc(N * sizeof(float));
    int exact = 0, nok = 0, worst_diff = -1, norm_bad = 0;
    uint32_t norm_maxulp = 0;
    char worst[512] = "";
    double worst_same = 1;
    vgpt_image_opts o;
    vgpt_image_opts_default(&o);
    o.autorotate = 0;  /* the published pipeline ignores EXIF orientation */
    for (int i = 0; i < n; i++) {
        const row_t *r = &rows[i];
        char path[PATH_MAX + 600], gpath[PATH_MAX + 600];
        path_join(path, sizeof path, images, r->file);
        vgpt_err err = {{0}};
        int rc = vgpt_image_load_file(path, &o, out, &err);
        if (strcmp(r->expected, "ok")) {
            CHECK(st, rc != 0 && err.msg[0] && !strchr(err.msg, '\n') && strstr(err.msg, path),
                  "error row %s fails with a one-line message naming it: %s", r->file, err.msg);
            continue;
        }
        path_join(gpath, sizeof gpath, images, r->golden);
        if (rc) {
            CHECK(st, rc == 0, "ok row %s loads: %s", r->file, err.msg);
            continue;
        }
        if (golden_u8(gpath, g, gold)) {
            CHECK(st, 0, "golden %s readable (602112 bytes)", r->golden);
            continue;
        }
        nok++;
        cmp_t c = compare(out, gold);
        double same = (double)c.same / N;
        CHECK(st, c.maxdiff <= 1 && same >= 0.99, "%s matches golden: max diff %d, %.4f%% identical",
              r->file, c.maxdiff, 100 * same);
        if (c.maxdiff > worst_diff || (c.maxdiff == worst_diff && same < worst_same)) {
            worst_diff = c.maxdiff, worst_same = same;
            FMT(worst, sizeof worst, "%s", r->file);
        }
        if (c.maxdiff) continue;
        exact++;
        vgpt_image_normalize(out, vgpt_family_visiongpt.mean, vgpt_family_visiongpt.std, norm);
        for (int k = 0; k < N; k++) {
            uint32_t u = ulps(norm[k], g[k]);
            norm_bad += u != 0;
            norm_maxulp = u > norm_maxulp ? u : norm_maxulp;
        }
    }
    if (worst_diff > 0)
        printf("exact u8 match: %d of %d ok images; worst: %s (max diff %d, %.4f%% identical)\n",
               exact, nok, worst, worst_diff, 100 * worst_same);
    else
        printf("exact u8 match: %d of %d ok images (all bit-exact)\n", exact, nok);
    CHECK(st, nok > 0 && exact > 0, "at least one image bit-exact (%d of %d)", exact, nok);
    CHECK(st, norm_maxulp <= 1, "normalize vs golden f32 on exact images: %d values differ, max %u ulp (%s)",
          norm_bad, norm_maxulp, norm_bad ? "within 1 ulp" : "bit-identical");
    free(out), free(gold), free(g), free(norm);
}

/* Orientation 6: the stored picture must be turned 90 degrees clockwise.
 * The golden is of the stored pixels, so turning it in memory gives what
 * an upright decode should produce, up to the resize's rounding (it
 * resizes the other axis first). */
static void test_autorotate(check_state *st, const char *images) {
    char path[PATH_MAX + 64], gpath[PATH_MAX + 64];
    path_join(path, sizeof path, images, "variants/jpeg_exif_orientation6.jpg");
    path_join(gpath, sizeof gpath, images, "golden/variants/jpeg_exif_orientation6.jpg.f32");
    uint8_t *out = malloc(N), *gold = malloc(N), *rot = malloc(N);
    float *g = malloc(N * sizeof(float));
    vgpt_image_opts o;
    vgpt_image_opts_default(&o);
    CHECK(st, o.autorotate == 1, "autorotate is on by default");
    vgpt_err err = {{0}};
    int rc = vgpt_image_load_file(path, &o, out, &err);
    CHECK(st, rc == 0, "autorotate=1 loads orientation-6 JPEG: %s", err.msg);
    if (!rc && !golden_u8(gpath, g, gold)) {
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                memcpy(rot + 3 * (y * S + x), gold + 3 * ((S - 1 - x) * S + y), 3);
        cmp_t c = compare(out, rot), u = compare(out, gold);
        CHECK(st, c.maxdiff <= 1 && c.same >= N * 0.8,
              "autorotated = golden turned 90 cw: max diff %d, %.2f%% identical", c.maxdiff,
              100.0 * c.same / N);
        CHECK(st, u.meandiff > 10, "autorotated differs from the unrotated golden (mean diff %.1f)",
              u.meandiff);
    }
    /* Exact expectation: libvips' own decode + autorot, then our resize. */
    VipsImage *raw = NULL, *up = NULL;
    void *mem = NULL;
    size_t sz = 0;
    if (!rc && !vips_jpegload(path, &raw, NULL) && !vips_autorot(raw, &up, NULL) &&
        (mem = vips_image_write_to_memory(up, &sz)) &&
        !vgpt_resize_bilinear(mem, vips_image_get_width(up), vips_image_get_height(up), rot, S, S,
                              &err)) {
        cmp_t c = compare(out, rot);
        CHECK(st, c.maxdiff == 0 && vips_image_get_width(up) == 451,
              "autorotated = vips autorot of the 300x451 decode + resize: max diff %d", c.maxdiff);
    } else {
        CHECK(st, 0, "reference rotation with libvips: %s", vips_error_buffer());
    }
    g_free(mem);
    if (up) g_object_unref(up);
    if (raw) g_object_unref(raw);
    free(out), free(gold), free(rot), free(g);
}

static void test_limits(check_state *st, const char *images) {
    char path[PATH_MAX + 64];
    uint8_t *out = malloc(N);
    vgpt_image_opts o;
    vgpt_image_opts_default(&o);
    vgpt_err err = {{0}};
    path_join(path, sizeof path, images, "bad/bomb_65000x65000.jpg");
    long rss0 = maxrss_mb();
    double t0 = now_s();
    int rc = vgpt_image_load_file(path, &o, out, &err);
    double dt = now_s() - t0;
    long rss1 = maxrss_mb();
    CHECK(st, rc != 0 && strstr(err.msg, "pixels") && dt < 1.0 && rss1 - rss0 < 64,
          "bomb refused from its header in %.1f ms, peak RSS +%ld MB: %s", dt * 1e3, rss1 - rss0,
          err.msg);

    path_join(path, sizeof path, images, "good/coffee.png");
    o.max_pixels = 600 * 400 - 1;
    rc = vgpt_image_load_file(path, &o, out, &err);
    CHECK(st, rc != 0 && strstr(err.msg, "max_pixels"), "max_pixels=%llu refuses a 600x400 image: %s",
          (unsigned long long)o.max_pixels, err.msg);
    o.max_pixels = 600 * 400;
    rc = vgpt_image_load_file(path, &o, out, &err);
    CHECK(st, rc == 0, "max_pixels=%llu accepts a 600x400 image", (unsigned long long)o.max_pixels);

    vgpt_image_opts_default(&o);
    const char *trunc[] = {"bad/truncated_40pct.jpg", "bad/truncated_40pct_progressive.jpg"};
    for (int i = 0; i < 2; i++) {
        path_join(path, sizeof path, images, trunc[i]);
        o.accept_truncated = 0;
        rc = vgpt_image_load_file(path, &o, out, &err);
        CHECK(st, rc != 0, "%s fails by default: %s", trunc[i], err.msg);
        o.accept_truncated = 1;
        rc = vgpt_image_load_file(path, &o, out, &err);
        CHECK(st, rc == 0, "%s loads with accept_truncated: %s", trunc[i], rc ? err.msg : "ok");
    }
    free(out);
}

static void test_buffer(check_state *st, const char *images) {
    char path[PATH_MAX + 64];
    path_join(path, sizeof path, images, "good/rocket.jpg");
    size_t len = 0;
    uint8_t *buf = check_slurp(path, &len);
    uint8_t *a = malloc(N), *b = malloc(N);
    vgpt_image_opts o;
    vgpt_image_opts_default(&o);
    vgpt_err err = {{0}};
    int ra = vgpt_image_load_file(path, &o, a, &err);
    int rb = buf ? vgpt_image_load_buffer(buf, len, "rocket-in-memory", &o, b, &err) : -1;
    CHECK(st, ra == 0 && rb == 0 && !memcmp(a, b, N), "load_buffer = load_file on rocket.jpg");
    rb = buf ? vgpt_image_load_buffer(buf, len / 3, "rocket-cut", &o, b, &err) : -1;
    CHECK(st, rb != 0 && !strncmp(err.msg, "rocket-cut: ", 12), "truncated buffer error names it: %s",
          err.msg);
    rb = vgpt_image_load_buffer("hello", 5, "greeting", &o, b, &err);
    CHECK(st, rb != 0 && !strncmp(err.msg, "greeting: ", 10), "text buffer refused: %s", err.msg);
    rb = vgpt_image_load_file("/nonexistent/x.jpg", &o, b, &err);
    CHECK(st, rb != 0 && strstr(err.msg, "/nonexistent/x.jpg: "), "missing file: %s", err.msg);
    free(buf), free(a), free(b);
}

/* fast_decode shrinks big JPEGs on load: different pixels, close picture. */
static void test_fast_decode(check_state *st, const char *images) {
    char path[PATH_MAX + 64];
    path_join(path, sizeof path, images, "good/Kleiber_by_Lukas_Baubkus_4000px.jpg");
    uint8_t *a = malloc(N), *b = malloc(N);
    vgpt_image_opts o;
    vgpt_image_opts_default(&o);
    vgpt_err err = {{0}};
    int ra = vgpt_image_load_file(path, &o, a, &err);
    o.fast_decode = 1;
    double t0 = now_s();
    int rb = vgpt_image_load_file(path, &o, b, &err);
    double dt = now_s() - t0;
    cmp_t c = compare(a, b);
    CHECK(st, ra == 0 && rb == 0 && c.meandiff < 2.0 && c.same < N,
          "fast_decode on 4000x2250 JPEG: %.1f ms, mean diff %.3f, max diff %d vs exact", dt * 1e3,
          c.meandiff, c.maxdiff);
    free(a), free(b);
}

/* tests/fuzz-corpus: byte 0 picks the options, as in tests/fuzz_image.c. */
static void test_fuzz_corpus(check_state *st, const char *root) {
    char dir[PATH_MAX + 32], path[PATH_MAX + 300];
    path_join(dir, sizeof dir, root, "tests/fuzz-corpus");
    DIR *d = opendir(dir);
    if (!d) {
        printf("SKIP: no %s\n", dir);
        return;
    }
    uint8_t *out = malloc(N);
    int n = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strstr(e->d_name, ".md")) continue;
        path_join(path, sizeof path, dir, e->d_name);
        size_t len = 0;
        uint8_t *b = check_slurp(path, &len);
        if (!b || len < 1) {
            free(b);
            continue;
        }
        vgpt_image_opts o;
        vgpt_image_opts_default(&o);
        o.autorotate = b[0] & 1, o.fast_decode = b[0] >> 1 & 1, o.accept_truncated = b[0] >> 2 & 1;
        vgpt_err err = {{0}};
        int rc = vgpt_image_load_buffer(b + 1, len - 1, e->d_name, &o, out, &err);
        n++;
        if (rc && (!err.msg[0] || strchr(err.msg, '\n'))) bad++, printf("bad message for %s\n", e->d_name);
        free(b);
    }
    closedir(d);
    free(out);
    CHECK(st, n > 0 && bad == 0, "%d fuzz regression inputs load or fail with a one-line message", n);
}

/* Resize properties that do not need goldens. */
static void test_resize(check_state *st) {
    static const int sizes[][2] = {{1, 1}, {3, 1000}, {1000, 3}, {224, 224}, {225, 223}, {4000, 7}};
    int ok_const = 1, ok_ident = 1;
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int w = sizes[t][0], h = sizes[t][1];
        uint8_t *src = malloc((size_t)w * h * 3), *dst = malloc(N);
        for (size_t i = 0; i < (size_t)w * h * 3; i++) src[i] = (uint8_t)(i % 3 == 0 ? 7 : i % 3 == 1 ? 128 : 255);
        vgpt_err err = {{0}};
        if (vgpt_resize_bilinear(src, w, h, dst, S, S, &err)) ok_const = 0;
        for (int i = 0; i < N; i++)
            if (dst[i] != src[i % 3]) ok_const = 0;
        if (w == S && h == S) {
            for (size_t i = 0; i < N; i++) src[i] = (uint8_t)(i * 2654435761u >> 24);
            vgpt_resize_bilinear(src, w, h, dst, S, S, &err);
            ok_ident = !memcmp(src, dst, N);
        }
        free(src), free(dst);
    }
    CHECK(st, ok_const, "constant images stay constant for 1x1 .. 4000x7 inputs");
    CHECK(st, ok_ident, "224x224 input is returned unchanged");
    vgpt_resize_axis a;
    vgpt_err err = {{0}};
    CHECK(st, vgpt_resize_axis_init(&a, 0, 224, &err) != 0, "zero-size axis refused: %s", err.msg);
}

int main(int argc, char **argv) {
    (void)argc;
    check_state st = {0, 0};
    char root[PATH_MAX], images[IMAGES_MAX];
    find_dirs(argv[0], root, images);
    vgpt_err err = {{0}};
    if (vgpt_image_init(argv[0], &err)) {
        CHECK(&st, 0, "vgpt_image_init: %s", err.msg);
        return 1;
    }
    test_resize(&st);
    row_t *rows = NULL;
    int n = read_manifest(images, &rows);
    if (n <= 0) {
        printf("SKIP: no test images at %s (set VGPT_SHARED)\n", images);
    } else {
        test_manifest(&st, images, rows, n);
        test_autorotate(&st, images);
        test_limits(&st, images);
        test_buffer(&st, images);
        test_fast_decode(&st, images);
    }
    test_fuzz_corpus(&st, root);
    free(rows);
    vgpt_image_shutdown();
    return check_exit(&st);
}
