/* json.c - strict, bounded JSON parser into an arena DOM, and the string
 * escaper (see json.h for the rules).
 *
 * Containers are parsed onto one scratch stack of nodes; when a container
 * closes, its members are copied into the arena as one contiguous array and
 * popped.  So the 50k-member GPT-2 vocabulary costs one allocation per
 * container plus one per string, all from the arena, and freeing is O(chunks). */
#include "json.h"

#include <errno.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- arena */

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
} chunk;

struct vgpt_json_doc {
    vgpt_json root;
    chunk *chunks;
};

static void *arena_alloc(vgpt_json_doc *d, size_t size) {
    size = (size + 15) & ~(size_t)15;
    chunk *c = d->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > (256u << 10) ? size : (256u << 10);
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = d->chunks;
        c->used = 0;
        c->cap = cap;
        d->chunks = c;
    }
    void *p = c->mem + c->used;
    c->used += size;
    return p;
}

void vgpt_json_free(vgpt_json_doc *d) {
    if (!d) return;
    for (chunk *c = d->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(d);
}

const vgpt_json *vgpt_json_root(const vgpt_json_doc *d) { return d ? &d->root : NULL; }

/* ---------------------------------------------------------------- utf-8 */

int vgpt_utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;  /* no overlongs */
        if (c == 0xED) hi = 0x9F;  /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;  /* <= U+10FFFF */
    } else return -1;
    uint32_t v = c & (0x7Fu >> len);
    for (int k = 1; k < len; k++) {
        if ((size_t)k >= n) return -k;
        unsigned b = s[k];
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return -k;
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    return len;
}

/* --------------------------------------------------------------- parser */

typedef struct {
    const unsigned char *s;
    size_t n, pos;
    const char *name;
    vgpt_err *err;
    vgpt_json_doc *doc;
    vgpt_json *stack;     /* members of the open containers */
    size_t sn, scap;
    char *sbuf;           /* decoded string being built */
    size_t slen, sbcap;
    locale_t cloc;        /* "C" locale for strtod_l, made on first use */
} parser;

static int fail(parser *p, const char *fmt, const char *what) {
    int line = 1, col = 1;
    for (size_t i = 0; i < p->pos && i < p->n; i++) {
        if (p->s[i] == '\n') { line++; col = 1; } else col++;
    }
    char got[32];
    if (p->pos >= p->n) snprintf(got, sizeof got, "end of input");
    else if (p->s[p->pos] >= 0x20 && p->s[p->pos] < 0x7F) snprintf(got, sizeof got, "'%c'", p->s[p->pos]);
    else snprintf(got, sizeof got, "byte 0x%02x", p->s[p->pos]);
    char msg[256];
    snprintf(msg, sizeof msg, fmt, what ? what : got);
    return vgpt_err_set(p->err, "%s:%d:%d: %s", p->name, line, col, msg);
}

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int peek(parser *p) { return p->pos < p->n ? p->s[p->pos] : -1; }

static int push(parser *p, const vgpt_json *v) {
    if (p->sn == p->scap) {
        size_t cap = p->scap ? p->scap * 2 : 256;
        vgpt_json *s = realloc(p->stack, cap * sizeof *s);
        if (!s) return vgpt_err_set(p->err, "%s: out of memory", p->name);
        p->stack = s;
        p->scap = cap;
    }
    p->stack[p->sn++] = *v;
    return 0;
}

static int sbuf_put(parser *p, const void *src, size_t k) {
    if (p->sbcap - p->slen < k + 1) {
        size_t cap = p->sbcap ? p->sbcap : 256;
        while (cap - p->slen < k + 1) cap *= 2;
        char *b = realloc(p->sbuf, cap);
        if (!b) return vgpt_err_set(p->err, "%s: out of memory", p->name);
        p->sbuf = b;
        p->sbcap = cap;
    }
    memcpy(p->sbuf + p->slen, src, k);
    p->slen += k;
    return 0;
}

static int hex4(parser *p, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++, p->pos++) {
        int c = peek(p);
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return fail(p, "expected 4 hex digits after \\u, got %s", NULL);
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

static int put_cp(parser *p, uint32_t cp) {
    unsigned char b[4];
    size_t k;
    if (cp < 0x80) { b[0] = (unsigned char)cp; k = 1; }
    else if (cp < 0x800) { b[0] = 0xC0 | cp >> 6; b[1] = 0x80 | (cp & 0x3F); k = 2; }
    else if (cp < 0x10000) {
        b[0] = 0xE0 | cp >> 12; b[1] = 0x80 | (cp >> 6 & 0x3F); b[2] = 0x80 | (cp & 0x3F); k = 3;
    } else {
        b[0] = 0xF0 | cp >> 18; b[1] = 0x80 | (cp >> 12 & 0x3F);
        b[2] = 0x80 | (cp >> 6 & 0x3F); b[3] = 0x80 | (cp & 0x3F); k = 4;
    }
    return sbuf_put(p, b, k);
}

/* After the backslash.  Surrogate pairs must come as two \u escapes. */
static int parse_escape(parser *p) {
    int c = peek(p);
    const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *hit = c > 0 ? strchr(from, c) : NULL;
    if (hit) { p->pos++; return sbuf_put(p, &to[hit - from], 1); }
    if (c != 'u') return fail(p, "invalid escape \\%s in string", NULL);
    p->pos++;
    uint32_t cp = 0, lo = 0;
    if (hex4(p, &cp)) return -1;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        p->pos -= 6;
        return fail(p, "%s", "lone low surrogate \\u escape in string");
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->pos + 1 >= p->n || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail(p, "expected \\u low surrogate after high surrogate, got %s", NULL);
        p->pos += 2;
        if (hex4(p, &lo)) return -1;
        if (lo < 0xDC00 || lo > 0xDFFF) {
            p->pos -= 6;
            return fail(p, "%s", "expected a low surrogate \\uDC00..\\uDFFF after a high surrogate");
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    return put_cp(p, cp);
}

/* Decodes the string at p->pos (on the opening quote) into the arena. */
static int parse_string(parser *p, const char **out, size_t *out_len) {
    p->pos++;
    p->slen = 0;
    for (;;) {
        size_t run = p->pos;
        while (run < p->n && p->s[run] >= 0x20 && p->s[run] < 0x80 && p->s[run] != '"' && p->s[run] != '\\')
            run++;
        if (sbuf_put(p, p->s + p->pos, run - p->pos)) return -1;
        p->pos = run;
        int c = peek(p);
        if (c < 0) return fail(p, "%s", "unterminated string (expected '\"', got end of input)");
        if (c == '"') { p->pos++; break; }
        if (c == '\\') { p->pos++; if (parse_escape(p)) return -1; continue; }
        if (c < 0x20) return fail(p, "control character %s in string (must be escaped)", NULL);
        uint32_t cp;
        int k = vgpt_utf8_next(p->s + p->pos, p->n - p->pos, &cp);
        if (k < 0) return fail(p, "invalid UTF-8 (%s) in string", NULL);
        if (sbuf_put(p, p->s + p->pos, (size_t)k)) return -1;
        p->pos += (size_t)k;
    }
    char *s = arena_alloc(p->doc, p->slen + 1);
    if (!s) return vgpt_err_set(p->err, "%s: out of memory", p->name);
    if (p->slen) memcpy(s, p->sbuf, p->slen);
    s[p->slen] = 0;
    *out = s;
    *out_len = p->slen;
    return 0;
}

static size_t digits(parser *p) {
    size_t start = p->pos;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    return p->pos - start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(parser *p, vgpt_json *v) {
    size_t start = p->pos;
    int is_int = 1;
    if (peek(p) == '-') p->pos++;
    if (peek(p) == '0') {
        p->pos++;
        if (peek(p) >= '0' && peek(p) <= '9') return fail(p, "%s", "leading zeros are not allowed in numbers");
    } else if (!digits(p)) return fail(p, "expected a digit in number, got %s", NULL);
    if (peek(p) == '.') {
        p->pos++;
        is_int = 0;
        if (!digits(p)) return fail(p, "expected a digit after '.' in number, got %s", NULL);
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        p->pos++;
        is_int = 0;
        if (peek(p) == '+' || peek(p) == '-') p->pos++;
        if (!digits(p)) return fail(p, "expected a digit in exponent, got %s", NULL);
    }
    v->type = VGPT_JSON_NUMBER;
    if (is_int) { /* exact int64 when it fits */
        int neg = p->s[start] == '-';
        uint64_t m = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        size_t i = start + (size_t)neg;
        for (; i < p->pos; i++) {
            uint64_t d = p->s[i] - '0';
            if (m > (lim - d) / 10) break;
            m = m * 10 + d;
        }
        if (i == p->pos) {
            v->is_int = 1;
            v->i = neg ? (int64_t)(0 - m) : (int64_t)m;
            v->num = (double)v->i;
            return 0;
        }
    }
    char tmp[512];
    size_t len = p->pos - start;
    if (len >= sizeof tmp) { p->pos = start; return fail(p, "%s", "number literal longer than 511 characters"); }
    memcpy(tmp, p->s + start, len);
    tmp[len] = 0;
    if (!p->cloc && !(p->cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0)))
        return vgpt_err_set(p->err, "%s: cannot create the C locale for numbers", p->name);
    v->num = strtod_l(tmp, NULL, p->cloc); /* overflow gives +-HUGE_VAL, like Python's inf */
    return 0;
}

static int parse_value(parser *p, vgpt_json *v, int depth);

/* Members between base and p->sn become the container's kids. */
static int close_container(parser *p, vgpt_json *v, size_t base) {
    v->n = p->sn - base;
    if (v->n) {
        vgpt_json *kids = arena_alloc(p->doc, v->n * sizeof *kids);
        if (!kids) return vgpt_err_set(p->err, "%s: out of memory", p->name);
        memcpy(kids, p->stack + base, v->n * sizeof *kids);
        v->kids = kids;
    }
    p->sn = base;
    p->pos++;
    return 0;
}

static int parse_array(parser *p, vgpt_json *v, int depth) {
    size_t base = p->sn;
    v->type = VGPT_JSON_ARRAY;
    p->pos++;
    skip_ws(p);
    if (peek(p) == ']') return close_container(p, v, base);
    for (;;) {
        vgpt_json item = {0};
        if (parse_value(p, &item, depth + 1) || push(p, &item)) return -1;
        skip_ws(p);
        if (peek(p) == ']') return close_container(p, v, base);
        if (peek(p) != ',') return fail(p, "expected ',' or ']' in array, got %s", NULL);
        p->pos++;
    }
}

static int parse_object(parser *p, vgpt_json *v, int depth) {
    size_t base = p->sn;
    v->type = VGPT_JSON_OBJECT;
    p->pos++;
    skip_ws(p);
    if (peek(p) == '}') return close_container(p, v, base);
    for (;;) {
        vgpt_json m = {0};
        skip_ws(p);
        if (peek(p) != '"') return fail(p, "expected a string key in object, got %s", NULL);
        if (parse_string(p, &m.key, &m.key_len)) return -1;
        skip_ws(p);
        if (peek(p) != ':') return fail(p, "expected ':' after object key, got %s", NULL);
        p->pos++;
        const char *key = m.key;
        size_t key_len = m.key_len;
        if (parse_value(p, &m, depth + 1)) return -1;
        m.key = key;
        m.key_len = key_len;
        if (push(p, &m)) return -1;
        skip_ws(p);
        if (peek(p) == '}') return close_container(p, v, base);
        if (peek(p) != ',') return fail(p, "expected ',' or '}' in object, got %s", NULL);
        p->pos++;
    }
}

static int parse_literal(parser *p, const char *word, vgpt_json *v, vgpt_json_type t, int b) {
    size_t k = strlen(word);
    if (p->n - p->pos < k || memcmp(p->s + p->pos, word, k) != 0)
        return fail(p, "expected a value, got %s", NULL);
    p->pos += k;
    v->type = t;
    v->boolean = b;
    return 0;
}

static int parse_value(parser *p, vgpt_json *v, int depth) {
    skip_ws(p);
    int c = peek(p);
    if ((c == '[' || c == '{') && depth >= VGPT_JSON_MAX_DEPTH) {
        char what[64];
        snprintf(what, sizeof what, "%d", VGPT_JSON_MAX_DEPTH);
        return fail(p, "nesting deeper than %s levels", what);
    }
    switch (c) {
    case '{': return parse_object(p, v, depth);
    case '[': return parse_array(p, v, depth);
    case '"': v->type = VGPT_JSON_STRING; return parse_string(p, &v->str, &v->len);
    case 't': return parse_literal(p, "true", v, VGPT_JSON_BOOL, 1);
    case 'f': return parse_literal(p, "false", v, VGPT_JSON_BOOL, 0);
    case 'n': return parse_literal(p, "null", v, VGPT_JSON_NULL, 0);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
        return fail(p, "expected a value, got %s", NULL);
    }
}

int vgpt_json_parse(const char *text, size_t len, const char *name,
                    vgpt_json_doc **out, vgpt_err *err) {
    *out = NULL;
    parser p = {.s = (const unsigned char *)text, .n = len, .name = name ? name : "<json>", .err = err};
    p.doc = calloc(1, sizeof *p.doc);
    if (!p.doc) return vgpt_err_set(err, "%s: out of memory", p.name);
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p.pos = 3; /* RFC 8259 allows ignoring a BOM */
    int rc = parse_value(&p, &p.doc->root, 0);
    if (rc == 0) {
        skip_ws(&p);
        if (p.pos < p.n) rc = fail(&p, "expected end of input after the top-level value, got %s", NULL);
    }
    free(p.stack);
    free(p.sbuf);
    if (p.cloc) freelocale(p.cloc);
    if (rc) { vgpt_json_free(p.doc); return -1; }
    *out = p.doc;
    return 0;
}

int vgpt_json_parse_file(const char *path, vgpt_json_doc **out, vgpt_err *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return vgpt_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            char *b = realloc(buf, cap);
            if (!b) { free(buf); fclose(f); return vgpt_err_set(err, "%s: out of memory", path); }
            buf = b;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len > VGPT_JSON_MAX_FILE) {
            free(buf); fclose(f);
            return vgpt_err_set(err, "%s: larger than %u bytes, expected a small JSON file", path, VGPT_JSON_MAX_FILE);
        }
        if (got == 0) break;
    }
    int rd_err = ferror(f) ? errno : 0;
    fclose(f);
    if (rd_err) { free(buf); return vgpt_err_set(err, "%s: read failed: %s", path, strerror(rd_err)); }
    int rc = vgpt_json_parse(buf, len, path, out, err);
    free(buf);
    return rc;
}

const vgpt_json *vgpt_json_get(const vgpt_json *obj, const char *key) {
    if (!obj || obj->type != VGPT_JSON_OBJECT) return NULL;
    size_t klen = strlen(key);
    for (size_t i = obj->n; i-- > 0;) {
        const vgpt_json *m = &obj->kids[i];
        if (m->key_len == klen && memcmp(m->key, key, klen) == 0) return m;
    }
    return NULL;
}

const char *vgpt_json_type_name(vgpt_json_type t) {
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* --------------------------------------------------------------- writer */

int vgpt_json_buf_append(vgpt_json_buf *b, const void *p, size_t n) {
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n + 1) {
            if (cap > SIZE_MAX / 2) return -1;
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

void vgpt_json_buf_free(vgpt_json_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* One writer for both sinks: exactly one of b / f is set. */
static int emit(vgpt_json_buf *b, FILE *f, const void *p, size_t n) {
    if (b) return vgpt_json_buf_append(b, p, n);
    return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int escape_to(vgpt_json_buf *b, FILE *f, const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    if (emit(b, f, "\"", 1)) return -1;
    size_t i = 0, run = 0; /* s[run..i) is pending, passed through as is */
    while (i < len) {
        unsigned c = s[i];
        char esc[8];
        size_t elen = 0, skip = 1;
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; elen = 2; }
        else if (c == '\n') { memcpy(esc, "\\n", 2); elen = 2; }
        else if (c == '\t') { memcpy(esc, "\\t", 2); elen = 2; }
        else if (c == '\r') { memcpy(esc, "\\r", 2); elen = 2; }
        else if (c == '\b') { memcpy(esc, "\\b", 2); elen = 2; }
        else if (c == '\f') { memcpy(esc, "\\f", 2); elen = 2; }
        else if (c < 0x20 || c == 0x7F) { snprintf(esc, sizeof esc, "\\u%04x", c); elen = 6; }
        else if (c >= 0x80) {
            uint32_t cp;
            int k = vgpt_utf8_next(s + i, len - i, &cp);
            if (k > 0) { i += (size_t)k; continue; }
            memcpy(esc, "\xEF\xBF\xBD", 3); /* U+FFFD */
            elen = 3;
            skip = (size_t)-k;
        } else { i++; continue; }
        if (emit(b, f, s + run, i - run) || emit(b, f, esc, elen)) return -1;
        i += skip;
        run = i;
    }
    if (emit(b, f, s + run, i - run)) return -1;
    return emit(b, f, "\"", 1);
}

int vgpt_json_buf_str(vgpt_json_buf *b, const char *s, size_t len) { return escape_to(b, NULL, s, len); }
int vgpt_json_write_str(FILE *f, const char *s, size_t len) { return escape_to(NULL, f, s, len); }
