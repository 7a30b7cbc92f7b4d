/* serve.h - preprocd's ZeroMQ stage: IMAGE requests in, PREPROCESSED
 * 224x224x3 u8 images (plus the SHA-256 of the raw bytes, for the token
 * cache) out to encoderd. */
#ifndef VGPT_PREPROCD_SERVE_H
#define VGPT_PREPROCD_SERVE_H

#include "image.h"
#include "node.h"

#define PREPROCD_MAX_ROOTS 16

typedef struct preprocd_daemon_opts {
    const char *listen, *next;
    const char *roots[PREPROCD_MAX_ROOTS]; /* --allow-root: where path requests may read */
    int n_roots;
    uint64_t max_pixels; /* caps each request's own limit */
    vgpt_node_opts node;  /* --stats-interval, --curve-* */
} preprocd_daemon_opts;

int preprocd_run_daemon(const preprocd_daemon_opts *o, const char *argv0);

#endif
