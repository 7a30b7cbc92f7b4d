/* json.h - a small, strict, bounded JSON reader (into a DOM) and a string
 * escaper for the JSON we write.
 *
 * vgpt reads only a few trusted-but-user-supplied JSON files (config.json,
 * the GPT-2 vocabulary) and writes JSON lines (captions, file names), so this
 * is RFC 8259 and nothing more: no comments, no trailing commas, no NaN, no
 * leading zeros, input must be valid UTF-8, lone surrogates in \u escapes are
 * rejected, nesting is limited to VGPT_JSON_MAX_DEPTH.  Errors name the input,
 * the line and the column (1-based, in bytes).
 *
 * The whole tree lives in one arena owned by vgpt_json_doc; nodes are
 * read-only views into it and die with vgpt_json_free(). */
#ifndef VGPT_JSON_H
#define VGPT_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define VGPT_JSON_MAX_DEPTH 64
#define VGPT_JSON_MAX_FILE  (256u << 20) /* vgpt_json_parse_file refuses more */

typedef enum {
    VGPT_JSON_NULL,
    VGPT_JSON_BOOL,
    VGPT_JSON_NUMBER,
    VGPT_JSON_STRING,
    VGPT_JSON_ARRAY,
    VGPT_JSON_OBJECT,
} vgpt_json_type;

typedef struct vgpt_json vgpt_json;
struct vgpt_json {
    vgpt_json_type type;
    int boolean;            /* BOOL */
    int is_int;             /* NUMBER written without fraction/exponent and fits int64 */
    int64_t i;              /* NUMBER, exact when is_int */
    double num;             /* NUMBER, always set */
    const char *str;        /* STRING: NUL-terminated, may contain NUL (\u0000): use len */
    size_t len;
    const char *key;        /* member of an OBJECT: its key (NUL-terminated), else NULL */
    size_t key_len;
    const vgpt_json *kids;  /* ARRAY elements / OBJECT members, in document order */
    size_t n;
};

typedef struct vgpt_json_doc vgpt_json_doc;

/* Parses text[0..len) (need not be NUL-terminated).  name is used in error
 * messages ("config.json:3:7: expected ..."). */
int vgpt_json_parse(const char *text, size_t len, const char *name,
                    vgpt_json_doc **out, vgpt_err *err);
/* Reads and parses a whole file; the error names the path. */
int vgpt_json_parse_file(const char *path, vgpt_json_doc **out, vgpt_err *err);
const vgpt_json *vgpt_json_root(const vgpt_json_doc *doc);
void vgpt_json_free(vgpt_json_doc *doc);

/* Member of an object by key (the last one if a key repeats, like Python),
 * NULL if absent or obj is not an object.  Linear: fine for small objects. */
const vgpt_json *vgpt_json_get(const vgpt_json *obj, const char *key);
const char *vgpt_json_type_name(vgpt_json_type t);

/* UTF-8 decoding of one character at s[0..n), n >= 1.  Returns its length
 * (1..4) and sets *cp when well-formed; otherwise returns minus the length
 * of the maximal ill-formed subpart (Unicode 3.9 / Python's errors='replace':
 * each such subpart becomes one U+FFFD). */
int vgpt_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

/* A growing byte buffer for building JSON in memory. data is NUL-terminated
 * after every successful append. */
typedef struct {
    char *data;
    size_t len, cap;
} vgpt_json_buf;

int vgpt_json_buf_append(vgpt_json_buf *b, const void *p, size_t n); /* -1 on OOM */
void vgpt_json_buf_free(vgpt_json_buf *b);

/* Writes s[0..len) as a quoted JSON string: '"', '\\' and control characters
 * escaped (\n \t \r \b \f, else \u00XX), DEL escaped as \u007f, valid
 * non-ASCII UTF-8 passed through unchanged, ill-formed bytes replaced by
 * U+FFFD so the output is always valid JSON.  Return 0, or -1 on OOM / a
 * write error. */
int vgpt_json_buf_str(vgpt_json_buf *b, const char *s, size_t len);
int vgpt_json_write_str(FILE *f, const char *s, size_t len);

#endif
