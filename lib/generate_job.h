/* generate_job.h - internals shared by generate.c and generate_beam.c. */
#ifndef VGPT_GENERATE_JOB_H
#define VGPT_GENERATE_JOB_H

#include "generate.h"

/* One caption in progress: seq holds BOS + generated tokens. */
typedef struct vgpt_hyp {
    int32_t *seq;
    int len;
    double sum;
    vgpt_kv kv;
    uint64_t rng;
    int image;
} vgpt_hyp;

/* New tokens allowed: max_tokens, capped by the context length. */
int vgpt_max_new(const vgpt_model *m, const vgpt_gen_opts *o);
double vgpt_log_softmax_at(const float *x, int V, int id);
/* Copies h's generated tokens into c; -1 on OOM. */
int vgpt_finish_caption(vgpt_caption *c, const vgpt_hyp *h, double score);
/* The k largest entries of x (V) that are not -inf, sorted descending. */
struct vgpt_cand {
    float v;
    int id;
};
typedef struct vgpt_cand vgpt_cand;
int vgpt_top_k(const float *x, int V, int k, vgpt_cand *out);

/* A caption request in progress: one hypothesis (greedy, sampling) or a
 * beam search.  Only the fields of its kind are used. */
typedef struct vgpt_image_beams vgpt_image_beams;
struct vgpt_job {
    vgpt_gen_opts o;
    const vgpt_model *m;
    const vgpt_xkv *xkv;
    int V, T;       /* vocabulary, max new tokens */
    vgpt_hyp h;          /* greedy / sampling */
    vgpt_image_beams *b; /* beam search */
    int done;
};

int vgpt_beam_start(vgpt_job *j);
int vgpt_beam_n_live(const vgpt_job *j);
void vgpt_beam_collect(vgpt_job *j, int32_t *tok, vgpt_kv **kv);
int vgpt_beam_advance(vgpt_job *j, float *logits);
int vgpt_beam_result(const vgpt_job *j, vgpt_caption *out);
void vgpt_beam_free(vgpt_job *j);

#endif
