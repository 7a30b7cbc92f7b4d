/* pickle.h - a non-executing reader for the pickles torch.save writes.
 *
 * Python's unpickler imports and calls whatever the stream names; this one
 * never does.  It runs the stack machine over plain data (ints, floats,
 * strings, tuples, lists, dicts) and recognises exactly four callables:
 *   collections.OrderedDict()                -> an empty dict
 *   torch._utils._rebuild_tensor_v2(...)     -> a tensor (storage view)
 *   torch._utils._rebuild_parameter(t, ...)  -> the tensor t
 *   persistent id ('storage', torch.XStorage, key, location, numel) -> a storage
 * Every other global, REDUCE, BUILD or NEWOBJ yields an opaque value.
 * Memory is bounded by the pickle's length (each opcode creates at most one
 * value) and by explicit limits on stack depth and memo size. */
#ifndef VGPT_PICKLE_H
#define VGPT_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "err.h"

typedef enum {
    VGPT_PK_NONE, VGPT_PK_BOOL, VGPT_PK_INT, VGPT_PK_FLOAT, VGPT_PK_STR, VGPT_PK_BYTES,
    VGPT_PK_TUPLE, VGPT_PK_LIST, VGPT_PK_DICT, VGPT_PK_GLOBAL, VGPT_PK_STORAGE,
    VGPT_PK_TENSOR, VGPT_PK_OPAQUE, VGPT_PK_MARK
} vgpt_pk_type;

typedef struct vgpt_pkval vgpt_pkval;

typedef struct vgpt_pk_storage {
    vgpt_dtype dtype;
    size_t elem_size;   /* bytes per element, also for VGPT_DT_OTHER */
    const char *key;    /* archive entry name under data/ */
    int64_t numel;
} vgpt_pk_storage;

typedef struct vgpt_pk_tensor {
    const vgpt_pkval *storage; /* a VGPT_PK_STORAGE value */
    int64_t offset;            /* in elements */
    int ndim;
    int64_t shape[VGPT_MAX_DIMS], stride[VGPT_MAX_DIMS];
} vgpt_pk_tensor;

struct vgpt_pkval {
    vgpt_pk_type type;
    int64_t i;             /* BOOL, INT */
    double f;              /* FLOAT */
    char *s;               /* STR / BYTES (NUL-terminated copy); GLOBAL: "module\0name" */
    size_t len;            /* STR / BYTES length; GLOBAL: length of module */
    vgpt_pkval **items;    /* TUPLE / LIST; DICT as key, value, key, value, ... */
    size_t n, cap;         /* item count (DICT: 2 x pairs) */
    vgpt_pk_storage st;    /* STORAGE */
    vgpt_pk_tensor *t;     /* TENSOR */
};

typedef struct vgpt_pickle vgpt_pickle;

/* Parses data[0..len) up to STOP.  On success *out is the top value, valid
 * until vgpt_pickle_free(*pk).  `fname` prefixes error messages, which name
 * the opcode and byte offset, e.g. "m.pth: data.pkl: unknown opcode 0xff at offset 12". */
int vgpt_pickle_parse(const uint8_t *data, size_t len, const char *fname, vgpt_pickle **pk,
                      const vgpt_pkval **out, vgpt_err *err);
/* Same, for a pickle followed by more bytes (the legacy torch.save stream
 * is several pickles in a row): *used is the bytes up to and with STOP. */
int vgpt_pickle_parse_prefix(const uint8_t *data, size_t len, const char *fname, vgpt_pickle **pk,
                             const vgpt_pkval **out, size_t *used, vgpt_err *err);
void vgpt_pickle_free(vgpt_pickle *pk);

/* Last value stored under string key `key` in a DICT (later SETITEMs win, as
 * in Python); NULL when absent or `d` is not a dict. */
const vgpt_pkval *vgpt_pk_dict_get(const vgpt_pkval *d, const char *key);

/* "dict", "tensor", ... for error messages. */
const char *vgpt_pk_type_name(vgpt_pk_type t);

#endif
