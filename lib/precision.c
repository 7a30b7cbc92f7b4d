/* precision.c - names of the precisions (precision.h). */
#include "precision.h"

#include <string.h>

const char *vgpt_precision_name(vgpt_precision p) {
    return p == VGPT_BF16 ? "bf16" : "fp32";
}

int vgpt_precision_parse(const char *s, vgpt_precision *out) {
    if (!strcmp(s, "fp32")) *out = VGPT_FP32;
    else if (!strcmp(s, "bf16")) *out = VGPT_BF16;
    else return -1;
    return 0;
}

int vgpt_precision_images_per_pass(vgpt_precision p, int n) { return p == VGPT_BF16 ? 1 : n; }
