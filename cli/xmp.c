/* xmp.c - see xmp.h.  The XMP itself is exempi's (Adobe's XMP Toolkit):
 * it knows where each format keeps its packet and how to rewrite it without
 * touching the image data; nothing here writes XML.  What this file adds is
 * the care a photo archive needs: exempi only ever changes a copy in the
 * photo's folder, which is synced and renamed over the photo with the
 * photo's mode, owner and mtime, so a crash leaves the old file or the new
 * one, never half of one; a description someone else wrote stays. */
#include "xmp.h"
#include "xmp_png.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <exempi/xmp.h>
#include <exempi/xmpconsts.h>

#define VGPT_NS "https://github.com/vgpt/ns/1.0/"
#define COPY_BUF (1 << 16)

int cli_xmp_init(cli_xmp *x, const cli_opts *o, vgpt_err *err) {
    memset(x, 0, sizeof *x);
    if (o->xmp == XMP_NONE) return 0;
    if (!xmp_init()) return vgpt_err_set(err, "--xmp: exempi failed to start (error %d)", xmp_get_error());
    XmpStringPtr prefix = xmp_string_new();
    int ok = xmp_register_namespace(VGPT_NS, "vgpt", prefix);
    xmp_string_free(prefix);
    if (!ok) {
        xmp_terminate();
        return vgpt_err_set(err, "--xmp: exempi cannot register the namespace %s", VGPT_NS);
    }
    x->on = 1;
    x->umask = umask(022); /* read it back: a new sidecar gets the usual mode */
    umask(x->umask);
    char *m = strdup(o->model ? o->model : "");
    snprintf(x->model_name, sizeof x->model_name, "%s", m ? basename(m) : "");
    free(m);
    const vgpt_gen_opts *g = &o->gen;
    if (g->mode == VGPT_BEAM)
        snprintf(x->settings, sizeof x->settings, "beam %d, length-penalty %g, no-repeat-ngram %d, max-tokens %d%s%s",
                 g->beams, g->length_penalty, g->no_repeat_ngram, g->max_tokens,
                 g->early_stopping ? ", early-stopping " : "", g->early_stopping ? vgpt_stop_name(g->early_stopping) : "");
    else if (g->mode == VGPT_GREEDY)
        snprintf(x->settings, sizeof x->settings, "greedy, no-repeat-ngram %d, max-tokens %d", g->no_repeat_ngram,
                 g->max_tokens);
    else
        snprintf(x->settings, sizeof x->settings,
                 "sample, temperature %g, top-k %d, top-p %g, seed %llu, no-repeat-ngram %d, max-tokens %d",
                 g->temperature, g->top_k, g->top_p, (unsigned long long)g->seed, g->no_repeat_ngram, g->max_tokens);
    return 0;
}

void cli_xmp_shutdown(cli_xmp *x) {
    if (x->on) xmp_terminate();
    x->on = 0;
}

/* 1 when the packet's description is the caption vgpt wrote last (kept in
 * vgpt:caption): then it is vgpt's to replace.  One typed or edited in a
 * photo manager since is not. */
static int description_is_ours(XmpPtr xmp) {
    XmpStringPtr desc = xmp_string_new(), mine = xmp_string_new();
    int ours = xmp_get_localized_text(xmp, NS_DC, "description", "", "x-default", NULL, desc, NULL) &&
               xmp_get_property(xmp, VGPT_NS, "caption", mine, NULL) &&
               !strcmp(xmp_string_cstr(desc), xmp_string_cstr(mine));
    xmp_string_free(desc);
    xmp_string_free(mine);
    return ours;
}

/* Sets the description and what wrote it, unless the packet has a
 * description that vgpt did not write (then only with --xmp-overwrite). */
static int fill_packet(const cli_xmp *x, const cli_opts *o, XmpPtr xmp, const char *path, const char *caption,
                       vgpt_err *err) {
    int has = xmp_get_localized_text(xmp, NS_DC, "description", "", "x-default", NULL, NULL, NULL);
    if (has && !o->xmp_overwrite && !description_is_ours(xmp))
        return vgpt_err_set(err, "%s: xmp: it already has a description (dc:description) that vgpt did not "
                            "write; left as it is (--xmp-overwrite replaces it)", path);
    if (!xmp_set_localized_text(xmp, NS_DC, "description", "", "x-default", caption, 0) ||
        !xmp_set_property(xmp, VGPT_NS, "caption", caption, 0) ||
        !xmp_set_property(xmp, VGPT_NS, "model", x->model_name, 0) ||
        !xmp_set_property(xmp, VGPT_NS, "settings", x->settings, 0))
        return vgpt_err_set(err, "%s: xmp: exempi cannot set the description (error %d)", path, xmp_get_error());
    return 0;
}

/* A temporary file beside `path`, keeping its extension (exempi picks the
 * format handler by it): ".NAME.vgpt-XXXXXX.EXT". */
static int make_temp(const char *path, char *tmp, size_t n, vgpt_err *err) {
    const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path, *dot = strrchr(name, '.');
    const char *ext = dot && dot != name ? dot : "";
    int dir_len = (int)(name - path), w;
    w = snprintf(tmp, n, "%.*s.%.*s.vgpt-XXXXXX%s", dir_len, path, (int)(strlen(name) - strlen(ext)), name, ext);
    if (w < 0 || (size_t)w >= n) return vgpt_err_set(err, "%s: xmp: path too long for a temporary file", path);
    int fd = mkstemps(tmp, (int)strlen(ext));
    if (fd < 0)
        return vgpt_err_set(err, "%s: xmp: cannot create a temporary file in its folder: %s", path, strerror(errno));
    return fd;
}

/* Syncs tmp and puts it in place of path, with st's mode, owner and times. */
static int replace(const char *tmp, const char *path, const struct stat *st, vgpt_err *err) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    int bad = fd < 0 || fsync(fd);
    if (fd >= 0) {
        if (fchown(fd, st->st_uid, st->st_gid)) { /* not ours to change: keep our own */ }
        bad |= fchmod(fd, st->st_mode & 07777) != 0;
        struct timespec times[2] = {st->st_atim, st->st_mtim};
        bad |= futimens(fd, times) != 0;
        close(fd);
    }
    if (bad || rename(tmp, path))
        return vgpt_err_set(err, "%s: xmp: cannot put the updated copy in place: %s", path, strerror(errno));
    char *d = strdup(path);
    int dfd = d ? open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) fsync(dfd), close(dfd); /* the rename itself, durable */
    free(d);
    return 0;
}

static int copy_file(int from, int to) {
    char buf[COPY_BUF];
    ssize_t r;
    while ((r = read(from, buf, sizeof buf)) > 0)
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(to, buf + off, (size_t)(r - off));
            if (w < 0) return -1;
            off += w;
        }
    return r < 0 ? -1 : 0;
}

/* A photo exempi can put XMP into, writable by us: its stat, else -1. */
static int check_embed(const char *path, struct stat *st, XmpFileType *type, vgpt_err *err) {
    if (lstat(path, st) || !S_ISREG(st->st_mode))
        return vgpt_err_set(err, "%s: xmp: not a regular file (a symbolic link is not replaced)", path);
    if (access(path, W_OK) || !(st->st_mode & 0222))
        return vgpt_err_set(err, "%s: xmp: the file is read-only; not changed", path);
    XmpFileType t = *type = xmp_files_check_file_format(path);
    if (t != XMP_FT_JPEG && t != XMP_FT_PNG && t != XMP_FT_TIFF)
        return vgpt_err_set(err, "%s: xmp: --xmp embed writes JPEG, PNG and TIFF files only%s (use --xmp "
                            "sidecar)", path, t == XMP_FT_WEBP ? "; exempi 2.6 writes WebP files that no "
                            "decoder reads, so vgpt does not let it" : "");
    return 0;
}

/* The packet the photo has (a new one when it has none); NULL when exempi
 * cannot read the file. */
static XmpPtr read_packet(const char *file, const char *path, vgpt_err *err) {
    XmpFilePtr xf = xmp_files_open_new(file, XMP_OPEN_READ | XMP_OPEN_ONLYXMP | XMP_OPEN_USESMARTHANDLER);
    if (!xf) {
        vgpt_err_set(err, "%s: xmp: exempi cannot read it (error %d)", path, xmp_get_error());
        return NULL;
    }
    XmpPtr xmp = xmp_files_get_new_xmp(xf);
    xmp_files_close(xf, XMP_CLOSE_NOOPTION);
    xmp_files_free(xf);
    if (!xmp && !(xmp = xmp_new_empty())) vgpt_err_set(err, "%s: xmp: out of memory", path);
    return xmp;
}

/* exempi puts xmp into the copy tmp.  Only the XMP is handled (no
 * import of Exif/IPTC into the packet); exempi then writes the
 * description's legacy copies (Exif ImageDescription, IPTC
 * Caption-Abstract) as the Metadata Working Group asks: it has no switch
 * to skip that, and a stale legacy caption would show in some readers. */
static int put_packet(XmpPtr xmp, const char *tmp, const char *path, vgpt_err *err) {
    XmpFilePtr xf = xmp_files_open_new(tmp, XMP_OPEN_FORUPDATE | XMP_OPEN_ONLYXMP | XMP_OPEN_USESMARTHANDLER);
    if (!xf) return vgpt_err_set(err, "%s: xmp: exempi cannot open it for update (error %d)", path, xmp_get_error());
    int rc = 0;
    if (!xmp_files_can_put_xmp(xf, xmp)) rc = vgpt_err_set(err, "%s: xmp: exempi cannot write XMP into this file", path);
    else if (!xmp_files_put_xmp(xf, xmp))
        rc = vgpt_err_set(err, "%s: xmp: exempi failed to write the XMP (error %d)", path, xmp_get_error());
    if (!xmp_files_close(xf, XMP_CLOSE_SAFEUPDATE) && !rc)
        rc = vgpt_err_set(err, "%s: xmp: exempi failed to save the file (error %d)", path, xmp_get_error());
    xmp_files_free(xf);
    return rc;
}

/* The photo's bytes into the temporary copy: all of them, or for a PNG all
 * but its XMP chunk (see xmp_png.h). */
static int copy_photo(const char *path, int png, int out, vgpt_err *err) {
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) return vgpt_err_set(err, "%s: xmp: cannot read: %s", path, strerror(errno));
    int rc = png ? cli_xmp_png_copy(in, out, path, err)
                 : copy_file(in, out) ? vgpt_err_set(err, "%s: xmp: copying it: %s", path, strerror(errno)) : 0;
    close(in);
    return rc;
}

static int embed(const cli_xmp *x, const cli_opts *o, const char *path, const char *caption, vgpt_err *err) {
    struct stat st;
    char tmp[4200];
    XmpFileType type = XMP_FT_UNKNOWN;
    if (check_embed(path, &st, &type, err)) return -1;
    XmpPtr xmp = read_packet(path, path, err);
    if (!xmp) return -1;
    int rc = fill_packet(x, o, xmp, path, caption, err), out = -1;
    if (!rc && (out = make_temp(path, tmp, sizeof tmp, err)) < 0) rc = -1;
    if (out >= 0) {
        rc = copy_photo(path, type == XMP_FT_PNG, out, err);
        if (close(out) && !rc) rc = vgpt_err_set(err, "%s: xmp: copying it: %s", path, strerror(errno));
        if (!rc) rc = put_packet(xmp, tmp, path, err);
        if (!rc) rc = replace(tmp, path, &st, err);
        if (rc) unlink(tmp);
    }
    xmp_free(xmp);
    return rc;
}

/* The sidecar's name: photo.jpg.xmp, or photo.xmp with --xmp-sidecar-name base. */
static int sidecar_name(const cli_opts *o, const char *path, char *out, size_t n) {
    const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path, *dot = strrchr(name, '.');
    size_t keep = o->xmp_base_name && dot && dot != name ? (size_t)(dot - path) : strlen(path);
    int w = snprintf(out, n, "%.*s.xmp", (int)keep, path);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* Reads an existing sidecar into a packet (NULL when there is none). */
static int read_sidecar(const char *side, const char *path, XmpPtr *xmp, struct stat *st, vgpt_err *err) {
    *xmp = NULL;
    int fd = open(side, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : vgpt_err_set(err, "%s: xmp: %s: %s", path, side, strerror(errno));
    char *buf = NULL;
    int rc = 0;
    if (fstat(fd, st) || !S_ISREG(st->st_mode) || st->st_size > (64 << 20))
        rc = vgpt_err_set(err, "%s: xmp: %s is not a regular file of at most 64 MiB", path, side);
    else if (!(buf = malloc((size_t)st->st_size + 1)) || read(fd, buf, (size_t)st->st_size) != st->st_size)
        rc = vgpt_err_set(err, "%s: xmp: cannot read %s", path, side);
    else if (!(*xmp = xmp_new(buf, (size_t)st->st_size)))
        rc = vgpt_err_set(err, "%s: xmp: %s is not valid XMP (exempi error %d); left as it is", path, side,
                          xmp_get_error());
    free(buf);
    close(fd);
    return rc;
}

static int sidecar(const cli_xmp *x, const cli_opts *o, const char *path, const char *caption, vgpt_err *err) {
    char side[4200], tmp[4300];
    struct stat st;
    XmpPtr xmp;
    memset(&st, 0, sizeof st);
    if (sidecar_name(o, path, side, sizeof side)) return vgpt_err_set(err, "%s: xmp: path too long", path);
    int existed = 0;
    if (read_sidecar(side, path, &xmp, &st, err)) return -1;
    existed = xmp != NULL;
    if (!xmp && !(xmp = xmp_new_empty())) return vgpt_err_set(err, "%s: xmp: out of memory", path);
    XmpStringPtr s = xmp_string_new();
    int rc = fill_packet(x, o, xmp, path, caption, err);
    if (!rc && !xmp_serialize(xmp, s, XMP_SERIAL_OMITPACKETWRAPPER, 0))
        rc = vgpt_err_set(err, "%s: xmp: exempi cannot serialize the packet (error %d)", path, xmp_get_error());
    int fd = rc ? -1 : make_temp(side, tmp, sizeof tmp, err);
    if (!rc && fd < 0) rc = -1;
    if (fd >= 0) {
        const char *text = xmp_string_cstr(s);
        size_t len = strlen(text);
        if (write(fd, text, len) != (ssize_t)len || fsync(fd))
            rc = vgpt_err_set(err, "%s: xmp: writing %s: %s", path, tmp, strerror(errno));
        fchmod(fd, existed ? st.st_mode & 07777 : 0666 & ~x->umask);
        close(fd);
        if (!rc && rename(tmp, side)) rc = vgpt_err_set(err, "%s: xmp: cannot write %s: %s", path, side, strerror(errno));
        if (rc) unlink(tmp);
    }
    xmp_string_free(s);
    xmp_free(xmp);
    return rc;
}

int cli_xmp_write(const cli_xmp *x, const cli_opts *o, const char *path, const char *caption, vgpt_err *err) {
    return o->xmp == XMP_EMBED ? embed(x, o, path, caption, err) : sidecar(x, o, path, caption, err);
}
