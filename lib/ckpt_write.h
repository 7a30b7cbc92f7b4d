/* ckpt_write.h - write torch-loadable checkpoints from C.
 *
 * vgpt-mkckpt and the tests need checkpoints without a Python toolchain.  The
 * output mirrors what torch.save writes: a zip of stored entries, tensor data
 * 64-byte aligned (padding in the local header's extra field), a "version"
 * and a "byteorder" entry, and a protocol-2 data.pkl holding
 * {'model_state_dict': OrderedDict(name -> _rebuild_tensor_v2(...))}.
 * torch.load(path)['model_state_dict'] gives the tensors back.
 *
 * Tensor data is streamed to disk by vgpt_ckpt_writer_add, so a checkpoint
 * bigger than memory can be written one tensor at a time.  The file appears
 * under its final name only when vgpt_ckpt_writer_finish succeeds. */
#ifndef VGPT_CKPT_WRITE_H
#define VGPT_CKPT_WRITE_H

#include <stdint.h>

#include "ckpt.h"
#include "err.h"

typedef struct vgpt_ckpt_writer vgpt_ckpt_writer;

/* Force zip64 records for every entry (used by tests; archives over 4 GiB
 * get them automatically). */
#define VGPT_CKPT_WRITE_ZIP64 1

int vgpt_ckpt_writer_open(const char *path, int flags, vgpt_ckpt_writer **out, vgpt_err *err);

/* Adds a contiguous row-major tensor.  dtype is VGPT_DT_F32 (data: float)
 * or VGPT_DT_F16 (data: IEEE half bits, uint16_t); ndim 0 is a scalar. */
int vgpt_ckpt_writer_add(vgpt_ckpt_writer *w, const char *name, vgpt_dtype dtype, int ndim,
                         const int64_t *shape, const void *data, vgpt_err *err);

/* Adds `name` as a view of the same storage as the already added `existing`
 * (tied weights: torch.load gives two tensors sharing memory). */
int vgpt_ckpt_writer_tie(vgpt_ckpt_writer *w, const char *name, const char *existing, vgpt_err *err);

/* Writes data.pkl and the zip directory, renames the file into place and
 * frees w, whether or not it succeeds. */
int vgpt_ckpt_writer_finish(vgpt_ckpt_writer *w, vgpt_err *err);

/* Frees w and removes the partial file. */
void vgpt_ckpt_writer_abort(vgpt_ckpt_writer *w);

#endif
