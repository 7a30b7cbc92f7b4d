/* test_json.c - the strict JSON reader, the string escaper, and
 * config.json loading (the one JSON file format vgpt type-checks by key). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "json.h"

static vgpt_json_doc *parse(const char *s, vgpt_err *err) {
    vgpt_json_doc *d = NULL;
    if (vgpt_json_parse(s, strlen(s), "t.json", &d, err)) return NULL;
    return d;
}

/* 1 if s fails to parse with an error message containing want. */
static int fails_with(const char *s, const char *want) {
    vgpt_err err = {{0}};
    vgpt_json_doc *d = parse(s, &err);
    if (d) { vgpt_json_free(d); printf("  unexpectedly parsed: %s\n", s); return 0; }
    if (!strstr(err.msg, want)) { printf("  error for %s: %s (wanted %s)\n", s, err.msg, want); return 0; }
    return 1;
}

static void test_values(check_state *st) {
    vgpt_err err = {{0}};
    vgpt_json_doc *d = parse(" {\"a\": [1, -2, 3.5, 1e3, true, false, null, \"x\"], \"b\": {}, \"c\": []} ", &err);
    CHECK(st, d != NULL, "json: object with array of mixed values parses (%s)", d ? "" : err.msg);
    if (!d) return;
    const vgpt_json *r = vgpt_json_root(d), *a = vgpt_json_get(r, "a");
    CHECK(st, r->type == VGPT_JSON_OBJECT && r->n == 3, "json: root object has 3 members");
    CHECK(st, a && a->type == VGPT_JSON_ARRAY && a->n == 8, "json: array has 8 elements");
    if (a && a->n == 8) {
        const vgpt_json *k = a->kids;
        CHECK(st, k[0].is_int && k[0].i == 1 && k[1].is_int && k[1].i == -2, "json: integers 1, -2");
        CHECK(st, !k[2].is_int && k[2].num == 3.5 && !k[3].is_int && k[3].num == 1000.0, "json: 3.5 and 1e3");
        CHECK(st, k[4].type == VGPT_JSON_BOOL && k[4].boolean == 1 && k[5].boolean == 0, "json: true, false");
        CHECK(st, k[6].type == VGPT_JSON_NULL, "json: null");
        CHECK(st, k[7].type == VGPT_JSON_STRING && k[7].len == 1 && strcmp(k[7].str, "x") == 0, "json: string");
        CHECK(st, k[0].key == NULL, "json: array elements have no key");
    }
    const vgpt_json *b = vgpt_json_get(r, "b"), *c = vgpt_json_get(r, "c");
    CHECK(st, b && b->type == VGPT_JSON_OBJECT && b->n == 0, "json: empty object");
    CHECK(st, c && c->type == VGPT_JSON_ARRAY && c->n == 0, "json: empty array");
    CHECK(st, vgpt_json_get(r, "zz") == NULL && vgpt_json_get(a, "a") == NULL, "json: get of absent key / non-object");
    vgpt_json_free(d);

    d = parse("{\"k\": 1, \"k\": 2}", &err);
    CHECK(st, d && vgpt_json_get(vgpt_json_root(d), "k")->i == 2, "json: repeated key: get returns the last, like Python");
    vgpt_json_free(d);
    d = parse("\xEF\xBB\xBF [] ", &err);
    CHECK(st, d != NULL, "json: leading UTF-8 BOM is ignored");
    vgpt_json_free(d);
}

static void test_strings(check_state *st) {
    vgpt_err err = {{0}};
    const char *src = "\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\\ud83d\\ude00 é\"";
    const char *want = "q\"b\\s/\b\f\n\r\tA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 \xC3\xA9";
    vgpt_json_doc *d = parse(src, &err);
    const vgpt_json *r = d ? vgpt_json_root(d) : NULL;
    CHECK(st, r && r->len == strlen(want) && memcmp(r->str, want, r->len) == 0,
          "json: all escapes incl. \\u surrogate pair decode to UTF-8 (%s)", d ? "" : err.msg);
    vgpt_json_free(d);
    d = parse("\"a\\u0000b\"", &err);
    r = d ? vgpt_json_root(d) : NULL;
    CHECK(st, r && r->len == 3 && memcmp(r->str, "a\0b", 4) == 0, "json: \\u0000 kept, length 3");
    vgpt_json_free(d);
    d = parse("{\"\\u00e9t\\u00e9\": 7}", &err);
    CHECK(st, d && vgpt_json_get(vgpt_json_root(d), "\xC3\xA9t\xC3\xA9"), "json: escaped key found by its UTF-8");
    vgpt_json_free(d);

    CHECK(st, fails_with("\"\\ud83d\"", "surrogate"), "json: lone high surrogate rejected");
    CHECK(st, fails_with("\"\\ude00\"", "lone low surrogate"), "json: lone low surrogate rejected");
    CHECK(st, fails_with("\"\\ud83d\\u0041\"", "low surrogate"), "json: high surrogate + non-low rejected");
    CHECK(st, fails_with("\"\\u12G4\"", "hex"), "json: bad hex digit in \\u rejected");
    CHECK(st, fails_with("\"\\x41\"", "invalid escape"), "json: unknown escape \\x rejected");
    CHECK(st, fails_with("\"a\tb\"", "control character"), "json: raw tab in string rejected");
    CHECK(st, fails_with("\"abc", "unterminated"), "json: unterminated string rejected");
    CHECK(st, fails_with("\"\xC3\x28\"", "invalid UTF-8"), "json: ill-formed UTF-8 rejected");
    CHECK(st, fails_with("\"\xED\xA0\x80\"", "invalid UTF-8"), "json: UTF-8-encoded surrogate rejected");
    CHECK(st, fails_with("\"\xC0\xAF\"", "invalid UTF-8"), "json: overlong UTF-8 rejected");
}

static void test_numbers(check_state *st) {
    static const struct { const char *s; int is_int; long long i; double d; } ok[] = {
        {"0", 1, 0, 0}, {"-0", 1, 0, 0}, {"123", 1, 123, 123}, {"-123", 1, -123, -123},
        {"9223372036854775807", 1, LLONG_MAX, 9223372036854775807.0},
        {"-9223372036854775808", 1, LLONG_MIN, -9223372036854775808.0},
        {"9223372036854775808", 0, 0, 9223372036854775808.0},
        {"1.5e-3", 0, 0, 1.5e-3}, {"1E+2", 0, 0, 100}, {"-0.25", 0, 0, -0.25}, {"2e0", 0, 0, 2},
        {"0.1", 0, 0, 0.1}, {"1e400", 0, 0, HUGE_VAL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        vgpt_err err = {{0}};
        vgpt_json_doc *d = parse(ok[i].s, &err);
        const vgpt_json *r = d ? vgpt_json_root(d) : NULL;
        int good = r && r->type == VGPT_JSON_NUMBER && r->is_int == ok[i].is_int && r->num == ok[i].d &&
                   (!ok[i].is_int || r->i == ok[i].i);
        CHECK(st, good, "json: number %s (%s)", ok[i].s, d ? "" : err.msg);
        vgpt_json_free(d);
    }
    static const char *bad[] = {"01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "-Infinity",
                                "1.5.2", "--1", "1 2", "- 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(st, fails_with(bad[i], "t.json:1:"), "json: malformed number %s rejected", bad[i]);
    CHECK(st, fails_with("[01]", "leading zeros"), "json: leading zero message");
}

static void test_depth(check_state *st) {
    char s[2 * (VGPT_JSON_MAX_DEPTH + 1) + 1];
    for (int depth = VGPT_JSON_MAX_DEPTH; depth <= VGPT_JSON_MAX_DEPTH + 1; depth++) {
        for (int i = 0; i < depth; i++) { s[i] = '['; s[2 * depth - 1 - i] = ']'; }
        s[2 * depth] = 0;
        vgpt_err err = {{0}};
        vgpt_json_doc *d = parse(s, &err);
        if (depth == VGPT_JSON_MAX_DEPTH) CHECK(st, d != NULL, "json: %d nested arrays parse", depth);
        else CHECK(st, !d && strstr(err.msg, "nesting deeper"), "json: %d nested arrays rejected (%s)", depth, err.msg);
        vgpt_json_free(d);
    }
    /* deep input far past the limit must fail cleanly, not blow the stack */
    size_t n = 1 << 20;
    char *deep = malloc(n + 1);
    if (!deep) return;
    memset(deep, '{', n);
    deep[n] = 0;
    CHECK(st, fails_with(deep, "t.json:1:"), "json: 1M opening braces rejected without crashing");
    memset(deep, '[', n);
    CHECK(st, fails_with(deep, "nesting deeper"), "json: 1M opening brackets rejected by the depth limit");
    free(deep);
}

static void test_errors(check_state *st) {
    CHECK(st, fails_with("{\n  \"a\": 1,\n  \"b\" 2\n}", "t.json:3:7: expected ':'"), "json: missing colon at line 3 col 7");
    CHECK(st, fails_with("[1,\n2,\n]", "t.json:3:1: expected a value, got ']'"), "json: trailing comma in array");
    CHECK(st, fails_with("{\"a\":1,}", "t.json:1:8: expected a string key"), "json: trailing comma in object");
    CHECK(st, fails_with("", "t.json:1:1: expected a value, got end of input"), "json: empty input");
    CHECK(st, fails_with("   \n ", "t.json:2:2:"), "json: whitespace-only input");
    CHECK(st, fails_with("[1] x", "expected end of input"), "json: trailing garbage");
    CHECK(st, fails_with("// c\n1", "t.json:1:1"), "json: comments rejected");
    CHECK(st, fails_with("{'a': 1}", "string key"), "json: single-quoted key rejected");
    CHECK(st, fails_with("[1 2]", "expected ',' or ']'"), "json: missing comma in array");
    CHECK(st, fails_with("{\"a\" :1 \"b\":2}", "expected ',' or '}'"), "json: missing comma in object");
    CHECK(st, fails_with("[tru]", "expected a value"), "json: truncated literal");
    CHECK(st, fails_with("[nulll]", "expected ','"), "json: overlong literal");
    CHECK(st, fails_with("[1,\x01]", "byte 0x01"), "json: control byte named in error");
    CHECK(st, fails_with("{\"a\": [1, 2", "got end of input"), "json: unterminated array");
}

/* Escapes s with the buffer writer and compares with want. */
static int escapes_to(const char *s, size_t len, const char *want) {
    vgpt_json_buf b = {0};
    int ok = vgpt_json_buf_str(&b, s, len) == 0 && b.len == strlen(want) && strcmp(b.data, want) == 0;
    if (!ok) printf("  escaped to [%s], wanted [%s]\n", b.data ? b.data : "(null)", want);
    vgpt_json_buf_free(&b);
    return ok;
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

/* Random valid UTF-8 strings survive escape -> parse unchanged. */
static int escape_roundtrip(uint64_t seed) {
    unsigned char s[256];
    size_t n = 0;
    while (n < sizeof s - 4) {
        uint64_t r = rng_next(&seed);
        uint32_t cp = r % 4 == 0 ? (uint32_t)(r >> 8) % 0x80 : (uint32_t)(r >> 8) % 0x110000;
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        if (cp < 0x80) s[n++] = (unsigned char)cp;
        else if (cp < 0x800) { s[n++] = 0xC0 | cp >> 6; s[n++] = 0x80 | (cp & 63); }
        else if (cp < 0x10000) { s[n++] = 0xE0 | cp >> 12; s[n++] = 0x80 | (cp >> 6 & 63); s[n++] = 0x80 | (cp & 63); }
        else { s[n++] = 0xF0 | cp >> 18; s[n++] = 0x80 | (cp >> 12 & 63); s[n++] = 0x80 | (cp >> 6 & 63); s[n++] = 0x80 | (cp & 63); }
    }
    vgpt_json_buf b = {0};
    vgpt_json_doc *d = NULL;
    vgpt_err err;
    int ok = vgpt_json_buf_str(&b, (const char *)s, n) == 0 && vgpt_json_parse(b.data, b.len, "rt", &d, &err) == 0 &&
             vgpt_json_root(d)->len == n && memcmp(vgpt_json_root(d)->str, s, n) == 0;
    vgpt_json_free(d);
    vgpt_json_buf_free(&b);
    return ok;
}

static void test_escaper(check_state *st) {
    CHECK(st, escapes_to("plain", 5, "\"plain\""), "escape: plain ASCII");
    CHECK(st, escapes_to("a\"b\\c", 5, "\"a\\\"b\\\\c\""), "escape: quote and backslash");
    CHECK(st, escapes_to("\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\""), "escape: short control escapes");
    CHECK(st, escapes_to("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\""), "escape: other control chars as \\u00XX");
    CHECK(st, escapes_to("a\0b", 3, "\"a\\u0000b\""), "escape: embedded NUL");
    CHECK(st, escapes_to("", 0, "\"\""), "escape: empty string");
    CHECK(st, escapes_to("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x93\xB7", 17,
                         "\"caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x93\xB7\""), "escape: non-ASCII UTF-8 passes through");
    CHECK(st, escapes_to("a\xFF" "b\xE2\x82", 5, "\"a\xEF\xBF\xBD" "b\xEF\xBF\xBD\""),
          "escape: ill-formed bytes become U+FFFD (truncated 3-byte char -> one)");
    CHECK(st, escapes_to("/", 1, "\"/\""), "escape: slash not escaped");
    int all = 1;
    for (uint64_t seed = 1; seed <= 200; seed++) all &= escape_roundtrip(seed * 0x9E3779B97F4A7C15ull);
    CHECK(st, all, "escape: 200 random UTF-8 strings round-trip through escape + parse");

    char *mem = NULL;
    size_t memlen = 0;
    FILE *f = open_memstream(&mem, &memlen);
    int rc = f ? vgpt_json_write_str(f, "x\"\n\xC3\xA9", 5) : -1;
    if (f) fclose(f);
    CHECK(st, rc == 0 && mem && strcmp(mem, "\"x\\\"\\n\xC3\xA9\"") == 0, "escape: FILE* writer gives the same bytes");
    free(mem);
}

static void test_utf8(check_state *st) {
    static const struct { const char *s; int n, want; } cases[] = {
        {"A", 1, 1}, {"\xC3\xA9", 2, 2}, {"\xE2\x82\xAC", 3, 3}, {"\xF0\x9F\x98\x80", 4, 4},
        {"\xE2\x82", 2, -2}, {"\xE2\x28", 2, -1}, {"\xF0\x80\x80\x80", 4, -1}, {"\xED\xA0\x80", 3, -1},
        {"\xC0\xAF", 2, -1}, {"\xF4\x90\x80\x80", 4, -1}, {"\x80", 1, -1}, {"\xFF", 1, -1},
        {"\xF0\x9F\x98", 3, -3}, {"\xF0\x9F\x98" "A", 4, -3}, {"\xEF\xBF\xBD", 3, 3},
    };
    int all = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t cp;
        int got = vgpt_utf8_next((const unsigned char *)cases[i].s, (size_t)cases[i].n, &cp);
        if (got != cases[i].want) { printf("  case %zu: got %d want %d\n", i, got, cases[i].want); all = 0; }
    }
    CHECK(st, all, "utf8: lengths and maximal ill-formed subparts");
}

/* ------------------------------------------------------------ config */

static int write_file(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static int load_cfg(const char *dir, const char *json, vgpt_config *cfg, vgpt_err *err) {
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/model.pt", dir);
    if (json && write_file(dir, "config.json", json)) return -2;
    if (!json) {
        char p[4200];
        snprintf(p, sizeof p, "%s/config.json", dir);
        unlink(p);
    }
    return vgpt_config_load(ckpt, cfg, err);
}

static void test_config(check_state *st) {
    char dir[4096];
    if (check_scratch_dir(dir, sizeof dir, "test_json")) { CHECK(st, 0, "config: cannot create a scratch dir"); return; }
    vgpt_config cfg;
    vgpt_err err = {{0}};
    int rc = load_cfg(dir, NULL, &cfg, &err);
    CHECK(st, rc == 0 && cfg.n_heads == -1 && cfg.perceiver_depth == -1 && cfg.n_cross_pos == -1 && cfg.path[0] == 0,
          "config: no config.json -> all -1");
    rc = load_cfg(dir, "{\"vocab_size\": 50258, \"context_length\": 128, \"emb_dim\": 768, \"n_heads\": 12,\n"
                  " \"n_layers\": 12, \"drop_rate\": 0.1, \"qkv_bias\": true, \"learning_rate\": 5e-5,\n"
                  " \"cross_attention_pos\": [3, 6, 9], \"perceiver_num_latents\": 64, \"perceiver_depth\": 2,\n"
                  " \"perceiver_heads\": 8, \"perceiver_dim_head\": 64.0, \"extra\": {\"x\": [null]}}",
                  &cfg, &err);
    CHECK(st, rc == 0, "config: published-style config loads (%s)", rc ? err.msg : "");
    CHECK(st, cfg.vocab_size == 50258 && cfg.context_length == 128 && cfg.emb_dim == 768 && cfg.n_heads == 12 &&
              cfg.n_layers == 12 && cfg.perceiver_num_latents == 64 && cfg.perceiver_depth == 2 &&
              cfg.perceiver_heads == 8 && cfg.perceiver_dim_head == 64 && cfg.vision_num_heads == -1,
          "config: every known key read, absent vision_num_heads is -1");
    CHECK(st, cfg.n_cross_pos == 3 && cfg.cross_pos[0] == 3 && cfg.cross_pos[1] == 6 && cfg.cross_pos[2] == 9,
          "config: cross_attention_pos [3, 6, 9]");
    CHECK(st, strstr(cfg.path, "/config.json") != NULL, "config: path of the file read is kept");

    rc = load_cfg(dir, "{\"n_heads\": \"twelve\"}", &cfg, &err);
    CHECK(st, rc == -1 && strstr(err.msg, "\"n_heads\"") && strstr(err.msg, "config.json") && strstr(err.msg, "twelve"),
          "config: wrong type names key and file (%s)", err.msg);
    CHECK(st, cfg.n_heads == -1, "config: failed load leaves fields -1");
    rc = load_cfg(dir, "{\"n_layers\": 12.5}", &cfg, &err);
    CHECK(st, rc == -1 && strstr(err.msg, "n_layers"), "config: non-integral number rejected (%s)", err.msg);
    rc = load_cfg(dir, "{\"emb_dim\": -768}", &cfg, &err);
    CHECK(st, rc == -1 && strstr(err.msg, "emb_dim"), "config: negative size rejected (%s)", err.msg);
    rc = load_cfg(dir, "{\"cross_attention_pos\": [3, \"6\"]}", &cfg, &err);
    CHECK(st, rc == -1 && strstr(err.msg, "cross_attention_pos\"[1]"), "config: bad cross position named (%s)", err.msg);
    rc = load_cfg(dir, "{\"cross_attention_pos\": 3}", &cfg, &err);
    CHECK(st, rc == -1 && strstr(err.msg, "cross_attention_pos"), "config: non-array cross positions (%s)", err.msg);
    rc = load_cfg(dir, "{\"cross_attention_pos\": [0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2]}",
                  &cfg, &err);
    CHECK(st, rc == -1 && strstr(err.msg, "33 entries"), "config: more than 32 cross positions (%s)", err.msg);
    rc = load_cfg(dir, "{\"cross_attention_pos\": [], \"n_heads\": null}", &cfg, &err);
    CHECK(st, rc == 0 && cfg.n_cross_pos == 0 && cfg.n_heads == -1, "config: empty cross list is 0, null is absent");
    rc = load_cfg(dir, "{\n  \"n_heads\": 12,\n  \"emb_dim\": 768,,\n}", &cfg, &err);
    CHECK(st, rc == -1 && strstr(err.msg, "config.json:3:18:"), "config: malformed JSON names file:line:col (%s)", err.msg);
    rc = load_cfg(dir, "[12]", &cfg, &err);
    CHECK(st, rc == -1 && strstr(err.msg, "object"), "config: non-object root rejected (%s)", err.msg);

    /* a checkpoint path without a directory reads ./config.json */
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) && chdir(dir) == 0) {
        write_file(dir, "config.json", "{\"vision_num_heads\": 3}");
        rc = vgpt_config_load("model.pt", &cfg, &err);
        CHECK(st, rc == 0 && cfg.vision_num_heads == 3, "config: bare checkpoint name reads ./config.json");
        if (chdir(cwd) != 0) CHECK(st, 0, "config: chdir back to %s", cwd);
    }
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
}

static void test_parse_file(check_state *st) {
    vgpt_json_doc *d = NULL;
    vgpt_err err = {{0}};
    int rc = vgpt_json_parse_file("/nonexistent/x.json", &d, &err);
    CHECK(st, rc == -1 && d == NULL && strstr(err.msg, "/nonexistent/x.json: cannot open"), "json: missing file named (%s)", err.msg);
    rc = vgpt_json_parse_file("/", &d, &err);
    CHECK(st, rc == -1 && strstr(err.msg, "/:"), "json: directory refused (%s)", err.msg);
}

int main(void) {
    check_state st = {0};
    test_values(&st);
    test_strings(&st);
    test_numbers(&st);
    test_depth(&st);
    test_errors(&st);
    test_escaper(&st);
    test_utf8(&st);
    test_parse_file(&st);
    test_config(&st);
    return check_exit(&st);
}
