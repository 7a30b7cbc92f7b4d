/* model.h - a captioning model's weights, bound to named tensors of a
 * checkpoint by its family (family.h): a ViT, an optional bridge (the
 * resampler), a GPT-2 text decoder.  The engine computes from these structs
 * only.  fp32 tensors are used in place inside the checkpoint's mmap; fp16 /
 * bf16 tensors are widened once into buffers owned by the model. */
#ifndef VGPT_MODEL_H
#define VGPT_MODEL_H

#include <stdint.h>

#include "ckpt.h"
#include "err.h"
#include "family.h"
#include "mm.h"
#include "packed.h"

#define VGPT_MAX_LAYERS 64

typedef struct vgpt_ln { const float *scale, *shift; } vgpt_ln;
/* w is (out,in), b may be NULL.  With --precision bf16 the product runs on
 * mm (mm.h) and w is dropped (NULL, or its pages released). */
typedef struct vgpt_lin { const float *w, *b; int in, out; vgpt_mm *mm; } vgpt_lin;

typedef struct vgpt_vit_layer {
    vgpt_ln ln1, ln2;
    vgpt_lin qkv, proj, fc1, fc2;
} vgpt_vit_layer;

typedef struct vgpt_vit {
    int width, n_layers, n_heads, patch, grid, image; /* grid*grid patches of patch^2 px */
    float eps;       /* LayerNorm epsilon (torchvision 1e-6; HF config's layer_norm_eps) */
    int keep_class;  /* 1: the output keeps the class token (HF: all 1+G*G tokens) */
    vgpt_lin patch_embed;  /* (width, 3*patch*patch): the conv as a GEMM */
    const float *class_token, *pos_embed; /* (width), (1+grid*grid, width) */
    vgpt_vit_layer layers[VGPT_MAX_LAYERS];
    vgpt_ln ln_final;
    vgpt_mm_ctx *mm_ctx; /* bf16: the attention's products run here too */
} vgpt_vit;

typedef struct vgpt_resampler_layer {
    vgpt_ln norm_latent, norm_media, mlp_ln;
    vgpt_lin to_q, to_kv, proj_out, fc1, fc2;
} vgpt_resampler_layer;

typedef struct vgpt_resampler {
    int width, n_latents, depth, n_heads, head_dim;
    const float *latents; /* (n_latents, width) */
    vgpt_resampler_layer layers[8];
    vgpt_mm_ctx *mm_ctx; /* bf16: as vgpt_vit's */
} vgpt_resampler;

typedef struct vgpt_block {
    int is_cross;
    vgpt_ln ln1, ln2;              /* cross block: ln1 = attn_norm */
    vgpt_lin q, k, v, proj;
    vgpt_lin fc1, fc2;             /* transformer blocks only */
    /* What a decoding step multiplies by (see packed.c): self blocks stack
     * W_query, W_key, W_value into one (3C,C) product; cross blocks pack
     * W_query alone (their K/V are computed once per image from k, v). */
    vgpt_packed packed_qkv, packed_proj, packed_fc1, packed_fc2;
    /* VGPT_CROSS_IN_BLOCK (HF GPT-2): the block's own cross-attention, run
     * between its self-attention and its MLP: ln_cross, q from xq, K / V
     * from xk / xv over the visual tokens (once per image), xproj. */
    int in_cross;
    vgpt_ln ln_cross;
    vgpt_lin xq, xk, xv, xproj;
    vgpt_packed packed_xq, packed_xproj;
} vgpt_block;

typedef struct vgpt_gpt {
    int width, n_heads, vocab, n_blocks, n_layers, n_cross;
    int context;  /* P: positions the model may use (the causal mask's size) */
    int pos_rows; /* R >= P: rows of pos_emb (1024 in the published file) */
    const float *tok_emb, *pos_emb, *out_head; /* (V,C), (R,C), (V,C) */
    vgpt_block blocks[VGPT_MAX_LAYERS];        /* in checkpoint (forward) order */
    vgpt_ln ln_final;
    vgpt_packed packed_head; /* out_head, packed */
} vgpt_gpt;

/* A weight matrix of the checkpoint that is not usable in place (fp16,
 * bf16, strided): bound with its slot left NULL and widened only when the
 * load converts or packs it (vgpt_model_widen), so that a narrow checkpoint
 * is never resident widened as a whole, only one matrix at a time. */
enum { VGPT_DEFER_PENDING, VGPT_DEFER_WIDENED, VGPT_DEFER_ROWS };
typedef struct vgpt_deferred {
    const float **slot; /* where the fp32 matrix goes */
    vgpt_tensor view;   /* the tensor (or a transposed / sliced view of it) */
    int state;          /* VGPT_DEFER_ROWS: tok_emb, read a row at a time (vgpt_model_token_row) */
} vgpt_deferred;

typedef struct vgpt_model {
    vgpt_ckpt *ckpt;
    const vgpt_family *family; /* family.h: keys, bridge, preprocessing, special tokens */
    vgpt_vit vit;
    vgpt_lin project;   /* vision width -> text width; w == NULL when identity */
    vgpt_resampler rs;
    vgpt_gpt gpt;
    int tied;           /* out_head shares tok_emb's storage */
    float mean[3], std[3]; /* pixel normalisation: the family's, or the model folder's preprocessor_config.json */
    vgpt_precision precision; /* of the matrix products (mm.h) */
    vgpt_mm_ctx *mm_ctx;      /* bf16: the products' context (mm.h), NULL in fp32 */
    char fingerprint[17]; /* hex digest of tensor names, shapes and sampled bytes */
    void **owned;       /* widened fp16/bf16 copies */
    int n_owned, cap_owned;
    vgpt_deferred *deferred; /* matrices bound but not yet widened (model_bind.c) */
    int n_deferred, cap_deferred;
    const vgpt_tensor *tok_rows; /* a narrow tok_emb read a row at a time (gpt.tok_emb NULL), else NULL */
} vgpt_model;

/* What a process needs: the encoder side, the decoder side, or both; with
 * VGPT_LOAD_BF16 every matrix product is bf16 (mm.h), weights converted once
 * at load and held only in bf16. */
enum { VGPT_LOAD_ENCODER = 1, VGPT_LOAD_DECODER = 2, VGPT_LOAD_ALL = 3, VGPT_LOAD_BF16 = 4 };

int vgpt_model_load(const char *path, int flags, vgpt_model **out, vgpt_err *err);

/* The context length of the checkpoint at path (for Vision-GPT: the causal
 * mask's size, else config.json's context_length, else pos_emb's rows),
 * reading only its index: cheap enough for usage checks. */
int vgpt_model_peek_context(const char *path, int *context, vgpt_err *err);
void vgpt_model_free(vgpt_model *m);

/* The generation defaults the model at path brings (family.h gen_defaults):
 * 1 with *o's mode, beams, max_tokens, no_repeat_ngram, length_penalty set,
 * 0 when it brings none, -1 with err, -2 with err when they are settings
 * vgpt cannot follow (family.h). */
int vgpt_model_peek_gen(const char *path, vgpt_gen_opts *o, vgpt_err *err);

/* model_bind.c: the deferred matrix bound to slot, if it was one.  widen
 * fills *slot if it is still pending (0, or -1 out of memory, naming the
 * tensor); widen_all does so for every one still pending. */
const vgpt_deferred *vgpt_model_deferred(const vgpt_model *m, const float *const *slot);
int vgpt_model_widen(vgpt_model *m, const float **slot, vgpt_err *err);
int vgpt_model_widen_all(vgpt_model *m, vgpt_err *err);

/* dst (C floats) = row `token` of tok_emb: from the fp32 tensor, or, when
 * the checkpoint's is narrow, widened from its row in the file. */
void vgpt_model_token_row(const vgpt_model *m, float *dst, int token);

/* Frees p if it is one of the model's widened copies; returns 1 if it was. */
int vgpt_model_free_owned(vgpt_model *m, const void *p);
/* Hands p over (not freed) if it is one; returns 1 if it was. */
int vgpt_model_take_owned(vgpt_model *m, const void *p);

/* *w (n floats) is no longer needed in its checkpoint layout: a widened
 * copy is freed and *w set to NULL; an in-place tensor keeps its pointer
 * and its pages are released. */
void vgpt_model_drop_weight(vgpt_model *m, const float **w, size_t n);
/* dst = n weights at src, read without mapping them when they lie in the
 * checkpoint (vgpt_ckpt_copy): the decoder's embedding rows. */
void vgpt_model_copy_weights(const vgpt_model *m, float *dst, const float *src, size_t n);

/* model_bf16.c: the encoder's weights (and the decoder's cross K/V
 * weights) as bf16 products, their fp32 forms dropped. */
int vgpt_model_to_bf16(vgpt_model *m, int parts, vgpt_err *err);
void vgpt_model_free_bf16(vgpt_model *m);

/* model_pack.c: the packed_* weights of the decoder (called by load / free).
 * In bf16 the packed form is a bf16 weight (packed.mm, mm.h).  The weights
 * packed are then dropped (tok_emb, which the head may share, stays
 * readable). */
int vgpt_model_pack_decoder(vgpt_model *m, vgpt_err *err);
void vgpt_model_unpack_decoder(vgpt_model *m);

/* Folds bytes (settings read beside the weights, e.g. preprocessing) into
 * the fingerprint, so that caches keyed by it keep them apart. */
void vgpt_model_mix_fingerprint(vgpt_model *m, const void *bytes, size_t n);

/* One line describing the layout, for logs and --verbose. */
void vgpt_model_describe(const vgpt_model *m, char *buf, int len);

#endif
