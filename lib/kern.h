/* kern.h - the hand-written kernels, one set per instruction set.
 *
 * vgpt is built for every x86-64 host (no -march=native): the few loops
 * that OpenBLAS and oneDNN do not cover (the decoder's packed products,
 * its one-row attention dot products, and on AVX2 the encoder's bf16
 * products, whose sums must not depend on the number of rows as sgemm's
 * do) come in AVX-512, AVX2 and generic C
 * versions, each file built with its own target flags, and the best one
 * the CPU runs is chosen once per process.  VGPT_ISA=generic|avx2|avx512
 * lowers the choice (never raises it past the CPU): tests run the engine
 * with the generic path forced, so the fallback is proven, not assumed. */
#ifndef VGPT_KERN_H
#define VGPT_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "half.h"
#include "packed.h"

/* One product out (M,OC) = inp (M,C) @ packed W^T, as packed.c splits it. */
typedef struct vgpt_panel_job {
    float *out;
    const float *inp;
    const vgpt_packed *w;
    int M, flags;
} vgpt_panel_job;

typedef struct vgpt_kernels {
    const char *name; /* "avx512", "avx2", "generic" */
    /* Columns of a panel stored together per k (packed.h): the panel is
     * VGPT_PANEL / strip strips (C, strip) one after another, so that each
     * pass of the kernel over a strip reads memory front to back (a pass
     * that took 64 of every 192 bytes got half the bandwidth on Zen 3). */
    int strip;
    /* Panels pn0..pn1-1 of the product, every row. */
    void (*panels)(const vgpt_panel_job *j, int pn0, int pn1);
    /* One query's attention to n keys in one head of width hd (keys and
     * values rows ldk / ldv apart): s[t] = scale * q . k_t, then out +=
     * the sum of p[t] * v_t (the caller zeroes out; kernels.c goes over
     * the keys in blocks).  A decoding step runs thousands of each, too
     * small for a library call; held in registers, not summed per key. */
    void (*scores)(float *s, const float *q, const float *k, int ldk, int n, int hd, float scale);
    void (*mix)(float *out, const float *p, const float *v, int ldv, int n, int hd);
    /* The same over bf16 keys and values (the decoder's caches with
     * --precision bf16: half the bytes a step reads), widened exactly as
     * they are read; q, p, s and out stay fp32. */
    void (*scores_bf16)(float *s, const float *q, const uint16_t *k, int ldk, int n, int hd, float scale);
    void (*mix_bf16)(float *out, const float *p, const uint16_t *v, int ldv, int n, int hd);
    /* The many-row bf16 products (the encoder's, mm_own.c), or NULL where
     * the set has none (OpenBLAS's sgemm then): out (M, OC) += x (M, C) @
     * the bf16 panels pn0..pn1-1 of w (packed.h) transposed, x rounded to
     * bf16 already, out holding the bias (and residual) going in.  Each
     * output's sum runs over k in order from out's value whatever M, so a
     * row's result does not depend on the other rows (sgemm's does).  wide
     * holds VGPT_ROWS_WIDE floats; at most VGPT_ROWS_PANELS panels a call. */
    void (*rows_bf16)(float *out, const float *x, const vgpt_packed *w, int M, int pn0, int pn1, float *wide);
} vgpt_kernels;

/* rows_bf16 widens ROWS_K inputs x VGPT_ROWS_PANELS panels of the weight
 * at a time (Zen 3: 384 x 192 fp32, 288 KB, stays in L2 while every row
 * passes; 256 or 512 inputs were 5-20% slower). */
#define VGPT_ROWS_K 384
#define VGPT_ROWS_PANELS 4
#define VGPT_ROWS_WIDE (VGPT_ROWS_K * VGPT_ROWS_PANELS * VGPT_PANEL)

/* Element i of a key / value row: fp32, or bf16 widened exactly (the
 * columns a kernel's vectors leave over, and the generic set). */
static inline float vgpt_kern_elem(const void *x, size_t i, int bf16) {
    return bf16 ? vgpt_bf16_to_float(((const uint16_t *)x)[i]) : ((const float *)x)[i];
}

/* A set's four attention entries: its scores_any / mix_any (always
 * inlined, bf16 a constant) under the file's target attribute. */
#define VGPT_KERN_ATTENTION_ENTRIES(TARGET)                                                                   \
    TARGET static void scores(float *s, const float *q, const float *k, int ldk, int n, int hd, float scale) { \
        scores_any(s, q, k, ldk, n, hd, scale, 0);                                                             \
    }                                                                                                          \
    TARGET static void mix(float *out, const float *p, const float *v, int ldv, int n, int hd) {               \
        mix_any(out, p, v, ldv, n, hd, 0);                                                                     \
    }                                                                                                          \
    TARGET static void scores_bf16(float *s, const float *q, const uint16_t *k, int ldk, int n, int hd,        \
                                   float scale) {                                                              \
        scores_any(s, q, k, ldk, n, hd, scale, 1);                                                             \
    }                                                                                                          \
    TARGET static void mix_bf16(float *out, const float *p, const uint16_t *v, int ldv, int n, int hd) {       \
        mix_any(out, p, v, ldv, n, hd, 1);                                                                     \
    }

extern const vgpt_kernels vgpt_kernels_avx512, vgpt_kernels_avx2, vgpt_kernels_generic;

/* The set for this CPU and VGPT_ISA, chosen on first use (a constant of
 * the process from then on). */
const vgpt_kernels *vgpt_kernels_get(void);

#endif
