/* hugemem.c - see hugemem.h.  glibc serves a large aligned_alloc from its
 * own mapping and never touches the slack before the aligned start, so the
 * 2 MB alignment costs address space, not memory.  madvise failing (no
 * THP in this kernel, or "never") leaves ordinary pages: the same memory,
 * only slower to stream. */
#include "hugemem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

void *vgpt_hugemem_alloc(size_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    if (bytes < HUGE_PAGE) return aligned_alloc(64, bytes);
    void *p = aligned_alloc(HUGE_PAGE, bytes);
    if (p) (void)madvise(p, bytes / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
    return p;
}
