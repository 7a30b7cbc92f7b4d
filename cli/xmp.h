/* xmp.h - captions where photo managers read them (--xmp): XMP
 * dc:description (x-default), in a sidecar beside the photo or embedded in
 * the file, with exempi. */
#ifndef VGPT_CLI_XMP_H
#define VGPT_CLI_XMP_H

#include "err.h"
#include "options.h"

typedef struct cli_xmp {
    int on;
    char model_name[256]; /* the checkpoint's file name, recorded in the packet */
    char settings[256];   /* the decoding settings, recorded in the packet */
    unsigned umask;       /* the process's, for a new sidecar's mode */
} cli_xmp;

/* 0, or -1 when exempi cannot start. */
int cli_xmp_init(cli_xmp *x, const cli_opts *o, vgpt_err *err);
/* Writes caption for photo `path`; -1 with a message "PATH: xmp: ..." */
int cli_xmp_write(const cli_xmp *x, const cli_opts *o, const char *path, const char *caption, vgpt_err *err);
void cli_xmp_shutdown(cli_xmp *x);

#endif
