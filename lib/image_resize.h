/* image_resize.h - a bit-exact port of Pillow 9.4's 8-bit BILINEAR resize
 * (libImaging/Resample.c), which is what torchvision Resize((224,224)) runs
 * on a PIL image.  Any other kernel (vips_resize, thumbnail) changes pixels
 * and therefore captions, so the published preprocessing is reproduced here.
 *
 * The resize is separable: a horizontal pass per input row (rounded and
 * clipped to u8), then a vertical pass over those rows.  The passes are
 * exposed separately so a decoder can stream rows through the horizontal
 * pass and never hold the full-size image.  Pixels are RGB, 3 bytes. */
#ifndef VGPT_IMAGE_RESIZE_H
#define VGPT_IMAGE_RESIZE_H

#include <stdint.h>

#include "err.h"

/* Fixed-point filter taps for one axis, in_size -> out_size.  Output i reads
 * inputs [start[i], start[i] + n[i]) with weights k[off[i] ...]. */
typedef struct vgpt_resize_axis {
    int in_size, out_size;
    int *start, *n, *off;  /* [out_size] each */
    int32_t *k;            /* [sum of n], weights in 1/2^22 units */
} vgpt_resize_axis;

/* Computes the taps exactly as Pillow's precompute_coeffs does (double
 * weights normalised to sum 1, then rounded to 22-bit fixed point). */
int vgpt_resize_axis_init(vgpt_resize_axis *a, int in_size, int out_size,
                          vgpt_err *err);
void vgpt_resize_axis_free(vgpt_resize_axis *a);

/* First and one-past-last input index any output reads (rows the
 * horizontal pass must produce for the vertical pass). */
int vgpt_resize_axis_first(const vgpt_resize_axis *a);
int vgpt_resize_axis_last(const vgpt_resize_axis *a);

/* src [a->in_size][3] -> dst [a->out_size][3] (one row, horizontal pass). */
void vgpt_resize_row(const vgpt_resize_axis *a, const uint8_t *src,
                     uint8_t *dst);

/* Vertical pass: src rows [a->in_size - first][w][3] holding input rows
 * first.. (see vgpt_resize_axis_first) -> dst [a->out_size][w][3]. */
int vgpt_resize_cols(const vgpt_resize_axis *a, int first, const uint8_t *src,
                     int w, uint8_t *dst, vgpt_err *err);

/* Whole-image convenience: src [h][w][3] -> dst [oh][ow][3], both passes,
 * skipping a pass whose size is unchanged (as Pillow does). */
int vgpt_resize_bilinear(const uint8_t *src, int w, int h, uint8_t *dst,
                         int ow, int oh, vgpt_err *err);

#endif
