/*
 * test_json_scan.c - the scanner accepts exactly the JSON objects jansson
 * accepts: a table of hand-picked cases, then a differential run over
 * thousands of random mutations of a real flow record.
 */
#include "json_scan.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
jansson_object(const char *p, size_t n)
{
    json_t *j = json_loadb(p, n, 0, NULL);
    bool ok = j != NULL && json_is_object(j);
    json_decref(j);
    return ok;
}

static bool
scan_ok(const char *p, size_t n)
{
    char err[256];
    return cra_json_scan_object(p, n, NULL, 0, err, sizeof(err)) == 0;
}

Test(json_scan, table)
{
    static const struct {
        const char *text;
        bool ok;
    } cases[] = {
        {"{}", true},
        {" {\"a\":1} \n", true},
        {"{\"name\":\"test_flow_1\"}", true},
        {"{\"a\":[1,2.5,-0,1e10,-3.2E-7,true,false,null,{}]}", true},
        {"{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}", true},
        {"{\"k\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", true},
        {"[]", false},
        {"\"str\"", false},
        {"42", false},
        {"null", false},
        {"", false},
        {"{", false},
        {"{\"a\":1,}", false},
        {"{\"a\" 1}", false},
        {"{a:1}", false},
        {"{\"a\":01}", false},
        {"{\"a\":1.}", false},
        {"{\"a\":.5}", false},
        {"{\"a\":+1}", false},
        {"{\"a\":tru}", false},
        {"{\"a\":\"\x01\"}", false},
        {"{\"a\":\"\\x\"}", false},
        {"{\"a\":\"\\u0000\"}", false},
        {"{\"a\":\"\\ud800\"}", false},
        {"{\"a\":\"\\udc00\"}", false},
        {"{\"a\":\"\xc3\"}", false},
        {"{\"a\":\"\xc0\xaf\"}", false},
        {"{\"a\":\"\xed\xa0\x80\"}", false},
        {"{\"a\":\"\xf5\x80\x80\x80\"}", false},
        {"{} {}", false},
        {"{}x", false},
        {"not json", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].text);
        cr_assert_eq(scan_ok(cases[i].text, n), cases[i].ok, "case %zu: %s",
                     i, cases[i].text);
        cr_assert_eq(jansson_object(cases[i].text, n), cases[i].ok,
                     "jansson disagrees on case %zu: %s", i, cases[i].text);
    }
}

Test(json_scan, blueprint_extracted_top_level_only)
{
    char bp[64], err[128];
    const char *t = "{\"x\":{\"blueprint-name\":\"inner\"},"
                    "\"blueprint-name\":\"doc\\u002drag\"}";
    cr_assert_eq(cra_json_scan_object(t, strlen(t), bp, sizeof(bp), err,
                                      sizeof(err)),
                 0);
    cr_assert_str_eq(bp, "doc-rag");
    t = "{\"blueprint-name\":7}";
    cr_assert_eq(cra_json_scan_object(t, strlen(t), bp, sizeof(bp), err,
                                      sizeof(err)),
                 0);
    cr_assert_str_eq(bp, "");
    t = "[1]";
    cr_assert_eq(cra_json_scan_object(t, strlen(t), bp, sizeof(bp), err,
                                      sizeof(err)),
                 -1);
    cr_assert_str_eq(err, "flow value is not a JSON object");
}

Test(json_scan, deep_nesting_is_bounded)
{
    size_t n = 100000;
    char *t = malloc(n * 2 + 3);
    t[0] = '{';
    t[1] = '"';
    t[2] = 'a';
    t[3] = '"';
    t[4] = ':';
    size_t k = 5;
    for (size_t i = 0; i < n; i++) {
        t[k++] = '[';
    }
    t[k] = '\0';
    char err[128];
    cr_assert_eq(cra_json_scan_object(t, k, NULL, 0, err, sizeof(err)), -1);
    free(t);
}

Test(json_scan, differential_random_mutations)
{
    FILE *f = fopen(SHARED_DIR "/data/flow-example.json", "rb");
    cr_assert_not_null(f, "needs ../shared/data/flow-example.json");
    static char base[8192];
    size_t n = fread(base, 1, sizeof(base), f);
    fclose(f);
    cr_assert(jansson_object(base, n) && scan_ok(base, n));
    static const char alphabet[] = "{}[]\",:\\u0123456789.eE+-tfnl \x01\xc3"
                                   "\xa9\xff";
    unsigned seed = 12345;
    char buf[8192];
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, base, n);
        size_t len = n;
        int edits = 1 + (int)(rand_r(&seed) % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)rand_r(&seed) % len;
            int kind = rand_r(&seed) % 3;
            char c = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
            if (kind == 0) {
                buf[at] = c;
            } else if (kind == 1 && len > 1) {
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            } else if (len < sizeof(buf) - 1) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = c;
                len++;
            }
        }
        cr_assert_eq(scan_ok(buf, len), jansson_object(buf, len),
                     "round %d disagrees on: %.*s", round, (int)len, buf);
    }
}

/* Strings are skipped eight bytes at a time when plain (json_scan.c,
 * plain8): every byte value at every position of a long string, and so
 * in every lane of a word and across word ends, must be judged exactly
 * as jansson judges it. */
Test(json_scan, every_byte_at_every_offset_of_a_string)
{
    char buf[64];
    for (int b = 1; b < 256; b++) {
        for (int off = 0; off < 20; off++) {
            int len = snprintf(buf, sizeof(buf), "{\"k\":\"%s\"}",
                               "aaaaaaaaaaaaaaaaaaaa");
            buf[6 + off] = (char)b;
            cr_assert_eq(scan_ok(buf, (size_t)len),
                         jansson_object(buf, (size_t)len),
                         "byte 0x%02x at offset %d disagrees", b, off);
        }
    }
}
