/* mm_dnnl.c - bf16 matrix products on oneDNN's matmul primitive (mm.h).
 *
 * oneDNN's primitives are built for one shape: building one costs about a
 * millisecond (it JITs code for the CPU), a decoding step runs ~60 products
 * and the ViT a few per layer, so each weight keeps the primitives of the
 * row counts it has seen (a handful: batch sizes) and products reuse them.
 * The weight's layout is chosen once, for the first shape, and every later
 * shape is built on that layout (oneDNN's brgemm kernels accept it for any
 * row count).  One mutex per context: oneDNN's stream and the bf16 input
 * scratch are shared, and OpenMP inside each product uses the cores
 * (vgpt_set_threads, kernels.h, sets how many). */
#include "mm.h"

#include <dnnl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "hugemem.h"
#include "kern.h"
#include "mm_ctx.h"

void vgpt_mm_md2(dnnl_memory_desc_t *md, int64_t d0, int64_t d1, dnnl_data_type_t t, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {d0, d1};
    dnnl_memory_desc_init_by_tag(md, 2, dims, t, tag);
}

/* A matmul (M,C) bf16 x (C,OC) weight -> (M,OC) fp32 (bf16 with
 * MM_DST_BF16) with bias and flags; wmd NULL lets oneDNN choose the
 * weight's layout. */
static dnnl_status_t matmul_pd(dnnl_primitive_desc_t *pd, vgpt_mm_ctx *c, int M, int C, int OC, int flags,
                               const dnnl_memory_desc_t *wmd) {
    dnnl_memory_desc_t src, wei, bias, dst;
    vgpt_mm_md2(&src, M, C, dnnl_bf16, dnnl_ab);
    if (wmd) wei = *wmd;
    else vgpt_mm_md2(&wei, C, OC, dnnl_bf16, dnnl_format_tag_any);
    vgpt_mm_md2(&bias, 1, OC, dnnl_f32, dnnl_ab);
    vgpt_mm_md2(&dst, M, OC, flags & MM_DST_BF16 ? dnnl_bf16 : dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t desc;
    dnnl_status_t s = dnnl_matmul_desc_init(&desc, &src, &wei, &bias, &dst);
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (s == dnnl_success && flags) {
        s = dnnl_primitive_attr_create(&attr);
        if (s == dnnl_success) s = dnnl_post_ops_create(&po);
        if (s == dnnl_success && (flags & VGPT_ACCUMULATE)) s = dnnl_post_ops_append_sum(po, 1.0f);
        if (s == dnnl_success && (flags & VGPT_GELU_TANH))
            s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_tanh, 0.0f, 0.0f);
        if (s == dnnl_success && (flags & VGPT_GELU_ERF))
            s = dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (s == dnnl_success) s = dnnl_primitive_desc_create(pd, &desc, attr, c->engine, NULL);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s;
}

int vgpt_mm_ctx_new(vgpt_mm_ctx **out, vgpt_err *err) {
    vgpt_mm_ctx *c = calloc(1, sizeof *c);
    if (!c) return vgpt_err_set(err, "bf16: out of memory");
    snprintf(c->isa, sizeof c->isa, "none");
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    if (dnnl_engine_create(&c->engine, dnnl_cpu, 0) || dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags)) {
        vgpt_mm_ctx_free(c);
        *out = NULL;
        return vgpt_err_set(err, "bf16: cannot start oneDNN's CPU engine");
    }
    /* Probe one product: oneDNN 2.x has no bf16 matmul below AVX-512, and
     * VGPT_ISA below avx512 (kern.h) keeps it out too, so that tests prove
     * vgpt's own bf16 products on any host. */
    dnnl_primitive_desc_t pd;
    const vgpt_kernels *k = vgpt_kernels_get();
    if (strcmp(k->name, "avx512") || matmul_pd(&pd, c, 16, 64, 64, 0, NULL)) {
        c->own = 1;
        snprintf(c->isa, sizeof c->isa, "vgpt:%s", k->name); /* mm_own.c */
        return 0;
    }
    dnnl_primitive_desc_destroy(pd);
    return 0;
}

void vgpt_mm_ctx_set_release(vgpt_mm_ctx *c, void (*release)(void *arg, const float *p, size_t n), void *arg) {
    c->release = release;
    c->release_arg = arg;
}

void vgpt_mm_ctx_free(vgpt_mm_ctx *c) {
    if (!c) return;
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    pthread_mutex_destroy(&c->lock);
    vgpt_buf_free(&c->rows);
    vgpt_buf_free(&c->wide);
    vgpt_mm_attention_free(c);
    free(c);
}

const char *vgpt_mm_isa(const vgpt_mm_ctx *c) {
    return c->isa;
}

int vgpt_mm_ctx_check(vgpt_mm_ctx *c, vgpt_err *err) {
    pthread_mutex_lock(&c->lock);
    int failed = c->failed;
    if (failed && err) *err = c->first;
    c->failed = 0;
    pthread_mutex_unlock(&c->lock);
    return failed ? -1 : 0;
}

/* The stacked (OC,C) fp32 weight: w[0] itself when there is one. */
static float *stack_weights(int C, int n, const float *const *w, const int *rows, int OC, int *owned) {
    *owned = n > 1;
    if (n == 1) return (float *)w[0];
    float *all = malloc((size_t)OC * C * sizeof(float));
    for (int i = 0, o = 0; all && i < n; o += rows[i++]) memcpy(all + (size_t)o * C, w[i], (size_t)rows[i] * C * sizeof(float));
    return all;
}

/* Converts fp32 rows o0..o0+n-1 of the (OC,C) weight at src into their
 * place in w->wmem (a sub-block of the layout w->wmd; n = OC: all). */
static int reorder_rows(vgpt_mm *w, const float *src, int o0, int n) {
    dnnl_memory_desc_t smd, dmd = w->wmd;
    vgpt_mm_md2(&smd, w->C, n, dnnl_f32, dnnl_ba); /* (C,n) seen through (n,C) rows */
    if (n < w->OC) {
        dnnl_dims_t dims = {w->C, n}, offs = {0, o0};
        if (dnnl_memory_desc_init_submemory(&dmd, &w->wmd, dims, offs) != dnnl_success) return -1;
    }
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_memory_t smem = NULL;
    dnnl_status_t s = dnnl_reorder_primitive_desc_create(&rpd, &smd, w->c->engine, &dmd, w->c->engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&r, rpd);
    if (s == dnnl_success) s = dnnl_memory_create(&smem, &smd, w->c->engine, (void *)(src + (size_t)o0 * w->C));
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, smem}, {DNNL_ARG_TO, w->wmem}};
        s = dnnl_primitive_execute(r, w->c->stream, 2, args);
        if (s == dnnl_success) s = dnnl_stream_wait(w->c->stream);
    }
    if (smem) dnnl_memory_destroy(smem);
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return s == dnnl_success ? 0 : -1;
}

/* A large weight goes over in slices of SLICE rows, each handed to the
 * context's release hook once converted (its fp32 pages can go before the
 * next slice is read: the 50257-row head would otherwise be resident in
 * fp32 and bf16 at once).  A layout that cannot be cut there (or a small
 * weight) goes whole. */
#define SLICE 4096

static int reorder_weights(vgpt_mm *w, const float *src) {
    int cut = w->OC > 2 * SLICE && !reorder_rows(w, src, 0, SLICE);
    if (!cut) {
        if (reorder_rows(w, src, 0, w->OC)) return -1;
    } else {
        if (w->c->release) w->c->release(w->c->release_arg, src, (size_t)SLICE * w->C);
        for (int o = SLICE; o < w->OC; o += SLICE) {
            int n = w->OC - o < SLICE ? w->OC - o : SLICE;
            if (reorder_rows(w, src, o, n)) return -1;
            if (w->c->release) w->c->release(w->c->release_arg, src + (size_t)o * w->C, (size_t)n * w->C);
        }
        return 0;
    }
    if (w->c->release) w->c->release(w->c->release_arg, src, (size_t)w->OC * w->C);
    return 0;
}

static int setup_weight(vgpt_mm *w, const float *src) {
    dnnl_primitive_desc_t pd;
    if (matmul_pd(&pd, w->c, 16, w->C, w->OC, 0, NULL)) return -1;
    w->wmd = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_desc_t bmd;
    vgpt_mm_md2(&bmd, 1, w->OC, dnnl_f32, dnnl_ab);
    if (!(w->wdata = vgpt_hugemem_alloc(dnnl_memory_desc_get_size(&w->wmd))) ||
        dnnl_memory_create(&w->wmem, &w->wmd, w->c->engine, w->wdata) ||
        dnnl_memory_create(&w->bmem, &bmd, w->c->engine, w->bias))
        return -1;
    if (reorder_weights(w, src)) return -1;
    w->gemv = vgpt_mm_gemv_usable(w);
    return 0;
}

/* The oneDNN form: the stacked fp32 weight reordered into w->wmem. */
static int dnnl_weight(vgpt_mm *m, int n, const float *const *w, const int *rows) {
    int owned;
    float *src = stack_weights(m->C, n, w, rows, m->OC, &owned);
    int rc = src ? setup_weight(m, src) : -1;
    if (owned) free(src);
    return rc;
}

vgpt_mm *vgpt_mm_new(vgpt_mm_ctx *c, int C, int n, const float *const *w, const float *const *b,
                     const int *rows, vgpt_err *err) {
    int OC = 0;
    for (int i = 0; i < n; i++) OC += rows[i];
    vgpt_mm *m = calloc(1, sizeof *m);
    if (m) *m = (vgpt_mm){.c = c, .C = C, .OC = OC, .bias = calloc(OC, sizeof(float))};
    if (!m || !m->bias) {
        vgpt_mm_free(m);
        vgpt_err_set(err, "bf16: out of memory for a (%d,%d) weight", OC, C);
        return NULL;
    }
    for (int i = 0, o = 0; b && i < n; o += rows[i++])
        if (b[i]) memcpy(m->bias + o, b[i], (size_t)rows[i] * sizeof(float));
    pthread_mutex_lock(&c->lock);
    int rc = c->own ? vgpt_mm_own_setup(m, n, w, b, rows) : dnnl_weight(m, n, w, rows);
    pthread_mutex_unlock(&c->lock);
    if (rc) {
        vgpt_mm_free(m);
        vgpt_err_set(err, c->own ? "bf16: out of memory for a (%d,%d) weight"
                                 : "bf16: oneDNN cannot convert a (%d,%d) weight (out of memory?)",
                     OC, C);
        return NULL;
    }
    return m;
}

static void shape_clear(mm_shape *s) {
    if (s->prim) dnnl_primitive_destroy(s->prim);
    if (s->src) dnnl_memory_destroy(s->src);
    if (s->dst) dnnl_memory_destroy(s->dst);
    memset(s, 0, sizeof *s);
}

void vgpt_mm_free(vgpt_mm *w) {
    if (!w) return;
    for (int i = 0; i < MM_SHAPES; i++) shape_clear(&w->shapes[i]);
    if (w->wmem) dnnl_memory_destroy(w->wmem);
    if (w->bmem) dnnl_memory_destroy(w->bmem);
    free(w->wdata);
    vgpt_packed_free(&w->own);
    free(w->bias);
    free(w);
}

/* The primitive for (M, flags): kept, or built in the least recently used slot. */
static mm_shape *shape_for(vgpt_mm *w, int M, int flags) {
    mm_shape *lru = &w->shapes[0];
    for (int i = 0; i < MM_SHAPES; i++) {
        mm_shape *s = &w->shapes[i];
        if (s->prim && s->M == M && s->flags == flags) return s->used = ++w->tick, s;
        if (s->used < lru->used) lru = s;
    }
    shape_clear(lru);
    dnnl_primitive_desc_t pd;
    if (matmul_pd(&pd, w->c, M, w->C, w->OC, flags, &w->wmd)) return NULL;
    const char *impl = NULL;
    if (!strcmp(w->c->isa, "none") && !dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) && impl)
        snprintf(w->c->isa, sizeof w->c->isa, "%s", impl);
    dnnl_memory_desc_t src, dst;
    vgpt_mm_md2(&src, M, w->C, dnnl_bf16, dnnl_ab);
    vgpt_mm_md2(&dst, M, w->OC, flags & MM_DST_BF16 ? dnnl_bf16 : dnnl_f32, dnnl_ab);
    dnnl_status_t s = dnnl_primitive_create(&lru->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (s == dnnl_success) s = dnnl_memory_create(&lru->src, &src, w->c->engine, DNNL_MEMORY_NONE);
    if (s == dnnl_success) s = dnnl_memory_create(&lru->dst, &dst, w->c->engine, DNNL_MEMORY_NONE);
    if (s != dnnl_success) return shape_clear(lru), NULL;
    lru->M = M, lru->flags = flags, lru->used = ++w->tick;
    return lru;
}

VGPT_CLONES static void to_bf16_run(uint16_t *dst, const float *src, size_t n) {
    vgpt_float_to_bf16_n(src, dst, n); /* inlined: vectorised per clone */
}

/* Split across OpenMP's threads when large: each value rounds alone. */
void vgpt_mm_to_bf16(uint16_t *dst, const float *src, size_t n) {
    if (n < (1 << 16)) {
        to_bf16_run(dst, src, n);
        return;
    }
    long chunks = (long)((n + 4095) / 4096);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < chunks; c++) {
        size_t o = (size_t)c * 4096;
        to_bf16_run(dst + o, src + o, o + 4096 < n ? 4096 : n - o);
    }
}

void *vgpt_mm_scratch(vgpt_buf *b, size_t bytes) {
    return vgpt_buf_get(b, (bytes + 3) / 4);
}

/* out is fp32, or bf16 with MM_DST_BF16; inp fp32 (rounded here), or
 * bf16 rows when bf16_in. */
int vgpt_mm_run_typed(vgpt_mm *w, void *out, const void *inp, int bf16_in, int M, int flags) {
    vgpt_mm_ctx *c = w->c;
    size_t n = (size_t)M * w->C;
    uint16_t *src = bf16_in ? (uint16_t *)inp : vgpt_mm_scratch(&c->rows, n * sizeof *src);
    if (!src) return vgpt_err_set(&c->first, "bf16: out of memory for %d input rows", M);
    mm_shape *s = shape_for(w, M, flags);
    if (!s) return vgpt_err_set(&c->first, "bf16: oneDNN cannot build a (%d,%d)x(%d,%d) product", M, w->C, w->C, w->OC);
    if (!bf16_in) vgpt_mm_to_bf16(src, inp, n);
    dnnl_memory_set_data_handle(s->src, src);
    dnnl_memory_set_data_handle(s->dst, out);
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, s->src}, {DNNL_ARG_WEIGHTS, w->wmem}, {DNNL_ARG_BIAS, w->bmem}, {DNNL_ARG_DST, s->dst}};
    if (dnnl_primitive_execute(s->prim, c->stream, 4, args) || dnnl_stream_wait(c->stream))
        return vgpt_err_set(&c->first, "bf16: oneDNN failed a (%d,%d)x(%d,%d) product", M, w->C, w->C, w->OC);
    return 0;
}

void vgpt_mm_run_pool(const vgpt_mm *cw, float *out, const float *inp, int M, int flags, struct vgpt_pool *pool) {
    vgpt_mm *w = (vgpt_mm *)cw; /* its primitive cache changes; the weight does not */
    if (M <= 0) return;
    pthread_mutex_lock(&w->c->lock);
    int rc = w->c->failed                              ? 0
             : w->c->own                                   ? vgpt_mm_own_run(w, out, inp, M, flags, pool)
             : w->gemv && pool && M <= VGPT_MM_GEMV_ROWS ? vgpt_mm_gemv_run(w, out, inp, M, flags, pool)
                                                           : vgpt_mm_run_typed(w, out, inp, 0, M, flags);
    if (rc) w->c->failed = 1;
    pthread_mutex_unlock(&w->c->lock);
}

void vgpt_mm_run(const vgpt_mm *w, float *out, const float *inp, int M, int flags) {
    vgpt_mm_run_pool(w, out, inp, M, flags, NULL);
}

void vgpt_mm_mlp(const vgpt_mm *fc1, const vgpt_mm *fc2, float *out, const float *inp, float *hidden, int M,
                 int flags1, int flags2) {
    vgpt_mm *w1 = (vgpt_mm *)fc1, *w2 = (vgpt_mm *)fc2; /* as in vgpt_mm_run_pool */
    if (M <= 0) return;
    pthread_mutex_lock(&w1->c->lock);
    int rc = w1->c->failed ? 0
             : w1->c->own  ? vgpt_mm_own_run(w1, hidden, inp, M, flags1, NULL) ||
                               vgpt_mm_own_run(w2, out, hidden, M, flags2, NULL)
                           : vgpt_mm_run_typed(w1, hidden, inp, 0, M, flags1 | MM_DST_BF16) ||
                               vgpt_mm_run_typed(w2, out, hidden, 1, M, flags2);
    if (rc) w1->c->failed = 1;
    pthread_mutex_unlock(&w1->c->lock);
}
