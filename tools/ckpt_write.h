/* ckpt_write.h - write torch-loadable checkpoints from C.
 *
 * vgpt-mkckpt and the tests need checkpoints without a Python toolchain.  The
 * output mirrors what torch.save writes: a zip of stored entries, tensor data
 * 64-byte aligned (padding in the local header's extra field), a "version"
 * and a "byteorder" entry, and a protocol-2 data.pkl.  Its top level is one
 * of (model-spec.md, "The checkpoint file"):
 *   minimal (default)  {'model_state_dict': OrderedDict(name -> tensor)}
 *   bare               the OrderedDict itself (VGPT_CKPT_WRITE_BARE)
 *   training           what the model author's training code saves:
 *                      {'model_state_dict', 'config', 'epoch', 'loss',
 *                      'model_class'} (vgpt_ckpt_writer_set_training)
 * torch.load(path, map_location='cpu') gives the tensors back.
 *
 * Tensor data is streamed to disk by vgpt_ckpt_writer_add, so a checkpoint
 * bigger than memory can be written one tensor at a time.  The file appears
 * under its final name only when vgpt_ckpt_writer_finish succeeds. */
#ifndef VGPT_CKPT_WRITE_H
#define VGPT_CKPT_WRITE_H

#include <stdint.h>

#include "ckpt.h"
#include "err.h"
#include "json.h"

typedef struct vgpt_ckpt_writer vgpt_ckpt_writer;

/* Force zip64 records for every entry (used by tests; archives over 4 GiB
 * get them automatically). */
#define VGPT_CKPT_WRITE_ZIP64 1
/* data.pkl is the state dict alone, with no {'model_state_dict': ...} around it. */
#define VGPT_CKPT_WRITE_BARE 2

int vgpt_ckpt_writer_open(const char *path, int flags, vgpt_ckpt_writer **out, vgpt_err *err);

/* Adds a contiguous row-major tensor.  dtype is VGPT_DT_F32 (data: float)
 * or VGPT_DT_F16 (data: IEEE half bits, uint16_t); ndim 0 is a scalar. */
int vgpt_ckpt_writer_add(vgpt_ckpt_writer *w, const char *name, vgpt_dtype dtype, int ndim,
                         const int64_t *shape, const void *data, vgpt_err *err);

/* Adds `name` as a view of the same storage as the already added `existing`
 * (tied weights: torch.load gives two tensors sharing memory). */
int vgpt_ckpt_writer_tie(vgpt_ckpt_writer *w, const char *name, const char *existing, vgpt_err *err);

/* The rest of the training wrapper.  config is pickled as a plain dict:
 * objects become dicts (member order kept), arrays lists, numbers written
 * without fraction or exponent ints, other numbers floats, true/false bools,
 * null None, strings str -- what json.load gives for the same text (except
 * integers beyond int64, which become floats here).  loss becomes a 0-dim
 * float32 tensor with requires_grad=True in its own storage tagged 'cuda:0',
 * as a loss saved from a GPU training loop is (torch.load needs
 * map_location='cpu' on a machine without CUDA). */
typedef struct vgpt_ckpt_training {
    const vgpt_json *config;  /* an OBJECT; copied, need not outlive the call */
    int64_t epoch;
    float loss;
    const char *model_class;  /* e.g. "GPTModal" */
} vgpt_ckpt_training;

/* Makes data.pkl the training wrapper (keys in the order above).  At most
 * once per writer, not with VGPT_CKPT_WRITE_BARE; the loss storage is
 * written now, so call it after the state dict's tensors to give the loss
 * the last storage key, as torch does. */
int vgpt_ckpt_writer_set_training(vgpt_ckpt_writer *w, const vgpt_ckpt_training *t, vgpt_err *err);

/* Writes data.pkl and the zip directory, renames the file into place and
 * frees w, whether or not it succeeds. */
int vgpt_ckpt_writer_finish(vgpt_ckpt_writer *w, vgpt_err *err);

/* Frees w and removes the partial file. */
void vgpt_ckpt_writer_abort(vgpt_ckpt_writer *w);

#endif
