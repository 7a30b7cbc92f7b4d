/* pickle.c - the non-executing pickle stack machine (see pickle.h).
 *
 * Structure follows CPython's _pickle.c: a value stack, a separate stack of
 * MARK positions, and a memo table.  Values are heap nodes registered in one
 * list so that cycles (a list appended to itself through the memo) are
 * harmless and freeing is a single sweep. */
#include "pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUES (1u << 22)   /* nodes per pickle */
#define MAX_STACK (1u << 20)
#define MAX_MARKS (1u << 16)
#define MAX_MEMO (1u << 22)

struct vgpt_pickle {
    const uint8_t *p;
    size_t len, pos, op_off;
    int op;
    const char *fname;
    vgpt_err *err;
    vgpt_pkval **all, **stack, **memo;
    size_t nall, capall, sp, capstack, nmemo, memo_count;
    size_t *marks;
    size_t nmarks, capmarks;
};

typedef struct vgpt_pickle pk_t;

/* ---- errors and growth helpers ---- */

static int fail(pk_t *pk, const char *what) {
    if (pk->op >= 0x20 && pk->op < 0x7f)
        return vgpt_err_set(pk->err, "%s: data.pkl: %s (opcode '%c' 0x%02x at offset %zu)", pk->fname, what,
                            pk->op, (unsigned)pk->op, pk->op_off);
    return vgpt_err_set(pk->err, "%s: data.pkl: %s (opcode 0x%02x at offset %zu)", pk->fname, what,
                        (unsigned)pk->op, pk->op_off);
}

/* Grows *arr (elements of size `el`) to hold at least `need`. */
static int grow(void *arr, size_t *cap, size_t need, size_t el) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 8;
    while (nc < need) nc *= 2;
    void *q = realloc(*(void **)arr, nc * el);
    if (!q) return -1;
    *(void **)arr = q;
    *cap = nc;
    return 0;
}

static vgpt_pkval *new_val(pk_t *pk, vgpt_pk_type type) {
    if (pk->nall >= MAX_VALUES) { fail(pk, "too many objects"); return NULL; }
    if (grow(&pk->all, &pk->capall, pk->nall + 1, sizeof *pk->all)) { fail(pk, "out of memory"); return NULL; }
    vgpt_pkval *v = calloc(1, sizeof *v);
    if (!v) { fail(pk, "out of memory"); return NULL; }
    v->type = type;
    pk->all[pk->nall++] = v;
    return v;
}

static int add_item(pk_t *pk, vgpt_pkval *c, vgpt_pkval *x) {
    if (grow(&c->items, &c->cap, c->n + 1, sizeof *c->items)) return fail(pk, "out of memory");
    c->items[c->n++] = x;
    return 0;
}

/* ---- the stack ---- */

static size_t floor_sp(const pk_t *pk) { return pk->nmarks ? pk->marks[pk->nmarks - 1] : 0; }

static int push(pk_t *pk, vgpt_pkval *v) {
    if (!v) return -1;
    if (pk->sp >= MAX_STACK) return fail(pk, "stack too deep");
    if (grow(&pk->stack, &pk->capstack, pk->sp + 1, sizeof *pk->stack)) return fail(pk, "out of memory");
    pk->stack[pk->sp++] = v;
    return 0;
}

static vgpt_pkval *pop(pk_t *pk) {
    if (pk->sp <= floor_sp(pk)) { fail(pk, "stack underflow"); return NULL; }
    return pk->stack[--pk->sp];
}

static vgpt_pkval *top(pk_t *pk) {
    if (pk->sp <= floor_sp(pk)) { fail(pk, "stack underflow"); return NULL; }
    return pk->stack[pk->sp - 1];
}

/* Pops back to the last MARK; the items are stack[*from .. sp). */
static int pop_mark(pk_t *pk, size_t *from) {
    if (!pk->nmarks) return fail(pk, "no MARK on the stack");
    *from = pk->marks[--pk->nmarks];
    return 0;
}

/* ---- reading operands ---- */

static int need(pk_t *pk, size_t n) {
    if (pk->len - pk->pos < n) return fail(pk, "truncated pickle: operand runs past the end of data.pkl");
    return 0;
}

static uint64_t rd_le(const uint8_t *q, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | q[i];
    return v;
}

static int arg_uint(pk_t *pk, int n, uint64_t *out) {
    if (need(pk, (size_t)n)) return -1;
    *out = rd_le(pk->p + pk->pos, n);
    pk->pos += (size_t)n;
    return 0;
}

/* A string / bytes operand: length of `lenbytes` bytes, then the data. */
static int op_string(pk_t *pk, int lenbytes, vgpt_pk_type type) {
    uint64_t n;
    if (arg_uint(pk, lenbytes, &n)) return -1;
    if (n > pk->len - pk->pos) return fail(pk, "truncated pickle: string runs past the end of data.pkl");
    vgpt_pkval *v = new_val(pk, type);
    if (!v) return -1;
    v->s = malloc((size_t)n + 1);
    if (!v->s) return fail(pk, "out of memory");
    memcpy(v->s, pk->p + pk->pos, (size_t)n);
    v->s[n] = 0;
    v->len = (size_t)n;
    pk->pos += (size_t)n;
    return push(pk, v);
}

static int op_int(pk_t *pk, int64_t x) {
    vgpt_pkval *v = new_val(pk, VGPT_PK_INT);
    if (!v) return -1;
    v->i = x;
    return push(pk, v);
}

/* LONG1 / LONG4: little-endian two's complement of n bytes.  Anything wider
 * than 64 bits (the legacy-format magic number, say) becomes opaque. */
static int op_long(pk_t *pk, int lenbytes) {
    uint64_t n;
    if (arg_uint(pk, lenbytes, &n)) return -1;
    if (n > pk->len - pk->pos) return fail(pk, "truncated pickle: long runs past the end of data.pkl");
    const uint8_t *q = pk->p + pk->pos;
    pk->pos += (size_t)n;
    if (n > 8) return push(pk, new_val(pk, VGPT_PK_OPAQUE));
    uint64_t u = rd_le(q, (int)n);
    if (n > 0 && n < 8 && (q[n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    return op_int(pk, (int64_t)u);
}

static int op_float(pk_t *pk) {
    if (need(pk, 8)) return -1;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = u << 8 | pk->p[pk->pos + (size_t)i]; /* big-endian */
    pk->pos += 8;
    vgpt_pkval *v = new_val(pk, VGPT_PK_FLOAT);
    if (!v) return -1;
    memcpy(&v->f, &u, sizeof v->f);
    return push(pk, v);
}

/* ---- memo ---- */

static int memo_put(pk_t *pk, uint64_t idx) {
    if (idx >= MAX_MEMO) return fail(pk, "memo index too large");
    vgpt_pkval *v = top(pk);
    if (!v) return -1;
    if (idx >= pk->nmemo) {
        size_t cap = pk->nmemo;
        if (grow(&pk->memo, &cap, (size_t)idx + 1, sizeof *pk->memo)) return fail(pk, "out of memory");
        memset(pk->memo + pk->nmemo, 0, (cap - pk->nmemo) * sizeof *pk->memo);
        pk->nmemo = cap;
    }
    if (!pk->memo[idx]) pk->memo_count++;
    pk->memo[idx] = v;
    return 0;
}

static int memo_get(pk_t *pk, uint64_t idx) {
    if (idx >= pk->nmemo || !pk->memo[idx]) return fail(pk, "memo key not found");
    return push(pk, pk->memo[idx]);
}

/* ---- containers ---- */

static int op_tuple_n(pk_t *pk, size_t n) {
    if (pk->sp - floor_sp(pk) < n) return fail(pk, "stack underflow");
    vgpt_pkval *t = new_val(pk, VGPT_PK_TUPLE);
    if (!t) return -1;
    for (size_t i = pk->sp - n; i < pk->sp; i++)
        if (add_item(pk, t, pk->stack[i])) return -1;
    pk->sp -= n;
    return push(pk, t);
}

/* TUPLE / LIST / DICT / FROZENSET: a new container from the items above MARK. */
static int op_from_mark(pk_t *pk, vgpt_pk_type type) {
    size_t from = 0;
    if (pop_mark(pk, &from)) return -1;
    if (type == VGPT_PK_DICT && (pk->sp - from) % 2) return fail(pk, "odd number of items for DICT");
    vgpt_pkval *c = new_val(pk, type);
    if (!c) return -1;
    for (size_t i = from; i < pk->sp; i++)
        if (add_item(pk, c, pk->stack[i])) return -1;
    pk->sp = from;
    return push(pk, c);
}

/* SETITEMS / APPENDS / ADDITEMS: move the items above MARK into the container
 * below it.  Opaque containers (custom classes) silently absorb them. */
static int op_extend(pk_t *pk, vgpt_pk_type want) {
    size_t from = 0;
    if (pop_mark(pk, &from)) return -1;
    if (from <= floor_sp(pk)) return fail(pk, "stack underflow: no container below MARK");
    vgpt_pkval *c = pk->stack[from - 1];
    if (want == VGPT_PK_DICT && (pk->sp - from) % 2) return fail(pk, "odd number of items for SETITEMS");
    if (c->type != want && c->type != VGPT_PK_OPAQUE)
        return fail(pk, want == VGPT_PK_DICT ? "SETITEMS on a non-dict" : "APPENDS on a non-list");
    if (c->type == want)
        for (size_t i = from; i < pk->sp; i++)
            if (add_item(pk, c, pk->stack[i])) return -1;
    pk->sp = from;
    return 0;
}

static int op_setitem(pk_t *pk) {
    vgpt_pkval *v = pop(pk), *k = v ? pop(pk) : NULL, *d = k ? top(pk) : NULL;
    if (!d) return -1;
    if (d->type == VGPT_PK_OPAQUE) return 0;
    if (d->type != VGPT_PK_DICT) return fail(pk, "SETITEM on a non-dict");
    return add_item(pk, d, k) || add_item(pk, d, v) ? -1 : 0;
}

static int op_append(pk_t *pk) {
    vgpt_pkval *v = pop(pk), *l = v ? top(pk) : NULL;
    if (!l) return -1;
    if (l->type == VGPT_PK_OPAQUE) return 0;
    if (l->type != VGPT_PK_LIST) return fail(pk, "APPEND on a non-list");
    return add_item(pk, l, v);
}

/* ---- globals and the callables we understand ---- */

static int push_global(pk_t *pk, const char *mod, size_t mlen, const char *name, size_t nlen) {
    vgpt_pkval *g = new_val(pk, VGPT_PK_GLOBAL);
    if (!g) return -1;
    g->s = malloc(mlen + nlen + 2);
    if (!g->s) return fail(pk, "out of memory");
    memcpy(g->s, mod, mlen);
    g->s[mlen] = 0;
    memcpy(g->s + mlen + 1, name, nlen);
    g->s[mlen + 1 + nlen] = 0;
    g->len = mlen;
    return push(pk, g);
}

/* GLOBAL: "module\nname\n" in the stream. */
static int op_global(pk_t *pk) {
    const char *line[2];
    size_t n[2];
    for (int k = 0; k < 2; k++) {
        const uint8_t *s = pk->p + pk->pos, *nl = memchr(s, '\n', pk->len - pk->pos);
        if (!nl) return fail(pk, "truncated pickle: unterminated GLOBAL");
        line[k] = (const char *)s;
        n[k] = (size_t)(nl - s);
        pk->pos += n[k] + 1;
    }
    return push_global(pk, line[0], n[0], line[1], n[1]);
}

static int op_stack_global(pk_t *pk) {
    vgpt_pkval *name = pop(pk), *mod = name ? pop(pk) : NULL;
    if (!mod) return -1;
    if (name->type != VGPT_PK_STR || mod->type != VGPT_PK_STR) return fail(pk, "STACK_GLOBAL needs two strings");
    return push_global(pk, mod->s, mod->len, name->s, name->len);
}

static int is_global(const vgpt_pkval *v, const char *mod, const char *name) {
    return v && v->type == VGPT_PK_GLOBAL && !strcmp(v->s, mod) && !strcmp(v->s + v->len + 1, name);
}

static int tuple_of_ints(const vgpt_pkval *t, int64_t *out, size_t max) {
    if (t->type != VGPT_PK_TUPLE || t->n > max) return -1;
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->type != VGPT_PK_INT || t->items[i]->i < 0) return -1;
        out[i] = t->items[i]->i;
    }
    return 0;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]); _rebuild_tensor has the first four. */
static vgpt_pkval *rebuild_tensor(pk_t *pk, const vgpt_pkval *args) {
    const char *bad = "malformed _rebuild_tensor_v2 arguments (expected storage, offset, size, stride)";
    if (args->type != VGPT_PK_TUPLE || args->n < 4) { fail(pk, bad); return NULL; }
    vgpt_pkval *const *a = args->items;
    if (a[0]->type != VGPT_PK_STORAGE || a[1]->type != VGPT_PK_INT || a[1]->i < 0) { fail(pk, bad); return NULL; }
    vgpt_pk_tensor t = {.storage = a[0], .offset = a[1]->i, .ndim = (int)a[2]->n};
    if (tuple_of_ints(a[2], t.shape, VGPT_MAX_DIMS) || tuple_of_ints(a[3], t.stride, VGPT_MAX_DIMS) ||
        a[2]->n != a[3]->n) {
        fail(pk, "tensor size / stride must be equal-length tuples of at most 8 non-negative ints");
        return NULL;
    }
    vgpt_pkval *v = new_val(pk, VGPT_PK_TENSOR);
    if (!v) return NULL;
    if (!(v->t = malloc(sizeof *v->t))) { fail(pk, "out of memory"); return NULL; }
    *v->t = t;
    return v;
}

static vgpt_pkval *reduce(pk_t *pk, const vgpt_pkval *fn, const vgpt_pkval *args) {
    if (is_global(fn, "collections", "OrderedDict") && args->type == VGPT_PK_TUPLE && args->n == 0)
        return new_val(pk, VGPT_PK_DICT);
    if (is_global(fn, "torch._utils", "_rebuild_tensor_v2") || is_global(fn, "torch._utils", "_rebuild_tensor"))
        return rebuild_tensor(pk, args);
    if ((is_global(fn, "torch._utils", "_rebuild_parameter") ||
         is_global(fn, "torch._utils", "_rebuild_parameter_with_state")) &&
        args->type == VGPT_PK_TUPLE && args->n >= 1 && args->items[0]->type == VGPT_PK_TENSOR)
        return args->items[0];
    return new_val(pk, VGPT_PK_OPAQUE);
}

static int op_reduce(pk_t *pk) {
    vgpt_pkval *args = pop(pk), *fn = args ? pop(pk) : NULL;
    if (!fn) return -1;
    return push(pk, reduce(pk, fn, args));
}

static const struct { const char *name; vgpt_dtype dt; size_t size; } storage_types[] = {
    {"FloatStorage", VGPT_DT_F32, 4},   {"HalfStorage", VGPT_DT_F16, 2},
    {"BFloat16Storage", VGPT_DT_BF16, 2}, {"DoubleStorage", VGPT_DT_OTHER, 8},
    {"LongStorage", VGPT_DT_OTHER, 8},  {"IntStorage", VGPT_DT_OTHER, 4},
    {"ShortStorage", VGPT_DT_OTHER, 2}, {"CharStorage", VGPT_DT_OTHER, 1},
    {"ByteStorage", VGPT_DT_OTHER, 1},  {"BoolStorage", VGPT_DT_OTHER, 1},
    {"ComplexFloatStorage", VGPT_DT_OTHER, 8}, {"ComplexDoubleStorage", VGPT_DT_OTHER, 16},
    {"UntypedStorage", VGPT_DT_OTHER, 1},
};

/* BINPERSID of ('storage', torch.XStorage, key, location, numel), or of the
 * legacy format's ('storage', torch.XStorage, key, location, numel, None)
 * (a legacy view of another storage, a non-None last item, stays opaque). */
static int op_persid(pk_t *pk) {
    vgpt_pkval *pid = pop(pk);
    if (!pid) return -1;
    vgpt_pkval *const *a = pid->items;
    if (pid->type != VGPT_PK_TUPLE || (pid->n != 5 && !(pid->n == 6 && a[5]->type == VGPT_PK_NONE)) || a[0]->type != VGPT_PK_STR || strcmp(a[0]->s, "storage") ||
        a[1]->type != VGPT_PK_GLOBAL || strcmp(a[1]->s, "torch") || a[2]->type != VGPT_PK_STR ||
        a[4]->type != VGPT_PK_INT || a[4]->i < 0)
        return push(pk, new_val(pk, VGPT_PK_OPAQUE));
    vgpt_pkval *v = new_val(pk, VGPT_PK_STORAGE);
    if (!v) return -1;
    v->st.dtype = VGPT_DT_OTHER; /* elem_size 0: unknown layout, never read */
    const char *cls = a[1]->s + a[1]->len + 1;
    for (size_t i = 0; i < sizeof storage_types / sizeof *storage_types; i++)
        if (!strcmp(cls, storage_types[i].name)) {
            v->st.dtype = storage_types[i].dt;
            v->st.elem_size = storage_types[i].size;
        }
    v->st.key = a[2]->s;
    v->st.numel = a[4]->i;
    return push(pk, v);
}

/* BUILD / NEWOBJ / NEWOBJ_EX never run code: the result is opaque (BUILD
 * leaves the object it updates on the stack). */
static int op_newobj(pk_t *pk, int nargs) {
    for (int i = 0; i < nargs; i++)
        if (!pop(pk)) return -1;
    return push(pk, new_val(pk, VGPT_PK_OPAQUE));
}

/* ---- the dispatch loop ---- */

static int step(pk_t *pk, int *stop) {
    uint64_t u;
    switch (pk->op) {
    case 0x80: /* PROTO */
        if (arg_uint(pk, 1, &u)) return -1;
        return u <= 5 ? 0 : fail(pk, "unsupported pickle protocol");
    case 0x95: return arg_uint(pk, 8, &u); /* FRAME: framing is only a hint for buffered readers */
    case '}': return push(pk, new_val(pk, VGPT_PK_DICT));
    case ']': case 0x8f: return push(pk, new_val(pk, VGPT_PK_LIST)); /* EMPTY_LIST, EMPTY_SET */
    case ')': return push(pk, new_val(pk, VGPT_PK_TUPLE));
    case 'N': return push(pk, new_val(pk, VGPT_PK_NONE));
    case 0x88: case 0x89: { /* NEWTRUE, NEWFALSE */
        vgpt_pkval *v = new_val(pk, VGPT_PK_BOOL);
        if (v) v->i = pk->op == 0x88;
        return push(pk, v);
    }
    case '(': /* MARK */
        if (pk->nmarks >= MAX_MARKS) return fail(pk, "too many nested MARKs");
        if (grow(&pk->marks, &pk->capmarks, pk->nmarks + 1, sizeof *pk->marks)) return fail(pk, "out of memory");
        pk->marks[pk->nmarks++] = pk->sp;
        return 0;
    case 'X': case 'T': return op_string(pk, 4, VGPT_PK_STR);        /* BINUNICODE, BINSTRING */
    case 0x8c: case 'U': return op_string(pk, 1, VGPT_PK_STR);       /* SHORT_BINUNICODE, SHORT_BINSTRING */
    case 0x8d: return op_string(pk, 8, VGPT_PK_STR);                 /* BINUNICODE8 */
    case 'B': return op_string(pk, 4, VGPT_PK_BYTES);                /* BINBYTES */
    case 'C': return op_string(pk, 1, VGPT_PK_BYTES);                /* SHORT_BINBYTES */
    case 0x8e: case 0x96: return op_string(pk, 8, VGPT_PK_BYTES);    /* BINBYTES8, BYTEARRAY8 */
    case 'q': return arg_uint(pk, 1, &u) ? -1 : memo_put(pk, u);      /* BINPUT */
    case 'r': return arg_uint(pk, 4, &u) ? -1 : memo_put(pk, u);      /* LONG_BINPUT */
    case 0x94: return memo_put(pk, pk->memo_count);                   /* MEMOIZE: index = len(memo) */
    case 'h': return arg_uint(pk, 1, &u) ? -1 : memo_get(pk, u);      /* BINGET */
    case 'j': return arg_uint(pk, 4, &u) ? -1 : memo_get(pk, u);      /* LONG_BINGET */
    case 'J': return arg_uint(pk, 4, &u) ? -1 : op_int(pk, (int32_t)(uint32_t)u); /* BININT */
    case 'K': return arg_uint(pk, 1, &u) ? -1 : op_int(pk, (int64_t)u);          /* BININT1 */
    case 'M': return arg_uint(pk, 2, &u) ? -1 : op_int(pk, (int64_t)u);          /* BININT2 */
    case 0x8a: return op_long(pk, 1);                                 /* LONG1 */
    case 0x8b: return op_long(pk, 4);                                 /* LONG4 */
    case 'G': return op_float(pk);                                    /* BINFLOAT */
    case 't': return op_from_mark(pk, VGPT_PK_TUPLE);
    case 'l': case 0x91: return op_from_mark(pk, VGPT_PK_LIST);       /* LIST, FROZENSET */
    case 'd': return op_from_mark(pk, VGPT_PK_DICT);
    case 0x85: return op_tuple_n(pk, 1);
    case 0x86: return op_tuple_n(pk, 2);
    case 0x87: return op_tuple_n(pk, 3);
    case 's': return op_setitem(pk);
    case 'u': return op_extend(pk, VGPT_PK_DICT);                     /* SETITEMS */
    case 'a': return op_append(pk);
    case 'e': case 0x90: return op_extend(pk, VGPT_PK_LIST);          /* APPENDS, ADDITEMS */
    case 'c': return op_global(pk);
    case 0x93: return op_stack_global(pk);
    case 'R': return op_reduce(pk);
    case 'b': return pop(pk) && top(pk) ? 0 : -1;                     /* BUILD */
    case 0x81: return op_newobj(pk, 2);                               /* NEWOBJ */
    case 0x92: return op_newobj(pk, 3);                               /* NEWOBJ_EX */
    case 'Q': return op_persid(pk);                                   /* BINPERSID */
    case '0': return pop(pk) ? 0 : -1;                                /* POP */
    case '1': { size_t from = 0; if (pop_mark(pk, &from)) return -1; pk->sp = from; return 0; } /* POP_MARK */
    case '2': { vgpt_pkval *v = top(pk); return v ? push(pk, v) : -1; }  /* DUP */
    case '.': *stop = 1; return 0;
    default: return fail(pk, "unknown or unsupported opcode");
    }
}

static void free_all(pk_t *pk) {
    for (size_t i = 0; i < pk->nall; i++) {
        free(pk->all[i]->s);
        free(pk->all[i]->items);
        free(pk->all[i]->t);
        free(pk->all[i]);
    }
    free(pk->all);
    free(pk);
}

static void free_machine(pk_t *pk) {
    free(pk->stack);
    free(pk->memo);
    free(pk->marks);
    pk->stack = pk->memo = NULL;
    pk->marks = NULL;
}

int vgpt_pickle_parse(const uint8_t *data, size_t len, const char *fname, vgpt_pickle **out_pk,
                      const vgpt_pkval **out, vgpt_err *err) {
    size_t used;
    return vgpt_pickle_parse_prefix(data, len, fname, out_pk, out, &used, err);
}

int vgpt_pickle_parse_prefix(const uint8_t *data, size_t len, const char *fname, vgpt_pickle **out_pk,
                             const vgpt_pkval **out, size_t *used, vgpt_err *err) {
    pk_t *pk = calloc(1, sizeof *pk);
    if (!pk) return vgpt_err_set(err, "%s: data.pkl: out of memory", fname);
    *pk = (pk_t){.p = data, .len = len, .fname = fname, .err = err};
    int stop = 0;
    while (!stop) {
        if (pk->pos >= pk->len) {
            vgpt_err_set(err, "%s: data.pkl: truncated pickle (no STOP opcode in %zu bytes)", fname, len);
            goto fail;
        }
        pk->op_off = pk->pos;
        pk->op = pk->p[pk->pos++];
        if (step(pk, &stop)) goto fail;
    }
    const vgpt_pkval *result = pop(pk);
    if (!result) goto fail;
    free_machine(pk);
    *out_pk = pk;
    *out = result;
    *used = pk->pos;
    return 0;
fail:
    free_machine(pk);
    free_all(pk);
    return -1;
}

void vgpt_pickle_free(vgpt_pickle *pk) {
    if (pk) free_all(pk);
}

const vgpt_pkval *vgpt_pk_dict_get(const vgpt_pkval *d, const char *key) {
    if (!d || d->type != VGPT_PK_DICT) return NULL;
    for (size_t i = d->n; i >= 2; i -= 2) {
        const vgpt_pkval *k = d->items[i - 2];
        if (k->type == VGPT_PK_STR && !strcmp(k->s, key)) return d->items[i - 1];
    }
    return NULL;
}

const char *vgpt_pk_type_name(vgpt_pk_type t) {
    static const char *const names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list",
                                        "dict", "global", "storage", "tensor", "opaque object", "mark"};
    return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}
