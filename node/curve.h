/* curve.h - ZeroMQ CURVE for vgpt's network links: key files, the socket
 * options of CURVE servers and clients, and the ZAP handler that admits only
 * listed client keys.
 *
 * Key scheme (README "Deployment"): one cluster *server* keypair, held by
 * every node, secures every bound socket (each daemon's input, vgpt-cli's
 * reply socket); every node also has its own *client* keypair, used on every
 * socket it connects.  A bound socket admits a connection only when the
 * client's public key is one of the *.pub files in the node's peers
 * directory.  The directory is re-read for every new connection, so adding
 * or revoking a key needs no restart (established connections stay up).
 * With no options given CURVE is off and sockets use ZeroMQ's NULL
 * mechanism, as before. */
#ifndef VGPT_CURVE_H
#define VGPT_CURVE_H

#include <pthread.h>
#include <stdint.h>

#include "err.h"

#define VGPT_CURVE_Z85 40 /* z85 characters of a 32-byte key */
#define VGPT_ZAP_ENDPOINT "inproc://zeromq.zap.01"

/* The command-line options, as given (NULL = not given). */
typedef struct vgpt_curve_opts {
    const char *key;        /* --curve-key FILE: this node's keypair (vgpt-keygen's .key) */
    const char *server_key; /* --curve-server-key FILE: the cluster server keypair (.key) */
    const char *peers;      /* --curve-peers DIR: *.pub files allowed to connect to us */
} vgpt_curve_opts;

/* Loaded keys plus the ZAP handler's state.  Must not move once the
 * handler runs (sockets and the thread keep pointers to it). */
typedef struct vgpt_curve {
    int on;
    char pub[VGPT_CURVE_Z85 + 1], sec[VGPT_CURVE_Z85 + 1];
    char server_pub[VGPT_CURVE_Z85 + 1], server_sec[VGPT_CURVE_Z85 + 1];
    char peers[4096];
    const char *name;          /* log prefix of the owning program */
    void *zap;                 /* REP socket on VGPT_ZAP_ENDPOINT, owned by the thread */
    pthread_t thread;
    int thread_on;
    _Atomic unsigned long long admitted, refused;
    char last_refused[VGPT_CURVE_Z85 + 1]; /* log rate limit (ZAP thread only) */
    double last_log;
} vgpt_curve;

/* Reads a key file: `public-key = "Z85"` and, when sec is not NULL,
 * `secret-key = "Z85"` lines (the ZeroMQ/CZMQ certificate layout that
 * vgpt-keygen writes).  A secret key file must not be accessible to others
 * nor writable by its group, and its public key must match its secret key. */
int vgpt_curve_read_key(const char *path, char pub[VGPT_CURVE_Z85 + 1], char sec[VGPT_CURVE_Z85 + 1],
                        vgpt_err *err);

/* Writes BASE.key (public + secret, mode 0600) and BASE.pub (public only,
 * mode 0644) from a new zmq_curve_keypair; refuses to overwrite either. */
int vgpt_curve_write_keypair(const char *base, vgpt_err *err);

/* 1 when key (32 raw bytes) is in one of dir's *.pub files. */
int vgpt_curve_peer_allowed(const char *dir, const uint8_t key[32]);

/* Loads the keys named by o (CURVE stays off when o is NULL or empty; all
 * three options are needed together) and checks that peers is a readable
 * directory.  name prefixes log lines. */
int vgpt_curve_load(vgpt_curve *c, const vgpt_curve_opts *o, const char *name, vgpt_err *err);

/* Binds the ZAP handler in zctx and starts its thread.  Call before binding
 * any CURVE server socket in zctx: libzmq admits every client of a socket
 * whose context has no handler.  No-op when CURVE is off. */
int vgpt_curve_zap_start(vgpt_curve *c, void *zctx, vgpt_err *err);
/* Joins the handler thread; call after zmq_ctx_term (which ends it).  Also
 * wipes the secret keys from memory. */
void vgpt_curve_free(vgpt_curve *c);

/* Socket options for a bound socket (CURVE server) and a connecting socket
 * (CURVE client), set before zmq_bind / zmq_connect.  No-op when c is NULL
 * or CURVE is off. */
int vgpt_curve_server(void *sock, const vgpt_curve *c, vgpt_err *err);
int vgpt_curve_client(void *sock, const vgpt_curve *c, vgpt_err *err);

#endif
