/* tool_fastdiff.c - how much --fast-decode moves the visual tokens:
 *   tool_fastdiff CKPT EXACT.rgb FAST.rgb
 * (two raw 224x224x3 outputs of `preprocd --once`); prints one JSON line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "encoder.h"
#include "family.h"
#include "image.h"
#include "kernels.h"
#include "model.h"

static int read_rgb(const char *path, uint8_t *rgb) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(rgb, 1, VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE * 3, f) : 0;
    if (f) fclose(f);
    return n == VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE * 3 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: tool_fastdiff CKPT EXACT.rgb FAST.rgb\n");
        return 2;
    }
    static uint8_t a[VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE * 3], b[VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE * 3];
    if (read_rgb(argv[2], a) || read_rgb(argv[3], b)) {
        fprintf(stderr, "tool_fastdiff: %s or %s is not a 224x224x3 image\n", argv[2], argv[3]);
        return 1;
    }
    vgpt_err err;
    vgpt_model *m;
    vgpt_encoder *e;
    vgpt_set_threads(2);
    if (vgpt_model_load(argv[1], VGPT_LOAD_ENCODER, &m, &err) || vgpt_encoder_new(m, &e, &err)) {
        fprintf(stderr, "tool_fastdiff: %s\n", err.msg);
        return 1;
    }
    size_t plane = 3 * VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE, nt = (size_t)m->rs.n_latents * m->rs.width;
    float *px = malloc(2 * plane * sizeof(float)), *vis = malloc(2 * nt * sizeof(float));
    vgpt_image_normalize(a, vgpt_family_visiongpt.mean, vgpt_family_visiongpt.std, px);
    vgpt_image_normalize(b, vgpt_family_visiongpt.mean, vgpt_family_visiongpt.std, px + plane);
    vgpt_encode(e, px, 2, vis, &err);
    int maxpix = 0;
    for (size_t i = 0; i < sizeof a; i++) maxpix = abs(a[i] - b[i]) > maxpix ? abs(a[i] - b[i]) : maxpix;
    double md = 0, mx = 0, num = 0, den = 0;
    for (size_t i = 0; i < nt; i++) {
        double d = fabs((double)vis[i] - vis[nt + i]);
        md = d > md ? d : md;
        mx = fabs(vis[i]) > mx ? fabs(vis[i]) : mx;
        num += d * d;
        den += (double)vis[i] * vis[i];
    }
    printf("{\"bench\":\"fast_decode_tokens\",\"max_pixel_diff\":%d,\"tokens_max_abs_diff\":%.4g,"
           "\"tokens_max_abs\":%.4g,\"tokens_rel_l2\":%.4g}\n",
           maxpix, md, mx, sqrt(num / (den > 0 ? den : 1)));
    free(px);
    free(vis);
    vgpt_encoder_free(e);
    vgpt_model_free(m);
    return 0;
}
