/* options.c - parsing and usage text of vgpt-cli. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opts.h"
#include "pool.h"

static const char usage_text[] =
    "Usage: vgpt-cli [OPTIONS] < paths.txt\n"
    "       vgpt-cli [OPTIONS] --input paths.txt --output captions.tsv [--xmp sidecar]\n"
    "\n"
    "Caption images with the Vision-GPT model. Reads one image path per line on\n"
    "standard input (CRLF tolerated, blank lines skipped) and writes one result\n"
    "line per input line, in input order, to standard output. A line holding a NUL\n"
    "byte gets an error line (no path contains one).\n"
    "\n"
    "Model:\n"
    "  -m, --model PATH       checkpoint (.pth, fp32 or fp16); default $VGPT_MODEL.\n"
    "                         config.json and the tokenizer/ folder beside it are used\n"
    "                         when present (a malformed one is an error).\n"
    "\n"
    "Pipeline (default: an embedded private pipeline of preprocd, encoderd and\n"
    "decoderd on ipc:// sockets, started and stopped by vgpt-cli):\n"
    "      --in-process       no daemons: decode, encode and caption in this process\n"
    "      --connect EP[,EP]  use running preprocd daemon(s) at EP instead (not with\n"
    "                         --in-process)\n"
    "      --reply EP         endpoint to bind for results (required with --connect;\n"
    "                         e.g. tcp://10.0.0.5:5560, reachable from the decoders)\n"
    "      --cache DIR        embedded encoderd's visual-token cache (default\n"
    "                         $XDG_CACHE_HOME/vgpt/tokens or ~/.cache/vgpt/tokens)\n"
    "      --no-cache         no visual-token cache\n"
    "      --window N         requests in flight at most (default 32)\n"
    "      --retry-after S    re-send a request with no result after S seconds\n"
    "                         (default 300; at once when a daemon is restarted)\n"
    "      --timeout S        give a request up S seconds after it was first tried:\n"
    "                         its line becomes an error (default 0 = never; with\n"
    "                         --connect, set it so that an unreachable or refusing\n"
    "                         pipeline fails the run instead of waiting forever).\n"
    "                         A daemon that is stopped (SIGSTOP, Ctrl-Z on it) but\n"
    "                         not dead is never restarted: without --timeout the\n"
    "                         run then waits until it is continued\n"
    "      --curve-key FILE, --curve-server-key FILE, --curve-peers DIR\n"
    "                         with --connect: ZeroMQ CURVE (all three together).\n"
    "                         This client's keypair and the cluster's server keypair\n"
    "                         (vgpt-keygen .key files, mode 0600); only peers whose\n"
    "                         *.pub is in DIR may send results to --reply. A server\n"
    "                         that refuses our key is reported on stderr. See README\n"
    "                         \"Deployment\"\n"
    "      --encoder-threads N, --decoder-threads N\n"
    "                         embedded daemons' threads (default: --threads each;\n"
    "                         they take turns on the cores, idle threads sleep)\n"
    "\n"
    "Input:\n"
    "      --input FILE       read the paths from FILE instead of standard input\n"
    "  -0, --null             paths end with a NUL byte instead of a newline, as from\n"
    "                         find -print0; each is taken exactly (newlines, CR and\n"
    "                         spaces belong to the path), empty ones are skipped\n"
    "\n"
    "Output:\n"
    "  -f, --format FMT       tsv (default): PATH<TAB>CAPTION, or PATH<TAB>ERROR: MESSAGE.\n"
    "                         In both columns a backslash, tab, newline and CR are\n"
    "                         written as \\\\, \\t, \\n and \\r (and the NUL of a bad\n"
    "                         input line as \\0), so each result is exactly one line.\n"
    "                         jsonl: {\"path\":..,\"caption\":..,\"tokens\":[..]} or\n"
    "                         {\"path\":..,\"error\":..}; tokens are the generated ids after\n"
    "                         the start token, including the final 50256 if it stopped there\n"
    "  -o, --output FILE      append the result lines to FILE instead of standard\n"
    "                         output, each line whole and flushed, the file fsynced\n"
    "                         every 2 s and at the end. Run again with the same FILE\n"
    "                         (after a crash, a reboot, Ctrl-C, kill -9) to resume:\n"
    "                         paths captioned there are skipped, its error lines are\n"
    "                         removed and retried, a torn last line is cut off. A FILE\n"
    "                         holding anything but result lines of this --format is\n"
    "                         refused (exit 2). Only a 64-bit hash of each done path\n"
    "                         is kept in memory (16 bytes a path)\n"
    "      --no-retry-errors  resuming: keep the error lines in FILE, skip their paths\n"
    "      --xmp MODE         also write each caption as the photo's XMP dc:description\n"
    "                         (x-default), where digiKam, darktable, Lightroom and\n"
    "                         exiftool read it. sidecar: into PHOTO.xmp beside it\n"
    "                         (named photo.jpg.xmp; see --xmp-sidecar-name); embed: into\n"
    "                         the JPEG, PNG or TIFF itself (WebP and other formats get\n"
    "                         an error line). The photo is never harmed: a copy in the\n"
    "                         same folder is changed, synced and renamed over it, with\n"
    "                         its mode and mtime; the image data stay byte-identical.\n"
    "                         The packet records the model file and the decoding\n"
    "                         settings (namespace https://github.com/vgpt/ns/1.0/:\n"
    "                         vgpt:model, vgpt:settings, and vgpt:caption, the caption\n"
    "                         it wrote). A read-only or unsupported\n"
    "                         file, or one whose description was not written by vgpt,\n"
    "                         gets an error line PATH: xmp: REASON (a description is\n"
    "                         vgpt's while it equals vgpt:caption; one edited since is\n"
    "                         the user's). exempi also updates the description's\n"
    "                         legacy copies (Exif ImageDescription, IPTC Caption-\n"
    "                         Abstract) in JPEG and TIFF, as the Metadata Working\n"
    "                         Group asks, and nothing else\n"
    "      --xmp-sidecar-name full|base\n"
    "                         full (default): photo.jpg.xmp (digiKam, exiftool, darktable);\n"
    "                         base: photo.xmp (Lightroom, Capture One)\n"
    "      --xmp-overwrite    replace a description that vgpt did not write\n"
    "      --progress / --no-progress\n"
    "                         progress on stderr: N/TOTAL (P%) R img/s ETA T when the\n"
    "                         input is a regular file, redrawn in place on a terminal,\n"
    "                         else a log line every --progress-interval seconds; then a\n"
    "                         summary (captioned, skipped, errors by kind, wall time,\n"
    "                         throughput, vgpt-cli's own peak RSS and CPU time a line).\n"
    "                         Default: on when stderr is a terminal or\n"
    "                         with --output, else off\n"
    "      --progress-interval S\n"
    "                         seconds between progress log lines (default 30)\n"
    "  -v, --verbose          log the model layout and timings to stderr\n"
    "\n"
    "Decoding (default: beam search, 3 beams, no repeated 3-grams, 50 tokens):\n"
    "      --greedy           most likely token at each step\n"
    "      --beam N           beam search with N beams (length-normalised)\n"
    "      --sample           the published sampling: temperature 0.7, top-k 50, top-p 0.9\n"
    "      --temperature T    sampling temperature (implies --sample)\n"
    "      --top-k K          keep the K most likely tokens, 0 = all (implies --sample)\n"
    "      --top-p P          nucleus sampling threshold in (0,1] (implies --sample)\n"
    "      --seed N           sampling seed: the same seed gives the same caption\n"
    "                         (default 0; implies --sample)\n"
    "      --max-tokens N     at most N new tokens (default 50); more than the model's\n"
    "                         context (256 for the published model) is a usage error,\n"
    "                         the default is capped to it quietly\n"
    "      --no-repeat-ngram N  forbid any N-gram from appearing twice; 0 = off\n"
    "                         (default 3 for beam search, 0 for greedy and sampling)\n"
    "      --length-penalty A beam score = sum(log p) / length^A (default 1.0; beam only)\n"
    "      --early-stopping W when beam search ends, as transformers' early_stopping:\n"
    "                         false (default) once no live beam can beat the N\n"
    "                         finished ones at its current length, true as soon as N\n"
    "                         are finished, never once none could beat them even at\n"
    "                         --max-tokens (beam only)\n"
    "                         A Hugging Face model folder's generation_config.json\n"
    "                         sets the decoding options the command line leaves out.\n"
    "                         One mode at most: a sampling parameter with --greedy or\n"
    "                         --beam, or a beam option without beam search, is a\n"
    "                         usage error\n"
    "\n"
    "Images:\n"
    "      --no-autorotate    ignore EXIF orientation (exactly what the published model saw)\n"
    "      --fast-decode      let JPEGs shrink on load (faster, pixels differ slightly)\n"
    "      --accept-truncated caption what can be decoded of a truncated file\n"
    "      --max-pixels N     refuse images larger than N pixels (1 to 100000000,\n"
    "                         the default)\n"
    "                         Only regular files of 1 byte to 60 MiB are read, in\n"
    "                         every mode: a directory, FIFO, socket or device is an\n"
    "                         error line, never read\n"
    "\n"
    "Performance:\n"
    "  -b, --batch N          images per encoder pass and captions decoded together\n"
    "                         (1 to 64, default 8)\n"
    "  -t, --threads N        compute threads (default: the CPUs this process may use)\n"
    "      --precision P      fp32 (default: exact, as the reference) or bf16: every\n"
    "                         matrix product in bf16 with fp32 sums, LayerNorm,\n"
    "                         softmax and GELU in fp32; weights converted once at\n"
    "                         load and held in half the memory.  On AVX-512 CPUs\n"
    "                         oneDNN runs them (AMX or AVX512-BF16 make it 2-3x\n"
    "                         faster); elsewhere vgpt's kernels widen the bf16\n"
    "                         weights as they read them (the decoder ~2x faster, the\n"
    "                         encoder as fp32).  Captions may differ from fp32 where\n"
    "                         two words are nearly tied\n"
    "\n"
    "  -h, --help             this text\n"
    "      --version          version\n"
    "\n"
    "Exit status: 0 every line captioned, 1 some lines failed (each has its error\n"
    "line), 2 usage or model loading error, or standard input could not be read\n"
    "(after the lines read so far) or the results could not be written (at once).\n"
    "130 (SIGINT, Ctrl-C), 143 (SIGTERM), 129 (SIGHUP): stopped; the results\n"
    "finished so far were written and synced, the daemons stopped (a second signal\n"
    "kills at once). Run again with the same --output to carry on.\n"
    "\n"
    "Examples:\n"
    "  find photos -name '*.jpg' | vgpt-cli --model model_checkpoint.pth > captions.tsv\n"
    "  find ~/Pictures -iname '*.jpg' -print0 > list; vgpt-cli -0 --input list \\\n"
    "      --output captions.tsv --xmp sidecar    # again, after any stop, to resume\n";

enum {
    OPT_GREEDY = 256, OPT_BEAM, OPT_SAMPLE, OPT_TEMP, OPT_TOPK, OPT_TOPP, OPT_SEED, OPT_MAXTOK, OPT_NGRAM,
    OPT_LP, OPT_STOP, OPT_NOROT, OPT_FAST, OPT_TRUNC, OPT_MAXPIX, OPT_PROGRESS, OPT_NOPROGRESS, OPT_VERSION, OPT_INPROC,
    OPT_CONNECT, OPT_REPLY, OPT_CACHE, OPT_NOCACHE, OPT_WINDOW, OPT_RETRY, OPT_ENCT, OPT_DECT,
    OPT_TIMEOUT, OPT_CURVE_KEY, OPT_CURVE_SERVER, OPT_CURVE_PEERS, OPT_PRECISION,
    OPT_INPUT, OPT_NORETRY, OPT_XMP, OPT_XMP_NAME, OPT_XMP_OVER, OPT_PROG_INT
};

static const struct option long_opts[] = {
    {"model", required_argument, 0, 'm'},      {"format", required_argument, 0, 'f'},
    {"null", no_argument, 0, '0'},
    {"batch", required_argument, 0, 'b'},      {"threads", required_argument, 0, 't'},
    {"verbose", no_argument, 0, 'v'},          {"help", no_argument, 0, 'h'},
    {"greedy", no_argument, 0, OPT_GREEDY},    {"beam", required_argument, 0, OPT_BEAM},
    {"sample", no_argument, 0, OPT_SAMPLE},    {"temperature", required_argument, 0, OPT_TEMP},
    {"top-k", required_argument, 0, OPT_TOPK}, {"top-p", required_argument, 0, OPT_TOPP},
    {"seed", required_argument, 0, OPT_SEED},  {"max-tokens", required_argument, 0, OPT_MAXTOK},
    {"no-repeat-ngram", required_argument, 0, OPT_NGRAM}, {"length-penalty", required_argument, 0, OPT_LP},
    {"early-stopping", required_argument, 0, OPT_STOP},
    {"no-autorotate", no_argument, 0, OPT_NOROT}, {"fast-decode", no_argument, 0, OPT_FAST},
    {"accept-truncated", no_argument, 0, OPT_TRUNC}, {"max-pixels", required_argument, 0, OPT_MAXPIX},
    {"progress", no_argument, 0, OPT_PROGRESS}, {"no-progress", no_argument, 0, OPT_NOPROGRESS},
    {"version", no_argument, 0, OPT_VERSION},  {"in-process", no_argument, 0, OPT_INPROC},
    {"connect", required_argument, 0, OPT_CONNECT}, {"reply", required_argument, 0, OPT_REPLY},
    {"cache", required_argument, 0, OPT_CACHE}, {"no-cache", no_argument, 0, OPT_NOCACHE},
    {"window", required_argument, 0, OPT_WINDOW}, {"retry-after", required_argument, 0, OPT_RETRY},
    {"encoder-threads", required_argument, 0, OPT_ENCT}, {"decoder-threads", required_argument, 0, OPT_DECT},
    {"precision", required_argument, 0, OPT_PRECISION},
    {"output", required_argument, 0, 'o'},     {"input", required_argument, 0, OPT_INPUT},
    {"no-retry-errors", no_argument, 0, OPT_NORETRY}, {"xmp", required_argument, 0, OPT_XMP},
    {"xmp-sidecar-name", required_argument, 0, OPT_XMP_NAME}, {"xmp-overwrite", no_argument, 0, OPT_XMP_OVER},
    {"progress-interval", required_argument, 0, OPT_PROG_INT},
    {"timeout", required_argument, 0, OPT_TIMEOUT},  {"curve-key", required_argument, 0, OPT_CURVE_KEY},
    {"curve-server-key", required_argument, 0, OPT_CURVE_SERVER}, {"curve-peers", required_argument, 0, OPT_CURVE_PEERS},
    {0, 0, 0, 0}};

static int bad(const char *opt, const char *val, const char *want) {
    fprintf(stderr, "vgpt-cli: invalid value '%s' for --%s: expected %s (see --help)\n", val, opt, want);
    return 2;
}

/* The decoding mode and the option that chose it, so that a second option
 * wanting another mode is reported with both names. */
typedef struct mode_pick {
    int mode; /* vgpt_mode, -1 = none chosen (beam search) */
    const char *by;
} mode_pick;

static const char *mode_name(int mode) {
    return mode == VGPT_GREEDY ? "greedy decoding" : mode == VGPT_BEAM ? "beam search" : "sampling";
}

/* Option `name` needs decoding mode `mode`; 2 after a usage error when an
 * earlier option chose another (the last one silently winning would run a
 * mode the user did not ask for). */
static int want_mode(mode_pick *m, int mode, const char *name) {
    if (m->by && m->mode != mode) {
        fprintf(stderr, "vgpt-cli: %s and %s contradict each other: %s means %s, %s means %s (keep one)\n",
                m->by, name, m->by, mode_name(m->mode), name, mode_name(mode));
        return 2;
    }
    m->mode = mode;
    if (!m->by) m->by = name;
    return 0;
}

/* Applies one decoding option; returns 0, or 2 after printing a usage error. */
static int decode_opt(int c, const char *arg, cli_opts *o, mode_pick *mode, int *ngram) {
    long l;
    float f;
    switch (c) {
    case OPT_GREEDY: return want_mode(mode, VGPT_GREEDY, "--greedy");
    case OPT_SAMPLE: return want_mode(mode, VGPT_SAMPLE, "--sample");
    case OPT_BEAM:
        if (vgpt_opt_long("vgpt-cli", "beam", arg, 1, VGPT_GEN_MAX_BEAMS, &l)) return 2;
        o->gen.beams = (int)l;
        o->beams_given = 1;
        return want_mode(mode, VGPT_BEAM, "--beam");
    case OPT_TEMP:
        if (vgpt_opt_float("vgpt-cli", "temperature", arg, 0.0f, VGPT_GEN_MAX_TEMPERATURE, &f)) return 2;
        o->gen.temperature = f;
        return want_mode(mode, VGPT_SAMPLE, "--temperature");
    case OPT_TOPK:
        if (vgpt_opt_long("vgpt-cli", "top-k", arg, 0, VGPT_GEN_MAX_TOP_K, &l)) return 2;
        o->gen.top_k = (int)l;
        return want_mode(mode, VGPT_SAMPLE, "--top-k");
    case OPT_TOPP:
        if (vgpt_opt_float("vgpt-cli", "top-p", arg, VGPT_GEN_MIN_TOP_P, 1.0f, &f)) return 2;
        o->gen.top_p = f;
        return want_mode(mode, VGPT_SAMPLE, "--top-p");
    case OPT_SEED:
        if (vgpt_opt_long("vgpt-cli", "seed", arg, 0, __LONG_MAX__, &l)) return 2;
        o->gen.seed = (uint64_t)l;
        return want_mode(mode, VGPT_SAMPLE, "--seed");
    case OPT_MAXTOK:
        if (vgpt_opt_long("vgpt-cli", "max-tokens", arg, 1, VGPT_GEN_MAX_TOKENS, &l)) return 2;
        o->gen.max_tokens = (int)l;
        o->max_tokens_given = 1;
        return 0;
    case OPT_NGRAM:
        if (vgpt_opt_long("vgpt-cli", "no-repeat-ngram", arg, 0, VGPT_GEN_MAX_NGRAM, &l)) return 2;
        *ngram = (int)l;
        return 0;
    case OPT_LP:
        if (vgpt_opt_float("vgpt-cli", "length-penalty", arg, -VGPT_GEN_MAX_LENGTH_PENALTY, VGPT_GEN_MAX_LENGTH_PENALTY, &f)) return 2;
        o->gen.length_penalty = f;
        o->lp_given = 1;
        return want_mode(mode, VGPT_BEAM, "--length-penalty");
    case OPT_STOP:
        if (vgpt_stop_parse(arg, &o->gen.early_stopping)) return bad("early-stopping", arg, "false, true or never");
        o->stop_given = 1;
        return want_mode(mode, VGPT_BEAM, "--early-stopping");
    }
    return 0;
}

/* The options of an archive run: --output, --input, resuming, --xmp. */
static int archive_opt(int c, const char *arg, cli_opts *o) {
    float f;
    switch (c) {
    case 'o': o->output = arg; return 0;
    case OPT_INPUT: o->input = arg; return 0;
    case OPT_NORETRY: o->retry_errors = 0; return 0;
    case OPT_XMP_OVER: o->xmp_overwrite = 1; return 0;
    case OPT_XMP:
        if (!strcmp(arg, "sidecar")) o->xmp = XMP_SIDECAR;
        else if (!strcmp(arg, "embed")) o->xmp = XMP_EMBED;
        else return bad("xmp", arg, "sidecar or embed");
        return 0;
    case OPT_XMP_NAME:
        if (!strcmp(arg, "full")) o->xmp_base_name = 0;
        else if (!strcmp(arg, "base")) o->xmp_base_name = 1;
        else return bad("xmp-sidecar-name", arg, "full (photo.jpg.xmp) or base (photo.xmp)");
        return 0;
    case OPT_PROG_INT:
        if (vgpt_opt_float("vgpt-cli", "progress-interval", arg, 0.0f, 1e7f, &f)) return 2;
        o->progress_interval = f;
        return 0;
    }
    return 2;
}

static int other_opt(int c, const char *arg, cli_opts *o) {
    long l;
    switch (c) {
    case 'm': o->model = arg; return 0;
    case 'f':
        if (!strcmp(arg, "tsv")) o->format = FMT_TSV;
        else if (!strcmp(arg, "jsonl")) o->format = FMT_JSONL;
        else return bad("format", arg, "tsv or jsonl");
        return 0;
    case 'b': /* the embedded encoderd's limit; the same in-process */
        if (vgpt_opt_long("vgpt-cli", "batch", arg, 1, VGPT_IMAGE_MAX_BATCH, &l)) return 2;
        o->batch = (int)l;
        return 0;
    case 't':
        if (vgpt_opt_long("vgpt-cli", "threads", arg, 1, 1024, &l)) return 2;
        o->threads = (int)l;
        return 0;
    case 'v': o->verbose = 1; return 0;
    case '0': o->null_input = 1; return 0;
    case OPT_NOROT: o->image.autorotate = 0; return 0;
    case OPT_FAST: o->image.fast_decode = 1; return 0;
    case OPT_TRUNC: o->image.accept_truncated = 1; return 0;
    case OPT_MAXPIX:
        if (vgpt_opt_long("vgpt-cli", "max-pixels", arg, 1, (long)VGPT_IMAGE_MAX_PIXELS, &l)) return 2;
        o->image.max_pixels = (uint64_t)l;
        return 0;
    case OPT_PROGRESS: o->progress = 1; return 0;
    case OPT_NOPROGRESS: o->progress = 0; return 0;
    case OPT_INPROC: o->in_process = 1; return 0;
    case OPT_CONNECT: o->connect = arg; return 0;
    case OPT_REPLY: o->reply = arg; return 0;
    case OPT_CACHE: o->cache_dir = arg; return 0;
    case OPT_NOCACHE: o->cache_dir = NULL; o->no_cache = 1; return 0;
    case OPT_WINDOW:
        if (vgpt_opt_long("vgpt-cli", "window", arg, 1, 100000, &l)) return 2;
        o->window = (int)l;
        return 0;
    case OPT_RETRY: {
        float f;
        if (vgpt_opt_float("vgpt-cli", "retry-after", arg, 0.01f, 1e7f, &f)) return 2;
        o->retry_after = f;
        return 0;
    }
    case OPT_TIMEOUT: {
        float f;
        if (vgpt_opt_float("vgpt-cli", "timeout", arg, 0.0f, 1e7f, &f)) return 2;
        o->timeout = f;
        return 0;
    }
    case OPT_CURVE_KEY: o->curve.key = arg; return 0;
    case OPT_CURVE_SERVER: o->curve.server_key = arg; return 0;
    case OPT_CURVE_PEERS: o->curve.peers = arg; return 0;
    case OPT_PRECISION: return vgpt_opt_precision("vgpt-cli", arg, &o->precision) ? 2 : 0;
    case 'o': case OPT_INPUT: case OPT_NORETRY: case OPT_XMP: case OPT_XMP_NAME: case OPT_XMP_OVER:
    case OPT_PROG_INT: return archive_opt(c, arg, o);
    case OPT_ENCT:
    case OPT_DECT:
        if (vgpt_opt_long("vgpt-cli", c == OPT_ENCT ? "encoder-threads" : "decoder-threads", arg, 1, 1024, &l)) return 2;
        *(c == OPT_ENCT ? &o->enc_threads : &o->dec_threads) = (int)l;
        return 0;
    }
    fprintf(stderr, "Try 'vgpt-cli --help' for more information.\n");
    return 2;
}

/* --help, --version: 1, or 2 when standard output cannot take it (a full
 * disk must not pass for success). */
static int print_info(const char *text) {
    errno = 0;
    if (fputs(text, stdout) >= 0 && fflush(stdout) == 0) return 1;
    fprintf(stderr, "vgpt-cli: writing to standard output: %s\n", strerror(errno ? errno : EIO));
    return 2;
}

int cli_parse(int argc, char **argv, cli_opts *o) {
    memset(o, 0, sizeof *o);
    vgpt_gen_opts_default(&o->gen);
    vgpt_image_opts_default(&o->image);
    o->model = getenv("VGPT_MODEL");
    o->batch = 8;
    long ncpu = vgpt_cpu_count();
    o->threads = ncpu > 0 ? (int)ncpu : 1;
    o->progress = -1;
    o->window = 32;
    o->retry_after = 300;
    o->retry_errors = 1;
    o->progress_interval = 30;
    mode_pick mode = {-1, NULL};
    int ngram = -1, c, rc;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "m:f:b:t:o:vh0", long_opts, NULL)) != -1) {
        if (c == 'h' || c == OPT_VERSION)
            return print_info(c == 'h' ? usage_text : "vgpt-cli 0.1.0\n");
        if (c >= OPT_GREEDY && c <= OPT_STOP) rc = decode_opt(c, optarg, o, &mode, &ngram);
        else rc = other_opt(c, optarg, o);
        if (rc) return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "vgpt-cli: unexpected argument '%s': image paths are read from standard input\n", argv[optind]);
        return 2;
    }
    if (!o->model || !*o->model) {
        fprintf(stderr, "vgpt-cli: no model: pass --model PATH or set VGPT_MODEL (see README: Model weights)\n");
        return 2;
    }
    o->gen.mode = mode.mode < 0 ? VGPT_BEAM : (vgpt_mode)mode.mode;
    o->gen.no_repeat_ngram = ngram >= 0 ? ngram : (o->gen.mode == VGPT_BEAM ? 3 : 0);
    o->mode_given = mode.by != NULL;
    o->ngram_given = ngram >= 0;
    if (o->in_process && (o->connect || o->reply)) {
        fprintf(stderr, "vgpt-cli: --in-process and %s contradict each other: --in-process runs no daemons, "
                        "%s is for running ones (keep one)\n", o->connect ? "--connect" : "--reply",
                o->connect ? "--connect" : "--reply");
        return 2;
    }
    if (o->precision != VGPT_FP32 && o->connect) {
        fprintf(stderr, "vgpt-cli: --precision with --connect: the running daemons have their own "
                        "(start encoderd and decoderd with --precision %s)\n", vgpt_precision_name(o->precision));
        return 2;
    }
    if (o->reply && !o->connect) {
        fprintf(stderr, "vgpt-cli: --reply needs --connect (the embedded pipeline picks its own endpoints)\n");
        return 2;
    }
    if (o->connect && !o->reply) {
        fprintf(stderr, "vgpt-cli: --connect needs --reply EP, the endpoint the decoders send results to\n");
        return 2;
    }
    if ((o->curve.key || o->curve.server_key || o->curve.peers) && !o->connect) {
        fprintf(stderr, "vgpt-cli: --curve-* options need --connect (the embedded pipeline is private to this user)\n");
        return 2;
    }
    if ((o->xmp_base_name || o->xmp_overwrite) && !o->xmp) {
        fprintf(stderr, "vgpt-cli: %s needs --xmp sidecar or --xmp embed\n",
                o->xmp_overwrite ? "--xmp-overwrite" : "--xmp-sidecar-name");
        return 2;
    }
    if (o->xmp_base_name && o->xmp != XMP_SIDECAR) {
        fprintf(stderr, "vgpt-cli: --xmp-sidecar-name is for --xmp sidecar (--xmp embed writes into the photo)\n");
        return 2;
    }
    if (!o->retry_errors && !o->output) {
        fprintf(stderr, "vgpt-cli: --no-retry-errors needs --output FILE (it is about resuming FILE)\n");
        return 2;
    }
    if (!o->no_cache && !o->cache_dir) {
        const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (x && *x) snprintf(o->cache_buf, sizeof o->cache_buf, "%s/vgpt/tokens", x);
        else if (home && *home) snprintf(o->cache_buf, sizeof o->cache_buf, "%s/.cache/vgpt/tokens", home);
        if (o->cache_buf[0]) o->cache_dir = o->cache_buf;
    }
    return 0;
}
