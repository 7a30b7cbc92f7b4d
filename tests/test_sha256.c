/* test_sha256.c - FIPS 180-4 test vectors, and streaming == one shot. */
#include <string.h>

#include "check.h"
#include "sha256.h"

static int hex_is(const void *data, size_t len, const char *want) {
    uint8_t d[32];
    char hex[65];
    vgpt_sha256(data, len, d);
    vgpt_hex(d, 32, hex);
    return !strcmp(hex, want);
}

int main(void) {
    check_state st = {0};
    CHECK(&st, hex_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256 of empty");
    CHECK(&st, hex_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256 of abc");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(&st, hex_is(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
          "sha256 of the 448-bit vector");
    static char mil[1000000];
    memset(mil, 'a', sizeof mil);
    CHECK(&st, hex_is(mil, sizeof mil, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
          "sha256 of a million 'a'");
    vgpt_sha256_ctx s;
    uint8_t a[32], b[32];
    vgpt_sha256_init(&s);
    for (size_t i = 0; i < sizeof mil; i += 777) vgpt_sha256_update(&s, mil + i, sizeof mil - i < 777 ? sizeof mil - i : 777);
    vgpt_sha256_final(&s, a);
    vgpt_sha256(mil, sizeof mil, b);
    CHECK(&st, !memcmp(a, b, 32), "streaming in odd chunks == one shot");
    return check_exit(&st);
}
