/*
 * test_runtime_msg.c - cr_msg and the envelope codec (checked against the
 * msgpack library's own reader).
 */
#include <criterion/criterion.h>
#include <msgpack.h>

#include "msg.h"
#include "runtime/rt_helpers.h"

Test(runtime_msg, basics)
{
    cr_msg *m = cr_msg_new(CR_MSG_USER);
    cr_assert_not_null(m);
    cr_expect_eq(cr_msg_len(m), 0);
    cr_assert_eq(cr_msg_append(m, "abc", 3), 0);
    cr_assert_eq(cr_msg_append(m, "def", 3), 0);
    cr_expect_eq(cr_msg_len(m), 6);
    cr_expect_eq(memcmp(cr_msg_data(m), "abcdef", 6), 0);
    cr_msg_set_type(m, CR_MSG_USER + 1);
    cr_msg *d = cr_msg_dup(m);
    cr_expect_eq(cr_msg_type(d), CR_MSG_USER + 1);
    cr_expect_eq(memcmp(cr_msg_data(d), "abcdef", 6), 0);
    cr_msg_free(m);
    cr_msg_free(d);
    cr_msg_free(NULL);
    cr_expect_str_eq(cr_strerror(CR_EFULL), "mailbox full");
}

Test(runtime_msg, packer)
{
    cr_msg *m = cr_msg_new(CR_MSG_USER);
    msgpack_packer *pk = cr_msg_packer(m);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "k", 1);
    msgpack_pack_uint64(pk, 123456789012ULL);
    cr_assert(!cr_msg_packer_failed(m));
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    cr_assert_eq(msgpack_unpack_next(&u, cr_msg_data(m), cr_msg_len(m), &off),
                 MSGPACK_UNPACK_SUCCESS);
    cr_expect_eq(off, cr_msg_len(m));
    cr_expect_eq(u.data.type, MSGPACK_OBJECT_MAP);
    cr_expect_eq(u.data.via.map.ptr[0].val.via.u64, 123456789012ULL);
    msgpack_unpacked_destroy(&u);
    cr_msg_free(m);
}

Test(runtime_msg, envelope_codec_is_msgpack)
{
    static const struct {
        uint32_t type;
        uint64_t from, corr;
        size_t len;
    } cases[] = {
        {1, 0, 0, 0},
        {256, 127, 128, 1},
        {65535, 65536, UINT32_MAX, 255},
        {UINT32_MAX, UINT64_MAX, (uint64_t)UINT32_MAX + 1, 256},
        {300, 1, 1, 70000},
    };
    uint8_t *payload = malloc(70000);
    for (size_t i = 0; i < 70000; i++) {
        payload[i] = (uint8_t)i;
    }
    uint8_t *batch = malloc(sizeof(cases) / sizeof(cases[0]) *
                            (70000 + CRI_ENV_HDR_MAX));
    size_t n = 0;
    size_t ncase = sizeof(cases) / sizeof(cases[0]);
    for (size_t i = 0; i < ncase; i++) {
        n += cri_env_hdr(batch + n, cases[i].type, cases[i].from,
                         cases[i].corr, cases[i].len);
        memcpy(batch + n, payload, cases[i].len);
        n += cases[i].len;
    }
    /* msgpack's reader sees a sequence of [type, from, corr, bin]. */
    size_t off = 0;
    for (size_t i = 0; i < ncase; i++) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        cr_assert_eq(msgpack_unpack_next(&u, (const char *)batch, n, &off),
                     MSGPACK_UNPACK_SUCCESS);
        cr_assert_eq(u.data.type, MSGPACK_OBJECT_ARRAY);
        cr_assert_eq(u.data.via.array.size, 4);
        msgpack_object *f = u.data.via.array.ptr;
        cr_expect_eq(f[0].via.u64, cases[i].type);
        cr_expect_eq(f[1].via.u64, cases[i].from);
        cr_expect_eq(f[2].via.u64, cases[i].corr);
        cr_assert_eq(f[3].type, MSGPACK_OBJECT_BIN);
        cr_expect_eq(f[3].via.bin.size, cases[i].len);
        msgpack_unpacked_destroy(&u);
    }
    cr_expect_eq(off, n);
    /* Our decoder agrees, zero copy into the batch. */
    size_t pos = 0;
    for (size_t i = 0; i < ncase; i++) {
        cri_env env;
        cr_assert_eq(cri_env_next(batch, n, &pos, &env), 1);
        cr_expect_eq(env.type, cases[i].type);
        cr_expect_eq(env.from, cases[i].from);
        cr_expect_eq(env.corr, cases[i].corr);
        cr_expect_eq(env.len, cases[i].len);
        cr_expect(env.data >= batch && env.data + env.len <= batch + n);
        cr_expect_eq(memcmp(env.data, payload, env.len), 0);
    }
    cri_env env;
    cr_expect_eq(cri_env_next(batch, n, &pos, &env), 0);
    /* Truncations are rejected, never read past the end. */
    for (size_t cut = 1; cut < 40; cut++) {
        size_t p = 0;
        int r = cri_env_next(batch + n - 70030, 70030 - cut, &p, &env);
        cr_expect_eq(r, -1, "cut %zu", cut);
    }
    free(batch);
    free(payload);
}
