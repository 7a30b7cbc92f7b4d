/* xmp_png.h - a PNG copy without its XMP chunk, for cli/xmp.c.
 *
 * exempi 2.6.3 (Debian bookworm) rewrites a PNG's XMP chunk in place when
 * the new packet is shorter than the old one and leaves the old packet's
 * tail behind it: the chunk no longer parses (exempi -x: "XML parsing
 * failure").  So before exempi writes, the old iTXt XML:com.adobe.xmp
 * chunk is left out of the copy (every other chunk is copied byte for
 * byte), and exempi adds a fresh one.  No XML is touched here. */
#ifndef VGPT_CLI_XMP_PNG_H
#define VGPT_CLI_XMP_PNG_H

#include "err.h"

/* Copies the PNG on descriptor `in` to `out` without its XMP chunk(s);
 * -1 with a message naming `path` when it is not a well-formed PNG. */
int cli_xmp_png_copy(int in, int out, const char *path, vgpt_err *err);

#endif
