/* fuzz_ckpt.c - libFuzzer harness over the checkpoint reader (zip index,
 * non-executing pickle, tensor records) and the Vision-GPT binder, with
 * ASan/UBSan: whatever the bytes, opening either fails with a message
 * naming the file or yields tensors whose every byte is inside the buffer, and
 * binding them either fails with a message or gives a model that frees
 * cleanly.  Run with `make fuzz-ckpt`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "model.h"

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_ckpt: %s: %s\n", what, detail);
    abort();
}

/* Reads the first and last byte of every tensor, so ASan checks the range. */
static unsigned touch_tensors(const vgpt_ckpt *ck) {
    unsigned s = 0;
    for (size_t i = 0; i < vgpt_ckpt_count(ck); i++) {
        const vgpt_tensor *t = vgpt_ckpt_at(ck, i);
        if (!t->name) die("accepted", "tensor without a name");
        if (!t->data || t->numel <= 0 || !vgpt_dtype_size(t->dtype)) continue; /* OTHER: not read */
        /* the view's last element (strides may be anything the reader accepted) */
        int64_t last = 0;
        for (int d = 0; d < t->ndim; d++) last += (t->shape[d] - 1) * t->stride[d];
        const volatile uint8_t *b = t->data;
        size_t es = vgpt_dtype_size(t->dtype);
        s += b[0] + b[(size_t)last * es + es - 1];
    }
    return s;
}

/* A rejection says which file: messages may quote raw bytes of the input
 * (printers escape them), but never come out empty or unattributed. */
static void check_message(const vgpt_err *err) {
    if (!strstr(err->msg, "fuzz.pth")) die("rejected without naming the file", err->msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vgpt_ckpt *ck;
    vgpt_err err = {{0}};
    /* a path in no directory: the binder then finds no config.json beside it */
    if (vgpt_ckpt_open_mem(data, size, "/nonexistent/fuzz.pth", &ck, &err)) {
        check_message(&err);
        return 0;
    }
    touch_tensors(ck);
    vgpt_model *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->ckpt = ck;
    if ((m->family = vgpt_family_detect(ck, &err)) && m->family->bind(m, VGPT_LOAD_ALL, &err)) check_message(&err);
    vgpt_model_free(m); /* frees ck too */
    return 0;
}
