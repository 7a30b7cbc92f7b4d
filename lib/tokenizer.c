/* tokenizer.c - GPT-2 byte-level BPE decoding (see tokenizer.h).
 *
 * GPT-2 writes every byte as a printable code point (bytes_to_unicode() in
 * openai/gpt-2 encoder.py) so that BPE never sees whitespace or control
 * bytes; decoding maps each code point of a token string back to its byte.
 * All token bytes live in one blob indexed by an offset table. */
#include "tokenizer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "file.h"
#include "json.h"

#define ALPHABET 324 /* bytes_to_unicode() uses code points 0x21 .. 0x143 */

struct vgpt_tok {
    int n_ids;           /* max id in the file + 1 */
    int vocab_size;      /* n_ids, plus one for <|pad|> if the file has none */
    int eot, pad;        /* -1 if absent */
    uint32_t *off;       /* [n_ids + 1]: id's bytes are blob[off[id] .. off[id+1]) */
    unsigned char *known;/* [n_ids]: 1 if the id is in the file and not special */
    unsigned char *blob;
    char path[4096];
};

/* Inverse of bytes_to_unicode(): code point -> byte, -1 if not in the alphabet.
 * Printable Latin-1 bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for
 * themselves; the other 68 bytes, in increasing order, become 256, 257, ... */
static void byte_decoder(int dec[ALPHABET]) {
    for (int i = 0; i < ALPHABET; i++) dec[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        dec[printable ? b : 256 + n++] = b;
    }
}

void vgpt_tok_free(vgpt_tok *t) {
    if (!t) return;
    free(t->off);
    free(t->known);
    free(t->blob);
    free(t);
}

/* Checks every member is "token": id and finds the largest id. */
static int scan_ids(const vgpt_json *root, const char *path, int *max_id, vgpt_err *err) {
    if (root->type != VGPT_JSON_OBJECT)
        return vgpt_err_set(err, "%s: expected a JSON object {token: id}, got %s", path,
                            vgpt_json_type_name(root->type));
    if (root->n == 0) return vgpt_err_set(err, "%s: expected a vocabulary, got an empty object", path);
    *max_id = -1;
    for (size_t i = 0; i < root->n; i++) {
        const vgpt_json *v = &root->kids[i];
        if (v->type != VGPT_JSON_NUMBER || !v->is_int || v->i < 0 || v->i >= VGPT_TOK_MAX_ID) {
            char got[64];
            if (v->type == VGPT_JSON_NUMBER) snprintf(got, sizeof got, "%.17g", v->num);
            else snprintf(got, sizeof got, "%s", vgpt_json_type_name(v->type));
            return vgpt_err_set(err, "%s: token \"%.60s\": expected an integer id in 0..%d, got %s",
                                path, v->key, VGPT_TOK_MAX_ID - 1, got);
        }
        if (v->i > *max_id) *max_id = (int)v->i;
    }
    return 0;
}

/* Decodes one token string into blob at *at (room: its length in bytes). */
static int token_bytes(const vgpt_json *m, const int dec[ALPHABET], unsigned char *blob,
                       uint32_t *at, const char *path, vgpt_err *err) {
    const unsigned char *s = (const unsigned char *)m->key;
    for (size_t k = 0; k < m->key_len;) {
        uint32_t cp = 0;
        int len = vgpt_utf8_next(s + k, m->key_len - k, &cp); /* JSON strings are valid UTF-8 */
        if (len < 0 || cp >= ALPHABET || dec[cp] < 0)
            return vgpt_err_set(err, "%s: token %lld \"%.60s\": character U+%04X is not in GPT-2's "
                                "byte-to-unicode alphabet", path, (long long)m->i, m->key, (unsigned)cp);
        blob[(*at)++] = (unsigned char)dec[cp];
        k += (size_t)len;
    }
    return 0;
}

/* Fills the table from a parsed {token: id} object; ids seen twice are refused. */
static int build(vgpt_tok *t, const vgpt_json *root, const char *path, vgpt_err *err) {
    int dec[ALPHABET];
    byte_decoder(dec);
    size_t total = 0;
    for (size_t i = 0; i < root->n; i++) total += root->kids[i].key_len;
    if (total >= UINT32_MAX) return vgpt_err_set(err, "%s: vocabulary too large", path);
    const vgpt_json **by_id = calloc((size_t)t->n_ids, sizeof *by_id);
    t->off = calloc((size_t)t->n_ids + 1, sizeof *t->off);
    t->known = calloc((size_t)t->n_ids, 1);
    t->blob = malloc(total + 1);
    int rc = 0;
    if (!by_id || !t->off || !t->known || !t->blob) rc = vgpt_err_set(err, "%s: out of memory", path);
    for (size_t i = 0; rc == 0 && i < root->n; i++) {
        const vgpt_json *m = &root->kids[i];
        if (by_id[m->i])
            rc = vgpt_err_set(err, "%s: id %lld is used by both \"%.40s\" and \"%.40s\"", path,
                              (long long)m->i, by_id[m->i]->key, m->key);
        by_id[m->i] = m;
    }
    uint32_t at = 0;
    for (int id = 0; rc == 0 && id < t->n_ids; id++) {
        t->off[id] = at;
        const vgpt_json *m = by_id[id];
        if (!m) continue;
        if (strcmp(m->key, "<|endoftext|>") == 0) t->eot = id;
        else if (strcmp(m->key, "<|pad|>") == 0) t->pad = id;
        else t->known[id] = 1;
        rc = token_bytes(m, dec, t->blob, &at, path, err);
    }
    if (rc == 0) t->off[t->n_ids] = at;
    free(by_id);
    return rc;
}

int vgpt_tok_load_file(const char *path, vgpt_tok **out, vgpt_err *err) {
    *out = NULL;
    vgpt_json_doc *doc;
    if (vgpt_file_read_json(path, &doc, err)) return -1;
    const vgpt_json *root = vgpt_json_root(doc);
    int max_id = -1;
    vgpt_tok *t = calloc(1, sizeof *t);
    int rc = t ? scan_ids(root, path, &max_id, err) : vgpt_err_set(err, "%s: out of memory", path);
    if (rc == 0) {
        t->n_ids = max_id + 1;
        t->eot = t->pad = -1;
        rc = build(t, root, path, err);
    }
    vgpt_json_free(doc);
    if (rc) { vgpt_tok_free(t); return -1; }
    t->vocab_size = t->pad >= 0 ? t->n_ids : t->n_ids + 1;
    if (t->pad < 0) t->pad = t->n_ids;
    snprintf(t->path, sizeof t->path, "%s", path);
    *out = t;
    return 0;
}

/* ------------------------------------------------------------ searching */

typedef struct {
    char paths[8][4096];
    int n;
} candidates;

static void add(candidates *c, const char *dir, size_t dir_len, const char *rest) {
    if (c->n == 8 || dir_len > 4000) return;
    snprintf(c->paths[c->n], sizeof c->paths[0], "%.*s%s", (int)dir_len, dir, rest);
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->paths[i], c->paths[c->n]) == 0) return;
    c->n++;
}

/* Adds the repo-relative and installed locations around an executable. */
static void add_exe(candidates *c, const char *exe) {
    const char *slash = strrchr(exe, '/');
    if (!slash) return;
    size_t d = (size_t)(slash - exe);
    add(c, exe, d, "/../data/encoder.json");
    add(c, exe, d, "/../../data/encoder.json");
    add(c, exe, d, "/../share/vgpt/encoder.json");
}

static void find_candidates(const char *argv0, candidates *c) {
    c->n = 0;
    const char *env = getenv("VGPT_DATA_DIR");
    if (env && *env) add(c, env, strlen(env), "/encoder.json");
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) { exe[n] = 0; add_exe(c, exe); }
    if (argv0 && strchr(argv0, '/') && realpath(argv0, exe)) add_exe(c, exe);
#ifdef VGPT_DATADIR
    add(c, VGPT_DATADIR, strlen(VGPT_DATADIR), "/encoder.json");
#endif
}

int vgpt_tok_load(const char *ckpt_path, const char *argv0, vgpt_tok **out, vgpt_err *err) {
    *out = NULL;
    char resolved[4096];
    if (ckpt_path && vgpt_ckpt_resolve(ckpt_path, resolved, sizeof resolved, err)) return -1;
    if (ckpt_path) {
        ckpt_path = resolved;
        const char *slash = strrchr(ckpt_path, '/');
        char dir[4200];
        struct stat st;
        /* a Hugging Face model folder has vocab.json beside the weights */
        snprintf(dir, sizeof dir, "%.*svocab.json", slash ? (int)(slash - ckpt_path) + 1 : 0, ckpt_path);
        if (stat(dir, &st) == 0) {
            snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - ckpt_path) : 1, slash ? ckpt_path : ".");
            return vgpt_tok_load_dir(dir, out, err);
        }
        snprintf(dir, sizeof dir, "%.*stokenizer", slash ? (int)(slash - ckpt_path) + 1 : 0, ckpt_path);
        if (stat(dir, &st) == 0) {
            if (S_ISDIR(st.st_mode)) return vgpt_tok_load_dir(dir, out, err);
            /* something else by that name is a damaged download: never skipped silently */
            return vgpt_err_set(err, "%s: %s, expected the tokenizer folder (or nothing there, to use vgpt's "
                                "GPT-2 vocabulary)", dir, S_ISREG(st.st_mode) ? "is a file" : vgpt_file_kind(st.st_mode));
        }
    }
    candidates c;
    find_candidates(argv0, &c);
    for (int i = 0; i < c.n; i++)
        if (access(c.paths[i], F_OK) == 0) return vgpt_tok_load_file(c.paths[i], out, err);
    char looked[900] = "";
    for (int i = 0; i < c.n; i++) {
        size_t l = strlen(looked);
        snprintf(looked + l, sizeof looked - l, "%s%s", i ? ", " : "", c.paths[i]);
    }
    return vgpt_err_set(err, "GPT-2 vocabulary (encoder.json) not found; looked in: %s; "
                        "set VGPT_DATA_DIR to the folder holding encoder.json", looked);
}

int vgpt_tok_add_special(vgpt_tok *t, const char *name, int id, const char *source, vgpt_err *err) {
    if (id < t->n_ids && t->known[id])
        return vgpt_err_set(err, "%s: \"%.60s\" = %d, but the vocabulary %s already has a token with id %d", source,
                            name, id, t->path, id);
    if (id >= t->n_ids && id > t->pad && t->pad >= t->n_ids) {
        /* past the end of vocab.json: the table grows; no bytes, never decoded */
        uint32_t *off = realloc(t->off, ((size_t)id + 2) * sizeof *off);
        unsigned char *known = off ? realloc(t->known, (size_t)id + 1) : NULL;
        if (off) t->off = off;
        if (!known) return vgpt_err_set(err, "%s: out of memory", source);
        t->known = known;
        for (int i = t->n_ids; i <= id; i++) {
            t->off[i + 1] = t->off[t->n_ids];
            t->known[i] = 0;
        }
        t->n_ids = id + 1;
    }
    if (strcmp(name, "<|pad|>") == 0) t->pad = id;
    if (strcmp(name, "<|endoftext|>") == 0) t->eot = id;
    if (id + 1 > t->vocab_size) t->vocab_size = id + 1;
    return 0;
}

/* ------------------------------------------------------------- decoding */

int vgpt_tok_vocab_size(const vgpt_tok *t) { return t->vocab_size; }
const char *vgpt_tok_path(const vgpt_tok *t) { return t->path; }
int vgpt_tok_eot(const vgpt_tok *t) { return t->eot; }

const unsigned char *vgpt_tok_bytes(const vgpt_tok *t, int32_t id, size_t *len) {
    *len = 0;
    if (id < 0 || id >= t->n_ids || !t->known[id]) return NULL;
    *len = t->off[id + 1] - t->off[id];
    return t->blob + t->off[id];
}

/* Python's str.isspace(): what str.strip() removes. */
static int is_py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* Strips s (valid UTF-8, n bytes) in place of leading/trailing whitespace. */
static void py_strip(char *s, size_t n) {
    size_t lo = 0, hi = n, keep_hi = 0, i = 0;
    int leading = 1;
    while (i < n) {
        uint32_t cp;
        int k = vgpt_utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (k <= 0) k = 1; /* cannot happen after sanitizing */
        if (!is_py_space(cp)) {
            if (leading) lo = i;
            leading = 0;
            keep_hi = i + (size_t)k;
        }
        i += (size_t)k;
    }
    hi = leading ? lo = 0 : keep_hi;
    memmove(s, s + lo, hi - lo);
    s[hi - lo] = 0;
}

/* Copies s[0..n) to out as valid UTF-8, each ill-formed subpart -> U+FFFD. */
static size_t utf8_sanitize(const unsigned char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = vgpt_utf8_next(s + i, n - i, &cp);
        if (k > 0) { memcpy(out + o, s + i, (size_t)k); o += (size_t)k; i += (size_t)k; }
        else { memcpy(out + o, "\xEF\xBF\xBD", 3); o += 3; i += (size_t)-k; }
    }
    out[o] = 0;
    return o;
}

char *vgpt_tok_text(const vgpt_tok *t, const int32_t *ids, int n) {
    size_t total = 0, len;
    for (int i = 0; i < n; i++)
        if (vgpt_tok_bytes(t, ids[i], &len)) total += len;
    if (total > SIZE_MAX / 4) return NULL;
    unsigned char *raw = malloc(total + 1);
    char *out = malloc(3 * total + 1); /* every byte may become a 3-byte U+FFFD */
    if (!raw || !out) { free(raw); free(out); return NULL; }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        const unsigned char *b = vgpt_tok_bytes(t, ids[i], &len);
        if (b) { memcpy(raw + at, b, len); at += len; }
    }
    size_t len_out = utf8_sanitize(raw, at, out);
    free(raw);
    py_strip(out, len_out);
    return out;
}
