/* file.c - see file.h. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"

const char *vgpt_file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "is a directory";
    if (S_ISFIFO(mode)) return "is a FIFO (named pipe)";
    if (S_ISSOCK(mode)) return "is a socket";
    if (S_ISCHR(mode)) return "is a character device";
    if (S_ISBLK(mode)) return "is a block device";
    return "is not a regular file";
}

/* open() of a socket fails with ENXIO ("No such device or address"): say
 * what the file is instead. */
static int open_failed(const char *path, const char *what, int e, vgpt_err *err) {
    struct stat st;
    if (e == ENXIO && stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return vgpt_err_set(err, "%s: %s, expected %s", path, vgpt_file_kind(st.st_mode), what);
    return vgpt_err_set(err, "%s: cannot open: %s", path, strerror(e));
}

int vgpt_file_open(const char *path, const char *what, struct stat *st, vgpt_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return open_failed(path, what, errno, err);
    if (fstat(fd, st)) {
        int e = errno;
        close(fd);
        return vgpt_err_set(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return vgpt_err_set(err, "%s: %s, expected %s", path, vgpt_file_kind(st->st_mode), what);
    }
    /* back to ordinary reads (O_NONBLOCK only kept the open from blocking) */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

static int too_big(const char *path, const char *what, unsigned long long size, int exact, size_t max,
                   vgpt_err *err) {
    char lim[64];
    if (max % (1u << 20) == 0) snprintf(lim, sizeof lim, "%zu MiB (%zu bytes)", max >> 20, max);
    else snprintf(lim, sizeof lim, "%zu bytes", max);
    return vgpt_err_set(err, "%s: file is %s%llu bytes, over the limit of %s for %s", path, exact ? "" : "more than ",
                        size, lim, what);
}

/* Reads to the end, not just st_size bytes: the file may be growing.  cap
 * starts one past the expected size so that growth is seen. */
static int read_all(int fd, const char *path, const char *what, size_t max, size_t cap, uint8_t **data,
                    size_t *len, vgpt_err *err) {
    uint8_t *b = malloc(cap);
    size_t n = 0;
    for (;;) {
        if (b && n == cap) {
            if (cap > max) {
                free(b);
                return too_big(path, what, max, 0, max, err);
            }
            size_t grown = cap > max / 2 ? max + 1 : cap * 2;
            uint8_t *nb = realloc(b, grown);
            if (!nb) free(b);
            b = nb;
            cap = grown;
        }
        if (!b) return vgpt_err_set(err, "%s: out of memory reading %zu bytes", path, cap);
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            free(b);
            return vgpt_err_set(err, "%s: read failed: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    *data = b;
    *len = n;
    return 0;
}

int vgpt_file_read(const char *path, const char *what, size_t max, uint8_t **data, size_t *len, vgpt_err *err) {
    struct stat st;
    *data = NULL;
    *len = 0;
    int fd = vgpt_file_open(path, what, &st, err);
    if (fd < 0) return -1;
    int rc;
    if ((unsigned long long)st.st_size > max) {
        rc = too_big(path, what, (unsigned long long)st.st_size, 1, max, err);
    } else {
        size_t got = 0;
        rc = read_all(fd, path, what, max, (size_t)st.st_size + 1, data, &got, err);
        *len = got;
        if (!rc && got == 0) {
            free(*data);
            *data = NULL;
            rc = vgpt_err_set(err, "%s: empty file (expected %s)", path, what);
        }
    }
    close(fd);
    return rc;
}

int vgpt_file_read_json(const char *path, vgpt_json_doc **doc, vgpt_err *err) {
    uint8_t *buf;
    size_t len;
    *doc = NULL;
    if (vgpt_file_read(path, "a JSON file", VGPT_JSON_MAX_FILE, &buf, &len, err)) return -1;
    int rc = vgpt_json_parse((const char *)buf, len, path, doc, err);
    free(buf);
    return rc;
}
