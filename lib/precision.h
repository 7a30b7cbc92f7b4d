/* precision.h - the precision of the matrix products (--precision): fp32
 * (exact, as the reference) or bf16 (mm.h).  Its own header: the
 * token cache and the option parsers name it without pulling in oneDNN. */
#ifndef VGPT_PRECISION_H
#define VGPT_PRECISION_H

typedef enum { VGPT_FP32 = 0, VGPT_BF16 = 1 } vgpt_precision;

/* "fp32" / "bf16"; parse returns -1 for anything else. */
const char *vgpt_precision_name(vgpt_precision p);
int vgpt_precision_parse(const char *s, vgpt_precision *out);

/* Images per product in the work done once per image (the encoder, the
 * decoder's cross K/V) for a batch of n.  bf16: one, so that an image's
 * results are its own bit for bit whatever its batch-mates.  Neither
 * OpenBLAS's sgemm (vgpt's own bf16 on the generic kernels, mm_own.c) nor
 * oneDNN promises a row the same sum whatever the number of rows, and
 * rounding to bf16 after each product turns those last-bit differences
 * into bf16 steps (Zen 3, a random-weight full-size checkpoint, the ViT
 * four images a product: 6 of the 14 shared photos' greedy captions
 * changed between batch 1 and 16).  oneDNN's products fill its blocks
 * with one image's 197 rows (Zen 4: 9.2-9.5 img/s one image at a time or
 * eight), and the workspace is one image's.  AVX2's rows_bf16 (kern.h)
 * sums each row alike whatever M, but gains little from more rows (Zen 3,
 * batch 8: 3.1-3.6 img/s either way), so it keeps the one-image workspace
 * too.  fp32: all n, as sgemm wants (Zen 4: 3.2 img/s one at a time, 4.5
 * in eights); its last bits may move with the batch, far below what a
 * caption shows. */
int vgpt_precision_images_per_pass(vgpt_precision p, int n);

#endif
