/* decode_beam.h - internals shared by decode.c and decode_beam.c. */
#ifndef VGPT_DECODE_BEAM_H
#define VGPT_DECODE_BEAM_H

#include "decode.h"

/* One caption in progress: seq holds BOS + generated tokens. */
typedef struct hyp {
    int32_t *seq;
    int len;
    double sum;
    vgpt_kv kv;
    uint64_t rng;
    int image;
} hyp;

/* New tokens allowed: max_tokens, capped by the context length. */
int vgpt_max_new(const vgpt_decoder *d, const vgpt_gen_opts *o);
double vgpt_log_softmax_at(const float *x, int V, int id);
/* Copies h's generated tokens into c; -1 on OOM. */
int vgpt_finish_caption(vgpt_caption *c, const hyp *h, double score);
/* The k largest entries of x (V) that are not -inf, sorted descending. */
typedef struct vgpt_cand {
    float v;
    int id;
} vgpt_cand;
int vgpt_top_k(const float *x, int V, int k, vgpt_cand *out);

int vgpt_generate_beam(vgpt_decoder *d, const vgpt_xkv *xkv, int N, const vgpt_gen_opts *o, vgpt_caption *out,
                       vgpt_err *err);

#endif
