/* file.h - opening the files a user names (images, checkpoints, config.json,
 * tokenizer files) the same way everywhere.
 *
 * Only regular files are read.  A FIFO would block open() until a writer
 * came, a device like /dev/zero never ends, a directory or socket fails
 * later with an obscure errno: each is refused before a byte is read, with
 * one line naming the file and what it is.  The open uses O_NONBLOCK so that
 * not even a FIFO can block it; the type then comes from fstat of that very
 * descriptor (no stat-then-open race). */
#ifndef VGPT_FILE_H
#define VGPT_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "err.h"

/* Opens path read-only; returns the descriptor (blocking mode again, close
 * it) with *st filled, or -1 with "path: reason".  `what` completes
 * "expected ..." in messages: "an image file", "a checkpoint file", ... */
int vgpt_file_open(const char *path, const char *what, struct stat *st, vgpt_err *err);

/* Reads the whole regular file: 1 to max bytes into *data (malloc'ed, free
 * it).  An empty or larger file is an error naming its size and the limit. */
int vgpt_file_read(const char *path, const char *what, size_t max, uint8_t **data, size_t *len, vgpt_err *err);

/* Reads and parses a JSON file (config.json, the tokenizer's files) with
 * the checks above; at most VGPT_JSON_MAX_FILE bytes. */
struct vgpt_json_doc;
int vgpt_file_read_json(const char *path, struct vgpt_json_doc **doc, vgpt_err *err);

/* What a non-regular file is, for messages: "is a FIFO (named pipe)", ... */
const char *vgpt_file_kind(mode_t mode);

#endif
