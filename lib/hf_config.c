/* hf_config.c - see hf_config.h.  Each field is read with its type checked
 * and its file and dotted name in the message ("config.json: decoder.n_head:
 * expected a positive integer, got string \"x\""). */
#include "hf_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "file.h"
#include "json.h"

typedef struct scope {
    const vgpt_json *obj; /* NULL: every field absent */
    const char *file, *name; /* name: "decoder." or "" */
    vgpt_err *err;
} scope;

static const vgpt_json *field(const scope *s, const char *key) {
    const vgpt_json *v = s->obj ? vgpt_json_get(s->obj, key) : NULL;
    return v && v->type != VGPT_JSON_NULL ? v : NULL;
}

static int bad(const scope *s, const char *key, const char *want) {
    return vgpt_err_set(s->err, "%s: %s%s: expected %s", s->file, s->name, key, want);
}

static int get_int(const scope *s, const char *key, int def, int min, int *out) {
    const vgpt_json *v = field(s, key);
    *out = def;
    if (!v) return 0;
    if (v->type != VGPT_JSON_NUMBER || !v->is_int || v->i < min || v->i > (1 << 30)) {
        char want[64];
        snprintf(want, sizeof want, "an integer >= %d", min);
        return bad(s, key, want);
    }
    *out = (int)v->i;
    return 0;
}

static int get_num(const scope *s, const char *key, double def, double *out) {
    const vgpt_json *v = field(s, key);
    *out = def;
    if (!v) return 0;
    if (v->type != VGPT_JSON_NUMBER) return bad(s, key, "a number");
    *out = v->num;
    return 0;
}

static int get_bool(const scope *s, const char *key, int def, int *out) {
    const vgpt_json *v = field(s, key);
    *out = def;
    if (!v) return 0;
    if (v->type != VGPT_JSON_BOOL) return bad(s, key, "true or false");
    *out = v->boolean;
    return 0;
}

/* early_stopping: true, false or "never", as GenerationConfig takes it. */
static int get_stop(const scope *s, vgpt_stop def, vgpt_stop *out) {
    const vgpt_json *v = field(s, "early_stopping");
    *out = def;
    if (!v) return 0;
    if (v->type == VGPT_JSON_BOOL) *out = v->boolean ? VGPT_STOP_FULL : VGPT_STOP_HEURISTIC;
    else if (v->type != VGPT_JSON_STRING || strcmp(v->str, "never")) return bad(s, "early_stopping", "true, false or \"never\"");
    else *out = VGPT_STOP_NEVER;
    return 0;
}

static int get_str(const scope *s, const char *key, const char *def, const char **out) {
    const vgpt_json *v = field(s, key);
    *out = def;
    if (!v) return 0;
    if (v->type != VGPT_JSON_STRING) return bad(s, key, "a string");
    *out = v->str;
    return 0;
}

/* A string field that must be one of the values vgpt implements. */
static int want_str(const scope *s, const char *key, const char *def, const char *ok1, const char *ok2) {
    const char *v;
    if (get_str(s, key, def, &v)) return -1;
    if (!strcmp(v, ok1) || (ok2 && !strcmp(v, ok2))) return 0;
    return vgpt_err_set(s->err, "%s: %s%s is \"%.60s\"; vgpt implements only \"%s\"%s%s%s", s->file, s->name, key, v,
                        ok1, ok2 ? " and \"" : "", ok2 ? ok2 : "", ok2 ? "\"" : "");
}

/* A boolean option that must have the value vgpt implements. */
static int want_bool(const scope *s, const char *key, int def, int want) {
    int v;
    if (get_bool(s, key, def, &v)) return -1;
    if (v == want) return 0;
    return vgpt_err_set(s->err, "%s: %s%s is %s; vgpt implements only %s (the option changes the model's "
                        "computation)", s->file, s->name, key, v ? "true" : "false", want ? "true" : "false");
}

static int read_encoder(const scope *e, vgpt_hf_config *c) {
    int channels;
    if (want_str(e, "model_type", "", "vit", NULL) || want_str(e, "hidden_act", "gelu", "gelu", NULL) ||
        want_bool(e, "qkv_bias", 1, 1) || get_int(e, "num_channels", 3, 1, &channels))
        return -1;
    if (channels != 3) return vgpt_err_set(e->err, "%s: encoder.num_channels is %d; vgpt reads RGB (3)", e->file, channels);
    return get_int(e, "hidden_size", 768, 1, &c->vit_width) || get_int(e, "num_hidden_layers", 12, 1, &c->vit_layers) ||
           get_int(e, "num_attention_heads", 12, 1, &c->vit_heads) ||
           get_int(e, "intermediate_size", 3072, 1, &c->vit_mlp) || get_int(e, "image_size", 224, 1, &c->image_size) ||
           get_int(e, "patch_size", 16, 1, &c->patch_size) || get_num(e, "layer_norm_eps", 1e-12, &c->vit_eps)
               ? -1 : 0;
}

static int read_decoder(const scope *d, vgpt_hf_config *c) {
    double eps;
    if (want_str(d, "model_type", "", "gpt2", NULL) ||
        want_str(d, "activation_function", "gelu_new", "gelu_new", "gelu_pytorch_tanh") ||
        want_bool(d, "add_cross_attention", 0, 1) || want_bool(d, "scale_attn_weights", 1, 1) ||
        want_bool(d, "scale_attn_by_inverse_layer_idx", 0, 0) || want_bool(d, "reorder_and_upcast_attn", 0, 0) ||
        get_num(d, "layer_norm_epsilon", 1e-5, &eps))
        return -1;
    if (fabs(eps - 1e-5) > 1e-12)
        return vgpt_err_set(d->err, "%s: decoder.layer_norm_epsilon is %g; vgpt's GPT-2 uses 1e-05", d->file, eps);
    if (get_int(d, "n_embd", 768, 1, &c->n_embd) || get_int(d, "n_layer", 12, 1, &c->n_layer) ||
        get_int(d, "n_head", 12, 1, &c->n_head) || get_int(d, "n_positions", 1024, 1, &c->n_positions) ||
        get_int(d, "vocab_size", 50257, 1, &c->vocab_size) || get_int(d, "n_inner", 4 * c->n_embd, 1, &c->n_inner) ||
        get_bool(d, "tie_word_embeddings", 1, &c->tied))
        return -1;
    return 0;
}

/* A special token: the top level's, else the decoder's; it must be the one
 * vgpt's GPT-2 tokenizer ends captions with (50256). */
static int read_token(const scope *top, const scope *dec, const char *key, int *out) {
    int v;
    if (get_int(dec, key, 50256, 0, &v) || get_int(top, key, v, 0, &v)) return -1;
    if (v != 50256)
        return vgpt_err_set(top->err, "%s: %s is %d; vgpt's GPT-2 captioners start and end with <|endoftext|> (50256)",
                            top->file, key, v);
    *out = v;
    return 0;
}

static int open_json(const char *path, int required, vgpt_json_doc **doc, const vgpt_json **root, vgpt_err *err) {
    struct stat st;
    *doc = NULL;
    *root = NULL;
    if (!required && stat(path, &st) != 0) return 0;
    if (vgpt_file_read_json(path, doc, err)) return -1;
    *root = vgpt_json_root(*doc);
    if ((*root)->type == VGPT_JSON_OBJECT) return 0;
    vgpt_err_set(err, "%s: expected a JSON object, got %s", path, vgpt_json_type_name((*root)->type));
    vgpt_json_free(*doc);
    *doc = NULL;
    return -1;
}

int vgpt_hf_config_present(const char *ckpt_path) {
    char path[4200];
    vgpt_json_doc *doc;
    const vgpt_json *root;
    vgpt_err err;
    if (vgpt_config_sibling(ckpt_path, "config.json", path, sizeof path) || open_json(path, 0, &doc, &root, &err) ||
        !doc)
        return 0;
    const vgpt_json *t = vgpt_json_get(root, "model_type");
    int yes = t && t->type == VGPT_JSON_STRING && !strcmp(t->str, "vision-encoder-decoder");
    vgpt_json_free(doc);
    return yes;
}

/* generate() settings vgpt's decoding does not implement, each with the
 * value at which it does nothing (NAN: only null / absent does nothing). */
static const struct {
    const char *key;
    double noop;
} unsupported[] = {
    {"do_sample", 0},         {"repetition_penalty", 1}, {"encoder_repetition_penalty", 1},
    {"num_beam_groups", 1},   {"diversity_penalty", 0},  {"min_new_tokens", 0},
    {"typical_p", 1},         {"epsilon_cutoff", 0},     {"eta_cutoff", 0},
    {"encoder_no_repeat_ngram_size", 0}, {"penalty_alpha", NAN}, {"bad_words_ids", NAN},
    {"force_words_ids", NAN}, {"constraints", NAN},      {"forced_bos_token_id", NAN},
    {"forced_eos_token_id", NAN}, {"suppress_tokens", NAN}, {"begin_suppress_tokens", NAN},
    {"sequence_bias", NAN},   {"exponential_decay_length_penalty", NAN}, {"guidance_scale", NAN},
};

/* Remembers the first generate() setting of s that would change what the
 * folder's generate() outputs and that vgpt does not implement: decoding
 * with the folder's defaults is then refused, naming it (the model itself
 * still loads, for decoding chosen on the command line).  min_length counts
 * the start token, so up to 1 does nothing. */
static void note_unsupported(const scope *s, vgpt_hf_config *c) {
    const vgpt_json *v;
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported && !c->gen_unsupported[0]; i++) {
        if (!(v = field(s, unsupported[i].key))) continue;
        double x = v->type == VGPT_JSON_NUMBER ? v->num : v->type == VGPT_JSON_BOOL ? v->boolean : NAN;
        if (x == unsupported[i].noop) continue;
        char val[48];
        if (v->type == VGPT_JSON_NUMBER) snprintf(val, sizeof val, "%g", v->num);
        else snprintf(val, sizeof val, "%s", v->type == VGPT_JSON_BOOL ? "true" : vgpt_json_type_name(v->type));
        snprintf(c->gen_unsupported, sizeof c->gen_unsupported, "%s: %s is %s; vgpt's decoding does not "
                 "implement it, so it cannot decode as this folder's generate() would (choose the decoding "
                 "yourself, e.g. --beam 4)", s->file, unsupported[i].key, val);
    }
    if (!c->gen_unsupported[0] && (v = field(s, "min_length")) && v->type == VGPT_JSON_NUMBER && v->num > 1)
        snprintf(c->gen_unsupported, sizeof c->gen_unsupported, "%s: min_length is %g; vgpt's decoding has no "
                 "minimum length (choose the decoding yourself, e.g. --beam 4)", s->file, v->num);
}

static int read_model(const vgpt_json *root, vgpt_hf_config *c, vgpt_err *err) {
    scope top = {.obj = root, .file = c->path, .name = "", .err = err};
    if (want_str(&top, "model_type", "", "vision-encoder-decoder", NULL)) return -1;
    const vgpt_json *enc = vgpt_json_get(root, "encoder"), *dec = vgpt_json_get(root, "decoder");
    if (!enc || enc->type != VGPT_JSON_OBJECT || !dec || dec->type != VGPT_JSON_OBJECT)
        return vgpt_err_set(err, "%s: expected \"encoder\" and \"decoder\" objects (a VisionEncoderDecoderConfig)",
                            c->path);
    scope e = {.obj = enc, .file = c->path, .name = "encoder.", .err = err};
    scope d = {.obj = dec, .file = c->path, .name = "decoder.", .err = err};
    if (read_encoder(&e, c) || read_decoder(&d, c) || read_token(&top, &d, "decoder_start_token_id", &c->start) ||
        read_token(&top, &d, "eos_token_id", &c->eos) || read_token(&top, &d, "pad_token_id", &c->pad))
        return -1;
    /* generation defaults from config.json, over the model card's */
    note_unsupported(&top, c);
    return get_int(&top, "num_beams", 4, 1, &c->num_beams) || get_int(&top, "max_length", 16, 2, &c->max_length) ||
           get_num(&top, "length_penalty", 1.0, &c->length_penalty) ||
           get_int(&top, "no_repeat_ngram_size", 0, 0, &c->no_repeat_ngram_size) ||
           get_stop(&top, VGPT_STOP_HEURISTIC, &c->early_stopping) ? -1 : 0;
}

static int read_generation(const vgpt_json *root, const char *file, vgpt_hf_config *c, vgpt_err *err) {
    scope g = {.obj = root, .file = file, .name = "", .err = err};
    if (get_stop(&g, c->early_stopping, &c->early_stopping)) return -1;
    int tok;
    if (get_int(&g, "eos_token_id", 50256, 0, &tok)) return -1;
    if (tok != 50256) return vgpt_err_set(err, "%s: eos_token_id is %d; vgpt ends captions at 50256", file, tok);
    if (get_int(&g, "decoder_start_token_id", 50256, 0, &tok)) return -1;
    if (tok != 50256) return vgpt_err_set(err, "%s: decoder_start_token_id is %d; vgpt starts at 50256", file, tok);
    note_unsupported(&g, c);
    int new_tokens; /* when given, generate() takes it over max_length */
    if (get_int(&g, "max_new_tokens", 0, 1, &new_tokens) || get_int(&g, "num_beams", c->num_beams, 1, &c->num_beams) ||
        get_int(&g, "max_length", c->max_length, 2, &c->max_length) ||
        get_num(&g, "length_penalty", c->length_penalty, &c->length_penalty) ||
        get_int(&g, "no_repeat_ngram_size", c->no_repeat_ngram_size, 0, &c->no_repeat_ngram_size))
        return -1;
    if (new_tokens) c->max_length = new_tokens + 1;
    return 0;
}

/* image_mean / image_std: three numbers, or one for every channel. */
static int read_triple(const scope *s, const char *key, float out[3]) {
    const vgpt_json *v = field(s, key);
    if (!v) return 0;
    if (v->type == VGPT_JSON_NUMBER) {
        out[0] = out[1] = out[2] = (float)v->num;
        return 0;
    }
    if (v->type != VGPT_JSON_ARRAY || v->n != 3) return bad(s, key, "an array of 3 numbers");
    for (int i = 0; i < 3; i++) {
        if (v->kids[i].type != VGPT_JSON_NUMBER) return bad(s, key, "an array of 3 numbers");
        out[i] = (float)v->kids[i].num;
    }
    return 0;
}

/* size: an integer, or {"height": H, "width": W}; it must be the ViT's input. */
static int read_size(const scope *p, int image) {
    const vgpt_json *v = field(p, "size");
    int h = image, w = image;
    if (v && v->type == VGPT_JSON_OBJECT) {
        scope s = {.obj = v, .file = p->file, .name = "size.", .err = p->err};
        if (field(&s, "shortest_edge"))
            return vgpt_err_set(p->err, "%s: size.shortest_edge: vgpt resizes straight to height x width", p->file);
        if (get_int(&s, "height", image, 1, &h) || get_int(&s, "width", image, 1, &w)) return -1;
    } else if (get_int(p, "size", image, 1, &h)) {
        return -1;
    } else {
        w = h;
    }
    if (h != image || w != image)
        return vgpt_err_set(p->err, "%s: size is %dx%d but the encoder's image_size is %d", p->file, h, w, image);
    return 0;
}

static int read_preprocessor(const vgpt_json *root, const char *file, vgpt_hf_config *c, vgpt_err *err) {
    scope p = {.obj = root, .file = file, .name = "", .err = err};
    int rescale, normalize, resample;
    double factor;
    if (want_bool(&p, "do_resize", 1, 1) || read_size(&p, c->image_size) || get_int(&p, "resample", 2, 0, &resample) ||
        get_bool(&p, "do_rescale", 1, &rescale) || get_num(&p, "rescale_factor", 1.0 / 255, &factor) ||
        get_bool(&p, "do_normalize", 1, &normalize) || read_triple(&p, "image_mean", c->mean) ||
        read_triple(&p, "image_std", c->std))
        return -1;
    if (resample != 2)
        return vgpt_err_set(err, "%s: resample is %d; vgpt resizes with PIL's antialiased bilinear (2)", file, resample);
    if (!rescale || fabs(factor - 1.0 / 255) > 1e-9)
        return vgpt_err_set(err, "%s: do_rescale / rescale_factor: vgpt scales pixels by 1/255", file);
    for (int i = 0; i < 3; i++) {
        if (!normalize) c->mean[i] = 0, c->std[i] = 1;
        if (!(c->std[i] > 0)) return bad(&p, "image_std", "positive numbers");
    }
    return 0;
}

/* Reads an optional sibling JSON file into c with fn. */
static int optional_file(const char *ckpt_path, const char *name, vgpt_hf_config *c, vgpt_err *err,
                         int (*fn)(const vgpt_json *, const char *, vgpt_hf_config *, vgpt_err *)) {
    char path[4200];
    vgpt_json_doc *doc;
    const vgpt_json *root;
    if (vgpt_config_sibling(ckpt_path, name, path, sizeof path))
        return vgpt_err_set(err, "%s: path too long", ckpt_path);
    if (open_json(path, 0, &doc, &root, err)) return -1;
    int rc = doc ? fn(root, path, c, err) : 0;
    vgpt_json_free(doc);
    return rc;
}

int vgpt_hf_config_load(const char *ckpt_path, vgpt_hf_config *c, vgpt_err *err) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < 3; i++) c->mean[i] = c->std[i] = 0.5f; /* ViTImageProcessor's defaults */
    if (vgpt_config_sibling(ckpt_path, "config.json", c->path, sizeof c->path))
        return vgpt_err_set(err, "%s: path too long", ckpt_path);
    vgpt_json_doc *doc;
    const vgpt_json *root;
    struct stat st;
    if (stat(c->path, &st) != 0)
        return vgpt_err_set(err, "%s: no config.json beside the weights (download it from the model page with the "
                            "weights)", ckpt_path);
    if (open_json(c->path, 1, &doc, &root, err)) return -1;
    int rc = read_model(root, c, err);
    vgpt_json_free(doc);
    if (rc) return -1;
    return optional_file(ckpt_path, "generation_config.json", c, err, read_generation) ||
           optional_file(ckpt_path, "preprocessor_config.json", c, err, read_preprocessor) ? -1 : 0;
}
