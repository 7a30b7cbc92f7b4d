/* family.c - the table of model families (see family.h). */
#include "family.h"

/* HF first: its detect reads config.json's model_type, which is decisive */
static const vgpt_family *const families[] = {&vgpt_family_hf_vit_gpt2, &vgpt_family_visiongpt};

const vgpt_family *vgpt_family_detect(const vgpt_ckpt *ck, vgpt_err *err) {
    for (size_t i = 0; i < sizeof families / sizeof *families; i++)
        if (families[i]->detect(ck)) return families[i];
    vgpt_err_set(err, "%s: not a checkpoint of a model vgpt knows (no tok_emb.weight or vision.resampler.latents; "
                 "see model-spec.md for the published Vision-GPT layout; a Hugging Face ViT-GPT2 folder needs its "
                 "config.json beside the weights)", vgpt_ckpt_path(ck));
    return 0;
}
