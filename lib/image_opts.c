/* image_opts.c - see image_opts.h. */
#include "image_opts.h"

void vgpt_image_opts_default(vgpt_image_opts *o) {
    o->autorotate = 1;
    o->fast_decode = 0;
    o->accept_truncated = 0;
    o->max_pixels = VGPT_IMAGE_DEFAULT_MAX_PIXELS;
}
