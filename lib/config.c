/* config.c - reads and type-checks a checkpoint's config.json (see config.h). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "file.h"
#include "json.h"

#define CONFIG_MAX_VALUE (1 << 24) /* no sane size or count is larger */

void vgpt_config_init(vgpt_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    int *ints[] = {&cfg->n_heads, &cfg->perceiver_heads, &cfg->perceiver_dim_head,
                   &cfg->vision_num_heads, &cfg->context_length, &cfg->vocab_size,
                   &cfg->emb_dim, &cfg->n_layers, &cfg->perceiver_num_latents,
                   &cfg->perceiver_depth, &cfg->n_cross_pos};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) *ints[i] = -1;
}

int vgpt_config_sibling(const char *ckpt_path, const char *name, char *out, size_t cap) {
    const char *slash = strrchr(ckpt_path, '/');
    int n;
    if (!slash) n = snprintf(out, cap, "%s", name);
    else if (slash == ckpt_path) n = snprintf(out, cap, "/%s", name);
    else n = snprintf(out, cap, "%.*s/%s", (int)(slash - ckpt_path), ckpt_path, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static void describe(const vgpt_json *v, char *buf, size_t cap) {
    if (v->type == VGPT_JSON_NUMBER) snprintf(buf, cap, "%.17g", v->num);
    else if (v->type == VGPT_JSON_STRING) snprintf(buf, cap, "string \"%.40s\"", v->str);
    else snprintf(buf, cap, "%s", vgpt_json_type_name(v->type));
}

/* An integral number in [lo, CONFIG_MAX_VALUE]; 12.0 counts as 12. */
static int get_int(const vgpt_json *v, int lo, int *out) {
    if (v->type != VGPT_JSON_NUMBER) return -1;
    double d = v->is_int ? (double)v->i : v->num;
    if (!(d >= lo && d <= CONFIG_MAX_VALUE) || floor(d) != d) return -1;
    *out = (int)d;
    return 0;
}

static int read_cross_pos(const vgpt_json *v, vgpt_config *cfg, const char *path, vgpt_err *err) {
    char got[96];
    if (v->type != VGPT_JSON_ARRAY || v->n > VGPT_CONFIG_MAX_CROSS) {
        if (v->type == VGPT_JSON_ARRAY) snprintf(got, sizeof got, "%zu entries", v->n);
        else describe(v, got, sizeof got);
        return vgpt_err_set(err, "%s: key \"cross_attention_pos\": expected an array of at most %d "
                            "block indices, got %s", path, VGPT_CONFIG_MAX_CROSS, got);
    }
    for (size_t i = 0; i < v->n; i++) {
        if (get_int(&v->kids[i], 0, &cfg->cross_pos[i])) {
            describe(&v->kids[i], got, sizeof got);
            return vgpt_err_set(err, "%s: key \"cross_attention_pos\"[%zu]: expected a non-negative "
                                "integer, got %s", path, i, got);
        }
    }
    cfg->n_cross_pos = (int)v->n;
    return 0;
}

static int read_fields(const vgpt_json *root, vgpt_config *cfg, const char *path, vgpt_err *err) {
    const struct { const char *key; int *dst; } fields[] = {
        {"n_heads", &cfg->n_heads}, {"perceiver_heads", &cfg->perceiver_heads},
        {"perceiver_dim_head", &cfg->perceiver_dim_head}, {"vision_num_heads", &cfg->vision_num_heads},
        {"context_length", &cfg->context_length}, {"vocab_size", &cfg->vocab_size},
        {"emb_dim", &cfg->emb_dim}, {"n_layers", &cfg->n_layers},
        {"perceiver_num_latents", &cfg->perceiver_num_latents},
        {"perceiver_depth", &cfg->perceiver_depth},
    };
    if (root->type != VGPT_JSON_OBJECT)
        return vgpt_err_set(err, "%s: expected a JSON object at the top level, got %s", path,
                            vgpt_json_type_name(root->type));
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const vgpt_json *v = vgpt_json_get(root, fields[i].key);
        if (!v || v->type == VGPT_JSON_NULL) continue; /* null: "not set", as absent */
        if (get_int(v, 1, fields[i].dst)) {
            char got[96];
            describe(v, got, sizeof got);
            return vgpt_err_set(err, "%s: key \"%s\": expected a positive integer, got %s",
                                path, fields[i].key, got);
        }
    }
    const vgpt_json *cp = vgpt_json_get(root, "cross_attention_pos");
    if (cp && cp->type != VGPT_JSON_NULL) return read_cross_pos(cp, cfg, path, err);
    return 0;
}

int vgpt_config_load(const char *ckpt_path, vgpt_config *cfg, vgpt_err *err) {
    vgpt_config_init(cfg);
    char path[sizeof cfg->path];
    if (vgpt_config_sibling(ckpt_path, "config.json", path, sizeof path))
        return vgpt_err_set(err, "%s: checkpoint path too long", ckpt_path);
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return 0;
        return vgpt_err_set(err, "%s: cannot stat: %s", path, strerror(errno));
    }
    vgpt_json_doc *doc;
    if (vgpt_file_read_json(path, &doc, err)) return -1;
    int rc = read_fields(vgpt_json_root(doc), cfg, path, err);
    vgpt_json_free(doc);
    if (rc) {
        vgpt_config_init(cfg);
        return -1;
    }
    snprintf(cfg->path, sizeof cfg->path, "%s", path);
    return 0;
}
