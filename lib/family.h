/* family.h - a model family: what differs between the captioning models the
 * engine runs.  A family is its checkpoint keys and how they bind to the
 * engine's parts (the vision tower, vit.c; the bridge, resampler.c or none;
 * the text decoder, gpt2.c, with its way of attending to the visual tokens),
 * its preprocessing constants and its special tokens.  The engine's compute
 * code reads only the bound structs (model.h), never a key name; a new family
 * is a family_*.c file plus an entry in family.c's table. */
#ifndef VGPT_FAMILY_H
#define VGPT_FAMILY_H

#include "ckpt.h"
#include "err.h"
#include "gen_opts.h"

struct vgpt_model;

/* What turns ViT features into the visual tokens the text decoder sees. */
typedef enum { VGPT_BRIDGE_NONE, VGPT_BRIDGE_RESAMPLER } vgpt_bridge_kind;
/* How the text decoder attends to them: separate cross-attention blocks in
 * the block list (Vision-GPT), or cross-attention inside each block. */
typedef enum { VGPT_CROSS_BLOCKS, VGPT_CROSS_IN_BLOCK } vgpt_cross_kind;

typedef struct vgpt_family {
    const char *name;
    /* 1 if the checkpoint's keys are this family's. */
    int (*detect)(const vgpt_ckpt *ck);
    /* Binds the parts asked for (VGPT_LOAD_*) into m (m->ckpt is open),
     * reading the family's own config files beside the checkpoint. */
    int (*bind)(struct vgpt_model *m, int parts, vgpt_err *err);
    /* The context length (positions the text decoder may use), cheaply. */
    int (*context)(const vgpt_ckpt *ck, int *out, vgpt_err *err);
    /* The model folder's own generation defaults, cheaply: 1 with *o filled
     * (mode, beams, max_tokens, no_repeat_ngram, length_penalty), 0 when the
     * family has none (NULL: none), -1 with err; -2 with err when they are
     * settings vgpt cannot follow (the caller may still run its own). */
    int (*gen_defaults)(const vgpt_ckpt *ck, vgpt_gen_opts *o, vgpt_err *err);
    vgpt_bridge_kind bridge;
    vgpt_cross_kind cross;
    float mean[3], std[3]; /* pixels: (v/255 - mean) / std per channel */
    int bos, eos;          /* generation starts from bos and stops at eos */
} vgpt_family;

extern const vgpt_family vgpt_family_visiongpt;
extern const vgpt_family vgpt_family_hf_vit_gpt2; /* family_hf.c */

/* The family whose detect accepts ck; an error naming the file otherwise. */
const vgpt_family *vgpt_family_detect(const vgpt_ckpt *ck, vgpt_err *err);

#endif
