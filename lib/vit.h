/* vit.h - the frozen ViT-B/16 image encoder (torchvision VisionTransformer). */
#ifndef VGPT_VIT_H
#define VGPT_VIT_H

#include "arena.h"
#include "model.h"

/* wide holds, in turn, the patches, a layer's q/k/v and its MLP hidden
 * state: never live at once, they share the workspace's largest buffer. */
typedef struct vgpt_vit_ws {
    vgpt_buf x, xn, wide, att, scratch;
} vgpt_vit_ws;

/* pixels (N,3,S,S) normalised -> out (N,G*G,D): final-norm'd patch tokens,
 * class token dropped (kept first, (N,1+G*G,D), when v->keep_class).  Returns -1 only when scratch memory runs out. */
int vgpt_vit_forward(const vgpt_vit *v, const float *pixels, int N, float *out, vgpt_vit_ws *ws);
void vgpt_vit_ws_free(vgpt_vit_ws *ws);

#endif
