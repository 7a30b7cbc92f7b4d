/* model_bind.c - see model_bind.h. */
#include "model_bind.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "hugemem.h"

int vgpt_bind_has(const vgpt_binder *b, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return vgpt_ckpt_find(b->m->ckpt, name) != NULL;
}

static void *own(vgpt_model *m, size_t bytes) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, cap * sizeof *p);
        if (!p) return NULL;
        m->owned = p;
        m->cap_owned = cap;
    }
    void *mem = vgpt_hugemem_alloc(bytes); /* may become a packed weight in place */
    if (mem) m->owned[m->n_owned++] = mem;
    return mem;
}

int vgpt_model_take_owned(vgpt_model *m, const void *p) {
    for (int i = 0; i < m->n_owned; i++)
        if (m->owned[i] == p) {
            m->owned[i] = m->owned[--m->n_owned];
            return 1;
        }
    return 0;
}

int vgpt_model_free_owned(vgpt_model *m, const void *p) {
    if (!vgpt_model_take_owned(m, p)) return 0;
    free((void *)p);
    return 1;
}

static float load_elem(const vgpt_tensor *t, int64_t idx) {
    switch (t->dtype) {
    case VGPT_DT_F32: return ((const float *)t->data)[idx];
    case VGPT_DT_F16: return vgpt_half_to_float(((const uint16_t *)t->data)[idx]);
    default: return vgpt_bf16_to_float(((const uint16_t *)t->data)[idx]);
    }
}

static int in_place(const vgpt_tensor *t) {
    return t->dtype == VGPT_DT_F32 && t->contiguous;
}

/* fp32 contiguous tensors are returned in place; anything else is widened
 * (and gathered through its strides) into an owned buffer. */
static const float *materialize(vgpt_model *m, const vgpt_tensor *t) {
    if (in_place(t)) return t->data;
    /* a matrix gets room for whole VGPT_PANEL-row panels, so the decoder's
     * can be packed in place (vgpt_pack_in_place), not beside themselves */
    size_t n = t->ndim == 2 ? (size_t)((t->shape[0] + VGPT_PANEL - 1) / VGPT_PANEL * VGPT_PANEL) * t->shape[1]
                            : (size_t)t->numel;
    float *dst = own(m, n * sizeof(float));
    if (!dst) return NULL;
    int64_t idx[VGPT_MAX_DIMS] = {0};
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        dst[i] = load_elem(t, off);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    /* the narrow original is not read again: its pages leave the resident set */
    if (t->contiguous) vgpt_ckpt_drop_pages(m->ckpt, t->data, (size_t)t->numel * vgpt_dtype_size(t->dtype));
    return dst;
}

const float *vgpt_bind_materialize(vgpt_binder *b, const vgpt_tensor *t) {
    return materialize(b->m, t);
}

/* *slot is widened from view when the load first needs it (vgpt_model_widen). */
static void defer(vgpt_binder *b, const float **slot, const vgpt_tensor *view) {
    vgpt_model *m = b->m;
    *slot = NULL;
    if (m->n_deferred == m->cap_deferred) {
        int cap = m->cap_deferred ? 2 * m->cap_deferred : 64;
        vgpt_deferred *p = realloc(m->deferred, cap * sizeof *p);
        if (!p) {
            vgpt_bind_fail(b, "%s: out of memory binding tensor %s", vgpt_ckpt_path(m->ckpt), view->name);
            return;
        }
        m->deferred = p;
        m->cap_deferred = cap;
    }
    m->deferred[m->n_deferred++] = (vgpt_deferred){.slot = slot, .view = *view};
}

const vgpt_deferred *vgpt_model_deferred(const vgpt_model *m, const float *const *slot) {
    for (int i = 0; i < m->n_deferred; i++)
        if (m->deferred[i].slot == slot) return &m->deferred[i];
    return NULL;
}

int vgpt_model_widen(vgpt_model *m, const float **slot, vgpt_err *err) {
    vgpt_deferred *d = (vgpt_deferred *)vgpt_model_deferred(m, slot);
    if (!d || d->state != VGPT_DEFER_PENDING) return 0;
    if (!(*slot = materialize(m, &d->view)))
        return vgpt_err_set(err, "%s: out of memory widening tensor %s", vgpt_ckpt_path(m->ckpt), d->view.name);
    d->state = VGPT_DEFER_WIDENED;
    return 0;
}

int vgpt_model_widen_all(vgpt_model *m, vgpt_err *err) {
    for (int i = 0; i < m->n_deferred; i++)
        if (vgpt_model_widen(m, m->deferred[i].slot, err)) return -1;
    return 0;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape) {
    size_t n = snprintf(buf, len, "[");
    for (int d = 0; d < ndim && n < len; d++)
        n += snprintf(buf + n, len - n, d ? ",%lld" : "%lld", (long long)shape[d]);
    if (n < len) snprintf(buf + n, len - n, "]");
}

/* Looks up a tensor and checks its rank, every dimension given
 * (VGPT_BIND_ANY = free) and its dtype.  On failure records the first error
 * and returns NULL. */
static const vgpt_tensor *checked(vgpt_binder *b, const int64_t *want, int ndim, const char *fmt, va_list ap) {
    char name[256];
    vsnprintf(name, sizeof name, fmt, ap);
    if (b->failed) return NULL;
    const char *path = vgpt_ckpt_path(b->m->ckpt);
    const vgpt_tensor *t = vgpt_ckpt_find(b->m->ckpt, name);
    if (!t) {
        vgpt_bind_fail(b, "%s: missing tensor %s", path, name);
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = want[d] == VGPT_BIND_ANY || want[d] == t->shape[d];
    if (!ok) {
        char got[128], exp[128];
        int64_t shown[VGPT_MAX_DIMS];
        for (int d = 0; d < ndim; d++) shown[d] = want[d];
        shape_str(got, sizeof got, t->ndim, t->shape);
        shape_str(exp, sizeof exp, ndim, shown);
        vgpt_bind_fail(b, "%s: tensor %s has shape %s, expected %s (-1 = any)", path, name, got, exp);
        return NULL;
    }
    if (t->dtype == VGPT_DT_OTHER || !t->data) {
        vgpt_bind_fail(b, "%s: tensor %s has dtype %s; vgpt reads float32, float16 and bfloat16", path, name,
                       vgpt_dtype_name(t->dtype));
        return NULL;
    }
    return t;
}

static const float *getv(vgpt_binder *b, const int64_t *want, int ndim, const char *fmt, va_list ap) {
    const vgpt_tensor *t = checked(b, want, ndim, fmt, ap);
    if (!t) return NULL;
    const float *p = vgpt_bind_materialize(b, t);
    if (!p) vgpt_bind_fail(b, "%s: out of memory widening tensor %s", vgpt_ckpt_path(b->m->ckpt), t->name);
    return p;
}

const float *vgpt_bind_get1(vgpt_binder *b, int64_t d0, const char *fmt, ...) {
    int64_t want[1] = {d0};
    va_list ap;
    va_start(ap, fmt);
    const float *p = getv(b, want, 1, fmt, ap);
    va_end(ap);
    return p;
}

const float *vgpt_bind_get2(vgpt_binder *b, int64_t d0, int64_t d1, const char *fmt, ...) {
    int64_t want[2] = {d0, d1};
    va_list ap;
    va_start(ap, fmt);
    const float *p = getv(b, want, 2, fmt, ap);
    va_end(ap);
    return p;
}

void vgpt_bind_matrix(vgpt_binder *b, const float **slot, int64_t d0, int64_t d1, const char *fmt, ...) {
    int64_t want[2] = {d0, d1};
    va_list ap;
    va_start(ap, fmt);
    const vgpt_tensor *t = checked(b, want, 2, fmt, ap);
    va_end(ap);
    *slot = NULL;
    if (!t) return;
    if (in_place(t))
        *slot = t->data;
    else
        defer(b, slot, t);
}

const vgpt_tensor *vgpt_bind_find(const vgpt_binder *b, const char *name) {
    return vgpt_ckpt_find(b->m->ckpt, name);
}

/* prefix.weight (out,in) and, when with_bias, prefix.bias (out). */
void vgpt_bind_lin(vgpt_binder *b, vgpt_lin *l, int out, int in, int with_bias, const char *prefix) {
    l->in = in;
    l->out = out;
    vgpt_bind_matrix(b, &l->w, out, in, "%s.weight", prefix);
    l->b = with_bias ? vgpt_bind_get1(b, out, "%s.bias", prefix) : NULL;
}

void vgpt_bind_ln(vgpt_binder *b, vgpt_ln *ln, int C, const char *prefix, const char *w, const char *s) {
    ln->scale = vgpt_bind_get1(b, C, "%s.%s", prefix, w);
    ln->shift = vgpt_bind_get1(b, C, "%s.%s", prefix, s);
}

/* A tensor the vgpt_binder needs whole (not via get1/get2) with a shape check by numel. */
const float *vgpt_bind_numel(vgpt_binder *b, const char *name, int64_t numel, const char *expect) {
    const vgpt_tensor *t = vgpt_bind_find(b, name);
    if (b->failed) return NULL;
    if (!t || t->numel != numel) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensor %s %s, expected %s", vgpt_ckpt_path(b->m->ckpt), name,
                     t ? "has the wrong shape" : "is missing", expect);
        return NULL;
    }
    if (t->dtype == VGPT_DT_OTHER || !t->data) {
        b->failed = 1;
        vgpt_err_set(b->err, "%s: tensor %s has dtype %s; vgpt reads float32, float16 and bfloat16",
                     vgpt_ckpt_path(b->m->ckpt), name, vgpt_dtype_name(t->dtype));
        return NULL;
    }
    return vgpt_bind_materialize(b, t);
}

/* Rows of prefix.weight, i.e. a Linear's output width (0 when absent). */
int vgpt_bind_rows(const vgpt_binder *b, const char *prefix) {
    char name[300];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const vgpt_tensor *t = vgpt_bind_find(b, name);
    return t && t->ndim == 2 ? (int)t->shape[0] : 0;
}

/* GPT-2's Conv1D keeps its weight as [in, cols] (x @ W): columns
 * col0..col0+out of it, as an owned (out, in) matrix, through a transposed
 * view of the tensor (materialize gathers by strides). */
void vgpt_bind_conv1d(vgpt_binder *b, vgpt_lin *l, int in, int cols, int col0, int out, const char *prefix) {
    char name[300];
    snprintf(name, sizeof name, "%s.weight", prefix);
    l->in = in;
    l->out = out;
    l->w = l->b = NULL;
    if (!vgpt_bind_get2(b, in, cols, "%s", name)) return; /* checks shape and dtype */
    const vgpt_tensor *t = vgpt_bind_find(b, name);
    vgpt_tensor v = *t;
    v.shape[0] = out, v.shape[1] = in;
    v.stride[0] = t->stride[1], v.stride[1] = t->stride[0];
    v.data = (const uint8_t *)t->data + (size_t)col0 * t->stride[1] * vgpt_dtype_size(t->dtype);
    v.numel = (int64_t)out * in;
    v.contiguous = 0;
    defer(b, &l->w, &v); /* a transposed view is never in place */
    const float *bias = vgpt_bind_get1(b, cols, "%s.bias", prefix);
    l->b = bias ? bias + col0 : NULL;
}

/* n Linears of the same input, their rows stacked into one owned (n*out, in)
 * weight and (n*out) bias: one product instead of n. */
void vgpt_bind_stack(vgpt_binder *b, vgpt_lin *l, int n, int out, int in, const char *const *prefixes) {
    l->in = in;
    l->out = n * out;
    float *w = own(b->m, (size_t)n * out * in * sizeof(float)), *bias = own(b->m, (size_t)n * out * sizeof(float));
    l->w = w;
    l->b = bias;
    if (!w || !bias) {
        vgpt_bind_fail(b, "%s: out of memory stacking %s", vgpt_ckpt_path(b->m->ckpt), prefixes[0]);
        return;
    }
    for (int i = 0; i < n && !b->failed; i++) {
        const float *wi = vgpt_bind_get2(b, out, in, "%s.weight", prefixes[i]);
        const float *bi = vgpt_bind_get1(b, out, "%s.bias", prefixes[i]);
        if (!wi || !bi) return;
        memcpy(w + (size_t)i * out * in, wi, (size_t)out * in * sizeof(float));
        memcpy(bias + (size_t)i * out, bi, (size_t)out * sizeof(float));
        vgpt_model_free_owned(b->m, wi); /* a widened copy is not needed twice */
        vgpt_model_free_owned(b->m, bi);
    }
}

int vgpt_bind_fail(vgpt_binder *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (!b->failed) vsnprintf(b->err->msg, sizeof b->err->msg, fmt, ap);
    va_end(ap);
    b->failed = 1;
    return -1;
}
