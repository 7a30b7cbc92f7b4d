/* precision.h - the precision of the matrix products (--precision): fp32
 * (exact, as the reference) or bf16 (mm.h).  Its own header: the
 * token cache and the option parsers name it without pulling in oneDNN. */
#ifndef VGPT_PRECISION_H
#define VGPT_PRECISION_H

typedef enum { VGPT_FP32 = 0, VGPT_BF16 = 1 } vgpt_precision;

/* "fp32" / "bf16"; parse returns -1 for anything else. */
const char *vgpt_precision_name(vgpt_precision p);
int vgpt_precision_parse(const char *s, vgpt_precision *out);

#endif
