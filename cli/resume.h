/* resume.h - `--output FILE` and starting again: an archive run is killed,
 * rebooted or Ctrl-C'd, and the next run with the same FILE must carry on,
 * not start over.
 *
 * Opening FILE reads the results already there: the paths captioned (and,
 * with --no-retry-errors, those with an error line) are skipped this time;
 * error lines are otherwise removed (the file is rewritten beside itself and
 * renamed over) so that the retried path ends up there exactly once; a torn
 * last line (a kill mid-write) is cut off.  Then results are appended.
 *
 * Only a 64-bit hash of each done path is kept (16 bytes a path at most),
 * not the paths: the run's memory does not hold the list. */
#ifndef VGPT_CLI_RESUME_H
#define VGPT_CLI_RESUME_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "options.h"
#include "output.h"

typedef struct cli_resume {
    uint64_t *slots;   /* open addressing; 0 = empty */
    size_t cap, n;
    long kept;         /* result lines kept from an earlier run */
    long dropped;      /* error lines removed, to be retried */
    long torn_bytes;   /* bytes of a torn last line cut off */
} cli_resume;

/* Reads (and repairs) o->output, fills r and opens the file for appending
 * into s.  A file that holds anything but result lines in o->format is
 * refused (it is not ours to change). */
int cli_resume_open(cli_resume *r, const cli_opts *o, cli_sink *s, vgpt_err *err);
/* 1 when the path was already done in FILE. */
int cli_resume_has(const cli_resume *r, const char *path, size_t len);
void cli_resume_free(cli_resume *r);

#endif
