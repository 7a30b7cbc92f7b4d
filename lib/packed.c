/* packed.c - out (M,OC) = inp (M,C) @ W (OC,C)^T for the decoder's few rows.
 *
 * The decoder multiplies 1..16 hidden states by every weight matrix each
 * step.  OpenBLAS's sgemm packs W on every call (3-8x slower at these
 * shapes) and sgemv takes one row only.  W never changes, so it is packed
 * once, at load, into panels of VGPT_PANEL output columns laid out (C,
 * VGPT_PANEL): a step then streams each panel once, broadcasts one input
 * value per row and k, and multiplies it into three full vectors of outputs
 * (8 rows x 3 vectors = 24 accumulators, no horizontal sums).
 *
 * Every output is one sequential sum over k, whatever M is and however the
 * rows are grouped, so a caption's logits do not depend on which other
 * captions share its batch (pipeline == in-process, bit for bit). */
#include "packed.h"

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "pool.h"

/* Row o of the stacked weight, or NULL past its end (zero padding). */
static const float *stacked_row(int n, const float *const *w, const int *rows, int o, int C) {
    for (int i = 0; i < n; o -= rows[i++])
        if (o < rows[i]) return w[i] + (size_t)o * C;
    return NULL;
}

int vgpt_pack(vgpt_packed *dst, int C, int n, const float *const *w, const float *const *b, const int *rows) {
    // w[i] is (rows[i],C); dst->p is (n_panels, C, VGPT_PANEL), zero past OC
    int OC = 0;
    for (int i = 0; i < n; i++) OC += rows[i];
    int n_panels = (OC + VGPT_PANEL - 1) / VGPT_PANEL;
    *dst = (vgpt_packed){.p = aligned_alloc(64, (size_t)n_panels * C * VGPT_PANEL * sizeof(float)), .C = C, .OC = OC};
    if (b) dst->bias = malloc((size_t)OC * sizeof(float));
    if (!dst->p || (b && !dst->bias)) {
        vgpt_packed_free(dst);
        return -1;
    }
    for (int i = 0, o = 0; b && i < n; o += rows[i++])
        for (int r = 0; r < rows[i]; r++) dst->bias[o + r] = b[i] ? b[i][r] : 0.0f;
    for (int pn = 0; pn < n_panels; pn++) {
        float *panel = dst->p + (size_t)pn * C * VGPT_PANEL;
        for (int j = 0; j < VGPT_PANEL; j++) {
            const float *row = stacked_row(n, w, rows, pn * VGPT_PANEL + j, C);
            for (int k = 0; k < C; k++) panel[(size_t)k * VGPT_PANEL + j] = row ? row[k] : 0.0f;
        }
    }
    return 0;
}

void vgpt_packed_free(vgpt_packed *w) {
    free(w->p);
    free(w->bias);
    w->p = w->bias = NULL;
}

typedef struct packed_job {
    float *out;
    const float *inp;
    const vgpt_packed *w;
    int M, flags;
    _Atomic int next; /* next panel to take */
} packed_job;

/* Panels per chunk: threads take chunks until none are left, so a thread
 * that starts late (or loses its core for a while) costs little. */
#define CHUNK 2

#ifdef __AVX512F__
/* Rows m0..m0+R-1 against one panel; R is a compile-time constant after
 * inlining, so the accumulator array lives in registers. */
static inline __attribute__((always_inline)) void panel_rows(const packed_job *j, int pn, int m0, int R) {
    int C = j->w->C, OC = j->w->OC, o0 = pn * VGPT_PANEL;
    const float *pw = j->w->p + (size_t)pn * C * VGPT_PANEL, *x = j->inp + (size_t)m0 * C;
    __m512 acc[8][3];
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
    for (int k = 0; k < C; k++, pw += VGPT_PANEL) {
        __m512 w0 = _mm512_load_ps(pw), w1 = _mm512_load_ps(pw + 16), w2 = _mm512_load_ps(pw + 32);
        for (int r = 0; r < R; r++) {
            __m512 xv = _mm512_set1_ps(x[(size_t)r * C + k]);
            acc[r][0] = _mm512_fmadd_ps(xv, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(xv, w1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(xv, w2, acc[r][2]);
        }
    }
    for (int v = 0; v < 3; v++) {
        int o = o0 + 16 * v;
        if (o >= OC) break;
        __mmask16 mask = OC - o >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (OC - o)) - 1);
        __m512 b = j->w->bias ? _mm512_maskz_loadu_ps(mask, j->w->bias + o) : _mm512_setzero_ps();
        for (int r = 0; r < R; r++) {
            float *dst = j->out + (size_t)(m0 + r) * OC + o;
            __m512 y = _mm512_add_ps(acc[r][v], b);
            if (j->flags & VGPT_ACCUMULATE) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, dst));
            _mm512_mask_storeu_ps(dst, mask, y);
            if (j->flags & VGPT_GELU_TANH) vgpt_gelu_tanh(dst, OC - o >= 16 ? 16 : (size_t)(OC - o));
        }
    }
}

static void panel_all_rows(const packed_job *j, int pn) {
    int m0 = 0;
    for (; m0 + 8 <= j->M; m0 += 8) panel_rows(j, pn, m0, 8);
    switch (j->M - m0) {
    case 7: panel_rows(j, pn, m0, 7); break;
    case 6: panel_rows(j, pn, m0, 6); break;
    case 5: panel_rows(j, pn, m0, 5); break;
    case 4: panel_rows(j, pn, m0, 4); break;
    case 3: panel_rows(j, pn, m0, 3); break;
    case 2: panel_rows(j, pn, m0, 2); break;
    case 1: panel_rows(j, pn, m0, 1); break;
    default: break;
    }
}
#else
/* Portable fallback, the same sequential sum per output. */
static void panel_all_rows(const packed_job *j, int pn) {
    int C = j->w->C, OC = j->w->OC;
    const float *pw = j->w->p + (size_t)pn * C * VGPT_PANEL;
    for (int m = 0; m < j->M; m++) {
        const float *x = j->inp + (size_t)m * C;
        for (int c = 0; c < VGPT_PANEL && pn * VGPT_PANEL + c < OC; c++) {
            int o = pn * VGPT_PANEL + c;
            float acc = 0.0f;
            for (int k = 0; k < C; k++) acc += x[k] * pw[(size_t)k * VGPT_PANEL + c];
            acc += j->w->bias ? j->w->bias[o] : 0.0f;
            float *dst = j->out + (size_t)m * OC + o;
            *dst = j->flags & VGPT_ACCUMULATE ? *dst + acc : acc;
            if (j->flags & VGPT_GELU_TANH) vgpt_gelu_tanh(dst, 1);
        }
    }
}
#endif

static void packed_part(void *arg, int part, int n_parts) {
    (void)part;
    (void)n_parts;
    packed_job *j = arg;
    int n_panels = (j->w->OC + VGPT_PANEL - 1) / VGPT_PANEL, lo;
    while ((lo = atomic_fetch_add_explicit(&j->next, CHUNK, memory_order_relaxed)) < n_panels)
        for (int pn = lo; pn < lo + CHUNK && pn < n_panels; pn++) panel_all_rows(j, pn);
}

void vgpt_linear_packed(float *out, const float *inp, const vgpt_packed *w, int M, int flags, vgpt_pool *pool) {
    // inp is (M,C), w packs (OC,C), out is (M,OC)
    packed_job j = {out, inp, w, M, flags, 0};
    if ((size_t)M * w->C * w->OC < (1u << 18)) pool = NULL; /* ~10 us of work: not worth waking anyone */
    vgpt_pool_run(pool, packed_part, &j);
}
