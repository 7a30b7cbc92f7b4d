/* image_read.h - the libvips side of image loading: recognise the format
 * from magic bytes (as PIL does, never from the name), open it lazily with
 * the loader and options that reproduce PIL's pixels, and convert decoded
 * rows to RGB with PIL's convert('RGB') rules, quirks included.
 *
 * image.c drives these to stream rows into the resize; they are split out so
 * the format rules can be read (and tested) in one place. */
#ifndef VGPT_IMAGE_READ_H
#define VGPT_IMAGE_READ_H

#include <stddef.h>
#include <stdint.h>

#include <vips/vips.h>

#include "err.h"

typedef enum vgpt_image_format {
    VGPT_FMT_UNKNOWN = 0,
    VGPT_FMT_JPEG,
    VGPT_FMT_PNG,
    VGPT_FMT_GIF,
    VGPT_FMT_WEBP,
    VGPT_FMT_TIFF,
    VGPT_FMT_BMP,
    VGPT_FMT_PNM,
} vgpt_image_format;

vgpt_image_format vgpt_image_sniff(const void *buf, size_t len);
const char *vgpt_image_format_name(vgpt_image_format f);

/* How one decoded pixel becomes PIL RGB. */
typedef enum vgpt_pix_kind {
    VGPT_PIX_GRAY,        /* band 0 replicated (L, LA, palette gray) */
    VGPT_PIX_GRAY_CLIP16, /* 16-bit gray PNG: PIL mode I, convert clips to 255 */
    VGPT_PIX_RGB,         /* bands 0..2, extra (alpha) bands dropped */
    VGPT_PIX_CMYK,        /* PIL's naive cmyk2rgb, no ICC */
} vgpt_pix_kind;

typedef struct vgpt_pix_layout {
    vgpt_pix_kind kind;
    int bands;  /* samples per decoded pixel */
    int bytes;  /* 1 (u8) or 2 (u16, native endian; PIL keeps the high byte) */
    int gif_key;        /* GIF RGBA: alpha-0 pixels take the colour `key` */
    uint8_t key[3];     /* (PIL shows the transparent index's palette entry) */
} vgpt_pix_layout;

/* Loader settings that change pixels. */
typedef struct vgpt_image_read_opts {
    int sequential;       /* stream rows top to bottom (no random access) */
    int accept_truncated; /* 0: truncated data is an error (PIL parity) */
    int shrink;           /* JPEG shrink-on-load factor 1, 2, 4 or 8 */
} vgpt_image_read_opts;

/* Opens buf lazily (header only; pixels decode on demand).  buf must stay
 * alive as long as the image.  Errors name `name`. */
int vgpt_image_read_open(const void *buf, size_t len, vgpt_image_format fmt,
                     const vgpt_image_read_opts *d, const char *name,
                     VipsImage **out, vgpt_err *err);

/* Picks the RGB conversion for an opened image (buf is needed to tell PNG
 * colour types apart, which libvips does not report). */
int vgpt_image_read_layout(VipsImage *im, vgpt_image_format fmt, const void *buf,
                       size_t len, const char *name, vgpt_pix_layout *l,
                       vgpt_err *err);

/* One decoded row of w pixels -> dst [w][3]. */
void vgpt_image_read_row_rgb(const vgpt_pix_layout *l, const void *src, int w,
                         uint8_t *dst);

/* PIL does not check the CRCs of IDAT and later PNG chunks, but libpng
 * rejects them unless told to ignore every error (fail_on=none), which would
 * also hide corrupt or truncated data.  So a PNG that failed is retried from
 * a copy with those CRCs recomputed: returns 1 and *fixed (free it) if any
 * CRC was wrong, 0 if none was, -1 if out of memory. */
int vgpt_image_read_png_fix_crcs(const void *buf, size_t len, uint8_t **fixed);

/* Sets "name: what (libvips: <its error log on one line>)" and clears the
 * libvips log. */
int vgpt_image_read_error(vgpt_err *err, const char *name, const char *what);

#endif
