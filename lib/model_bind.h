/* model_bind.h - binding checkpoint tensors to the engine's structs, shared
 * by every model family (family_*.c): look a tensor up, check its shape,
 * get fp32 data (in place, or widened once into a buffer the model owns).
 * The first failure is recorded in the binder with a message naming the
 * file, the tensor and the shape expected; later calls then do nothing. */
#ifndef VGPT_MODEL_BIND_H
#define VGPT_MODEL_BIND_H

#include <stdint.h>

#include "model.h"

typedef struct vgpt_binder {
    vgpt_model *m;
    vgpt_err *err;
    int failed;
} vgpt_binder;

#define VGPT_BIND_ANY (-1) /* a dimension that may have any size */

/* 1 if the tensor named by the format exists. */
int vgpt_bind_has(const vgpt_binder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const vgpt_tensor *vgpt_bind_find(const vgpt_binder *b, const char *name);
/* fp32 data of t: in place when it is contiguous fp32, else widened. */
const float *vgpt_bind_materialize(vgpt_binder *b, const vgpt_tensor *t);
/* A matrix the load converts or packs before use (a Linear's weight, the
 * head, tok_emb), checked to be [d0,d1]: *slot is the tensor in place when
 * it is contiguous fp32, else NULL until vgpt_model_widen (model.h). */
void vgpt_bind_matrix(vgpt_binder *b, const float **slot, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The tensor, checked to be [d0] / [d0,d1] (VGPT_BIND_ANY = any size). */
const float *vgpt_bind_get1(vgpt_binder *b, int64_t d0, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const float *vgpt_bind_get2(vgpt_binder *b, int64_t d0, int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* prefix.weight (out,in) (bound as vgpt_bind_matrix) and, when with_bias,
 * prefix.bias (out). */
void vgpt_bind_lin(vgpt_binder *b, vgpt_lin *l, int out, int in, int with_bias, const char *prefix);
/* GPT-2 Conv1D prefix.weight [in,cols] (+ prefix.bias [cols]): columns
 * col0..col0+out bound as an (out,in) Linear, transposed into a copy the
 * model owns when it is widened (vgpt_model_widen). */
void vgpt_bind_conv1d(vgpt_binder *b, vgpt_lin *l, int in, int cols, int col0, int out, const char *prefix);
/* n Linears prefixes[i].weight (out,in) + .bias, stacked into one (n*out,in). */
void vgpt_bind_stack(vgpt_binder *b, vgpt_lin *l, int n, int out, int in, const char *const *prefixes);
/* prefix.w and prefix.s, both [C]. */
void vgpt_bind_ln(vgpt_binder *b, vgpt_ln *ln, int C, const char *prefix, const char *w, const char *s);
/* A tensor needed whole, checked by its element count (expect: for the message). */
const float *vgpt_bind_numel(vgpt_binder *b, const char *name, int64_t numel, const char *expect);
/* Rows of prefix.weight, i.e. a Linear's output width (0 when absent). */
int vgpt_bind_rows(const vgpt_binder *b, const char *prefix);
/* Records the first failure (formats into b->err) and returns -1. */
int vgpt_bind_fail(vgpt_binder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
