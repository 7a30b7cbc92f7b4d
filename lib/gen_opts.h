/* gen_opts.h - how a caption is generated: the settings every stage carries
 * (the client parses them, the wire format transports them, decoderd obeys
 * them), their limits and their defaults, defined once.  Deliberately free of
 * model code so that proto/ can include it. */
#ifndef VGPT_GEN_OPTS_H
#define VGPT_GEN_OPTS_H

#include <stdint.h>

#include "err.h"

typedef enum { VGPT_GREEDY = 0, VGPT_BEAM = 1, VGPT_SAMPLE = 2 } vgpt_mode;

/* When beam search stops, as transformers' early_stopping: HEURISTIC (false)
 * once no live beam can beat the worst finished one at the current length,
 * FULL (true) as soon as `beams` hypotheses are finished, NEVER ("never")
 * once no live beam could beat it even at max_tokens (length_penalty > 0). */
typedef enum { VGPT_STOP_HEURISTIC = 0, VGPT_STOP_FULL = 1, VGPT_STOP_NEVER = 2 } vgpt_stop;

/* Limits: a value outside them is a usage error (client) or a malformed
 * frame (wire).  The context length bounds max_tokens further, per model. */
#define VGPT_GEN_MAX_BEAMS 64
#define VGPT_GEN_MAX_TOKENS 100000
#define VGPT_GEN_MAX_NGRAM 1000
#define VGPT_GEN_MAX_TOP_K (1 << 20)
#define VGPT_GEN_MAX_TEMPERATURE 100.0f
#define VGPT_GEN_MIN_TOP_P 1e-6f
#define VGPT_GEN_MAX_LENGTH_PENALTY 10.0f /* and its negative */

typedef struct vgpt_gen_opts {
    vgpt_mode mode;
    int beams;            /* beam search width (mode BEAM) */
    int max_tokens;       /* new tokens at most */
    int no_repeat_ngram;  /* 0 = off; n bans any n-gram from appearing twice */
    float length_penalty; /* beam score = sum log p / n_tokens^length_penalty */
    vgpt_stop early_stopping; /* beam: when the search ends */
    float temperature;    /* sampling: logits / max(temperature, 1e-8) */
    int top_k;            /* 0 = off */
    float top_p;          /* 1 = off */
    uint64_t seed;        /* sampling: same seed, same caption, whatever the batch */
} vgpt_gen_opts;

/* The product's default: beam 3, no repeated 3-grams, 50 tokens. */
void vgpt_gen_opts_default(vgpt_gen_opts *o);
/* The published demo: temperature 0.7, top-k 50, top-p 0.9. */
void vgpt_gen_opts_sample(vgpt_gen_opts *o);
/* 0, or -1 naming the first field outside its limits. */
int vgpt_gen_opts_check(const vgpt_gen_opts *o, vgpt_err *err);
/* "false", "true", "never" (transformers' spellings); NULL for another value. */
const char *vgpt_stop_name(vgpt_stop s);
/* 0 and *out set for one of those names, else -1. */
int vgpt_stop_parse(const char *name, vgpt_stop *out);

#endif
