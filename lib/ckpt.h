/* ckpt.h - read PyTorch zip checkpoints (torch.save) without Python.
 *
 * The file is mmap'd; the pickle (data.pkl) is parsed by a small stack
 * machine that understands the subset state dicts use and treats every other
 * global / reduce as an opaque value (nothing is ever executed).  Tensors
 * reference their storage bytes in place inside the mapping.
 *
 * Accepted: a dict whose "model_state_dict" entry is the state dict, or a bare
 * state dict (dict / OrderedDict of name -> tensor).  Storages: Float, Half,
 * BFloat16 (others are listed with dtype VGPT_DT_OTHER and fail on use). */
#ifndef VGPT_CKPT_H
#define VGPT_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum { VGPT_DT_F32 = 0, VGPT_DT_F16 = 1, VGPT_DT_BF16 = 2, VGPT_DT_OTHER = 3 } vgpt_dtype;

#define VGPT_MAX_DIMS 8

typedef struct vgpt_tensor {
    const char *name;             /* state-dict key, NUL-terminated, owned by the ckpt */
    vgpt_dtype dtype;
    int ndim;
    int64_t shape[VGPT_MAX_DIMS];
    int64_t stride[VGPT_MAX_DIMS]; /* in elements, as torch reports them */
    int64_t numel;
    int contiguous;               /* 1 when strides are row-major dense */
    const void *data;             /* first element, inside the mmap; NULL if unreadable */
    const char *storage_key;      /* archive entry name under data/, e.g. "12" */
} vgpt_tensor;

typedef struct vgpt_ckpt vgpt_ckpt;

/* Opens and indexes `path` (a torch zip, a legacy torch.save stream or a
 * safetensors file; a folder is resolved by vgpt_ckpt_resolve).  On error returns -1 with a message such as
 * "model.pth: not a zip archive (legacy torch.save format is not supported;
 * re-save with torch>=1.6)" or "model.pth: data.pkl: truncated pickle". */
int vgpt_ckpt_open(const char *path, vgpt_ckpt **out, vgpt_err *err);
void vgpt_ckpt_free(vgpt_ckpt *ck);

/* The checkpoint file a user names: path itself, or for a folder (a
 * Hugging Face model folder) its model.safetensors, else its
 * pytorch_model.bin.  vgpt_ckpt_open resolves its path this way. */
int vgpt_ckpt_resolve(const char *path, char *out, size_t cap, vgpt_err *err);

/* Same as vgpt_ckpt_open over a caller-owned buffer that must outlive the
 * checkpoint (tests and fuzzing use it so that ASan sees every read). */
int vgpt_ckpt_open_mem(const void *data, size_t size, const char *name, vgpt_ckpt **out, vgpt_err *err);

const char *vgpt_ckpt_path(const vgpt_ckpt *ck);
size_t vgpt_ckpt_count(const vgpt_ckpt *ck);
const vgpt_tensor *vgpt_ckpt_at(const vgpt_ckpt *ck, size_t i);
/* NULL when absent. */
const vgpt_tensor *vgpt_ckpt_find(const vgpt_ckpt *ck, const char *name);

/* Copies t's numel values into dst as fp32 in row-major order of its shape,
 * widening f16 / bf16 and following strides.  Fails for VGPT_DT_OTHER. */
int vgpt_ckpt_read_f32(const vgpt_ckpt *ck, const vgpt_tensor *t, float *dst, vgpt_err *err);

/* Tells the kernel that [p, p+bytes) will not be read again for a while:
 * the whole pages of it inside the file mapping leave this process's
 * resident set (a later read faults them back in from the page cache).
 * Does nothing for memory outside the mapping. */
void vgpt_ckpt_drop_pages(const vgpt_ckpt *ck, const void *p, size_t bytes);
/* Copies bytes at p into dst; from the file (pread) when p lies in its
 * mapping, so that scattered small reads of a large tensor used in place
 * (embedding rows) never map its pages: Linux maps a whole large folio,
 * up to 2 MiB, around each faulting read (seen on 6.18), and a few dozen
 * rows made 30 MB of tok_emb resident.  Anything else is memcpy'd. */
void vgpt_ckpt_copy(const vgpt_ckpt *ck, void *dst, const void *p, size_t bytes);
/* Every page of the mapping: the kernel's read-ahead around the few bytes
 * a load samples (the fingerprint) brings in most of the file, which then
 * stays resident beside the widened / packed / bf16 copies.  Tensors used
 * in place come back on their first use. */
void vgpt_ckpt_drop_all(const vgpt_ckpt *ck);

/* Size in bytes of one element of dtype (0 for OTHER). */
size_t vgpt_dtype_size(vgpt_dtype dt);
const char *vgpt_dtype_name(vgpt_dtype dt);

#endif
