/* gen_opts.c - see gen_opts.h. */
#include "gen_opts.h"

#include <string.h>

void vgpt_gen_opts_default(vgpt_gen_opts *o) {
    *o = (vgpt_gen_opts){.mode = VGPT_BEAM, .beams = 3, .max_tokens = 50, .no_repeat_ngram = 3,
                         .length_penalty = 1.0f, .temperature = 0.7f, .top_k = 50, .top_p = 0.9f, .seed = 0};
}

void vgpt_gen_opts_sample(vgpt_gen_opts *o) {
    vgpt_gen_opts_default(o);
    o->mode = VGPT_SAMPLE;
    o->no_repeat_ngram = 0;
}

int vgpt_gen_opts_check(const vgpt_gen_opts *o, vgpt_err *err) {
    if (o->mode != VGPT_GREEDY && o->mode != VGPT_BEAM && o->mode != VGPT_SAMPLE)
        return vgpt_err_set(err, "mode %d: expected 0 (greedy), 1 (beam) or 2 (sample)", (int)o->mode);
    if (o->beams < 1 || o->beams > VGPT_GEN_MAX_BEAMS)
        return vgpt_err_set(err, "beams %d: expected 1 to %d", o->beams, VGPT_GEN_MAX_BEAMS);
    if (o->max_tokens < 1 || o->max_tokens > VGPT_GEN_MAX_TOKENS)
        return vgpt_err_set(err, "max_tokens %d: expected 1 to %d", o->max_tokens, VGPT_GEN_MAX_TOKENS);
    if (o->no_repeat_ngram < 0 || o->no_repeat_ngram > VGPT_GEN_MAX_NGRAM)
        return vgpt_err_set(err, "no_repeat_ngram %d: expected 0 to %d", o->no_repeat_ngram, VGPT_GEN_MAX_NGRAM);
    if (!(o->length_penalty >= -VGPT_GEN_MAX_LENGTH_PENALTY && o->length_penalty <= VGPT_GEN_MAX_LENGTH_PENALTY))
        return vgpt_err_set(err, "length_penalty %g: expected -%g to %g", o->length_penalty,
                            VGPT_GEN_MAX_LENGTH_PENALTY, VGPT_GEN_MAX_LENGTH_PENALTY);
    if (!vgpt_stop_name(o->early_stopping))
        return vgpt_err_set(err, "early_stopping %d: expected 0 (false), 1 (true) or 2 (never)",
                            (int)o->early_stopping);
    if (!(o->temperature >= 0 && o->temperature <= VGPT_GEN_MAX_TEMPERATURE))
        return vgpt_err_set(err, "temperature %g: expected 0 to %g", o->temperature, VGPT_GEN_MAX_TEMPERATURE);
    if (o->top_k < 0 || o->top_k > VGPT_GEN_MAX_TOP_K)
        return vgpt_err_set(err, "top_k %d: expected 0 to %d", o->top_k, VGPT_GEN_MAX_TOP_K);
    if (!(o->top_p >= VGPT_GEN_MIN_TOP_P && o->top_p <= 1.0f))
        return vgpt_err_set(err, "top_p %g: expected %g to 1", o->top_p, VGPT_GEN_MIN_TOP_P);
    return 0;
}

static const char *const stop_names[] = {"false", "true", "never"};

const char *vgpt_stop_name(vgpt_stop s) {
    return (unsigned)s < sizeof stop_names / sizeof *stop_names ? stop_names[s] : NULL;
}

int vgpt_stop_parse(const char *name, vgpt_stop *out) {
    for (unsigned i = 0; i < sizeof stop_names / sizeof *stop_names; i++)
        if (!strcmp(name, stop_names[i])) {
            *out = (vgpt_stop)i;
            return 0;
        }
    return -1;
}
