/* ckpt_impl.h - what the checkpoint formats share (ckpt.c: torch zip,
 * ckpt_legacy.c: pre-1.6 torch.save streams, safetensors.c): each reader
 * turns its file into tensors through these calls, so every format yields
 * the same index with the same checks.  Not for use outside lib/ckpt*.c
 * and lib/safetensors.c. */
#ifndef VGPT_CKPT_IMPL_H
#define VGPT_CKPT_IMPL_H

#include <stdint.h>

#include "ckpt.h"
#include "pickle.h"

/* The file's bytes. */
const uint8_t *vgpt_ckpt_bytes(const vgpt_ckpt *ck, size_t *size);

/* Finds a pickled storage's bytes by its key: 0 with *data / *size set, or
 * -1 with err naming the tensor (label) and the missing storage. */
typedef int (*vgpt_storage_fn)(void *arg, const char *key, const char *label, const uint8_t **data,
                               uint64_t *size, vgpt_err *err);

/* Picks the state dict in a parsed pickle (bare, or under
 * "model_state_dict"), adds its tensors with storages from fn, builds the
 * index.  Used by the zip and legacy readers. */
int vgpt_ckpt_collect(vgpt_ckpt *ck, const vgpt_pkval *top, vgpt_storage_fn fn, void *arg, vgpt_err *err);

/* One dense row-major tensor whose bytes are src[0..numel*elem_size):
 * added to the index (an aligned copy made if src is misaligned).
 * elem_size 0 = unknown dtype, listed but never read. */
int vgpt_ckpt_add_dense(vgpt_ckpt *ck, const char *name, vgpt_dtype dt, size_t elem_size, int ndim,
                        const int64_t *shape, const uint8_t *src, vgpt_err *err);
/* After the last add: duplicate names resolved, name index built; -1 if
 * there are no tensors at all. */
int vgpt_ckpt_finish(vgpt_ckpt *ck, vgpt_err *err);

/* Readers of the other formats: 1 if the bytes are theirs (checked by magic). */
int vgpt_safetensors_is(const uint8_t *b, size_t n);
int vgpt_safetensors_index(vgpt_ckpt *ck, vgpt_err *err);
int vgpt_legacy_is(const uint8_t *b, size_t n);
int vgpt_legacy_index(vgpt_ckpt *ck, vgpt_err *err);

#endif
