/* preprocd - the image preprocessing stage of the vgpt pipeline.
 *
 * Two modes: the daemon (`--listen EP --next EP`: IMAGE requests in,
 * PREPROCESSED images out, see serve.c) and the one-shot tool (`--once PATH`:
 * decode and resize one image exactly as the published PIL/torchvision
 * pipeline did and write the raw 224x224x3 u8 pixels to stdout). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "image.h"
#include "node.h"
#include "opts.h"
#include "serve.h"

enum { EXIT_INPUT = 1, EXIT_USAGE = 2 };

typedef enum { MODE_NONE, MODE_HELP, MODE_ONCE, MODE_DAEMON } preprocd_mode;

typedef struct preprocd_opts {
    preprocd_mode mode;
    const char *path;      /* --once PATH */
    vgpt_image_opts image; /* decode settings shared by every mode */
    preprocd_daemon_opts daemon;
} preprocd_opts;

static const char usage_text[] =
    "NAME\n"
    "    preprocd - decode and resize images for the vgpt captioning pipeline\n"
    "\n"
    "SYNOPSIS\n"
    "    preprocd --once PATH [--no-autorotate] [--fast-decode]\n"
    "             [--accept-truncated] [--max-pixels N]\n"
    "    preprocd --listen EP --next EP[,EP...] [--allow-root DIR]... [--max-pixels N]\n"
    "             [--stats-interval S] [--curve-key FILE --curve-server-key FILE\n"
    "             --curve-peers DIR]\n"
    "    preprocd --help\n"
    "\n"
    "DESCRIPTION\n"
    "    Decodes an image (JPEG, PNG, GIF, WebP, TIFF, BMP or PNM, recognised by\n"
    "    its magic bytes, not its name) and resizes it to 224x224 exactly as the\n"
    "    published model's preprocessing did: PIL Image.open().convert('RGB')\n"
    "    followed by torchvision Resize((224,224)) (PIL's antialiased bilinear\n"
    "    filter).  Alpha is dropped without compositing, gray and palette images\n"
    "    are expanded, CMYK is converted naively, ICC profiles are ignored and\n"
    "    only the first frame of an animation is used.\n"
    "\n"
    "    --once PATH\n"
    "        Process the single image PATH and write its pixels to stdout:\n"
    "        150528 bytes, 8-bit RGB, row-major [224][224][3], no header.\n"
    "        Errors go to stderr as one line, \"PATH: reason\".\n"
    "\n"
    "    --listen EP --next EP[,EP...]\n"
    "        Daemon mode: bind a PULL socket on EP (e.g. ipc:///run/vgpt/pre or\n"
    "        tcp://*:5555) for IMAGE requests from vgpt-cli and push each\n"
    "        preprocessed image to the encoderd endpoint(s) given by --next\n"
    "        (load-balanced).  Decode errors go to the request's reply_to.\n"
    "        Per-request settings (autorotate, fast decode, ...) come from the\n"
    "        client.  SIGTERM finishes the current image and exits 0; READY=1\n"
    "        is sent to $NOTIFY_SOCKET when listening (systemd Type=notify).\n"
    "    --allow-root DIR\n"
    "        Daemon mode: requests that name a file path instead of sending the\n"
    "        bytes are honoured only for files under DIR (repeatable; none by\n"
    "        default, so only byte requests are accepted).\n"
    "    --stats-interval S\n"
    "        Daemon mode: seconds between throughput log lines (default 10).\n"
    "    --curve-key FILE --curve-server-key FILE --curve-peers DIR\n"
    "        Daemon mode: ZeroMQ CURVE on every socket (all three together).\n"
    "        FILE: this node's keypair and the cluster's server keypair, as\n"
    "        written by vgpt-keygen (mode 0600).  Only clients whose public key\n"
    "        is in one of DIR's *.pub files may connect to --listen; refusals\n"
    "        are logged with the key.  See README \"Deployment\".\n"
    "\n"
    "OPTIONS\n"
    "    --no-autorotate\n"
    "        Ignore the EXIF orientation tag, as the published pipeline did.\n"
    "        By default images are turned upright first (a documented\n"
    "        deviation that gives better captions for phone photos).\n"
    "    --fast-decode\n"
    "        Let libjpeg shrink large JPEGs by 2, 4 or 8 while decoding (both\n"
    "        sides stay >= 224).  Several times faster on big photos, but\n"
    "        pixels differ slightly from the published preprocessing.\n"
    "    --accept-truncated\n"
    "        Use whatever could be decoded from a truncated or corrupt file\n"
    "        instead of failing (PIL fails).\n"
    "    --max-pixels N\n"
    "        Refuse images whose header declares more than N pixels, before\n"
    "        decoding anything (1 to 100000000, the default and vgpt-cli's\n"
    "        limit too).  In daemon mode it caps each request's own limit.\n"
    "        Whatever the options, only regular files of 1 byte to 60 MiB are\n"
    "        read (a FIFO, device or directory is refused without blocking).\n"
    "    -h, --help\n"
    "        Show this help and exit.\n"
    "\n"
    "EXIT STATUS\n"
    "    0 success, 1 the image could not be processed, 2 usage error.\n"
    "\n"
    "EXAMPLES\n"
    "    preprocd --once photo.jpg > photo.rgb\n"
    "    preprocd --once photo.jpg --no-autorotate | cmp - golden.rgb\n";

enum { OPT_ONCE = 1, OPT_LISTEN, OPT_NEXT, OPT_ROOT, OPT_MAXPIX, OPT_NOROT, OPT_FAST, OPT_TRUNC };

/* Applies one option (getopt_long's c); -1 with err set on a bad one. */
static int apply(preprocd_opts *o, int c, const char *v, vgpt_err *err) {
    long l;
    switch (c) {
    case OPT_ONCE:
        if (o->mode == MODE_ONCE) return vgpt_err_set(err, "--once given twice");
        o->path = v;
        o->mode = MODE_ONCE;
        return 0;
    case OPT_LISTEN: o->daemon.listen = v; return 0;
    case OPT_NEXT: o->daemon.next = v; return 0;
    case OPT_ROOT:
        if (o->daemon.n_roots == PREPROCD_MAX_ROOTS)
            return vgpt_err_set(err, "at most %d --allow-root directories", PREPROCD_MAX_ROOTS);
        o->daemon.roots[o->daemon.n_roots++] = v;
        return 0;
    case OPT_MAXPIX:
        if (vgpt_opt_long("preprocd", "max-pixels", v, 1, (long)VGPT_IMAGE_MAX_PIXELS, &l))
            return vgpt_err_set(err, "--max-pixels: expected an integer from 1 to %llu, got '%s'",
                                VGPT_IMAGE_MAX_PIXELS, v);
        o->image.max_pixels = (uint64_t)l;
        return 0;
    case OPT_NOROT: o->image.autorotate = 0; return 0;
    case OPT_FAST: o->image.fast_decode = 1; return 0;
    case OPT_TRUNC: o->image.accept_truncated = 1; return 0;
    }
    return vgpt_err_set(err, "unknown or incomplete argument");
}

static int parse_args(int argc, char **argv, preprocd_opts *o, vgpt_err *err) {
    static const struct option lo[] = {
        {"once", 1, 0, OPT_ONCE}, {"listen", 1, 0, OPT_LISTEN}, {"next", 1, 0, OPT_NEXT},
        {"allow-root", 1, 0, OPT_ROOT}, {"max-pixels", 1, 0, OPT_MAXPIX}, {"no-autorotate", 0, 0, OPT_NOROT},
        {"fast-decode", 0, 0, OPT_FAST}, {"accept-truncated", 0, 0, OPT_TRUNC}, {"help", 0, 0, 'h'},
        VGPT_NODE_LONG_OPTIONS, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    vgpt_image_opts_default(&o->image);
    vgpt_node_opts_default(&o->daemon.node);
    opterr = 0; /* our own message, naming the argument */
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'h') {
            o->mode = MODE_HELP;
            return 0;
        }
        if (c == '?') return vgpt_err_set(err, "unknown argument '%s' (or an option missing its value)", argv[optind - 1]);
        int common = vgpt_node_opt("preprocd", c, optarg, &o->daemon.node);
        if (common < 0) return vgpt_err_set(err, "bad --stats-interval value '%s'", optarg);
        if (!common && apply(o, c, optarg, err)) return -1;
    }
    if (optind < argc) return vgpt_err_set(err, "unknown argument '%s'", argv[optind]);
    if (o->mode == MODE_NONE && (o->daemon.listen || o->daemon.next)) {
        if (!o->daemon.listen || !o->daemon.next) return vgpt_err_set(err, "daemon mode needs both --listen and --next");
        o->mode = MODE_DAEMON;
        o->daemon.max_pixels = o->image.max_pixels;
    }
    if (o->mode == MODE_NONE) return vgpt_err_set(err, "no mode given (expected --once PATH or --listen/--next)");
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

static int run_once(const preprocd_opts *o, const char *argv0) {
    if (isatty(STDOUT_FILENO)) {
        fprintf(stderr, "preprocd: refusing to write binary pixels to a terminal "
                        "(redirect stdout to a file or pipe)\n");
        return EXIT_USAGE;
    }
    vgpt_err err = {{0}};
    if (vgpt_image_init(argv0, &err)) {
        fprintf(stderr, "preprocd: %s\n", err.msg);
        return EXIT_INPUT;
    }
    size_t n = (size_t)VGPT_IMAGE_SIZE * VGPT_IMAGE_SIZE * 3;
    uint8_t *rgb = malloc(n);
    int rc = rgb ? vgpt_image_load_file(o->path, &o->image, rgb, &err)
                 : vgpt_err_set(&err, "%s: out of memory", o->path);
    vgpt_image_shutdown();
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
    } else if (write_all(STDOUT_FILENO, rgb, n)) {
        fprintf(stderr, "preprocd: writing %s pixels to stdout: %s\n", o->path, strerror(errno));
        rc = -1;
    }
    free(rgb);
    return rc ? EXIT_INPUT : 0;
}

int main(int argc, char **argv) {
    preprocd_opts o;
    vgpt_err err = {{0}};
    if (parse_args(argc, argv, &o, &err)) {
        fprintf(stderr, "preprocd: %s\nTry 'preprocd --help'.\n", err.msg);
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);  /* a closed pipe becomes a write error */
    switch (o.mode) {
    case MODE_HELP: /* a full disk must not pass for success */
        if (fputs(usage_text, stdout) >= 0 && fflush(stdout) == 0) return 0;
        fprintf(stderr, "preprocd: writing the help to standard output: %s\n", strerror(errno));
        return EXIT_USAGE;
    case MODE_ONCE:
        return run_once(&o, argv[0]);
    case MODE_DAEMON:
        return preprocd_run_daemon(&o.daemon, argv[0]);
    default:
        return EXIT_USAGE;
    }
}
