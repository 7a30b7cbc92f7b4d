/* image.c - image file -> 224x224 RGB exactly as the published model's
 * PIL + torchvision preprocessing produced it (see image.h).
 *
 * Flow: sniff the format, open the header with libvips, refuse oversized
 * images before any pixel is decoded, then stream decoded rows through
 * PIL's horizontal resize pass so the full-size image is never held in
 * memory, and finish with the vertical pass. */
#include "image.h"

#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "file.h"
#include "image_read.h"
#include "image_resize.h"

#define S VGPT_IMAGE_SIZE
#define STRIP 64  /* rows decoded per libvips request */

/* Decoders explain themselves in warnings ("IDAT: invalid distance too far
 * back") while the error only says "libpng read error".  Warnings go to
 * libvips' error log instead of stderr: a load that fails folds the log
 * into its one-line message, a load that succeeds clears it. */
static void warning_to_log(const gchar *domain, GLogLevelFlags level, const gchar *msg,
                           gpointer user) {
    (void)domain, (void)level, (void)user;
    vips_error("warning", "%s", msg);
}

int vgpt_image_init(const char *argv0, vgpt_err *err) {
    if (VIPS_INIT(argv0 ? argv0 : "vgpt"))
        return vgpt_image_read_error(err, "libvips", "initialisation failed");
    /* The operation cache keys buffer loads by address: a reused buffer
     * could return a stale image.  Each image is decoded once anyway. */
    vips_cache_set_max(0);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, warning_to_log, NULL);
    return 0;
}

void vgpt_image_shutdown(void) { vips_shutdown(); }

/* Largest libjpeg shrink that keeps both decoded sides >= 224 (libjpeg
 * rounds scaled sizes up). */
static int jpeg_shrink(int w, int h) {
    for (int s = 8; s > 1; s /= 2)
        if ((w + s - 1) / s >= S && (h + s - 1) / s >= S) return s;
    return 1;
}

/* Rows [first, last) of the image, after the horizontal pass, go to tmp. */
static int stream_rows(VipsImage *im, const vgpt_pix_layout *l, const vgpt_resize_axis *ax,
                       int first, int last, uint8_t *tmp, const char *name, vgpt_err *err) {
    int w = vips_image_get_width(im), h = vips_image_get_height(im);
    uint8_t *rgb = malloc((size_t)w * 3);
    VipsRegion *reg = vips_region_new(im);
    int rc = 0;
    if (!rgb || !reg) {
        rc = vgpt_err_set(err, "%s: out of memory for a %d-pixel row", name, w);
        goto done;
    }
    /* Every row is decoded even if the resize ignores it: truncated data
     * anywhere must fail, as it does in PIL. */
    for (int y = 0; y < h; y += STRIP) {
        VipsRect r = {0, y, w, h - y < STRIP ? h - y : STRIP};
        if (vips_region_prepare(reg, &r)) {
            rc = vgpt_image_read_error(err, name, "truncated or corrupt image data");
            goto done;
        }
        for (int yy = y; yy < y + r.height; yy++) {
            if (yy < first || yy >= last) continue;
            const void *row = VIPS_REGION_ADDR(reg, 0, yy);
            uint8_t *d = tmp + (size_t)(yy - first) * S * 3;
            if (w == S) {
                vgpt_image_read_row_rgb(l, row, w, d);
            } else {
                vgpt_image_read_row_rgb(l, row, w, rgb);
                vgpt_resize_row(ax, rgb, d);
            }
        }
    }
done:
    if (reg) g_object_unref(reg);
    free(rgb);
    return rc;
}

/* Decoded image -> out [224][224][3] via PIL's two passes. */
static int resize_image(VipsImage *im, const vgpt_pix_layout *l, const char *name,
                        uint8_t *out, vgpt_err *err) {
    int w = vips_image_get_width(im), h = vips_image_get_height(im);
    vgpt_resize_axis ax, ay;
    if (vgpt_resize_axis_init(&ax, w, S, err)) return vgpt_err_prefix(err, "%s", name);
    if (vgpt_resize_axis_init(&ay, h, S, err)) {
        vgpt_resize_axis_free(&ax);
        return vgpt_err_prefix(err, "%s", name);
    }
    int first = h != S ? vgpt_resize_axis_first(&ay) : 0;
    int last = h != S ? vgpt_resize_axis_last(&ay) : h;
    uint8_t *tmp = malloc((size_t)(last - first) * S * 3);
    int rc;
    if (!tmp)
        rc = vgpt_err_set(err, "%s: out of memory for %d resized rows", name, last - first);
    else
        rc = stream_rows(im, l, &ax, first, last, tmp, name, err);
    if (!rc && h != S) {
        if (vgpt_resize_cols(&ay, first, tmp, S, out, err)) rc = vgpt_err_prefix(err, "%s", name);
    } else if (!rc) {
        memcpy(out, tmp, (size_t)S * S * 3);
    }
    free(tmp);
    vgpt_resize_axis_free(&ax);
    vgpt_resize_axis_free(&ay);
    return rc;
}

/* Re-opens im when the first, header-only open is not the one to decode
 * with: JPEG shrink-on-load, or EXIF rotation (which needs random access). */
static int reopen(const void *buf, size_t len, vgpt_image_format fmt, const vgpt_image_opts *o,
                  const char *name, VipsImage **im, vgpt_err *err) {
    int w = vips_image_get_width(*im), h = vips_image_get_height(*im);
    int orient = o->autorotate ? vips_image_get_orientation(*im) : 1;
    int shrink = o->fast_decode && fmt == VGPT_FMT_JPEG ? jpeg_shrink(w, h) : 1;
    if (orient < 2 || orient > 8) orient = 1;
    if (orient == 1 && shrink == 1) return 0;
    g_object_unref(*im);
    *im = NULL;
    vgpt_image_read_opts d = {orient == 1, o->accept_truncated, shrink};
    VipsImage *again;
    if (vgpt_image_read_open(buf, len, fmt, &d, name, &again, err)) return -1;
    if (orient == 1) {
        *im = again;
        return 0;
    }
    int rc = vips_autorot(again, im, NULL);
    g_object_unref(again);
    if (rc) return vgpt_image_read_error(err, name, "cannot apply EXIF orientation");
    return 0;
}

static void hex_prefix(const uint8_t *b, size_t len, char *out, size_t cap) {
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < len && i < 8 && n + 4 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%02x", i ? " " : "", b[i]);
}

static int load(const void *buf, size_t len, const char *name, const vgpt_image_opts *o,
                uint8_t *out, int *decoding, vgpt_err *err);

int vgpt_image_load_buffer(const void *buf, size_t len, const char *name,
                           const vgpt_image_opts *o, uint8_t *out, vgpt_err *err) {
    vgpt_image_opts defaults;
    if (!o) vgpt_image_opts_default(&defaults), o = &defaults;
    if (!name) name = "<buffer>";
    int decoding = 0;
    int rc = load(buf, len, name, o, out, &decoding, err);
    uint8_t *fixed;
    if (rc && decoding && vgpt_image_sniff(buf, len) == VGPT_FMT_PNG &&
        vgpt_image_read_png_fix_crcs(buf, len, &fixed) == 1) {
        vgpt_err first = *err;
        rc = load(fixed, len, name, o, out, &decoding, err);
        if (rc) *err = first;  /* the CRC was not the only problem */
        free(fixed);
    }
    return rc;
}

/* *decoding is set once the header passed and pixels are being decoded. */
static int load(const void *buf, size_t len, const char *name, const vgpt_image_opts *o,
                uint8_t *out, int *decoding, vgpt_err *err) {
    if (!buf || len == 0) return vgpt_err_set(err, "%s: empty file (expected an image)", name);
    vgpt_image_format fmt = vgpt_image_sniff(buf, len);
    if (fmt == VGPT_FMT_UNKNOWN) {
        char hex[40];
        hex_prefix(buf, len, hex, sizeof hex);
        return vgpt_err_set(err, "%s: not an image (expected JPEG, PNG, GIF, WebP, TIFF, BMP or PNM "
                            "magic bytes, got %s)", name, hex);
    }
    vips_error_clear();
    vgpt_image_read_opts d = {1, o->accept_truncated, 1};
    VipsImage *im;
    if (vgpt_image_read_open(buf, len, fmt, &d, name, &im, err)) return -1;
    uint64_t w = (uint64_t)vips_image_get_width(im), h = (uint64_t)vips_image_get_height(im);
    uint64_t limit = o->max_pixels ? o->max_pixels : VGPT_IMAGE_DEFAULT_MAX_PIXELS;
    int rc = -1;
    if (w * h > limit) {
        vgpt_err_set(err, "%s: image is %llux%llu = %llu pixels, over the limit of %llu "
                     "(max_pixels); refusing to decode", name, (unsigned long long)w,
                     (unsigned long long)h, (unsigned long long)(w * h), (unsigned long long)limit);
        goto done;
    }
    if (reopen(buf, len, fmt, o, name, &im, err)) goto done;
    vgpt_pix_layout l;
    if (vgpt_image_read_layout(im, fmt, buf, len, name, &l, err)) goto done;
    *decoding = 1;
    rc = resize_image(im, &l, name, out, err);
done:
    if (im) g_object_unref(im);
    vips_error_clear();
    return rc;
}

/* Whole file into memory; images are small next to what decoding them costs. */
int vgpt_image_read_file(const char *path, uint8_t **data, size_t *len, vgpt_err *err) {
    return vgpt_file_read(path, "an image", VGPT_IMAGE_MAX_FILE_BYTES, data, len, err);
}

int vgpt_image_load_file(const char *path, const vgpt_image_opts *o,
                         uint8_t *out, vgpt_err *err) {
    uint8_t *data = NULL;
    size_t len = 0;
    if (vgpt_image_read_file(path, &data, &len, err)) return -1;
    int rc = vgpt_image_load_buffer(data, len, path, o, out, err);
    free(data);
    return rc;
}

/* u8 [224][224][3] -> f32 [3][224][224].  A 256-entry table per channel
 * computed with torchvision's exact float32 ops ((v/255 - mean) / std)
 * gives the same bits as computing every pixel. */
void vgpt_image_normalize(const uint8_t *rgb, const float mean[3], const float std[3], float *chw) {
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float t = (float)v / 255.0f;
            lut[c][v] = (t - mean[c]) / std[c];
        }
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < S * S; i++) chw[(size_t)c * S * S + i] = lut[c][rgb[3 * i + c]];
}
