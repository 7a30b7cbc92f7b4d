/* tokenizer.h - GPT-2 byte-level BPE *decoding* (token id -> bytes -> UTF-8).
 *
 * Captioning only ever turns generated ids back into text, so this holds the
 * id -> bytes table and nothing of BPE merging.  The table comes from
 * GPT-2's encoder.json / vocab.json (token string in GPT-2's byte-to-unicode
 * alphabet -> id); id 50257 is the added <|pad|> (model-spec.md, "Tokenizer"). */
#ifndef VGPT_TOKENIZER_H
#define VGPT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define VGPT_TOK_EOT 50256   /* <|endoftext|> in GPT-2's vocabulary, also the BOS */
#define VGPT_TOK_PAD 50257   /* <|pad|>, added after GPT-2's 50257 entries */
#define VGPT_TOK_MAX_ID (1 << 22) /* a vocabulary file with larger ids is refused */

typedef struct vgpt_tok vgpt_tok;

/* Finds and loads the vocabulary, first hit wins:
 *   <dir of ckpt_path>/tokenizer/             (ckpt_path may be NULL; the
 *                                              folder save_pretrained writes,
 *                                              see vgpt_tok_load_dir)
 *   $VGPT_DATA_DIR/encoder.json
 *   <dir of /proc/self/exe, else of argv0>/../data/encoder.json, ../../data/encoder.json
 *   <that dir>/../share/vgpt/encoder.json
 *   VGPT_DATADIR "/encoder.json"               (compile-time, when defined)
 * A file that exists but is broken is an error (no falling through); when
 * none exists, the error lists every place looked. */
int vgpt_tok_load(const char *ckpt_path, const char *argv0, vgpt_tok **out, vgpt_err *err);
/* Loads one given vocabulary file. */
int vgpt_tok_load_file(const char *path, vgpt_tok **out, vgpt_err *err);
/* tokenizer_dir.c: loads a GPT2TokenizerFast.save_pretrained folder:
 * vocab.json (required), added_tokens.json (special tokens such as
 * <|pad|> = 50257); tokenizer.json, special_tokens_map.json,
 * tokenizer_config.json must be JSON objects and merges.txt merge pairs when
 * present.  Any malformed file is an error naming it. */
int vgpt_tok_load_dir(const char *dir, vgpt_tok **out, vgpt_err *err);
/* Registers an added special token (dropped when decoding).  An id the
 * vocabulary already gives another token is an error naming `source`. */
int vgpt_tok_add_special(vgpt_tok *t, const char *name, int id, const char *source, vgpt_err *err);
void vgpt_tok_free(vgpt_tok *t);

/* Number of ids the model may produce: the file's entries plus <|pad|>
 * (50258 for GPT-2) unless the file already has a "<|pad|>" entry. */
int vgpt_tok_vocab_size(const vgpt_tok *t);
/* The file that was loaded (for logs). */
const char *vgpt_tok_path(const vgpt_tok *t);
/* id of "<|endoftext|>" in the file, -1 if it has none. */
int vgpt_tok_eot(const vgpt_tok *t);

/* Raw bytes of one token (not NUL-terminated, may be half a UTF-8
 * character); NULL for special, unknown or out-of-range ids.  For streaming
 * output, where the caller joins bytes itself. */
const unsigned char *vgpt_tok_bytes(const vgpt_tok *t, int32_t id, size_t *len);

/* Decodes ids into a newly malloc'd NUL-terminated UTF-8 string (NULL only
 * on OOM): special tokens (<|endoftext|>, <|pad|>) and unknown ids are
 * dropped, ill-formed UTF-8 becomes U+FFFD as in Python's
 * bytes.decode('utf-8', errors='replace'), and the text is stripped of
 * surrounding whitespace as Python's str.strip() does (Unicode whitespace
 * included); nothing else is cleaned up (" ." stays). */
char *vgpt_tok_text(const vgpt_tok *t, const int32_t *ids, int n);

#endif
