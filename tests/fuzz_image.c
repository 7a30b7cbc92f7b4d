/* fuzz_image.c - libFuzzer harness for the whole image path: sniffing,
 * libvips decoders, PIL conversion rules, PNG CRC repair and the resize.
 * Built and run by `make fuzz` (clang -fsanitize=fuzzer,address,undefined).
 *
 * The first input byte picks the options so every path gets exercised; the
 * pixel limit is kept small so the fuzzer looks for bugs, not for slow
 * inputs.  Crashers found go into tests/fuzz-corpus/ as regressions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <vips/vips.h>

#include "image.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    vgpt_err err;
    if (vgpt_image_init((*argv)[0], &err)) {
        fprintf(stderr, "fuzz_image: %s\n", err.msg);
        abort();
    }
    vips_concurrency_set(1);  /* deterministic, and one thread per input */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    vgpt_image_opts o;
    vgpt_image_opts_default(&o);
    o.autorotate = data[0] & 1;
    o.fast_decode = (data[0] >> 1) & 1;
    o.accept_truncated = (data[0] >> 2) & 1;
    o.max_pixels = 4u << 20;
    uint8_t out[VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE * 3];
    vgpt_err err;
    err.msg[0] = 0;
    if (vgpt_image_load_buffer(data + 1, size - 1, "fuzz", &o, out, &err)) {
        /* Every failure must explain itself on one line. */
        if (!err.msg[0]) abort();
        for (const char *p = err.msg; *p; p++)
            if (*p == '\n') abort();
    }
    return 0;
}
