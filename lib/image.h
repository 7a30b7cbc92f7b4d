/* image.h - decode any image file and resize it exactly as the published
 * model's preprocessing did (PIL Image.open().convert('RGB') followed by
 * torchvision Resize((224,224)), i.e. PIL's antialiased BILINEAR filter).
 *
 * Output is the resized 8-bit RGB image, row-major, interleaved [H][W][3].
 * Normalisation to float happens in the encoder (vgpt_image_normalize). */
#ifndef VGPT_IMAGE_H
#define VGPT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "image_opts.h"

/* Process-wide libvips start-up; call once from main before any decode. */
int vgpt_image_init(const char *argv0, vgpt_err *err);
void vgpt_image_shutdown(void);

/* Decodes `len` bytes (`name` is only used in messages) and writes the
 * 224x224x3 result to out.  Returns -1 with "name: reason" on any failure.
 * Thread-safe, but libvips keeps one process-wide error log, so concurrent
 * failures may see each other's libvips details in their messages. */
int vgpt_image_load_buffer(const void *buf, size_t len, const char *name,
                           const vgpt_image_opts *o, uint8_t *out, vgpt_err *err);
/* Reads an image file's bytes (malloc'ed) with the checks and limits of
 * every mode: a regular file (never blocks on a FIFO), 1 byte to
 * VGPT_IMAGE_MAX_FILE_BYTES.  Errors name the path. */
int vgpt_image_read_file(const char *path, uint8_t **data, size_t *len, vgpt_err *err);
/* Reads the file at path (errors name the path) and calls load_buffer. */
int vgpt_image_load_file(const char *path, const vgpt_image_opts *o,
                         uint8_t *out, vgpt_err *err);

/* u8 [224][224][3] -> f32 [3][224][224], (v/255 - mean)/std in float32 in
 * the same order torchvision does, so the result is bit-exact.  mean and std
 * are the model family's (family.h). */
void vgpt_image_normalize(const uint8_t *rgb, const float mean[3], const float std[3], float *chw);

#endif
