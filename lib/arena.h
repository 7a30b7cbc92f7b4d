/* arena.h - reusable scratch buffers that only grow.
 *
 * The encoder and decoder run the same shapes over and over; keeping their
 * activations in buffers that are allocated once (and regrown only when a
 * larger batch arrives) keeps malloc/page faults out of the hot path. */
#ifndef VGPT_ARENA_H
#define VGPT_ARENA_H

#include <stddef.h>

typedef struct vgpt_buf {
    float *p;
    size_t cap; /* floats */
} vgpt_buf;

/* Returns a buffer of at least n floats (contents undefined), NULL on OOM. */
float *vgpt_buf_get(vgpt_buf *b, size_t n);
void vgpt_buf_free(vgpt_buf *b);

#endif
