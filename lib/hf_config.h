/* hf_config.h - the JSON files of a Hugging Face VisionEncoderDecoder hub
 * folder (nlpconnect/vit-gpt2-image-captioning and its fine-tunes), read
 * and checked against what vgpt implements.
 *
 *   config.json               model_type "vision-encoder-decoder", with
 *                             "encoder" (ViTConfig) and "decoder" (GPT2Config)
 *   preprocessor_config.json  ViTImageProcessor: size, resample, rescale, mean / std
 *   generation_config.json    generation defaults (optional; else config.json,
 *                             else the model card's: beam 4, max_length 16)
 *
 * Absent fields take transformers' defaults.  An option vgpt does not
 * implement (another encoder / decoder type, scale_attn_by_inverse_layer_idx,
 * reorder_and_upcast_attn, another activation, ...) is refused with the file
 * and the field named. */
#ifndef VGPT_HF_CONFIG_H
#define VGPT_HF_CONFIG_H

#include "err.h"
#include "gen_opts.h"

typedef struct vgpt_hf_config {
    /* encoder (ViT) */
    int vit_width, vit_layers, vit_heads, vit_mlp, image_size, patch_size;
    double vit_eps;
    /* decoder (GPT-2) */
    int n_embd, n_layer, n_head, n_positions, vocab_size, n_inner;
    int tied; /* decoder.tie_word_embeddings */
    /* special tokens */
    int start, eos, pad;
    /* generation defaults */
    int num_beams, max_length, no_repeat_ngram_size;
    vgpt_stop early_stopping;
    double length_penalty;
    char gen_unsupported[600]; /* non-empty: a setting generate() applies that vgpt does not (the message) */
    /* preprocessing: (v * rescale - mean) / std on a size x size image */
    float mean[3], std[3];
    char path[4096]; /* the config.json read */
} vgpt_hf_config;

/* 1 if config.json beside ckpt_path says model_type "vision-encoder-decoder". */
int vgpt_hf_config_present(const char *ckpt_path);

/* Reads the three files beside ckpt_path (config.json is required). */
int vgpt_hf_config_load(const char *ckpt_path, vgpt_hf_config *c, vgpt_err *err);

#endif
