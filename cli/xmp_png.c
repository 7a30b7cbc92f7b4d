/* xmp_png.c - see xmp_png.h. */
#include "xmp_png.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEYWORD "XML:com.adobe.xmp"
#define MAX_CHUNK 0x7fffffffu /* the PNG spec's limit on a chunk's length */

static int read_all(int fd, void *buf, size_t n) {
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t n) {
    for (size_t put = 0; put < n;) {
        ssize_t w = write(fd, (const char *)buf + put, n - put);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        put += (size_t)w;
    }
    return 0;
}

/* Copies (or, when !keep, skips) n bytes, in pieces. */
static int pass(int in, int out, uint64_t n, int keep) {
    char buf[1 << 16];
    while (n) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (read_all(in, buf, k) || (keep && write_all(out, buf, k))) return -1;
        n -= k;
    }
    return 0;
}

/* One chunk: its header is in hdr; 1 after IEND. */
static int chunk(int in, int out, const unsigned char *hdr, vgpt_err *err, const char *path) {
    uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    if (len > MAX_CHUNK) return vgpt_err_set(err, "%s: xmp: PNG chunk of %u bytes (at most 2^31-1)", path, len);
    int is_itxt = !memcmp(hdr + 4, "iTXt", 4);
    unsigned char key[sizeof KEYWORD];
    size_t head = is_itxt && len >= sizeof key ? sizeof key : 0;
    if (head && read_all(in, key, head)) return vgpt_err_set(err, "%s: xmp: truncated PNG chunk", path);
    int keep = !(head && !memcmp(key, KEYWORD, sizeof key)); /* the keyword and its NUL */
    if (keep && (write_all(out, hdr, 8) || (head && write_all(out, key, head))))
        return vgpt_err_set(err, "%s: xmp: copying it: %s", path, strerror(errno));
    if (pass(in, out, (uint64_t)len - head + 4, keep)) /* the rest of the data, and the CRC */
        return vgpt_err_set(err, "%s: xmp: truncated PNG chunk, or a write error", path);
    return !memcmp(hdr + 4, "IEND", 4);
}

int cli_xmp_png_copy(int in, int out, const char *path, vgpt_err *err) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char hdr[8];
    if (read_all(in, hdr, 8) || memcmp(hdr, sig, 8) || write_all(out, hdr, 8))
        return vgpt_err_set(err, "%s: xmp: not a PNG file (expected its 8-byte signature)", path);
    for (;;) {
        if (read_all(in, hdr, 8)) return vgpt_err_set(err, "%s: xmp: PNG ends before its IEND chunk", path);
        int r = chunk(in, out, hdr, err, path);
        if (r) return r < 0 ? -1 : 0;
    }
}
