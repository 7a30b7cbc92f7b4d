/* hugemem.c - see hugemem.h.  glibc serves a large posix_memalign from its
 * own mapping and never touches the slack before the aligned start, so the
 * 2 MB alignment costs address space, not memory (not aligned_alloc: C11
 * wants its size a multiple of the alignment, and ASan holds it to that).
 * madvise failing (no THP in this kernel, or "never") leaves ordinary
 * pages: the same memory, only slower to stream. */
#include "hugemem.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

void *vgpt_hugemem_alloc(size_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    if (bytes < HUGE_PAGE) return aligned_alloc(64, bytes);
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, bytes)) return NULL;
    (void)madvise(p, bytes / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
    return p;
}
