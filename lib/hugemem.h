/* hugemem.h - memory for the weights every forward pass streams.
 *
 * A batch-16 decoding step reads each of its weights once, front to back
 * (254 MB in bf16, 508 MB in fp32): in 4 KB pages that is a page walk every
 * 4 KB, which the products' prefetches wait on.  Blocks from here sit on
 * transparent huge pages where the kernel offers them (Debian's default
 * is "madvise": only advised memory gets them).  Zen 4: a microbenchmark
 * of the batch-16 step's bf16 products alone, 10.4 -> 9.7 ms; whole steps,
 * the same build with and without in one process, batch 1 2-5% faster,
 * batch 16 within the host's noise.  Freed with free(). */
#ifndef VGPT_HUGEMEM_H
#define VGPT_HUGEMEM_H

#include <stddef.h>

/* bytes (rounded up to 64), 64-byte aligned; from 2 MB up, 2 MB aligned
 * with every whole 2 MB extent advised to huge pages and the tail left in
 * 4 KB pages, so the resident size stays the block's own.  NULL when out
 * of memory. */
void *vgpt_hugemem_alloc(size_t bytes);

#endif
