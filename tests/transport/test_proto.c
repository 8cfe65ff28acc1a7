/*
 * test_proto.c - codec round trips, schema defaults, unknown keys, byte
 * vectors written by python3-msgpack, and hostile input (bombs).
 */
/* cfgrecv/actor.h must come before criterion, whose cr_fail macro would
 * otherwise rewrite the runtime's cr_fail declaration. */
#include <cfgrecv/actor.h>

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgsvc_fixtures.h"
#include "mpread.h"
#include "proto.h"

#define DEC_REQ(buf, n, out)                                                   \
    crt_request_decode((buf), (n), NULL, (out), &err)

Test(proto, request_round_trip)
{
    crt_key keys[2] = {{"flow", "a"}, {"prompt", "b"}};
    crt_value vals[1] = {{"flow", "f1", "{\"x\":1}", "ws"}};
    crt_request r = {.operation = "put",
                     .workspace = "default",
                     .keys = keys,
                     .nkeys = 2,
                     .type = "flow",
                     .values = vals,
                     .nvalues = 1};
    void *buf;
    size_t len;
    crt_request d;
    crt_decode_error err;
    cr_assert_eq(crt_request_encode(&r, &buf, &len), 0);
    cr_assert_eq(DEC_REQ(buf, len, &d), 0, "%s", err.text);
    cr_assert_str_eq(d.operation, "put");
    cr_assert_str_eq(d.workspace, "default");
    cr_assert_str_eq(d.type, "flow");
    cr_assert_eq(d.nkeys, 2);
    cr_assert_str_eq(d.keys[1].type, "prompt");
    cr_assert_str_eq(d.keys[1].key, "b");
    cr_assert_eq(d.nvalues, 1);
    cr_assert_str_eq(d.values[0].value, "{\"x\":1}");
    cr_assert_str_eq(d.values[0].workspace, "ws");
    crt_request_free(&d);
    cr_assert_null(d.operation);
    free(buf);
}

Test(proto, response_round_trip)
{
    crt_value vals[2] = {{"flow", "a", NULL, ""}, {"flow", "b", "v", "w"}};
    char *dir[2] = {"k1", "k2"};
    crt_entry ents[2] = {{"f1", "{}"}, {"f2", "[]"}};
    crt_cfgtype cfg[1] = {{"flow", ents, 2}};
    crt_error e = {"bad-request", "why"};
    crt_response r = {.version = 42,
                      .values = vals,
                      .nvalues = 2,
                      .directory = dir,
                      .ndirectory = 2,
                      .config = cfg,
                      .nconfig = 1,
                      .error = &e};
    void *buf;
    size_t len;
    crt_response d;
    crt_decode_error err;
    cr_assert_eq(crt_response_encode(&r, &buf, &len), 0);
    cr_assert_eq(crt_response_decode(buf, len, NULL, &d, &err), 0, "%s",
                 err.text);
    cr_assert_eq(d.version, 42);
    cr_assert_eq(d.nvalues, 2);
    cr_assert_null(d.values[0].value, "nil value must stay nil");
    cr_assert_str_eq(d.values[1].value, "v");
    cr_assert_eq(d.ndirectory, 2);
    cr_assert_str_eq(d.directory[1], "k2");
    cr_assert_eq(d.nconfig, 1);
    cr_assert_str_eq(d.config[0].type, "flow");
    cr_assert_eq(d.config[0].nentries, 2);
    cr_assert_str_eq(d.config[0].entries[1].key, "f2");
    cr_assert_str_eq(d.config[0].entries[1].value, "[]");
    cr_assert_not_null(d.error);
    cr_assert_str_eq(d.error->type, "bad-request");
    cr_assert_str_eq(d.error->message, "why");
    crt_response_free(&d);
    free(buf);
}

Test(proto, push_round_trip)
{
    char *ws[2] = {"default", "w2"};
    crt_change ch[1] = {{"flow", ws, 2}};
    char *created[1] = {"w2"};
    crt_wschanges wc = {created, 1, NULL, 0};
    crt_push p = {.version = CRT_VERSION_MAX, /* the largest accepted */
                  .changes = ch,
                  .nchanges = 1,
                  .workspace_changes = &wc};
    void *buf;
    size_t len;
    crt_push d;
    crt_decode_error err;
    cr_assert_eq(crt_push_encode(&p, &buf, &len), 0);
    cr_assert_eq(crt_push_decode(buf, len, NULL, &d, &err), 0, "%s",
                 err.text);
    cr_assert_eq(d.version, (uint64_t)INT64_MAX);
    cr_assert_eq(d.nchanges, 1);
    cr_assert_str_eq(d.changes[0].type, "flow");
    cr_assert_eq(d.changes[0].nworkspaces, 2);
    cr_assert_str_eq(d.changes[0].workspaces[1], "w2");
    cr_assert_not_null(d.workspace_changes);
    cr_assert_eq(d.workspace_changes->ncreated, 1);
    cr_assert_eq(d.workspace_changes->ndeleted, 0);
    crt_push_free(&d);
    free(buf);

    /* no workspace_changes -> nil -> NULL; empty changes */
    memset(&p, 0, sizeof(p));
    p.version = 1;
    cr_assert_eq(crt_push_encode(&p, &buf, &len), 0);
    cr_assert_eq(crt_push_decode(buf, len, NULL, &d, &err), 0);
    cr_assert_null(d.workspace_changes);
    cr_assert_eq(d.nchanges, 0);
    crt_push_free(&d);
    free(buf);
}

/* ---- python3-msgpack vectors ---------------------------------------- */

Test(proto, python_put_defaults)
{
    crt_request d;
    crt_decode_error err;
    cr_assert_eq(DEC_REQ(fx_req_put, sizeof(fx_req_put), &d), 0, "%s",
                 err.text);
    cr_assert_str_eq(d.operation, "put");
    cr_assert_str_eq(d.type, "", "missing type defaults to \"\"");
    cr_assert_eq(d.nkeys, 0);
    cr_assert_eq(d.nvalues, 1);
    cr_assert_str_eq(d.values[0].value, "{\"name\": \"test_flow_1\"}");
    cr_assert_str_eq(d.values[0].workspace, "");
    crt_request_free(&d);
}

Test(proto, python_unknown_keys_ignored)
{
    crt_request d;
    crt_decode_error err;
    cr_assert_eq(
        DEC_REQ(fx_req_get_unknown, sizeof(fx_req_get_unknown), &d), 0,
        "%s", err.text);
    cr_assert_str_eq(d.operation, "get");
    cr_assert_str_eq(d.workspace, "w1");
    cr_assert_eq(d.nkeys, 1);
    cr_assert_str_eq(d.keys[0].key, "a");
    crt_request_free(&d);
}

Test(proto, python_minimal_and_nils)
{
    crt_request d;
    crt_decode_error err;
    cr_assert_eq(DEC_REQ(fx_req_minimal, sizeof(fx_req_minimal), &d), 0);
    cr_assert_str_eq(d.operation, "config");
    cr_assert_str_eq(d.workspace, "");
    crt_request_free(&d);
    cr_assert_eq(DEC_REQ(fx_req_nils, sizeof(fx_req_nils), &d), 0, "%s",
                 err.text);
    cr_assert_str_eq(d.operation, "list");
    cr_assert_str_eq(d.workspace, "");
    cr_assert_eq(d.nkeys, 0);
    crt_request_free(&d);
}

Test(proto, python_responses)
{
    crt_response d;
    crt_decode_error err;
    cr_assert_eq(crt_response_decode(fx_resp_tg_put, sizeof(fx_resp_tg_put),
                                     NULL, &d, &err),
                 0, "%s", err.text);
    cr_assert_eq(d.version, 0, "nil version takes the default");
    cr_assert_null(d.error);
    crt_response_free(&d);

    cr_assert_eq(crt_response_decode(fx_resp_get, sizeof(fx_resp_get), NULL,
                                     &d, &err),
                 0, "%s", err.text);
    cr_assert_eq(d.version, 7);
    cr_assert_eq(d.nvalues, 2);
    cr_assert_null(d.values[0].value);
    cr_assert_eq(strlen(d.values[1].value), 300);
    cr_assert_str_eq(d.values[1].workspace, "w");
    crt_response_free(&d);

    cr_assert_eq(crt_response_decode(fx_resp_config, sizeof(fx_resp_config),
                                     NULL, &d, &err),
                 0, "%s", err.text);
    cr_assert_eq(d.version, 9);
    cr_assert_eq(d.nconfig, 2);
    cr_assert_eq(d.config[0].nentries, 2);
    cr_assert_eq(strlen(d.config[0].entries[1].value), 70000);
    cr_assert_eq(d.config[1].nentries, 0);
    crt_response_free(&d);

    cr_assert_eq(crt_response_decode(fx_resp_dir, sizeof(fx_resp_dir), NULL,
                                     &d, &err),
                 0);
    cr_assert_eq(d.ndirectory, 3);
    cr_assert_str_eq(d.directory[2], "");
    crt_response_free(&d);

    cr_assert_eq(crt_response_decode(fx_resp_error, sizeof(fx_resp_error),
                                     NULL, &d, &err),
                 0);
    cr_assert_not_null(d.error);
    cr_assert_str_eq(d.error->type, "bad-operation");
    cr_assert_str_eq(d.error->message, "Bad operation");
    crt_response_free(&d);
}

Test(proto, python_pushes)
{
    crt_push d;
    crt_decode_error err;
    cr_assert_eq(crt_push_decode(fx_push, sizeof(fx_push), NULL, &d, &err),
                 0, "%s", err.text);
    cr_assert_eq(d.version, 5);
    cr_assert_eq(d.nchanges, 1);
    cr_assert_str_eq(d.changes[0].workspaces[0], "default");
    cr_assert_not_null(d.workspace_changes);
    cr_assert_str_eq(d.workspace_changes->created[0], "ws2");
    crt_push_free(&d);

    /* python's uint64 for 2^63 + 5: above CRT_VERSION_MAX, refused */
    cr_assert_eq(crt_push_decode(fx_push_oldraw, sizeof(fx_push_oldraw),
                                 NULL, &d, &err),
                 CR_EPROTO);
    cr_assert(strstr(err.text, "version 9223372036854775813") != NULL, "%s",
              err.text);
    cr_assert_null(d.changes);
    /* the same bytes with the uint64 lowered to 5 still decode */
    unsigned char low[sizeof(fx_push_oldraw)];
    memcpy(low, fx_push_oldraw, sizeof(low));
    unsigned char *u = memchr(low, 0xcf, sizeof(low));
    cr_assert_not_null(u);
    cr_assert_eq(u[1], 0x80, "2^63 + 5 big-endian");
    u[1] = 0;
    cr_assert_eq(crt_push_decode(low, sizeof(low), NULL, &d, &err), 0, "%s",
                 err.text);
    cr_assert_eq(d.version, 5);
    cr_assert_eq(d.nchanges, 0);
    cr_assert_null(d.workspace_changes);
    crt_push_free(&d);

    cr_assert_eq(crt_push_decode(fx_push_bin, sizeof(fx_push_bin), NULL, &d,
                                 &err),
                 0, "%s", err.text);
    cr_assert_eq(d.version, 1);
    cr_assert_str_eq(d.changes[0].type, "prompt");
    crt_push_free(&d);
}

/* ---- versions past INT64_MAX ---------------------------------------- */

/* A version above 2^63-1 is malformed (proto.h): a ConfigPush or
 * ConfigResponse carrying one is refused with an error naming it, at the
 * version's byte offset; 2^63-1 itself, nil and 0 are fine. */
Test(proto, versions_above_int64_max_refused)
{
    static const uint64_t bad[] = {(uint64_t)INT64_MAX + 1,
                                   (UINT64_C(1) << 63) + 5, UINT64_MAX};
    crt_decode_error err;
    void *buf;
    size_t len;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "at byte 9: version %llu is above 2^63-1",
                 (unsigned long long)bad[i]);
        char *ws[1] = {"w"};
        crt_change ch = {"flow", ws, 1};
        crt_push p = {.version = bad[i], .changes = &ch, .nchanges = 1};
        crt_push dp;
        cr_assert_eq(crt_push_encode(&p, &buf, &len), 0);
        cr_assert_eq(crt_push_decode(buf, len, NULL, &dp, &err), CR_EPROTO,
                     "push version %llu", (unsigned long long)bad[i]);
        cr_assert(strstr(err.text, want) != NULL, "'%s' lacks '%s'", err.text,
                  want);
        cr_assert_eq(dp.version, 0);
        cr_assert_null(dp.changes);
        free(buf);

        crt_response r = {.version = bad[i]};
        crt_response dr;
        cr_assert_eq(crt_response_encode(&r, &buf, &len), 0);
        cr_assert_eq(crt_response_decode(buf, len, NULL, &dr, &err),
                     CR_EPROTO, "response version %llu",
                     (unsigned long long)bad[i]);
        cr_assert(strstr(err.text, want) != NULL, "'%s' lacks '%s'", err.text,
                  want);
        cr_assert_eq(dr.version, 0);
        free(buf);
    }
    crt_response r = {.version = CRT_VERSION_MAX};
    crt_response dr;
    cr_assert_eq(crt_response_encode(&r, &buf, &len), 0);
    cr_assert_eq(crt_response_decode(buf, len, NULL, &dr, &err), 0, "%s",
                 err.text);
    cr_assert_eq(dr.version, (uint64_t)INT64_MAX);
    crt_response_free(&dr);
    free(buf);
}

/* ---- hostile input --------------------------------------------------- */

static void
expect_bad(const void *buf, size_t len, const crt_limits *lim,
           const char *needle)
{
    crt_request d;
    crt_decode_error err;
    int rv = crt_request_decode(buf, len, lim, &d, &err);
    cr_assert_eq(rv, CR_EPROTO, "rv %d for %s", rv, needle);
    cr_assert_not_null(strstr(err.text, needle), "error text '%s' lacks '%s'",
                       err.text, needle);
    cr_assert_null(d.operation);
}

Test(proto, bomb_array32)
{
    static const unsigned char b[] = {0x81, 0xa4, 'k', 'e',  'y',
                                      's',  0xdd, 0x04, 0x00, 0x00, 0x00};
    expect_bad(b, sizeof(b), NULL, "array claims 67108864");
}

Test(proto, bomb_map32)
{
    static const unsigned char b[] = {0xdf, 0x04, 0x00, 0x00, 0x00};
    expect_bad(b, sizeof(b), NULL, "map claims 67108864");
    static const unsigned char c[] = {0x81, 0xa1, 'x', 0xdf, 0x04,
                                      0x00, 0x00, 0x00, 0xc0};
    expect_bad(c, sizeof(c), NULL, "map claims");
}

Test(proto, bomb_str32)
{
    static const unsigned char b[] = {0x81, 0xa9, 'o', 'p', 'e', 'r', 'a',
                                      't',  'i',  'o', 'n', 0xdb, 0x7f,
                                      0xff, 0xff, 0xff, 'a'};
    expect_bad(b, sizeof(b), NULL, "string of 2147483647 bytes");
}

Test(proto, deep_nesting)
{
    unsigned char b[3 + 200 + 1];
    b[0] = 0x81;
    b[1] = 0xa1;
    b[2] = 'x';
    memset(b + 3, 0x91, 200); /* [[[[...]]]] in an unknown key */
    b[203] = 0xc0;
    expect_bad(b, sizeof(b), NULL, "nesting deeper than 16");
    crt_limits lim = {0, 300};
    crt_request d;
    cr_assert_eq(crt_request_decode(b, sizeof(b), &lim, &d, NULL), 0);
    crt_request_free(&d);
}

Test(proto, trailing_and_oversize)
{
    crt_request r = {.operation = "get", .workspace = "w"};
    void *buf;
    size_t len;
    cr_assert_eq(crt_request_encode(&r, &buf, &len), 0);
    unsigned char *b2 = malloc(len + 1);
    memcpy(b2, buf, len);
    b2[len] = 0xc0;
    expect_bad(b2, len + 1, NULL, "1 trailing bytes");
    crt_limits lim = {len - 1, 0};
    expect_bad(buf, len, &lim, "exceeds the");
    expect_bad(buf, 0, NULL, "empty request");
    free(b2);
    free(buf);
}

Test(proto, truncated_every_prefix)
{
    crt_key keys[1] = {{"flow", "a"}};
    crt_value vals[1] = {{"flow", "f1", "{\"x\":1}", "ws"}};
    crt_request r = {.operation = "put",
                     .workspace = "default",
                     .keys = keys,
                     .nkeys = 1,
                     .type = "flow",
                     .values = vals,
                     .nvalues = 1};
    void *buf;
    size_t len;
    cr_assert_eq(crt_request_encode(&r, &buf, &len), 0);
    for (size_t n = 1; n < len; n++) {
        crt_request d;
        crt_decode_error err;
        cr_assert_eq(crt_request_decode(buf, n, NULL, &d, &err), CR_EPROTO,
                     "prefix %zu of %zu accepted", n, len);
    }
    free(buf);
}

Test(proto, wrong_types_and_nul)
{
    static const unsigned char op_int[] = {0x81, 0xa9, 'o', 'p', 'e', 'r',
                                           'a',  't',  'i', 'o', 'n', 0x05};
    expect_bad(op_int, sizeof(op_int), NULL, "expected string, found uint");
    static const unsigned char nul[] = {0x81, 0xa9, 'o', 'p', 'e', 'r', 'a',
                                        't',  'i',  'o', 'n', 0xa2, 'a', 0};
    expect_bad(nul, sizeof(nul), NULL, "NUL byte");
    static const unsigned char notmap[] = {0x91, 0xc0};
    expect_bad(notmap, sizeof(notmap), NULL, "expected map, found array");
    static const unsigned char invalid[] = {0x81, 0xa1, 'x', 0xc1};
    expect_bad(invalid, sizeof(invalid), NULL, "invalid msgpack byte");
    crt_push p;
    crt_decode_error err;
    static const unsigned char negver[] = {0x81, 0xa7, 'v', 'e', 'r', 's',
                                           'i',  'o',  'n', 0xff};
    cr_assert_eq(crt_push_decode(negver, sizeof(negver), NULL, &p, &err),
                 CR_EPROTO);
    cr_assert_not_null(strstr(err.text, "negative"));
}

Test(proto, expansion_budget)
{
    /* {"values": [{} x 1M]}: 1 byte per element on the wire, a struct
     * per element in memory; the decode budget refuses it. */
    size_t n = 1 << 20;
    size_t len = 1 + 7 + 5 + n;
    unsigned char *b = malloc(len);
    unsigned char *p = b;
    *p++ = 0x81;
    *p++ = 0xa6;
    memcpy(p, "values", 6);
    p += 6;
    *p++ = 0xdd;
    *p++ = 0;
    *p++ = 0x10;
    *p++ = 0;
    *p++ = 0;
    memset(p, 0x80, n);
    expect_bad(b, len, NULL, "more memory than its size allows");
    free(b);
}

Test(proto, random_mutations_never_crash)
{
    crt_key keys[1] = {{"flow", "a"}};
    crt_value vals[2] = {{"flow", "f1", "{\"x\":1}", "ws"},
                         {"t", "k", NULL, ""}};
    crt_request r = {.operation = "put",
                     .workspace = "default",
                     .keys = keys,
                     .nkeys = 1,
                     .values = vals,
                     .nvalues = 2};
    void *buf;
    size_t len;
    cr_assert_eq(crt_request_encode(&r, &buf, &len), 0);
    unsigned char *m = malloc(len);
    srand(12345);
    for (int it = 0; it < 20000; it++) {
        memcpy(m, buf, len);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++) {
            m[rand() % len] = (unsigned char)rand();
        }
        crt_request d;
        crt_response rs;
        crt_push ps;
        if (crt_request_decode(m, len, NULL, &d, NULL) == 0) {
            crt_request_free(&d);
        }
        if (crt_response_decode(m, len, NULL, &rs, NULL) == 0) {
            crt_response_free(&rs);
        }
        if (crt_push_decode(m, len, NULL, &ps, NULL) == 0) {
            crt_push_free(&ps);
        }
    }
    free(m);
    free(buf);
}

Test(mpread, skip_all_types)
{
    /* fixext1..16, ext8, float32/64, bin8, int64, uint64, true */
    static const unsigned char b[] = {
        0x9c, 0xd4, 1,    0xaa, 0xd5, 1,    0,    0,    0xd6, 1,    0,
        0,    0,    0,    0xd7, 1,    0,    0,    0,    0,    0,    0,
        0,    0,    0xd8, 1,    0,    0,    0,    0,    0,    0,    0,
        0,    0,    0,    0,    0,    0,    0,    0,    0,    0xc7, 2,
        1,    0,    0,    0xca, 0,    0,    0,    0,    0xcb, 0,    0,
        0,    0,    0,    0,    0,    0,    0xc4, 1,    9,    0xd3, 0x80,
        0,    0,    0,    0,    0,    0,    0,    0xcf, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xc3};
    crt_mpr r;
    crt_mpr_init(&r, b, sizeof(b), 0);
    cr_assert_eq(crt_mpr_skip(&r), 0, "%s", r.err);
    cr_assert_eq(crt_mpr_finish(&r), 0, "%s", r.err);
}
