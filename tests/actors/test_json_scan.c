/*
 * test_json_scan.c - the scanner accepts exactly the JSON objects jansson
 * accepts, and extracts the "blueprint-name" jansson gives: a table of
 * hand-picked cases, then differential runs against json_loadb over
 * thousands of random mutations of real flow records, random numbers
 * (huge ones included), nesting around jansson's depth limit, duplicate
 * and escaped "blueprint-name" keys, and truncation.
 */
#include "json_scan.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
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

/* jansson_bp tells whether jansson accepts p[0..n) as an object and sets
 * bp[0..bplen) to what the scanner must give (json_scan.h): the string
 * json_object_get(root, "blueprint-name") holds ("" if none or not a
 * string), cut to its longest prefix of whole UTF-8 characters that fits
 * in bplen - 1 bytes. */
static bool
jansson_bp(const char *p, size_t n, char *bp, size_t bplen)
{
    json_t *j = json_loadb(p, n, 0, NULL);
    bool ok = j != NULL && json_is_object(j);
    json_t *b = ok ? json_object_get(j, "blueprint-name") : NULL;
    size_t len = 0;
    if (json_is_string(b)) {
        const char *v = json_string_value(b);
        len = json_string_length(b);
        if (len > bplen - 1) {
            len = bplen - 1;
            while (len > 0 && ((unsigned char)v[len] & 0xC0) == 0x80) {
                len--; /* v[len] continues the character before it */
            }
        }
        memcpy(bp, v, len);
    }
    bp[len] = '\0';
    json_decref(j);
    return ok;
}

/* same_as_jansson asserts that the scanner's verdict on p[0..n) and the
 * blueprint it extracts into bplen bytes are jansson's. */
static void
same_as_jansson(const char *what, const char *p, size_t n, size_t bplen)
{
    char want[512], got[512], err[256];
    cr_assert(bplen > 0 && bplen <= sizeof(got));
    bool jok = jansson_bp(p, n, want, bplen);
    memset(got, 'X', sizeof(got));
    int rc = cra_json_scan_object(p, n, got, bplen, err, sizeof(err));
    int show = n > 240 ? 240 : (int)n;
    cr_assert_eq(rc == 0, jok, "%s: scanner: %s, jansson: %s, on %.*s%s",
                 what, rc == 0 ? "accepts" : err, jok ? "accepts" : "rejects",
                 show, p, (size_t)show < n ? "..." : "");
    if (jok) {
        cr_assert_str_eq(got, want, "%s: blueprint (bplen %zu) on %.*s%s",
                         what, bplen, show, p, (size_t)show < n ? "..." : "");
    } else {
        cr_assert_str_eq(got, "", "%s: blueprint left after an error", what);
    }
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

/* mutations applies 20,000 rounds of 1-3 random byte edits to base and
 * compares each result with jansson, blueprint included (a random bplen,
 * short ones often, to cut the blueprint at every place). */
static void
mutations(const char *name, const char *base, size_t n, unsigned seed)
{
    char bp[256];
    cr_assert(jansson_bp(base, n, bp, sizeof(bp)) && scan_ok(base, n));
    static const char alphabet[] = "{}[]\",:\\u0123456789.eE+-tfnl \x01\xc3"
                                   "\xa9\xff";
    char buf[8192], what[64];
    cr_assert(n < sizeof(buf));
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
        size_t bplen = round % 4 == 0 ? 256 : 1 + (size_t)rand_r(&seed) % 24;
        snprintf(what, sizeof(what), "%s round %d", name, round);
        same_as_jansson(what, buf, len, bplen);
    }
}

Test(json_scan, differential_random_mutations)
{
    FILE *f = fopen(SHARED_DIR "/data/flow-example.json", "rb");
    cr_assert_not_null(f, "needs ../shared/data/flow-example.json");
    static char base[8192];
    size_t n = fread(base, 1, sizeof(base) - 1, f);
    fclose(f);
    mutations("flow-example.json", base, n, 12345);
}

/* The same over a flow made of what the scanner once got wrong: numbers
 * at the edges of long long and double (one more digit overflows), the
 * blueprint given twice, the second time with an escaped key and escaped
 * and multibyte characters to cut, a "blueprint-name" nested below. */
Test(json_scan, differential_random_mutations_of_edge_cases)
{
    static const char tricky[] =
        "{\"blueprint-name\":\"first\",\"n\":[9223372036854775807,"
        "-9223372036854775808,1.7976931348623157e308,-1e308,1e-400,"
        "0.5E+3,922337203685477580],"
        "\"blueprint\\u002dname\":\"caf\\u00e9-\xc3\xa9t\xc3\xa9-"
        "\\ud83d\\ude00\xf0\x9f\x98\x80x\\/y\","
        "\"x\":{\"blueprint-name\":\"inner\"},\"z\":[[[[{}]]]]}";
    mutations("edge cases", tricky, sizeof(tricky) - 1, 777);
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

/* Numbers out of range, as jansson 2.14 reports them: integers (no '.',
 * no exponent) outside long long ("too big integer", "too big negative
 * integer"), reals strtod turns into +-HUGE_VAL ("real number overflow");
 * a real that underflows is accepted. */
Test(json_scan, numbers_out_of_range)
{
    static const struct {
        const char *num;
        const char *err; /* NULL: accepted */
    } cases[] = {
        {"9223372036854775807", NULL},
        {"9223372036854775808", "too big integer"},
        {"18446744073709551616", "too big integer"},
        {"10000000000000000000", "too big integer"},
        {"-9223372036854775808", NULL},
        {"-9223372036854775809", "too big negative integer"},
        {"-18446744073709551616", "too big negative integer"},
        {"-0", NULL},
        {"1e400", "real number overflow"},
        {"-1e400", "real number overflow"},
        {"1E+309", "real number overflow"},
        {"1e308", NULL},
        {"1.7976931348623157e308", NULL},
        {"1.7976931348623158e308", NULL},
        {"1.7976931348623159e308", "real number overflow"},
        {"-1.7976931348623159e308", "real number overflow"},
        {"0.1e310", "real number overflow"},
        {"0.01e310", NULL},
        {"1e-400", NULL},
        {"-1e-400", NULL},
        {"4.9e-324", NULL},
        {"0e99999999999999999999", NULL},
        {"0.000e99999999999999999999", NULL},
        {"1e99999999999999999999", "real number overflow"},
        {"1e-99999999999999999999", NULL},
        {"9223372036854775808.0", NULL},
        {"9223372036854775808e0", NULL},
        /* 2^1024 - 2^970, the least decimal rounding to infinity (a tie,
         * to even), written in several ways; one less is DBL_MAX. */
        {"17976931348623158079372897140530341507993413271003782693617377898"
         "04449682927647509466490179775872070963302864166928879109465555478"
         "51940402630657488671505820681908902000708383676273854845817711531"
         "76447573027006985557136695962284291481986083493647529271907416844"
         "4365510704342711559699508093042880177904174497792.0",
         "real number overflow"},
        {"17976931348623158079372897140530341507993413271003782693617377898"
         "04449682927647509466490179775872070963302864166928879109465555478"
         "51940402630657488671505820681908902000708383676273854845817711531"
         "76447573027006985557136695962284291481986083493647529271907416844"
         "4365510704342711559699508093042880177904174497791.999e0",
         NULL},
        {"0.0017976931348623158079372897140530341507993413271003782693617377"
         "89804449682927647509466490179775872070963302864166928879109465555"
         "47851940402630657488671505820681908902000708383676273854845817711"
         "53176447573027006985557136695962284291481986083493647529271907416"
         "8444365510704342711559699508093042880177904174497792e311",
         "real number overflow"},
        {"1.7976931348623158079372897140530341507993413271003782693617377898"
         "04449682927647509466490179775872070963302864166928879109465555478"
         "51940402630657488671505820681908902000708383676273854845817711531"
         "76447573027006985557136695962284291481986083493647529271907416844"
         "43655107043427115596995080930428801779041744977919999999999e308",
         NULL},
    };
    char text[600], err[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = snprintf(text, sizeof(text), "{\"a\":%s}", cases[i].num);
        cr_assert(n > 0 && (size_t)n < sizeof(text));
        json_error_t je;
        json_t *j = json_loadb(text, (size_t)n, 0, &je);
        cr_assert_eq(j == NULL, cases[i].err != NULL, "jansson on %s: %s",
                     cases[i].num, j == NULL ? je.text : "accepted");
        if (j == NULL) {
            cr_assert(strstr(je.text, cases[i].err) == je.text,
                      "jansson on %s: %s", cases[i].num, je.text);
        }
        json_decref(j);
        int rc = cra_json_scan_object(text, (size_t)n, NULL, 0, err,
                                      sizeof(err));
        cr_assert_eq(rc != 0, cases[i].err != NULL, "scanner on %s: %s",
                     cases[i].num, rc != 0 ? err : "accepted");
        if (rc != 0) {
            char want[128];
            snprintf(want, sizeof(want),
                     "flow value is not valid JSON: %s at byte 5",
                     cases[i].err);
            cr_assert_str_eq(err, want, "scanner on %s", cases[i].num);
        }
    }
}

/* random_number writes a random JSON number: digits of random length,
 * often near a limit (long long's, double's 309 digits, or the digits of
 * the least overflowing decimal with the point anywhere), a fraction and
 * an exponent or not, exponents small, near +-308 or enormous. */
static int
random_number(unsigned *seed, char *out, size_t cap)
{
    static const char huge[] =
        "17976931348623158079372897140530341507993413271003782693617377898"
        "04449682927647509466490179775872070963302864166928879109465555478"
        "51940402630657488671505820681908902000708383676273854845817711531"
        "76447573027006985557136695962284291481986083493647529271907416844"
        "4365510704342711559699508093042880177904174497792";
    static const char *const ints[] = {
        "9223372036854775806", "9223372036854775807", "9223372036854775808",
        "9223372036854775809", "9999999999999999999", "1000000000000000000",
        "18446744073709551615"};
    char digits[400];
    size_t nd = 0;
    int kind = rand_r(seed) % 4;
    if (kind == 0) { /* one of the long long edges */
        const char *s = ints[rand_r(seed) % (sizeof(ints) / sizeof(ints[0]))];
        nd = strlen(s);
        memcpy(digits, s, nd);
    } else if (kind == 1) { /* a prefix of huge, its last digit moved */
        nd = 1 + (size_t)rand_r(seed) % (sizeof(huge) - 1);
        memcpy(digits, huge, nd);
        int r = rand_r(seed) % 3;
        if (r == 1 && digits[nd - 1] < '9') {
            digits[nd - 1]++;
        } else if (r == 2 && digits[nd - 1] > '0') {
            digits[nd - 1]--;
        }
        if (nd == sizeof(huge) - 1 && rand_r(seed) % 2) {
            digits[nd++] = (char)('0' + rand_r(seed) % 10);
        }
    } else { /* random digits */
        nd = 1 + (size_t)rand_r(seed) % (kind == 2 ? 25 : 330);
        for (size_t i = 0; i < nd; i++) {
            digits[i] = (char)('0' + rand_r(seed) % 10);
        }
        digits[0] = (char)('1' + rand_r(seed) % 9);
    }
    size_t zeros = rand_r(seed) % 4 == 0 ? (size_t)rand_r(seed) % 30 : 0;
    /* where the point goes: none, inside, or "0.000digits" */
    size_t point = rand_r(seed) % 3 == 0 ? nd : (size_t)rand_r(seed) % nd;
    int k = 0;
    char *o = out;
    if (rand_r(seed) % 2) {
        o[k++] = '-';
    }
    if (point == 0) {
        k += snprintf(o + k, cap - (size_t)k, "0.");
        for (size_t i = 0; i < zeros; i++) {
            o[k++] = '0';
        }
        memcpy(o + k, digits, nd);
        k += (int)nd;
    } else {
        memcpy(o + k, digits, point);
        k += (int)point;
        if (point < nd) {
            o[k++] = '.';
            memcpy(o + k, digits + point, nd - point);
            k += (int)(nd - point);
        }
    }
    o[k] = '\0';
    /* the exponent that puts the value near 1e309 when digits came from
     * huge, else a random one */
    long long e;
    switch (rand_r(seed) % 5) {
    case 0:
        return k; /* none */
    case 1:
        e = 309 - (long long)point + (point == 0 ? (long long)zeros : 0);
        e += rand_r(seed) % 3 - 1;
        break;
    case 2:
        e = rand_r(seed) % 700 - 350;
        break;
    case 3: /* enormous: 17 to 24 digits, past any int64 */
        k += snprintf(o + k, cap - (size_t)k, "e%s%d",
                      rand_r(seed) % 2 ? "-" : "", 1 + rand_r(seed) % 9);
        for (int i = 16 + rand_r(seed) % 8; i > 0; i--) {
            o[k++] = (char)('0' + rand_r(seed) % 10);
        }
        o[k] = '\0';
        return k;
    default:
        e = rand_r(seed) % 20 - 10;
        break;
    }
    const char *sign = e < 0 ? "-" : rand_r(seed) % 2 ? "+" : "";
    k += snprintf(o + k, cap - (size_t)k, "%c%s%lld",
                  rand_r(seed) % 2 ? 'e' : 'E', sign, e < 0 ? -e : e);
    return k;
}

Test(json_scan, differential_random_numbers)
{
    unsigned seed = 4242;
    char num[600], text[700];
    int rejected = 0;
    for (int round = 0; round < 100000; round++) {
        random_number(&seed, num, sizeof(num));
        int n = snprintf(text, sizeof(text), "{\"a\":[%s]}", num);
        cr_assert(n > 0 && (size_t)n < sizeof(text));
        bool ok = jansson_object(text, (size_t)n);
        rejected += !ok;
        cr_assert_eq(scan_ok(text, (size_t)n), ok, "round %d: jansson %s %s",
                     round, ok ? "accepts" : "rejects", num);
    }
    /* both ways, plenty of each */
    cr_assert(rejected > 10000 && rejected < 90000, "%d rejected", rejected);
}

/* nest writes {"a": + levels - 1 containers (open, an object's key
 * included) + inner + their ends + }: inner is at level levels + 1
 * (jansson counts the outermost object as 1). */
static size_t
nest(char *t, int levels, const char *open, const char *close,
     const char *inner)
{
    size_t k = 0;
    k += (size_t)sprintf(t + k, "{\"a\":");
    for (int i = 1; i < levels; i++) {
        k += (size_t)sprintf(t + k, "%s", open);
    }
    k += (size_t)sprintf(t + k, "%s", inner);
    for (int i = 1; i < levels; i++) {
        k += (size_t)sprintf(t + k, "%s", close);
    }
    k += (size_t)sprintf(t + k, "}");
    return k;
}

/* jansson 2.14 (JSON_PARSER_MAX_DEPTH 2048) counts every value, scalars
 * included, the outermost being level 1: 2048 levels of containers are
 * accepted, a scalar or an empty container one level further is not. */
Test(json_scan, depth_limit_is_jansson_s)
{
    static const struct {
        const char *open, *close;
    } shapes[] = {{"[", "]"}, {"{\"k\":", "}"}, {"[{\"k\":", "}]"}};
    static const char *const inners[] = {"", "[]", "{}", "1", "\"s\"",
                                         "null", "[1]", "{\"b\":1}"};
    char *t = malloc(2100 * 8 + 64);
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        for (size_t i = 0; i < sizeof(inners) / sizeof(inners[0]); i++) {
            for (int levels = 2040; levels <= 2052; levels++) {
                const char *open = shapes[s].open, *close = shapes[s].close;
                int lv = levels;
                if (s == 2) {
                    lv = levels / 2; /* two levels per step */
                }
                size_t n = nest(t, lv, open, close, inners[i]);
                char what[96];
                snprintf(what, sizeof(what), "%d x %s around %s", lv, open,
                         inners[i]);
                same_as_jansson(what, t, n, 64);
            }
        }
    }
    /* the edge, said outright: 2048 levels of objects and arrays */
    size_t n = nest(t, 2048, "[", "]", "");
    cr_assert(scan_ok(t, n) && jansson_object(t, n));
    n = nest(t, 2047, "[", "]", "[]");
    cr_assert(scan_ok(t, n) && jansson_object(t, n));
    n = nest(t, 2047, "[", "]", "7");
    cr_assert(scan_ok(t, n) && jansson_object(t, n));
    n = nest(t, 2048, "[", "]", "7");
    cr_assert(!scan_ok(t, n) && !jansson_object(t, n));
    n = nest(t, 2048, "[", "]", "[]");
    char err[128];
    cr_assert_eq(cra_json_scan_object(t, n, NULL, 0, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "flow value is not valid JSON: nested too deeply "
                          "at byte 2052");
    free(t);
}

struct deep_run {
    const char *t;
    size_t n;
    int rc;
    char bp[32];
};

static void *
deep_thread(void *arg)
{
    struct deep_run *r = arg;
    char err[128];
    r->rc = cra_json_scan_object(r->t, r->n, r->bp, sizeof(r->bp), err,
                                 sizeof(err));
    return NULL;
}

/* 2048 levels on a stack much smaller than an actor's (256 KiB): the
 * scanner must not take a frame per level. */
Test(json_scan, deepest_nesting_fits_a_small_stack)
{
    char *t = malloc(2048 * 6 + 64);
    size_t k = (size_t)sprintf(t, "{\"blueprint-name\":\"deep\",\"a\":");
    for (int i = 1; i < 2048; i++) {
        k += (size_t)sprintf(t + k, i % 2 ? "[" : "{\"k\":");
    }
    for (int i = 2047; i >= 1; i--) {
        t[k++] = i % 2 ? ']' : '}';
    }
    t[k++] = '}';
    cr_assert(jansson_object(t, k));
    struct deep_run r = {.t = t, .n = k, .rc = -2};
    pthread_attr_t a;
    pthread_t th;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    cr_assert_eq(pthread_create(&th, &a, deep_thread, &r), 0);
    pthread_join(th, NULL);
    pthread_attr_destroy(&a);
    cr_assert_eq(r.rc, 0);
    cr_assert_str_eq(r.bp, "deep");
    free(t);
}

/* "blueprint-name" as json_object_get finds it: the key compared once
 * unescaped, the last duplicate winning even when it is not a string. */
Test(json_scan, blueprint_is_jansson_s)
{
    static const struct {
        const char *text;
        const char *bp; /* NULL: rejected */
    } cases[] = {
        {"{\"blueprint-name\":\"x\",\"blueprint-name\":\"y\"}", "y"},
        {"{\"blueprint-name\":\"x\",\"blueprint-name\":7}", ""},
        {"{\"blueprint-name\":\"x\",\"blueprint-name\":null}", ""},
        {"{\"blueprint-name\":\"x\",\"blueprint-name\":"
         "{\"blueprint-name\":\"z\"}}",
         ""},
        {"{\"blueprint-name\":\"x\",\"blueprint-name\":[\"z\"]}", ""},
        {"{\"blueprint-name\":7,\"blueprint-name\":\"y\"}", "y"},
        {"{\"blueprint-name\":\"x\",\"a\":1,\"blueprint-name\":\"y\",\"b\":2}",
         "y"},
        {"{\"blueprint\\u002dname\":\"y\"}", "y"},
        {"{\"\\u0062lueprint-name\":\"y\",\"a\":1}", "y"},
        {"{\"blueprint\\u002Dnam\\u0065\":\"y\"}", "y"},
        {"{\"blueprint-name\":\"x\",\"blueprint\\u002dname\":\"y\"}", "y"},
        {"{\"blueprint\\u002dname\":\"x\",\"blueprint-name\":5}", ""},
        {"{\"blueprint\\u002dname\\u00e9\":\"y\"}", ""},
        {"{\"blueprint\\u002dnam\":\"y\"}", ""},
        {"{\"blueprint\\u002dnamee\":\"y\"}", ""},
        {"{\"blueprint-name \":\"y\"}", ""},
        {"{\"blueprint-nam\xc3\xa9\":\"y\"}", ""},
        {"{\"blueprint\\/name\":\"y\"}", ""},
        {"{\"x\":{\"blueprint-name\":\"inner\"}}", ""},
        {"{\"blueprint-name\":\"x\",\"x\":{\"blueprint-name\":\"inner\"}}",
         "x"},
        {"{\"blueprint-name\":\"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\"}",
         "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80"},
        {"{\"blueprint-name\":\"x\",\"blueprint-name\":\"y\",}", NULL},
        {"{\"blueprint-name\":\"x\",\"n\":1e400}", NULL},
        {"{\"blueprint-name\\u0000\":\"y\"}", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].text;
        char bp[64], err[256], what[32];
        snprintf(what, sizeof(what), "case %zu", i);
        same_as_jansson(what, t, strlen(t), sizeof(bp));
        int rc = cra_json_scan_object(t, strlen(t), bp, sizeof(bp), err,
                                      sizeof(err));
        cr_assert_eq(rc == 0, cases[i].bp != NULL, "case %zu: %s", i, t);
        cr_assert_str_eq(bp, cases[i].bp ? cases[i].bp : "", "case %zu: %s",
                         i, t);
    }
}

/* A blueprint that does not fit is cut to a prefix of its unescaped
 * value, at a character boundary: every bplen, with escapes, raw
 * multibyte characters and surrogate pairs right at the cut. */
Test(json_scan, blueprint_truncated_to_a_prefix)
{
    static const char *const values[] = {
        "ab\\u00e9c\\ud83d\\ude00d\xc3\xa9" "e\\/f\\u20acg\xf0\x9f\x98\x80h",
        "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\\n\\t\\\"xyz",
        "\\u0041\\u00c9\\u0800\\ud800\\udc00zzzzzz",
        "plain-ascii-blueprint-name-that-is-long",
    };
    char t[256];
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
        int n = snprintf(t, sizeof(t), "{\"blueprint-name\":\"%s\"}",
                         values[v]);
        for (size_t bplen = 1; bplen <= 48; bplen++) {
            char what[48];
            snprintf(what, sizeof(what), "value %zu, bplen %zu", v, bplen);
            same_as_jansson(what, t, (size_t)n, bplen);
        }
    }
    /* outright: "aé b" in 3 bytes is "a", not "a " */
    const char *s = "{\"blueprint-name\":\"a\xc3\xa9 b\"}";
    char bp[3], err[64];
    cr_assert_eq(cra_json_scan_object(s, strlen(s), bp, sizeof(bp), err,
                                      sizeof(err)),
                 0);
    cr_assert_str_eq(bp, "a");
}
