/* tokenizer_dir.c - the tokenizer/ folder that GPT2TokenizerFast.save_pretrained
 * writes beside the published checkpoint (see tokenizer.h).
 *
 * Decoding needs vocab.json and added_tokens.json (the <|pad|> id); the other
 * files are checked for being what they claim, so a damaged download fails
 * at start-up naming the file, not later as a wrong caption. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "json.h"
#include "tokenizer.h"

static int dir_file(const char *dir, const char *name, char *out, size_t cap) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Parses dir/name when it exists and checks that it is one JSON object:
 * 1 with *doc set, 0 when there is no such file, -1 with err set. */
static int open_object(const char *dir, const char *name, const char *what, vgpt_json_doc **doc, char *path,
                       size_t cap, vgpt_err *err) {
    if (dir_file(dir, name, path, cap)) return vgpt_err_set(err, "%s: path too long", dir);
    if (!exists(path)) return 0;
    if (vgpt_file_read_json(path, doc, err)) return -1;
    const vgpt_json *root = vgpt_json_root(*doc);
    if (root->type == VGPT_JSON_OBJECT) return 1;
    vgpt_err_set(err, "%s: expected a JSON object%s, got %s", path, what, vgpt_json_type_name(root->type));
    vgpt_json_free(*doc);
    return -1;
}

static int check_json_object(const char *dir, const char *name, vgpt_err *err) {
    char path[4200];
    vgpt_json_doc *doc;
    int rc = open_object(dir, name, "", &doc, path, sizeof path, err);
    if (rc > 0) vgpt_json_free(doc);
    return rc < 0 ? -1 : 0;
}

/* merges.txt: an optional "#version" line, then one "left right" pair a line. */
static int check_merges(const char *dir, vgpt_err *err) {
    char path[4200], line[1024];
    if (dir_file(dir, "merges.txt", path, sizeof path)) return vgpt_err_set(err, "%s: path too long", dir);
    if (!exists(path)) return 0;
    struct stat st;
    int fd = vgpt_file_open(path, "a text file of merges", &st, err);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return vgpt_err_set(err, "%s: cannot read: out of memory", path);
    }
    int rc = 0;
    for (long no = 1; rc == 0 && fgets(line, sizeof line, f); no++) {
        size_t n = strcspn(line, "\r\n");
        line[n] = 0;
        if (n == 0 || (no == 1 && line[0] == '#')) continue;
        char *sp = strchr(line, ' ');
        if (!sp || sp == line || !sp[1] || strchr(sp + 1, ' '))
            rc = vgpt_err_set(err, "%s:%ld: expected a merge \"left right\", got \"%.60s\"", path, no, line);
    }
    fclose(f);
    return rc;
}

/* added_tokens.json: {"<|pad|>": 50257, ...}, each registered as special. */
static int load_added(vgpt_tok *t, const char *dir, vgpt_err *err) {
    char path[4200];
    vgpt_json_doc *doc;
    int rc = open_object(dir, "added_tokens.json", " {token: id}", &doc, path, sizeof path, err);
    if (rc <= 0) return rc;
    const vgpt_json *root = vgpt_json_root(doc);
    rc = 0;
    for (size_t i = 0; rc == 0 && i < root->n; i++) {
        const vgpt_json *v = &root->kids[i];
        if (v->type != VGPT_JSON_NUMBER || !v->is_int || v->i < 0 || v->i >= VGPT_TOK_MAX_ID)
            rc = vgpt_err_set(err, "%s: token \"%.60s\": expected an integer id in 0..%d", path, v->key,
                              VGPT_TOK_MAX_ID - 1);
        else
            rc = vgpt_tok_add_special(t, v->key, (int)v->i, path, err);
    }
    vgpt_json_free(doc);
    return rc;
}

int vgpt_tok_load_dir(const char *dir, vgpt_tok **out, vgpt_err *err) {
    char vocab[4200];
    *out = NULL;
    if (dir_file(dir, "vocab.json", vocab, sizeof vocab)) return vgpt_err_set(err, "%s: path too long", dir);
    if (!exists(vocab))
        return vgpt_err_set(err, "%s: tokenizer folder without vocab.json (download the whole tokenizer/ folder "
                            "from the model page, or remove it to use vgpt's GPT-2 vocabulary)", dir);
    static const char *objects[] = {"tokenizer.json", "special_tokens_map.json", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof objects / sizeof *objects; i++)
        if (check_json_object(dir, objects[i], err)) return -1;
    if (check_merges(dir, err) || vgpt_tok_load_file(vocab, out, err)) return -1;
    if (load_added(*out, dir, err)) {
        vgpt_tok_free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}
