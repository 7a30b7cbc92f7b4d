/* image_opts.h - how an image file becomes the model's input: the settings
 * carried from the client to preprocd and into the cache key, their limits
 * and defaults, and the model's input size, defined once.  Free of image
 * code so that proto/ can include it. */
#ifndef VGPT_IMAGE_OPTS_H
#define VGPT_IMAGE_OPTS_H

#include <stdint.h>

#define VGPT_IMAGE_SIZE 224
#define VGPT_IMAGE_DEFAULT_MAX_PIXELS 100000000ULL
/* The most --max-pixels may ask for, in vgpt-cli (both modes) and preprocd:
 * the default, so a request never asks for more than a preprocd allows. */
#define VGPT_IMAGE_MAX_PIXELS VGPT_IMAGE_DEFAULT_MAX_PIXELS
/* Largest image file read, in every mode: a request carries the file's
 * bytes, and the daemons drop frames over 64 MiB (VGPT_ZSOCK_MAXMSG). */
#define VGPT_IMAGE_MAX_FILE_BYTES (60u << 20)
/* Images per encoder pass at most (vgpt-cli --batch, encoderd --batch). */
#define VGPT_IMAGE_MAX_BATCH 64

typedef struct vgpt_image_opts {
    int autorotate;        /* honour EXIF orientation (default 1; 0 = published behaviour) */
    int fast_decode;       /* allow JPEG shrink-on-load (changes pixels; default 0) */
    int accept_truncated;  /* caption what could be decoded of a truncated file (default 0) */
    uint64_t max_pixels;   /* refuse larger images before decoding (default 100e6; 0 = default) */
} vgpt_image_opts;

void vgpt_image_opts_default(vgpt_image_opts *o);

#endif
