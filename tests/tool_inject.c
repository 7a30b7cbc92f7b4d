/* tool_inject.c - sends raw bytes (a file, or built-in malformed frames) to a
 * daemon's PULL endpoint, for the tests that prove a bad frame is answered
 * or dropped, never fatal:  tool_inject ENDPOINT [FILE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tool_inject ENDPOINT [FILE]\n");
        return 2;
    }
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(s, argv[1])) {
        fprintf(stderr, "tool_inject: connect %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    if (argc > 2) {
        FILE *f = fopen(argv[2], "rb");
        static char buf[1 << 20];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        zmq_send(s, buf, n, 0);
    } else {
        /* garbage, a msgpack string, and a map with a wrong version and a reply_to */
        static const char garbage[] = "\x01\x02not msgpack at all\xff";
        static const unsigned char str[] = {0xa3, 'a', 'b', 'c'};
        zmq_send(s, garbage, sizeof garbage - 1, 0);
        zmq_send(s, str, sizeof str, 0);
        zmq_send(s, "", 0, 0);
    }
    usleep(200000);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
