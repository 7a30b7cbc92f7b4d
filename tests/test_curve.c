/* test_curve.c - CURVE keys and the ZAP handler (node/curve.c): key files
 * are written and checked, an allowed client's frame is delivered over tcp,
 * an unlisted key (or no CURVE, or a wrong server key) is refused, nothing
 * is delivered, and the refusal is counted and logged with the key; a key
 * added to the peers directory is admitted without a restart. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "check.h"
#include "curve.h"
#include "zsock.h"

static check_state st;

static int copy_file(const char *from, const char *to) {
    char buf[4096];
    FILE *a = fopen(from, "r"), *b = fopen(to, "w");
    size_t n = 0;
    if (a && b) n = fread(buf, 1, sizeof buf, a), fwrite(buf, 1, n, b);
    if (a) fclose(a);
    if (b) fclose(b);
    return a && b && n ? 0 : -1;
}

static int write_text(const char *path, int mode, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    fclose(f);
    return chmod(path, mode);
}

static int file_mode(const char *path) {
    struct stat s;
    return stat(path, &s) ? -1 : (int)(s.st_mode & 07777);
}

static void test_key_files(const char *dir) {
    char base[512], path[600], pub[41], sec[41], pub2[41], sec2[41], text[600];
    vgpt_err err = {{0}};
    snprintf(base, sizeof base, "%s/k1", dir);
    { int ok_ = vgpt_curve_write_keypair(base, &err) == 0;
      CHECK(&st, ok_, "keygen writes k1.key and k1.pub %s", err.msg); }
    snprintf(path, sizeof path, "%s.key", base);
    { int ok_ = file_mode(path) == 0600;
      CHECK(&st, ok_, "the secret key file has mode 0600 (got %o)", file_mode(path)); }
    int rc = vgpt_curve_read_key(path, pub, sec, &err);
    { int ok_ = rc == 0 && strlen(pub) == 40 && strlen(sec) == 40;
      CHECK(&st, ok_, "k1.key reads back (public + secret) %s", err.msg); }
    snprintf(path, sizeof path, "%s.pub", base);
    rc = vgpt_curve_read_key(path, pub2, NULL, &err);
    { int ok_ = rc == 0 && !strcmp(pub, pub2);
      CHECK(&st, ok_, "k1.pub holds the same public key %s", err.msg); }
    chmod(path, 0600); /* so that the missing secret-key line is what fails */
    { int ok_ = vgpt_curve_read_key(path, pub2, sec2, &err) != 0 && strstr(err.msg, "secret-key line");
      CHECK(&st, ok_,
          "a .pub file is not accepted as a secret key file: %s", err.msg); }
    { int ok_ = vgpt_curve_write_keypair(base, &err) != 0 && strstr(err.msg, "exists");
      CHECK(&st, ok_,
          "keygen refuses to overwrite: %s", err.msg); }

    snprintf(path, sizeof path, "%s.key", base);
    chmod(path, 0644);
    { int ok_ = vgpt_curve_read_key(path, pub2, sec2, &err) != 0 && strstr(err.msg, "0644");
      CHECK(&st, ok_,
          "a world-readable secret key file is refused: %s", err.msg); }
    chmod(path, 0600);

    char other[512];
    snprintf(other, sizeof other, "%s/k2", dir);
    vgpt_curve_write_keypair(other, &err);
    snprintf(path, sizeof path, "%s/mixed.key", dir);
    char k2[600], p2[41], s2[41];
    snprintf(k2, sizeof k2, "%s.key", other);
    vgpt_curve_read_key(k2, p2, s2, &err);
    snprintf(text, sizeof text, "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n", pub, s2);
    write_text(path, 0600, text);
    { int ok_ = vgpt_curve_read_key(path, pub2, sec2, &err) != 0 && strstr(err.msg, "does not belong");
      CHECK(&st, ok_,
          "a public key that does not match the secret key is refused: %s", err.msg); }
    snprintf(path, sizeof path, "%s/short.pub", dir);
    write_text(path, 0644, "public-key = \"abc\"\n");
    { int ok_ = vgpt_curve_read_key(path, pub2, NULL, &err) != 0 && strstr(err.msg, "short.pub");
      CHECK(&st, ok_,
          "a truncated key is refused: %s", err.msg); }
    snprintf(path, sizeof path, "%s/badchar.pub", dir);
    write_text(path, 0644, "public-key = \"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\"\n");
    { int ok_ = vgpt_curve_read_key(path, pub2, NULL, &err) != 0 && strstr(err.msg, "z85");
      CHECK(&st, ok_,
          "a key outside the Z85 alphabet is refused: %s", err.msg); }

    vgpt_curve c;
    vgpt_curve_opts partial = {.key = k2};
    { int ok_ = vgpt_curve_load(&c, &partial, "test", &err) != 0 && strstr(err.msg, "--curve-peers");
      CHECK(&st, ok_,
          "--curve-key alone is a usage error: %s", err.msg); }
    { int ok_ = vgpt_curve_load(&c, NULL, "test", &err) == 0 && !c.on;
      CHECK(&st, ok_, "no options: CURVE off"); }
}

/* A client context: CURVE client keys from key_base, the given server key. */
static void *client_push(void *ctx, vgpt_curve *c, const char *dir, const char *key, const char *server,
                         const char *ep) {
    char kp[600], sp[600], peers[600];
    vgpt_err err = {{0}};
    snprintf(kp, sizeof kp, "%s/%s.key", dir, key);
    snprintf(sp, sizeof sp, "%s/%s.key", dir, server);
    snprintf(peers, sizeof peers, "%s/peers", dir);
    vgpt_curve_opts o = {.key = kp, .server_key = sp, .peers = peers};
    if (key && vgpt_curve_load(c, &o, "client", &err)) {
        printf("client %s: %s\n", key, err.msg);
        return NULL;
    }
    void *s = vgpt_zsock_push_connect_sec(ctx, ep, key ? c : NULL, &err);
    int ms = 1000;
    if (s) zmq_setsockopt(s, ZMQ_SNDTIMEO, &ms, sizeof ms);
    return s;
}

/* Sends "hello from NAME" and reports whether the server got exactly that. */
static int delivered(void *push, void *pull, const char *name) {
    char text[64];
    vgpt_err err = {{0}};
    snprintf(text, sizeof text, "hello from %s", name);
    int sent = push && vgpt_zsock_send(push, text, strlen(text), 0, &err) == 0;
    zmq_pollitem_t it = {.socket = pull, .events = ZMQ_POLLIN};
    if (zmq_poll(&it, 1, sent ? 3000 : 500) <= 0) return 0;
    zmq_msg_t m;
    zmq_msg_init(&m);
    int ok = vgpt_zsock_recv(pull, &m, ZMQ_DONTWAIT, &err) == 0 && zmq_msg_size(&m) == strlen(text) &&
             !memcmp(zmq_msg_data(&m), text, strlen(text));
    zmq_msg_close(&m);
    return ok ? 1 : -1;
}

static void test_zap(const char *dir, const char *logpath) {
    char base[600], peers[600], from[700], to[700], ep[256];
    vgpt_err err = {{0}};
    const char *names[] = {"server", "good", "evil"};
    for (int i = 0; i < 3; i++) {
        snprintf(base, sizeof base, "%s/%s", dir, names[i]);
        vgpt_curve_write_keypair(base, &err);
    }
    snprintf(peers, sizeof peers, "%s/peers", dir);
    mkdir(peers, 0755);
    snprintf(from, sizeof from, "%s/good.pub", dir);
    snprintf(to, sizeof to, "%s/good.pub", peers);
    copy_file(from, to);
    snprintf(to, sizeof to, "%s/README", peers); /* not *.pub: ignored */
    write_text(to, 0644, "keys of the nodes allowed to connect\n");

    /* server: its own context, ZAP handler first, then a CURVE PULL on tcp */
    static vgpt_curve srv; /* the ZAP thread keeps a pointer: keep it put */
    char sk[600];
    snprintf(sk, sizeof sk, "%s/server.key", dir);
    vgpt_curve_opts so = {.key = sk, .server_key = sk, .peers = peers};
    void *sctx = zmq_ctx_new();
    int rc = vgpt_curve_load(&srv, &so, "test-server", &err) || vgpt_curve_zap_start(&srv, sctx, &err);
    void *pull = rc ? NULL : vgpt_zsock_pull_bind_sec(sctx, "tcp://127.0.0.1:*", VGPT_ZSOCK_MAXMSG, &srv, &err);
    size_t len = sizeof ep;
    { int ok_ = pull && !zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, ep, &len);
      CHECK(&st, ok_,
          "CURVE server bound with a ZAP handler %s", err.msg); }
    if (!pull) return;

    void *cctx = zmq_ctx_new();
    vgpt_curve good, evil, wrong, late;
    void *p_good = client_push(cctx, &good, dir, "good", "server", ep);
    { int ok_ = delivered(p_good, pull, "good") == 1 && srv.admitted >= 1;
      CHECK(&st, ok_,
          "a listed client key passes a message (%llu admitted)", (unsigned long long)srv.admitted); }

    unsigned long long before = srv.refused;
    void *p_evil = client_push(cctx, &evil, dir, "evil", "server", ep);
    { int ok_ = delivered(p_evil, pull, "evil") == 0;
      CHECK(&st, ok_, "an unlisted client key delivers nothing"); }
    { int ok_ = srv.refused > before;
      CHECK(&st, ok_, "the unlisted key's connection was refused and counted (%llu refusals)",
          (unsigned long long)srv.refused); }

    void *p_plain = vgpt_zsock_push_connect(cctx, ep, &err);
    int ms = 1000;
    zmq_setsockopt(p_plain, ZMQ_SNDTIMEO, &ms, sizeof ms);
    { int ok_ = delivered(p_plain, pull, "plain") == 0;
      CHECK(&st, ok_, "a client without CURVE delivers nothing"); }

    void *p_wrong = client_push(cctx, &wrong, dir, "good", "evil", ep); /* expects another server key */
    { int ok_ = delivered(p_wrong, pull, "wrong-server") == 0;
      CHECK(&st, ok_,
          "a client that expects another server key delivers nothing (no server impersonation)"); }

    /* keys are re-read per connection: listing evil admits it, no restart */
    snprintf(from, sizeof from, "%s/evil.pub", dir);
    snprintf(to, sizeof to, "%s/evil.pub", peers);
    copy_file(from, to);
    void *p_late = client_push(cctx, &late, dir, "evil", "server", ep);
    { int ok_ = delivered(p_late, pull, "evil-listed") == 1;
      CHECK(&st, ok_, "a key added to the peers directory is admitted at once"); }

    /* a replier (reply_to sockets) is a CURVE client too */
    vgpt_replier *r = vgpt_replier_new_sec(cctx, &good);
    int got = 0;
    for (int i = 0; i < 20 && got != 1; i++) {
        if (r && vgpt_replier_send(r, ep, "reply", 5, &err) == 0) {
            zmq_pollitem_t it = {.socket = pull, .events = ZMQ_POLLIN};
            if (zmq_poll(&it, 1, 200) > 0) {
                zmq_msg_t m;
                zmq_msg_init(&m);
                got = vgpt_zsock_recv(pull, &m, ZMQ_DONTWAIT, &err) == 0 && zmq_msg_size(&m) == 5;
                zmq_msg_close(&m);
            }
        }
    }
    { int ok_ = got == 1;
      CHECK(&st, ok_, "a CURVE replier reaches a CURVE reply socket"); }
    vgpt_replier_free(r);

    void *socks[] = {p_good, p_evil, p_plain, p_wrong, p_late};
    for (int i = 0; i < 5; i++)
        if (socks[i]) zmq_close(socks[i]);
    zmq_ctx_term(cctx);
    vgpt_curve_free(&good), vgpt_curve_free(&evil), vgpt_curve_free(&wrong), vgpt_curve_free(&late);
    zmq_close(pull);
    zmq_ctx_term(sctx); /* ends the ZAP thread */
    vgpt_curve_free(&srv);
    { int ok_ = srv.server_sec[0] == 0 && srv.sec[0] == 0;
      CHECK(&st, ok_, "secret keys are wiped at the end"); }

    /* the refusal was logged on stderr, naming the refused key */
    char evil_pub[41], line[1024];
    snprintf(from, sizeof from, "%s/evil.pub", dir);
    vgpt_curve_read_key(from, evil_pub, NULL, &err);
    fflush(stderr);
    FILE *f = fopen(logpath, "r");
    int logged = 0;
    while (f && fgets(line, sizeof line, f))
        logged |= strstr(line, "refused") && strstr(line, evil_pub) && strstr(line, "peers");
    if (f) fclose(f);
    CHECK(&st, logged, "the refusal was logged with the refused public key %s", evil_pub);
}

int main(void) {
    if (!zmq_has("curve")) {
        printf("SKIP: this libzmq has no CURVE support\n");
        return 0;
    }
    char dir[] = "/tmp/vgpt-test-curve-XXXXXX";
    if (!mkdtemp(dir)) {
        printf("FAIL: mkdtemp\n");
        return 1;
    }
    /* stderr (where vgpt_log writes) goes to a file the test reads back */
    char logpath[600];
    snprintf(logpath, sizeof logpath, "%s/stderr.log", dir);
    int saved = dup(2), fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    test_key_files(dir);
    test_zap(dir, logpath);
    dup2(saved, 2);
    close(saved);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) printf("note: could not remove %s\n", dir);
    return check_exit(&st);
}
