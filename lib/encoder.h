/* encoder.h - image tensors in, visual tokens out.
 *
 * The one interface the rest of vgpt sees of the vision side: a later
 * encoder family (e.g. CLIP ViT-L/14, a Q-Former) arrives as another
 * implementation behind these calls, not as edits to callers. */
#ifndef VGPT_ENCODER_H
#define VGPT_ENCODER_H

#include "err.h"
#include "model.h"

typedef struct vgpt_encoder vgpt_encoder;

int vgpt_encoder_new(const vgpt_model *m, vgpt_encoder **out, vgpt_err *err);
void vgpt_encoder_free(vgpt_encoder *e);

/* Input image side in pixels (224 for ViT-B/16), tokens per image, token width. */
int vgpt_encoder_image_size(const vgpt_encoder *e);
int vgpt_encoder_n_tokens(const vgpt_encoder *e);
int vgpt_encoder_width(const vgpt_encoder *e);

/* pixels (N,3,S,S) normalised -> tokens (N,L,C). */
int vgpt_encode(vgpt_encoder *e, const float *pixels, int N, float *tokens, vgpt_err *err);

#endif
