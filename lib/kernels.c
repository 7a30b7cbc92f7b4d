/* kernels.c - the linear layer and attention over OpenBLAS, and the thread
 * settings of OpenBLAS (see kernels.h).  LayerNorm, GELU and softmax live in
 * activations.c, which alone is built with -ffast-math. */
#include "kernels.h"

#include <cblas.h>
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "kern.h"

/* Debian's libopenblas exports this; declared here so cblas.h variants agree. */
void openblas_set_num_threads(int num_threads);

void vgpt_set_threads(int n) {
    openblas_set_num_threads(n > 0 ? n : 1);
    omp_set_num_threads(n > 0 ? n : 1); /* oneDNN's (bf16) threads */
}

/* Executed through /proc/self/exe, a program is named "exe" (its comm, what
 * ps, top, pgrep and killall match), and so are the threads OpenBLAS started
 * while it loaded: give every thread back the name it was started as.
 * (PR_SET_PDEATHSIG and the pid survive the exec; only the name changes.) */
static void keep_name(char **argv) {
    char comm[17] = "";
    if (!argv || !argv[0] || prctl(PR_GET_NAME, comm) || strcmp(comm, "exe")) return;
    const char *base = strrchr(argv[0], '/');
    char name[16];
    snprintf(name, sizeof name, "%s", base ? base + 1 : argv[0]);
    prctl(PR_SET_NAME, name);
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *t; d && (t = readdir(d));) {
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", t->d_name);
        int fd = t->d_name[0] == '.' ? -1 : open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) (void)!write(fd, name, strlen(name)), close(fd);
    }
    if (d) closedir(d);
}

void vgpt_process_tune(char **argv) {
    int changed = 0;
    if (!getenv("OPENBLAS_THREAD_TIMEOUT")) changed |= !setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    if (!getenv("GOMP_SPINCOUNT") && !getenv("OMP_WAIT_POLICY")) changed |= !setenv("GOMP_SPINCOUNT", "10000", 1);
    if (!changed) {
        keep_name(argv);
        if (!getenv("MALLOC_MMAP_THRESHOLD_") && !getenv("GLIBC_TUNABLES")) mallopt(M_MMAP_THRESHOLD, 1 << 20);
        return;
    }
    execv("/proc/self/exe", argv);
}

void vgpt_linear(float *out, const float *inp, const float *weight, const float *bias,
                 int N, int C, int OC, int accumulate) {
    // inp is (N,C), weight is (OC,C), out is (N,OC)
    float beta = 0.0f;
    if (accumulate) {
        beta = 1.0f;
    }
    if (N == 1) {
        /* sgemv streams the weight once; sgemm with M=1 packs it first */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, OC, C, 1.0f, weight, C, inp, 1, beta, out, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp, C, weight, C,
                    beta, out, OC);
    }
    if (bias) {
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
            for (int i = 0; i < OC; i++) o[i] += bias[i];
        }
    }
}

/* One query row (the decoder's new token): plain loops, since a BLAS call
 * per head costs more than the arithmetic, and these run on pool threads.
 * The keys are taken ATT_BLOCK at a time for every head, not every key for
 * one head and then the next: K and V are rows of all heads side by side,
 * so a block is one stretch of memory, read once, while the next one is
 * prefetched.  Head after head over all keys read each row in 12 pieces,
 * far apart, and ran at memory latency (Zen 4, 16 images' cross-attention
 * K/V, beyond L2: ~8 GB/s). */
#define ATT_BLOCK 16

static void prefetch_rows(const char *p, int rows, size_t ld, size_t bytes) {
    for (int r = 0; r < rows; r++, p += ld)
        for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 2);
}

void vgpt_attention_prefetch(const void *k, int ldk, int Tk, int width, int bf16) {
    size_t es = vgpt_kv_elem_size(bf16);
    prefetch_rows(k, Tk < ATT_BLOCK ? Tk : ATT_BLOCK, (size_t)ldk * es, (size_t)width * es);
}

VGPT_CLONES void vgpt_attention_one(float *out, const float *q, const void *k, int ldk, const void *v, int ldv, int Tk, int H,
                        int hd, int bf16, float *scratch) {
    // q, out are (H*hd), k and v are (Tk, H*hd) with strides ldk / ldv; scratch is (H, Tk)
    const vgpt_kernels *kern = vgpt_kernels_get();
    const float scale = 1.0f / sqrtf((float)hd);
    size_t es = vgpt_kv_elem_size(bf16), used = (size_t)H * hd * es;
    const char *kb = k, *vb = v;
    for (int t0 = 0; t0 < Tk; t0 += ATT_BLOCK) {
        int n = Tk - t0 < ATT_BLOCK ? Tk - t0 : ATT_BLOCK, next = Tk - t0 - n < ATT_BLOCK ? Tk - t0 - n : ATT_BLOCK;
        const char *kt = kb + (size_t)t0 * ldk * es;
        /* the next K block, or when this is the last, V's first */
        if (next) prefetch_rows(kt + (size_t)n * ldk * es, next, (size_t)ldk * es, used);
        else prefetch_rows(vb, Tk < ATT_BLOCK ? Tk : ATT_BLOCK, (size_t)ldv * es, used);
        for (int h = 0; h < H; h++) {
            float *s = scratch + (size_t)h * Tk + t0;
            if (bf16)
                kern->scores_bf16(s, q + h * hd, (const uint16_t *)kt + h * hd, ldk, n, hd, scale);
            else
                kern->scores(s, q + h * hd, (const float *)kt + h * hd, ldk, n, hd, scale);
        }
    }
    for (int h = 0; h < H; h++) vgpt_softmax_rows(scratch + (size_t)h * Tk, 1, Tk, -1); /* each below OpenMP's size */
    memset(out, 0, (size_t)H * hd * sizeof *out);
    for (int t0 = 0; t0 < Tk; t0 += ATT_BLOCK) {
        int n = Tk - t0 < ATT_BLOCK ? Tk - t0 : ATT_BLOCK, next = Tk - t0 - n < ATT_BLOCK ? Tk - t0 - n : ATT_BLOCK;
        const char *vt = vb + (size_t)t0 * ldv * es;
        if (next) prefetch_rows(vt + (size_t)n * ldv * es, next, (size_t)ldv * es, used);
        for (int h = 0; h < H; h++) {
            const float *p = scratch + (size_t)h * Tk + t0;
            if (bf16)
                kern->mix_bf16(out + h * hd, p, (const uint16_t *)vt + h * hd, ldv, n, hd);
            else
                kern->mix(out + h * hd, p, (const float *)vt + h * hd, ldv, n, hd);
        }
    }
}

void vgpt_attention(float *out, int ldo, const float *q, int ldq, const float *k, int ldk,
                    const float *v, int ldv, int Tq, int Tk, int H, int hd,
                    int causal_offset, float *scratch) {
    // q is (Tq, H*hd), k and v are (Tk, H*hd), out is (Tq, H*hd); scratch is (Tq, Tk)
    const float scale = 1.0f / sqrtf((float)hd);
    if (Tq == 1) {
        int n = causal_offset >= 0 && causal_offset + 1 < Tk ? causal_offset + 1 : Tk;
        vgpt_attention_one(out, q, k, ldk, v, ldv, n, H, hd, 0, scratch);
        return;
    }
    for (int h = 0; h < H; h++) {
        const float *qh = q + h * hd, *kh = k + h * hd, *vh = v + h * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, Tk, hd, scale, qh, ldq, kh, ldk,
                    0.0f, scratch, Tk);
        vgpt_softmax_rows(scratch, Tq, Tk, causal_offset);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, hd, Tk, 1.0f, scratch, Tk, vh, ldv,
                    0.0f, out + h * hd, ldo);
    }
}
