/* kernels.h - the math every model part is built from.
 *
 * Matrix products go to OpenBLAS (sgemm / sgemv); LayerNorm, GELU, softmax
 * and the attention glue are plain C loops the compiler vectorises.
 * Shapes follow llm.c's convention: (rows, cols), row-major, nn.Linear
 * weights are (OC, C) and y = x W^T + b. */
#ifndef VGPT_KERNELS_H
#define VGPT_KERNELS_H

#include <stddef.h>

/* out (N,OC) = inp (N,C) @ weight(OC,C)^T + bias(OC) (bias may be NULL).
 * With accumulate, out += the product instead (residual connections). */
void vgpt_linear(float *out, const float *inp, const float *weight, const float *bias,
                 int N, int C, int OC, int accumulate);

/* out (N,C) = LayerNorm(inp (N,C)) * scale + shift, biased variance. out may equal inp. */
void vgpt_layernorm(float *out, const float *inp, const float *scale, const float *shift,
                    int N, int C, float eps);

/* In place over n values. */
void vgpt_gelu_erf(float *x, size_t n);
void vgpt_gelu_tanh(float *x, size_t n);

/* Multi-head attention for one sequence, heads laid side by side in columns:
 * q is (Tq, H*hd) with row stride ldq, k and v are (Tk, H*hd) with strides
 * ldk / ldv, out is (Tq, H*hd) with stride ldo.  Scale is 1/sqrt(hd).
 * causal_offset >= 0 makes query i see keys 0..causal_offset+i only; -1 = no mask.
 * scratch must hold Tq*Tk floats (H*Tk when Tq is 1: vgpt_attention_one). */
void vgpt_attention(float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                    const float *v, int ldv, int Tq, int Tk, int H, int hd,
                    int causal_offset, float *scratch);

/* One query (the decoder's new token) against Tk keys and values, no mask:
 * q and out are (H*hd) fp32, k and v (Tk, H*hd) with strides ldk / ldv,
 * fp32, or bf16 (uint16_t) when bf16 is set (the decoder's caches with
 * --precision bf16), widened as they are read; scratch holds H*Tk floats. */
void vgpt_attention_one(float *out, const float *q, const void *k, int ldk, const void *v, int ldv, int Tk, int H,
                        int hd, int bf16, float *scratch);

/* Bytes of one key / value element: bf16 or fp32. */
static inline size_t vgpt_kv_elem_size(int bf16) {
    return bf16 ? 2 : sizeof(float);
}

/* Starts bringing the first keys vgpt_attention_one will read (width
 * values of each row) into cache: called for the next caption while one
 * is attended, so that its first block is not read at memory latency. */
void vgpt_attention_prefetch(const void *k, int ldk, int Tk, int width, int bf16);

/* Row-wise softmax of x (rows, cols) in place.  causal_offset >= 0: row r
 * uses its first causal_offset+r+1 entries (at most cols) and the rest are
 * set to 0; -1 = every entry. */
void vgpt_softmax_rows(float *x, int rows, int cols, int causal_offset);

/* No -march in the build: a vectorised loop is compiled three times
 * (AVX-512, AVX2, baseline), the CPU's best chosen when the program loads. */
#define VGPT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

/* Threads used by OpenBLAS and oneDNN (OpenMP) for the matrix products,
 * for products run on the calling thread. */
void vgpt_set_threads(int n);

/* OpenBLAS's idle threads spin for about 2^28 cycles (~0.1 s) after every
 * call before they sleep: a whole core burnt between batches, taken from
 * the decoder's threads in the same process and from the other daemons on
 * the node.  OPENBLAS_THREAD_TIMEOUT=4 makes them sleep at once, but it is
 * read only when the library loads, so when it is unset this sets it and
 * re-executes the program (same pid, same argv, and the same process name:
 * the name "exe" the re-exec gives is replaced by argv[0]'s).  Call it
 * first in main(); a value the user set is kept, and a failed exec just
 * continues.  Likewise GOMP_SPINCOUNT=10000 for oneDNN's OpenMP threads
 * (bf16): they spin ~10 us between the ~60 products of a decoding step
 * (sleeping there costs a futex wake per product, 4 ms a step at batch 1)
 * and then sleep, unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set.
 * And glibc's threshold for mmap'd allocations is fixed at 1 MB (unless
 * MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES is set): left to itself it rises
 * to 32 MB once a large block is freed, and the load's widened copies of
 * fp16 weights, freed one by one between the packed ones, then stay in
 * the heap as holes (Zen 3, fp16 checkpoint in bf16: peak 531 -> 495 MB). */
void vgpt_process_tune(char **argv);

#endif
