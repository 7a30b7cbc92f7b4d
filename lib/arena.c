/* arena.c - see arena.h. */
#include "arena.h"

#include <stdlib.h>

float *vgpt_buf_get(vgpt_buf *b, size_t n) {
    if (n <= b->cap) return b->p;
    free(b->p);
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    b->p = aligned_alloc(64, bytes);
    b->cap = b->p ? n : 0;
    return b->p;
}

void vgpt_buf_free(vgpt_buf *b) {
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}
