/* packed.c - out (M,OC) = inp (M,C) @ W (OC,C)^T for the decoder's few rows.
 *
 * The decoder multiplies 1..16 hidden states by every weight matrix each
 * step.  OpenBLAS's sgemm packs W on every call (3-8x slower at these
 * shapes) and sgemv takes one row only.  W never changes, so it is packed
 * once, at load, into panels of VGPT_PANEL output columns laid out (C,
 * VGPT_PANEL): a step then streams each panel once, broadcasts one input
 * value per row and k, and multiplies it into three full vectors of outputs
 * (the loops themselves are per instruction set: kern.h).  With
 * --precision bf16 the weight is a bf16 one instead (mm.h), whose products
 * run on these kernels too where oneDNN has none (bf16 panels, mm_own.c).
 *
 * Every output is one sequential sum over k, whatever M is and however the
 * rows are grouped, so a caption's logits do not depend on which other
 * captions share its batch (pipeline == in-process, bit for bit). */
#include "packed.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"
#include "hugemem.h"
#include "kern.h"
#include "kernels.h"
#include "mm.h"
#include "pool.h"

/* Row o of the stacked weight, or NULL past its end (zero padding). */
static const float *stacked_row(int n, const float *const *w, const int *rows, int o, int C) {
    for (int i = 0; i < n; o -= rows[i++])
        if (o < rows[i]) return w[i] + (size_t)o * C;
    return NULL;
}

/* Where column j (0..VGPT_PANEL-1) of a panel at input k is stored in it. */
static size_t panel_at(int C, int strip, int j, int k) {
    return (size_t)(j / strip) * C * strip + (size_t)k * strip + j % strip;
}

/* dst's (OC) bias stacked from b[i] (NULL: zeros) once its panels are
 * allocated; -1, dst freed, when either allocation failed. */
static int stack_bias(vgpt_packed *dst, int n, const float *const *b, const int *rows) {
    if (b) dst->bias = malloc((size_t)dst->OC * sizeof(float));
    if ((!dst->p && !dst->h) || (b && !dst->bias)) {
        vgpt_packed_free(dst);
        return -1;
    }
    for (int i = 0, o = 0; b && i < n; o += rows[i++])
        for (int r = 0; r < rows[i]; r++) dst->bias[o + r] = b[i] ? b[i][r] : 0.0f;
    return 0;
}

int vgpt_pack(vgpt_packed *dst, int C, int n, const float *const *w, const float *const *b, const int *rows) {
    // w[i] is (rows[i],C); dst->p is (n_panels, strips, C, strip), zero past OC
    int OC = 0;
    for (int i = 0; i < n; i++) OC += rows[i];
    int n_panels = (OC + VGPT_PANEL - 1) / VGPT_PANEL;
    *dst = (vgpt_packed){.p = vgpt_hugemem_alloc((size_t)n_panels * C * VGPT_PANEL * sizeof(float)), .C = C, .OC = OC};
    if (stack_bias(dst, n, b, rows)) return -1;
    int strip = vgpt_kernels_get()->strip;
    for (int pn = 0; pn < n_panels; pn++) {
        float *panel = dst->p + (size_t)pn * C * VGPT_PANEL;
        for (int j = 0; j < VGPT_PANEL; j++) {
            const float *row = stacked_row(n, w, rows, pn * VGPT_PANEL + j, C);
            for (int k = 0; k < C; k++) panel[panel_at(C, strip, j, k)] = row ? row[k] : 0.0f;
        }
    }
    return 0;
}

int vgpt_pack_in_place(vgpt_packed *dst, int C, float *w, const float *b, int OC) {
    // w is (OC,C) in rows of room for whole panels; it becomes (n_panels, strips, C, strip)
    int n_panels = (OC + VGPT_PANEL - 1) / VGPT_PANEL;
    float *rows = malloc((size_t)VGPT_PANEL * C * sizeof(float));
    *dst = (vgpt_packed){.C = C, .OC = OC};
    if (b) dst->bias = malloc((size_t)OC * sizeof(float));
    if (!rows || (b && !dst->bias)) {
        free(rows);
        free(dst->bias);
        dst->bias = NULL;
        return -1;
    }
    if (b) memcpy(dst->bias, b, (size_t)OC * sizeof(float));
    int strip = vgpt_kernels_get()->strip;
    for (int pn = 0; pn < n_panels; pn++) {
        float *panel = w + (size_t)pn * C * VGPT_PANEL; /* the panel's rows, then the panel itself */
        int n = OC - pn * VGPT_PANEL < VGPT_PANEL ? OC - pn * VGPT_PANEL : VGPT_PANEL;
        memcpy(rows, panel, (size_t)n * C * sizeof(float));
        for (int k = 0; k < C; k++)
            for (int j = 0; j < VGPT_PANEL; j++) panel[panel_at(C, strip, j, k)] = j < n ? rows[(size_t)j * C + k] : 0.0f;
    }
    free(rows);
    dst->p = w;
    return 0;
}

int vgpt_pack_narrow(vgpt_packed *w) {
    if (!w->p) return 0;
    size_t n = (size_t)(w->OC + VGPT_PANEL - 1) / VGPT_PANEL * VGPT_PANEL * w->C;
    uint16_t *h = vgpt_hugemem_alloc(n * sizeof *h);
    if (!h) return -1;
    for (size_t i = 0; i < n; i++) {
        float x = w->p[i];
        h[i] = vgpt_float_to_half(x);
        /* NaN too stays fp32: the vector widening quiets a signalling one */
        if (isnan(x) || vgpt_float_to_bits(vgpt_half_to_float(h[i])) != vgpt_float_to_bits(x)) {
            free(h);
            return 0;
        }
    }
    free(w->p);
    w->p = NULL;
    w->h = h;
    return 1;
}

int vgpt_pack_bf16(vgpt_packed *dst, int C, int n, const float *const *w, const float *const *b, const int *rows,
                   void (*done)(void *arg, int o), void *arg) {
    // w[i] is (rows[i],C); dst->h is (n_panels, strips, C, strip) bf16, zero past OC
    int OC = 0;
    for (int i = 0; i < n; i++) OC += rows[i];
    int n_panels = (OC + VGPT_PANEL - 1) / VGPT_PANEL;
    size_t bytes = (size_t)n_panels * C * VGPT_PANEL * sizeof(uint16_t);
    *dst = (vgpt_packed){.h = vgpt_hugemem_alloc(bytes), .h_bf16 = 1, .C = C, .OC = OC};
    if (stack_bias(dst, n, b, rows)) return -1;
    int strip = vgpt_kernels_get()->strip;
    for (int pn = 0; pn < n_panels; pn++) {
        uint16_t *panel = dst->h + (size_t)pn * C * VGPT_PANEL;
        for (int j = 0; j < VGPT_PANEL; j++) {
            const float *row = stacked_row(n, w, rows, pn * VGPT_PANEL + j, C);
            for (int k = 0; k < C; k++) panel[panel_at(C, strip, j, k)] = row ? vgpt_float_to_bf16(row[k]) : 0;
        }
        /* every 64 panels (3072 rows): the head's source goes in slices */
        if (done && ((pn + 1) % 64 == 0 || pn + 1 == n_panels))
            done(arg, (pn + 1) * VGPT_PANEL < OC ? (pn + 1) * VGPT_PANEL : OC);
    }
    return 0;
}

VGPT_CLONES void vgpt_packed_widen_columns(const vgpt_packed *w, int o0, int n, float *dst, int ldd) {
    // w->h is (n_panels, strips, C, strip) bf16; dst is (C, n), row stride ldd
    int C = w->C, strip = vgpt_kernels_get()->strip;
    for (int j0 = o0; j0 < o0 + n; j0 += strip) { /* one strip: its rows of k are contiguous */
        const uint16_t *src = w->h + (size_t)(j0 / VGPT_PANEL) * C * VGPT_PANEL + (size_t)(j0 % VGPT_PANEL / strip) * C * strip;
        int cols = o0 + n - j0 < strip ? o0 + n - j0 : strip;
        float *d = dst + (j0 - o0);
        for (int k = 0; k < C; k++, src += strip, d += ldd)
            for (int c = 0; c < cols; c++) d[c] = vgpt_bf16_to_float(src[c]);
    }
}

void vgpt_packed_free(vgpt_packed *w) {
    free(w->p);
    free(w->h);
    w->h = NULL;
    free(w->bias);
    vgpt_mm_free(w->mm);
    w->p = w->bias = NULL;
    w->mm = NULL;
}

typedef struct packed_job {
    vgpt_panel_job p;
    const vgpt_kernels *k;
    _Atomic int next; /* next panel to take */
} packed_job;

/* Panels per chunk: threads take chunks until none are left, so a thread
 * that starts late (or loses its core for a while) costs little; but each
 * chunk starts its memory stream cold, so the 1047 panels of the output
 * head go 8 at a time (Zen 3, 16 rows: 79 -> 103 GFLOP/s), small weights 2. */
static int chunk_of(int n_panels) {
    int c = n_panels / 128;
    return c < 2 ? 2 : c > 8 ? 8 : c;
}

static void packed_part(void *arg, int part, int n_parts) {
    (void)part;
    (void)n_parts;
    packed_job *j = arg;
    int n_panels = (j->p.w->OC + VGPT_PANEL - 1) / VGPT_PANEL, chunk = chunk_of(n_panels), lo;
    while ((lo = atomic_fetch_add_explicit(&j->next, chunk, memory_order_relaxed)) < n_panels)
        j->k->panels(&j->p, lo, lo + chunk < n_panels ? lo + chunk : n_panels);
}

/* ~10 us of work: not worth waking anyone. */
static int small(const vgpt_packed *w, int M) {
    return (size_t)M * w->C * w->OC < (1u << 18);
}

void vgpt_linear_packed(float *out, const float *inp, const vgpt_packed *w, int M, int flags, vgpt_pool *pool) {
    // inp is (M,C), w packs (OC,C), out is (M,OC)
    if (w->mm) {
        vgpt_mm_run_pool(w->mm, out, inp, M, flags, pool);
        return;
    }
    packed_job j = {{out, inp, w, M, flags}, vgpt_kernels_get(), 0};
    if (small(w, M)) pool = NULL;
    vgpt_pool_run(pool, packed_part, &j);
}
