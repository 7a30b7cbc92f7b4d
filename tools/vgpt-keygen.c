/* vgpt-keygen - writes a ZeroMQ CURVE keypair for a vgpt node: the secret
 * file that node's --curve-key (or --curve-server-key) reads, and the public
 * file that goes into other nodes' --curve-peers directories. */
#include <stdio.h>
#include <string.h>

#include "curve.h"

static const char usage_text[] =
    "Usage: vgpt-keygen OUT\n"
    "\n"
    "Writes a new ZeroMQ CURVE keypair (zmq_curve_keypair) as two files:\n"
    "  OUT.key  public and secret key (Z85), mode 0600: this node's --curve-key,\n"
    "           or, for the one cluster-wide server keypair, every node's\n"
    "           --curve-server-key. Keep it secret.\n"
    "  OUT.pub  the public key only: copy it into the --curve-peers directory of\n"
    "           every node that this key's owner connects to.\n"
    "Existing files are never overwritten. The format is the ZeroMQ (CZMQ)\n"
    "certificate layout: lines `public-key = \"...\"` and `secret-key = \"...\"`.\n"
    "\n"
    "Exit status: 0 written, 1 error, 2 usage error. See README \"Deployment\".\n";

int main(int argc, char **argv) {
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc != 2 || !argv[1][0] || argv[1][0] == '-') {
        fprintf(stderr, "vgpt-keygen: expected one argument, the output name (writes OUT.key and OUT.pub)\n"
                        "Try 'vgpt-keygen --help'.\n");
        return 2;
    }
    vgpt_err err;
    if (vgpt_curve_write_keypair(argv[1], &err)) {
        fprintf(stderr, "vgpt-keygen: %s\n", err.msg);
        return 1;
    }
    printf("%s.key (secret, mode 0600) and %s.pub written\n", argv[1], argv[1]);
    return 0;
}
