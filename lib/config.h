/* config.h - the model hyper-parameters a checkpoint's config.json may give.
 *
 * Shapes in the state dict are the truth for sizes, but head counts cannot be
 * read from shapes; they come from a config.json beside the checkpoint when
 * there is one (model-spec.md, "The checkpoint file").  This file only reads
 * and type-checks the JSON; defaults and agreement with the shapes are the
 * model loader's business. */
#ifndef VGPT_CONFIG_H
#define VGPT_CONFIG_H

#include <stddef.h>

#include "err.h"

#define VGPT_CONFIG_MAX_CROSS 32

typedef struct vgpt_config {
    /* -1 when absent (or null) in config.json, or when there is no config.json */
    int n_heads, perceiver_heads, perceiver_dim_head, vision_num_heads;
    int context_length, vocab_size, emb_dim, n_layers;
    int perceiver_num_latents, perceiver_depth;
    int cross_pos[VGPT_CONFIG_MAX_CROSS]; /* "cross_attention_pos" */
    int n_cross_pos;                      /* -1 when absent; 0 for [] */
    char path[4096];                      /* the config.json read, "" when none */
} vgpt_config;

/* "<dir of ckpt_path>/name" into out; -1 if it does not fit. */
int vgpt_config_sibling(const char *ckpt_path, const char *name, char *out, size_t cap);

/* Sets every field to -1 / empty. */
void vgpt_config_init(vgpt_config *cfg);

/* Reads config.json from the directory holding ckpt_path.  No file: all
 * fields -1, returns 0.  Malformed JSON, a root that is not an object, or a
 * known key with a value that is not a positive integer (cross positions:
 * an array of at most 32 non-negative integers) is an error naming the file
 * (and line:column, or the key).  Unknown keys are ignored. */
int vgpt_config_load(const char *ckpt_path, vgpt_config *cfg, vgpt_err *err);

#endif
