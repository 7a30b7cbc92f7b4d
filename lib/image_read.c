/* image_read.c - format sniffing, libvips loaders and PIL's convert('RGB')
 * rules (see image_read.h).
 *
 * Only formats PIL opens by default are accepted, each sent straight to its
 * libvips loader: letting libvips guess would also open PDF, SVG, FITS and
 * the like, which the published pipeline rejects and which widen the attack
 * surface of a daemon that reads untrusted files. */
#include "image_read.h"

#include <stdlib.h>
#include <string.h>

static int has_prefix(const uint8_t *b, size_t len, const char *magic, size_t n) {
    return len >= n && memcmp(b, magic, n) == 0;
}

vgpt_image_format vgpt_image_sniff(const void *buf, size_t len) {
    const uint8_t *b = buf;
    if (has_prefix(b, len, "\xff\xd8\xff", 3)) return VGPT_FMT_JPEG;
    if (has_prefix(b, len, "\x89PNG\r\n\x1a\n", 8)) return VGPT_FMT_PNG;
    if (has_prefix(b, len, "GIF87a", 6) || has_prefix(b, len, "GIF89a", 6)) return VGPT_FMT_GIF;
    if (len >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return VGPT_FMT_WEBP;
    if (has_prefix(b, len, "II*\0", 4) || has_prefix(b, len, "MM\0*", 4)) return VGPT_FMT_TIFF;
    if (has_prefix(b, len, "BM", 2) && len >= 26) return VGPT_FMT_BMP;
    if (len >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6' &&
        (b[2] == ' ' || b[2] == '\t' || b[2] == '\n' || b[2] == '\r'))
        return VGPT_FMT_PNM;
    return VGPT_FMT_UNKNOWN;
}

const char *vgpt_image_format_name(vgpt_image_format f) {
    switch (f) {
    case VGPT_FMT_JPEG: return "JPEG";
    case VGPT_FMT_PNG: return "PNG";
    case VGPT_FMT_GIF: return "GIF";
    case VGPT_FMT_WEBP: return "WebP";
    case VGPT_FMT_TIFF: return "TIFF";
    case VGPT_FMT_BMP: return "BMP";
    case VGPT_FMT_PNM: return "PNM";
    default: return "unknown";
    }
}

/* libvips keeps a log of errors; fold it into one line for our message. */
int vgpt_image_read_error(vgpt_err *err, const char *name, const char *what) {
    char *log = vips_error_buffer_copy();
    vips_error_clear();
    char line[600];
    size_t n = 0;
    /* One "; "-separated line; libvips' per-tile "error in tile" echoes of
     * the real error are noise. */
    for (const char *p = log ? log : ""; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && !memmem(p, len, "error in tile", 13) && n + len + 3 < sizeof line) {
            if (n) line[n++] = ';', line[n++] = ' ';
            for (size_t i = 0; i < len; i++)
                if ((unsigned char)p[i] >= 0x20) line[n++] = p[i];
        }
        p += len + (end != NULL);
    }
    line[n] = 0;
    g_free(log);
    if (n) return vgpt_err_set(err, "%s: %s (libvips: %s)", name, what, line);
    return vgpt_err_set(err, "%s: %s", name, what);
}

static int open_ppm(const void *buf, size_t len, VipsImage **out, VipsAccess acc,
                    VipsFailOn fail_on) {
    VipsSource *src = vips_source_new_from_memory(buf, len);
    if (!src) return -1;
    int rc = vips_ppmload_source(src, out, "access", acc, "fail_on", fail_on, NULL);
    g_object_unref(src);
    return rc;
}

int vgpt_image_read_open(const void *buf, size_t len, vgpt_image_format fmt,
                     const vgpt_image_read_opts *d, const char *name,
                     VipsImage **out, vgpt_err *err) {
    /* PIL raises on truncated data but ignores PNG CRC errors and libjpeg's
     * "corrupt data" warnings: exactly libvips' fail_on=truncated. */
    VipsFailOn fo = d->accept_truncated ? VIPS_FAIL_ON_NONE : VIPS_FAIL_ON_TRUNCATED;
    VipsAccess acc = d->sequential ? VIPS_ACCESS_SEQUENTIAL : VIPS_ACCESS_RANDOM;
    void *b = (void *)buf;  /* libvips' API is not const-correct */
    int rc = -1;
    *out = NULL;
    switch (fmt) {
    case VGPT_FMT_JPEG:
        rc = vips_jpegload_buffer(b, len, out, "access", acc, "fail_on", fo,
                                  "shrink", d->shrink, "autorotate", FALSE, NULL);
        break;
    case VGPT_FMT_PNG:
        rc = vips_pngload_buffer(b, len, out, "access", acc, "fail_on", fo, NULL);
        break;
    case VGPT_FMT_GIF:  /* first frame only, as Image.open gives */
        rc = vips_gifload_buffer(b, len, out, "access", acc, "fail_on", fo,
                                 "page", 0, "n", 1, NULL);
        break;
    case VGPT_FMT_WEBP:
        rc = vips_webpload_buffer(b, len, out, "access", acc, "fail_on", fo,
                                  "page", 0, "n", 1, NULL);
        break;
    case VGPT_FMT_TIFF:
        rc = vips_tiffload_buffer(b, len, out, "access", acc, "fail_on", fo,
                                  "page", 0, "n", 1, "autorotate", FALSE, NULL);
        break;
    case VGPT_FMT_BMP:  /* libvips has no BMP loader of its own */
        rc = vips_magickload_buffer(b, len, out, "access", acc, "fail_on", fo,
                                    "page", 0, "n", 1, NULL);
        break;
    case VGPT_FMT_PNM:
        rc = open_ppm(buf, len, out, acc, fo);
        break;
    default:
        return vgpt_err_set(err, "%s: unsupported image format", name);
    }
    if (rc) {
        char what[64];
        snprintf(what, sizeof what, "cannot read %s header", vgpt_image_format_name(fmt));
        return vgpt_image_read_error(err, name, what);
    }
    return 0;
}

/* CRC-32 as PNG uses it (ISO 3309, reflected 0xedb88320), table on the stack. */
static uint32_t crc32_png(const uint8_t *p, size_t n, const uint32_t *table) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int vgpt_image_read_png_fix_crcs(const void *buf, size_t len, uint8_t **fixed) {
    uint32_t table[256];
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
    const uint8_t *b = buf;
    uint8_t *copy = NULL;
    int seen_idat = 0;
    *fixed = NULL;
    /* chunk = length(4) type(4) data(length) crc(4) */
    for (size_t off = 8; off + 12 <= len;) {
        uint32_t n = be32(b + off);
        if (n > len - off - 12) break;  /* truncated chunk: leave it to libpng */
        seen_idat |= !memcmp(b + off + 4, "IDAT", 4);
        uint32_t crc = crc32_png(b + off + 4, (size_t)n + 4, table);
        if (seen_idat && crc != be32(b + off + 8 + n)) {
            if (!copy) {
                if (!(copy = malloc(len))) return -1;
                memcpy(copy, b, len);
            }
            uint8_t *c = copy + off + 8 + n;
            c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16);
            c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
        }
        off += (size_t)n + 12;
    }
    *fixed = copy;
    return copy != NULL;
}

/* PNG colour type and bit depth straight from IHDR (bytes 24 and 25). */
static int png_ihdr(const uint8_t *b, size_t len, int *depth, int *ctype) {
    if (len < 26 || memcmp(b + 12, "IHDR", 4)) return -1;
    *depth = b[24];
    *ctype = b[25];
    return 0;
}

/* Colour of the first frame's transparent index: PIL's convert('RGB') shows
 * that palette colour where libnsgif reports alpha 0.  Returns 1 if the
 * first frame has a transparent index (rgb set), 0 if not or unparsable. */
static int gif_key_colour(const uint8_t *b, size_t len, uint8_t rgb[3]) {
    if (len < 13) return 0;
    const uint8_t *gct = b[10] & 0x80 ? b + 13 : NULL;
    size_t gct_n = gct ? (size_t)2 << (b[10] & 7) : 0;
    size_t off = 13 + 3 * gct_n;
    int key = -1;
    while (off < len) {
        if (b[off] == 0x21 && off + 1 < len) {  /* extension: label, sub-blocks */
            if (b[off + 1] == 0xf9 && off + 6 < len && b[off + 2] == 4 && (b[off + 3] & 1))
                key = b[off + 6];
            off += 2;
            while (off < len && b[off]) off += (size_t)b[off] + 1;
            off++;
        } else if (b[off] == 0x2c && off + 9 < len) {  /* first image descriptor */
            const uint8_t *tab = gct;
            size_t n = gct_n;
            if (b[off + 9] & 0x80) tab = b + off + 10, n = (size_t)2 << (b[off + 9] & 7);
            if (key < 0) return 0;
            int inside = tab && (size_t)key < n && (size_t)(tab - b) + 3 * n <= len;
            for (int c = 0; c < 3; c++) rgb[c] = inside ? tab[3 * key + c] : 0;
            return 1;
        } else {
            return 0;
        }
    }
    return 0;
}

int vgpt_image_read_layout(VipsImage *im, vgpt_image_format fmt, const void *buf,
                       size_t len, const char *name, vgpt_pix_layout *l,
                       vgpt_err *err) {
    VipsBandFormat bf = vips_image_get_format(im);
    int bands = vips_image_get_bands(im);
    if (vips_image_get_coding(im) != VIPS_CODING_NONE)
        return vgpt_err_set(err, "%s: unsupported coded pixel storage", name);
    if (bf != VIPS_FORMAT_UCHAR && bf != VIPS_FORMAT_USHORT)
        return vgpt_err_set(err, "%s: unsupported sample format %s (expected 8 or 16 bits per sample)",
                            name, vips_enum_nick(VIPS_TYPE_BAND_FORMAT, bf));
    if (bands < 1 || bands > 16)
        return vgpt_err_set(err, "%s: %d bands per pixel (expected 1 to 16)", name, bands);
    l->bands = bands;
    l->bytes = bf == VIPS_FORMAT_USHORT ? 2 : 1;
    if (vips_image_get_interpretation(im) == VIPS_INTERPRETATION_CMYK && bands >= 4)
        l->kind = VGPT_PIX_CMYK;
    else
        l->kind = bands >= 3 ? VGPT_PIX_RGB : VGPT_PIX_GRAY;
    l->gif_key = fmt == VGPT_FMT_GIF && bands == 4 && l->bytes == 1 &&
                 gif_key_colour(buf, len, l->key);
    int depth, ctype;
    if (fmt == VGPT_FMT_PNG && l->bytes == 2 && !png_ihdr(buf, len, &depth, &ctype) &&
        depth == 16 && ctype == 0)
        l->kind = VGPT_PIX_GRAY_CLIP16;
    return 0;
}

/* PIL's cmyk2rgb: MULDIV255(a, b) = (a*b + 128 + ((a*b + 128) >> 8)) >> 8. */
static uint8_t cmyk_chan(int c, int nk) {
    int t = c * nk + 128;
    int v = nk - ((t + (t >> 8)) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void vgpt_image_read_row_rgb(const vgpt_pix_layout *l, const void *src, int w,
                         uint8_t *dst) {
    const uint8_t *s8 = src;
    const uint16_t *s16 = src;
    int nb = l->bands;
    if (l->gif_key) {  /* RGBA, alpha 0 exactly on the transparent index */
        for (int x = 0; x < w; x++) {
            const uint8_t *p = s8[4 * x + 3] ? s8 + 4 * x : l->key;
            memcpy(dst + 3 * x, p, 3);
        }
        return;
    }
    if (l->bytes == 1 && l->kind == VGPT_PIX_RGB) {  /* the common cases, fast */
        if (nb == 3) {
            memcpy(dst, s8, (size_t)w * 3);
        } else {
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) dst[3 * x + c] = s8[(size_t)x * nb + c];
        }
        return;
    }
    for (int x = 0; x < w; x++) {
        uint8_t v[4];
        int nv = nb < 4 ? nb : 4;
        for (int c = 0; c < nv; c++) {
            size_t i = (size_t)x * nb + c;
            if (l->bytes == 1) v[c] = s8[i];
            else if (l->kind == VGPT_PIX_GRAY_CLIP16) v[c] = s16[i] > 255 ? 255 : (uint8_t)s16[i];
            else v[c] = (uint8_t)(s16[i] >> 8);
        }
        uint8_t *d = dst + 3 * (size_t)x;
        switch (l->kind) {
        case VGPT_PIX_GRAY:
        case VGPT_PIX_GRAY_CLIP16:
            d[0] = d[1] = d[2] = v[0];
            break;
        case VGPT_PIX_RGB:
            d[0] = v[0], d[1] = v[1], d[2] = v[2];
            break;
        case VGPT_PIX_CMYK: {
            int nk = 255 - v[3];
            d[0] = cmyk_chan(v[0], nk);
            d[1] = cmyk_chan(v[1], nk);
            d[2] = cmyk_chan(v[2], nk);
            break;
        }
        }
    }
}
