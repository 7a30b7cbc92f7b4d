/* mm_attention.c - the encoder's multi-head attention in bf16 (mm.h).
 *
 * In fp32 the ViT's attention is two OpenBLAS products per head and image
 * (197x64 by 64x197): too small to thread well, so at bf16 speeds it would
 * take most of an image's time.  Here all images and heads are one batched
 * oneDNN matmul for the scores and one for the mix, with the softmax in
 * fp32 between them, as in every other bf16 product.  The ViT's q, k and v
 * come straight from its qkv product in bf16 (vgpt_mm_self_attention), not
 * through an fp32 copy packed again here. */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "mm_ctx.h"

/* A 4-D (N,H,rows,cols) view of a (N*rows, H*cols) matrix with row stride
 * ld, or, transposed, of its (N,H,cols,rows). */
static void heads_md(dnnl_memory_desc_t *md, int N, int H, int rows, int cols, int ld, int transposed,
                     dnnl_data_type_t t) {
    dnnl_dims_t dims = {N, H, transposed ? cols : rows, transposed ? rows : cols};
    dnnl_dims_t strides = {(int64_t)rows * ld, cols, transposed ? 1 : ld, transposed ? ld : 1};
    dnnl_memory_desc_init_by_strides(md, 4, dims, t, strides);
}

static dnnl_status_t matmul(dnnl_primitive_t *prim, vgpt_mm_ctx *c, const dnnl_memory_desc_t *a,
                            const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *dst, float scale) {
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_matmul_desc_init(&desc, a, b, NULL, dst);
    if (s == dnnl_success) s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success && scale != 1.0f) s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &desc, attr, c->engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(prim, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s;
}

/* The operand layouts of one attention shape: q (N,H,Tq,hd), k^T
 * (N,H,hd,Tk), v (N,H,Tk,hd) packed (N*T, H*hd) in bf16; scores and p
 * (N,H,Tq,Tk); out (N,H,Tq,hd) inside the caller's (N*Tq, ldo). */
typedef struct att_mds {
    dnnl_memory_desc_t q, kt, v, scores, p, out;
} att_mds;

static void att_layouts(att_mds *d, const vgpt_mm_att_shape *s) {
    heads_md(&d->q, s->N, s->H, s->Tq, s->hd, s->ldqk, 0, dnnl_bf16);
    heads_md(&d->kt, s->N, s->H, s->Tk, s->hd, s->ldqk, 1, dnnl_bf16);
    heads_md(&d->v, s->N, s->H, s->Tk, s->hd, s->H * s->hd, 0, dnnl_bf16);
    dnnl_dims_t sd = {s->N, s->H, s->Tq, s->Tk};
    dnnl_memory_desc_init_by_tag(&d->scores, 4, sd, dnnl_f32, dnnl_abcd);
    dnnl_memory_desc_init_by_tag(&d->p, 4, sd, dnnl_bf16, dnnl_abcd);
    heads_md(&d->out, s->N, s->H, s->Tq, s->hd, s->ldo, 0, dnnl_f32);
}

static vgpt_mm_att_shape *att_shape(vgpt_mm_ctx *c, const vgpt_mm_att_shape *want) {
    vgpt_mm_att_shape *lru = &c->att[0];
    for (int i = 0; i < VGPT_MM_ATT_SHAPES; i++) {
        vgpt_mm_att_shape *s = &c->att[i];
        if (s->scores && s->N == want->N && s->Tq == want->Tq && s->Tk == want->Tk && s->H == want->H &&
            s->hd == want->hd && s->ldo == want->ldo && s->ldqk == want->ldqk)
            return s->used = ++c->tick, s;
        if (s->used < lru->used) lru = s;
    }
    if (lru->scores) dnnl_primitive_destroy(lru->scores);
    if (lru->mix) dnnl_primitive_destroy(lru->mix);
    *lru = *want;
    att_mds d;
    att_layouts(&d, lru);
    if (matmul(&lru->scores, c, &d.q, &d.kt, &d.scores, 1.0f / sqrtf((float)want->hd)) ||
        matmul(&lru->mix, c, &d.p, &d.v, &d.out, 1.0f)) {
        if (lru->scores) dnnl_primitive_destroy(lru->scores);
        memset(lru, 0, sizeof *lru);
        return NULL;
    }
    lru->used = ++c->tick;
    return lru;
}

void vgpt_mm_attention_free(vgpt_mm_ctx *c) {
    for (int i = 0; i < VGPT_MM_ATT_SHAPES; i++) {
        if (c->att[i].scores) dnnl_primitive_destroy(c->att[i].scores);
        if (c->att[i].mix) dnnl_primitive_destroy(c->att[i].mix);
    }
    vgpt_buf *bufs[] = {&c->q, &c->k, &c->v, &c->p, &c->scores};
    for (int i = 0; i < 5; i++) vgpt_buf_free(bufs[i]);
}

/* rows x HD of src (row stride ld) -> packed bf16 rows, on OpenMP's
 * threads as the products run (one row is too short to share out). */
static void pack_rows(uint16_t *dst, const float *src, size_t rows, int HD, int ld) {
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++) vgpt_mm_to_bf16(dst + (size_t)r * HD, src + (size_t)r * ld, (size_t)HD);
}

/* Each row of the scores -> its softmax, rounded to bf16 while it is in
 * cache; rows shared out as pack_rows does. */
static void softmax_to_bf16(uint16_t *p, float *scores, size_t rows, int Tk) {
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++) {
        float *row = scores + (size_t)r * Tk;
        vgpt_softmax_rows(row, 1, Tk, -1);
        vgpt_mm_to_bf16(p + (size_t)r * Tk, row, (size_t)Tk);
    }
}

/* Runs one primitive on memories made over the given buffers. */
static int exec3(vgpt_mm_ctx *c, dnnl_primitive_t prim, const dnnl_memory_desc_t *a, void *pa,
                 const dnnl_memory_desc_t *b, void *pb, const dnnl_memory_desc_t *d, void *pd) {
    dnnl_memory_t m[3] = {0};
    dnnl_status_t s = dnnl_memory_create(&m[0], a, c->engine, pa);
    if (s == dnnl_success) s = dnnl_memory_create(&m[1], b, c->engine, pb);
    if (s == dnnl_success) s = dnnl_memory_create(&m[2], d, c->engine, pd);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}};
        s = dnnl_primitive_execute(prim, c->stream, 3, args);
        if (s == dnnl_success) s = dnnl_stream_wait(c->stream);
    }
    for (int i = 0; i < 3; i++)
        if (m[i]) dnnl_memory_destroy(m[i]);
    return s == dnnl_success ? 0 : -1;
}

/* The attention over bf16 q and k (rows ldqk apart) and v (packed), heads
 * side by side.  A strided v took oneDNN off its brgemm kernels: the mix
 * ran at half speed (Zen 4), where copying v costs little. */
static int attention_bf16(vgpt_mm_ctx *c, float *out, int ldo, uint16_t *bq, uint16_t *bk, int ldqk, uint16_t *bv,
                          int N, int Tq, int Tk, int H, int hd) {
    size_t ns = (size_t)N * H * Tq * Tk;
    uint16_t *bp = vgpt_mm_scratch(&c->p, ns * 2);
    float *scores = vgpt_mm_scratch(&c->scores, ns * 4);
    if (!bp || !scores) return vgpt_err_set(&c->first, "bf16: out of memory for the attention of %d sequences", N);
    vgpt_mm_att_shape want = {.N = N, .Tq = Tq, .Tk = Tk, .H = H, .hd = hd, .ldo = ldo, .ldqk = ldqk};
    vgpt_mm_att_shape *s = att_shape(c, &want);
    if (!s) return vgpt_err_set(&c->first, "bf16: oneDNN cannot build the attention of %d x %d heads", N, H);
    att_mds d;
    att_layouts(&d, s);
    if (exec3(c, s->scores, &d.q, bq, &d.kt, bk, &d.scores, scores))
        return vgpt_err_set(&c->first, "bf16: oneDNN failed the attention scores of %d sequences", N);
    softmax_to_bf16(bp, scores, (size_t)N * H * Tq, Tk);
    if (exec3(c, s->mix, &d.p, bp, &d.v, bv, &d.out, out))
        return vgpt_err_set(&c->first, "bf16: oneDNN failed the attention mix of %d sequences", N);
    return 0;
}

static int attention_locked(vgpt_mm_ctx *c, float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                            const float *v, int ldv, int N, int Tq, int Tk, int H, int hd) {
    int HD = H * hd;
    size_t nq = (size_t)N * Tq * HD, nk = (size_t)N * Tk * HD;
    uint16_t *bq = vgpt_mm_scratch(&c->q, nq * 2), *bk = vgpt_mm_scratch(&c->k, nk * 2);
    uint16_t *bv = vgpt_mm_scratch(&c->v, nk * 2);
    if (!bq || !bk || !bv) return vgpt_err_set(&c->first, "bf16: out of memory for the attention of %d sequences", N);
    pack_rows(bq, q, (size_t)N * Tq, HD, ldq);
    pack_rows(bk, k, (size_t)N * Tk, HD, ldk);
    pack_rows(bv, v, (size_t)N * Tk, HD, ldv);
    return attention_bf16(c, out, ldo, bq, bk, HD, bv, N, Tq, Tk, H, hd);
}

void vgpt_mm_attention(vgpt_mm_ctx *c, float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                       const float *v, int ldv, int N, int Tq, int Tk, int H, int hd) {
    pthread_mutex_lock(&c->lock);
    int (*run)(vgpt_mm_ctx *, float *, int, const float *, int, const float *, int, const float *, int, int, int, int,
               int, int) = c->own ? vgpt_mm_own_attention : attention_locked;
    if (!c->failed && run(c, out, ldo, q, ldq, k, ldk, v, ldv, N, Tq, Tk, H, hd)) c->failed = 1;
    pthread_mutex_unlock(&c->lock);
}

void vgpt_mm_self_attention(const vgpt_mm *cw, float *out, int ldo, const float *inp, float *scratch, int N, int T,
                            int H, int hd) {
    // inp is (N*T, C), wqkv (3*H*hd, C); scratch holds (N*T, 3*H*hd) fp32 or bf16
    vgpt_mm *w = (vgpt_mm *)cw; /* its primitive cache changes; the weight does not */
    vgpt_mm_ctx *c = w->c;
    int HD = H * hd, rows = N * T;
    if (rows <= 0) return;
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    if (c->own && !c->failed) { /* vgpt's kernels take fp32 q, k, v */
        rc = vgpt_mm_own_run(w, scratch, inp, rows, 0, NULL) ||
             vgpt_mm_own_attention(c, out, ldo, scratch, 3 * HD, scratch + HD, 3 * HD, scratch + 2 * HD, 3 * HD, N, T,
                                   T, H, hd);
    } else if (!c->failed) {
        uint16_t *qkv = (uint16_t *)scratch, *bv = vgpt_mm_scratch(&c->v, (size_t)rows * HD * 2);
        rc = !bv ? vgpt_err_set(&c->first, "bf16: out of memory for the attention of %d sequences", N)
                 : vgpt_mm_run_typed(w, qkv, inp, 0, rows, MM_DST_BF16);
        for (int r = 0; !rc && r < rows; r++)
            memcpy(bv + (size_t)r * HD, qkv + (size_t)r * 3 * HD + 2 * HD, (size_t)HD * sizeof *bv);
        rc = rc || attention_bf16(c, out, ldo, qkv, qkv + HD, 3 * HD, bv, N, T, T, H, hd);
    }
    if (rc) c->failed = 1;
    pthread_mutex_unlock(&c->lock);
}
