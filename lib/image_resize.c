/* image_resize.c - Pillow's BILINEAR resize, bit for bit (see image_resize.h
 * and shared/testdata/images/pil_bilinear_reference.py for the model).
 *
 * Every floating-point step below mirrors Resample.c in the same order and
 * in double precision; reordering or fusing any of them moves some weights
 * by one fixed-point unit and some pixels by one level. */
#include "image_resize.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define PRECISION_BITS 22

/* Pillow's bilinear (triangle) filter of support 1. */
static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* The sum of the taps stays below ~2^22 + n/2, so with inputs this small
 * 255 * sum fits the int32 accumulator Pillow uses. */
#define MAX_AXIS (1 << 24)

/* Input window of output i, as Pillow rounds it: [*xmin, *xmin + *n). */
static void window(int i, double scale, double support, int in_size, int *xmin, int *n) {
    double center = (i + 0.5) * scale;
    int lo = (int)(center - support + 0.5);
    if (lo < 0) lo = 0;
    int hi = (int)(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    *xmin = lo;
    *n = hi - lo;
}

int vgpt_resize_axis_init(vgpt_resize_axis *a, int in_size, int out_size,
                          vgpt_err *err) {
    memset(a, 0, sizeof *a);
    if (in_size < 1 || in_size > MAX_AXIS || out_size < 1 || out_size > MAX_AXIS)
        return vgpt_err_set(err, "resize: axis %d -> %d: expected sizes in 1..%d",
                            in_size, out_size, MAX_AXIS);
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    a->in_size = in_size;
    a->out_size = out_size;
    a->start = malloc(sizeof(int) * (size_t)out_size);
    a->n = malloc(sizeof(int) * (size_t)out_size);
    a->off = malloc(sizeof(int) * (size_t)out_size);
    if (!a->start || !a->n || !a->off) goto oom;
    /* Windows first, so the taps get one exact allocation. */
    size_t total = 0;
    int widest = 0;
    for (int i = 0; i < out_size; i++) {
        window(i, scale, support, in_size, &a->start[i], &a->n[i]);
        a->off[i] = (int)total;
        total += (size_t)a->n[i];
        widest = a->n[i] > widest ? a->n[i] : widest;
    }
    a->k = malloc(sizeof(int32_t) * (total ? total : 1));
    double *w = malloc(sizeof(double) * (size_t)(widest ? widest : 1));
    if (!a->k || !w) {
        free(w);
        goto oom;
    }
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        double ss = 1.0 / filterscale;
        int xmin = a->start[i], xmax = a->n[i];
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = triangle((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = a->k + a->off[i];
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
    }
    free(w);
    return 0;
oom:
    vgpt_resize_axis_free(a);
    return vgpt_err_set(err, "resize: axis %d -> %d: out of memory", in_size, out_size);
}

void vgpt_resize_axis_free(vgpt_resize_axis *a) {
    free(a->start);
    free(a->n);
    free(a->off);
    free(a->k);
    memset(a, 0, sizeof *a);
}

int vgpt_resize_axis_first(const vgpt_resize_axis *a) { return a->start[0]; }

int vgpt_resize_axis_last(const vgpt_resize_axis *a) {
    int i = a->out_size - 1;
    return a->start[i] + a->n[i];
}

static inline uint8_t clip8(int32_t acc) {
    if (acc >= (1 << PRECISION_BITS << 8)) return 255;
    if (acc <= 0) return 0;
    return (uint8_t)(acc >> PRECISION_BITS);
}

/* src [in][3] -> dst [out][3] */
void vgpt_resize_row(const vgpt_resize_axis *a, const uint8_t *src,
                     uint8_t *dst) {
    for (int i = 0; i < a->out_size; i++) {
        const int32_t *k = a->k + a->off[i];
        const uint8_t *s = src + (size_t)a->start[i] * 3;
        int32_t r = 1 << (PRECISION_BITS - 1), g = r, b = r;
        for (int x = 0; x < a->n[i]; x++) {
            r += s[3 * x + 0] * k[x];
            g += s[3 * x + 1] * k[x];
            b += s[3 * x + 2] * k[x];
        }
        dst[3 * i + 0] = clip8(r);
        dst[3 * i + 1] = clip8(g);
        dst[3 * i + 2] = clip8(b);
    }
}

/* src rows first.. [][w][3] -> dst [out][w][3].  The accumulator row keeps
 * the inner loop contiguous so it vectorises. */
int vgpt_resize_cols(const vgpt_resize_axis *a, int first, const uint8_t *src,
                     int w, uint8_t *dst, vgpt_err *err) {
    size_t rowlen = (size_t)w * 3;
    int32_t *acc = malloc(sizeof(int32_t) * rowlen);
    if (!acc) return vgpt_err_set(err, "resize: vertical pass, width %d: out of memory", w);
    for (int i = 0; i < a->out_size; i++) {
        const int32_t *k = a->k + a->off[i];
        for (size_t c = 0; c < rowlen; c++) acc[c] = 1 << (PRECISION_BITS - 1);
        for (int y = 0; y < a->n[i]; y++) {
            const uint8_t *s = src + (size_t)(a->start[i] - first + y) * rowlen;
            int32_t ky = k[y];
            for (size_t c = 0; c < rowlen; c++) acc[c] += s[c] * ky;
        }
        for (size_t c = 0; c < rowlen; c++) dst[(size_t)i * rowlen + c] = clip8(acc[c]);
    }
    free(acc);
    return 0;
}

int vgpt_resize_bilinear(const uint8_t *src, int w, int h, uint8_t *dst,
                         int ow, int oh, vgpt_err *err) {
    vgpt_resize_axis ax, ay;
    if (vgpt_resize_axis_init(&ax, w, ow, err)) return -1;
    if (vgpt_resize_axis_init(&ay, h, oh, err)) {
        vgpt_resize_axis_free(&ax);
        return -1;
    }
    int first = oh != h ? vgpt_resize_axis_first(&ay) : 0;
    int last = oh != h ? vgpt_resize_axis_last(&ay) : h;
    uint8_t *tmp = malloc((size_t)(last - first) * ow * 3);
    if (!tmp) {
        vgpt_resize_axis_free(&ax);
        vgpt_resize_axis_free(&ay);
        return vgpt_err_set(err, "resize: %dx%d -> %dx%d: out of memory", w, h, ow, oh);
    }
    for (int y = first; y < last; y++) {
        const uint8_t *s = src + (size_t)y * w * 3;
        uint8_t *d = tmp + (size_t)(y - first) * ow * 3;
        if (ow != w) vgpt_resize_row(&ax, s, d);
        else memcpy(d, s, (size_t)w * 3);
    }
    int rc = 0;
    if (oh != h) rc = vgpt_resize_cols(&ay, first, tmp, ow, dst, err);
    else memcpy(dst, tmp, (size_t)oh * ow * 3);
    free(tmp);
    vgpt_resize_axis_free(&ax);
    vgpt_resize_axis_free(&ay);
    return rc;
}
