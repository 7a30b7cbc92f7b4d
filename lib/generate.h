/* decode.h - caption generation: greedy, beam search and sampling.
 *
 * Every caption starts from <|endoftext|> (50256) as BOS and stops when the
 * model produces 50256 or after max_tokens new tokens.  All captions of a
 * call step together through one batched decoder step. */
#ifndef VGPT_GENERATE_H
#define VGPT_GENERATE_H

#include <stdint.h>

#include "err.h"
#include "gen_opts.h"
#include "gpt2.h"

typedef struct vgpt_caption {
    int32_t *tokens; /* generated ids after BOS, including the final 50256 if it stopped on it */
    int n_tokens;
    float score;     /* sum of log-probabilities (length-normalised for beam search) */
} vgpt_caption;

/* One caption request, advanced one token per decoder step.  decoderd's
 * continuous batching and vgpt_generate both drive jobs, so a caption does
 * not depend on which other captions shared its steps. */
typedef struct vgpt_job vgpt_job;

/* xkv must outlive the job.  NULL with err set on failure. */
vgpt_job *vgpt_job_new(const vgpt_model *m, const vgpt_xkv *xkv, const vgpt_gen_opts *o, vgpt_err *err);
/* Sequences that need the next decoder step (0 once done). */
int vgpt_job_n_live(const vgpt_job *j);
/* Writes its n_live input tokens / caches / cross K/V at tok[0..], kv[0..], xkv[0..]. */
void vgpt_job_collect(vgpt_job *j, int32_t *tok, vgpt_kv **kv, const vgpt_xkv **xkv);
/* Consumes the step's logits (n_live rows of V); -1 with err on OOM. */
int vgpt_job_advance(vgpt_job *j, float *logits, vgpt_err *err);
int vgpt_job_done(const vgpt_job *j);
/* The finished caption (caller frees with vgpt_caption_free). */
int vgpt_job_result(const vgpt_job *j, vgpt_caption *out, vgpt_err *err);
void vgpt_job_free(vgpt_job *j);

/* xkv: the N images' cross K/V (vgpt_gpt_run_cross_kv).  out[0..N-1] is
 * filled; free each with vgpt_caption_free. */
int vgpt_generate(vgpt_gpt_run *d, const vgpt_xkv *xkv, int N, const vgpt_gen_opts *o, vgpt_caption *out,
                  vgpt_err *err);
void vgpt_caption_free(vgpt_caption *c);

/* Helpers shared with decoderd's continuous batching. */
void vgpt_ban_repeated_ngrams(float *logits, const int32_t *seq, int len, int n);
int vgpt_argmax(const float *x, int n);
/* The distribution sampling draws from: out (room for V) gets the tokens
 * that can be drawn, most likely first, with their probabilities in .v;
 * returns how many (0: every token banned; -1: out of memory). */
typedef struct vgpt_cand vgpt_cand;
int vgpt_sample_dist(const float *logits, int V, const vgpt_gen_opts *o, vgpt_cand *out);
/* Draws a token from logits (V) per temperature/top-k/top-p; *rng advances. */
int vgpt_sample_token(float *logits, int V, const vgpt_gen_opts *o, uint64_t *rng);

#endif
