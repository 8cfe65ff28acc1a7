/*
 * json_scan.c - a single-pass JSON validator (RFC 8259) that mirrors
 * jansson's decoder (json_loadb, flags 0) on what it rejects: invalid
 * UTF-8, control characters in strings, "\u0000", lone surrogates, leading
 * zeros, integers outside long long, reals that overflow a double, more
 * than JSON_PARSER_MAX_DEPTH levels, trailing garbage.
 *
 * Iterative: the open containers are a bit stack, so jansson's 2048
 * levels cost 256 bytes of the (256 KiB) actor stack, not 2048 frames.
 */
#include "json_scan.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cfgrecv/utf8.h"

typedef struct scan {
    const unsigned char *p, *start, *end;
    char *err;
    size_t errlen;
    bool failed;
} scan;

/* sink: where string() copies an unescaped string, whole characters only:
 * once one does not fit in room bytes, nothing more is copied (cut), so
 * the copy is a prefix of the string and valid UTF-8. */
typedef struct sink {
    char *out;
    size_t n, room;
    bool cut;
} sink;

static int
fail(scan *s, const char *what)
{
    if (!s->failed) {
        s->failed = true;
        snprintf(s->err, s->errlen, "flow value is not valid JSON: %s at "
                                    "byte %zu",
                 what, (size_t)(s->p - s->start));
    }
    return -1;
}

static void
ws(scan *s)
{
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) {
        s->p++;
    }
}

static void
put(sink *k, const void *c, size_t len)
{
    if (!k->cut && len <= k->room - k->n) {
        memcpy(k->out + k->n, c, len);
        k->n += len;
    } else {
        k->cut = true;
    }
}

static int
hex4(scan *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (s->p >= s->end) {
            return fail(s, "truncated \\u escape");
        }
        unsigned c = *s->p++;
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v |= c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v |= c - 'A' + 10;
        } else {
            return fail(s, "bad \\u escape");
        }
    }
    *out = v;
    return 0;
}

static size_t
put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* utf8 validates one multi-byte sequence starting at s->p (lead >= 0x80)
 * and copies it to k (if any). */
static int
utf8(scan *s, sink *k)
{
    const unsigned char *p = s->p;
    int len = cr_utf8_seq(p, (size_t)(s->end - p));
    if (len < 0) {
        return fail(s, len == CR_UTF8_TRUNCATED ? "truncated UTF-8"
                                                 : "invalid UTF-8");
    }
    if (k != NULL) {
        put(k, p, (size_t)len);
    }
    s->p += len;
    return 0;
}

/* plain8 tells whether the 8 bytes at p are all plain string bytes
 * (0x20..0x7F except '"' and '\\'), eight at a time with the classic
 * SWAR has-zero / has-less-than word tests, so the common case of a
 * string skips the per-byte checks below. Exact: never a false "plain". */
static inline bool
plain8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ULL;
    const uint64_t highs = 0x8080808080808080ULL;
    uint64_t x, q, b;
    memcpy(&x, p, 8);
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    uint64_t special = ((x - ones * 0x20) & ~x) | /* byte < 0x20 */
                       ((q - ones) & ~q) |        /* byte == '"' */
                       ((b - ones) & ~b) |        /* byte == '\\' */
                       x;                         /* byte >= 0x80 */
    return (special & highs) == 0;
}

/* string scans a string at s->p ('"'); if k is not NULL the unescaped
 * text is copied into it (a prefix of whole characters, see sink) and
 * NUL-terminated. */
static int
string(scan *s, sink *k)
{
    s->p++; /* opening quote */
    while (s->p < s->end) {
        if (k == NULL) {
            while (s->end - s->p >= 8 && plain8(s->p)) {
                s->p += 8;
            }
            if (s->p >= s->end) {
                break;
            }
        }
        unsigned c = *s->p;
        if (c == '"') {
            s->p++;
            if (k != NULL) {
                k->out[k->n] = '\0';
            }
            return 0;
        }
        if (c < 0x20) {
            return fail(s, "control character in a string");
        }
        if (c >= 0x80) {
            if (utf8(s, k) != 0) {
                return -1;
            }
            continue;
        }
        s->p++;
        if (c != '\\') {
            if (k != NULL) {
                char ch = (char)c;
                put(k, &ch, 1);
            }
            continue;
        }
        if (s->p >= s->end) {
            break;
        }
        c = *s->p++;
        unsigned cp;
        switch (c) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (hex4(s, &cp) != 0) {
                return -1;
            }
            if (cp == 0) {
                return fail(s, "\\u0000 is not allowed");
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return fail(s, "lone low surrogate");
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u') {
                    return fail(s, "lone high surrogate");
                }
                s->p += 2;
                if (hex4(s, &lo) != 0) {
                    return -1;
                }
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    return fail(s, "bad surrogate pair");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            break;
        default:
            return fail(s, "bad escape");
        }
        if (k != NULL) {
            char u[4];
            put(k, u, put_utf8(u, cp));
        }
    }
    return fail(s, "unterminated string");
}

/* is_bp_key tells whether the key string that was just scanned at k
 * (opening quote) .. s->p (after the closing quote) is "blueprint-name"
 * once unescaped, as jansson compares keys. Plain keys are compared as
 * they are; only one with an escape, long enough to be one, is decoded
 * again. */
static bool
is_bp_key(scan *s, const unsigned char *k)
{
    static const char name[] = "blueprint-name";
    size_t raw = (size_t)(s->p - k) - 2, len = sizeof(name) - 1;
    if (raw == len) {
        return memcmp(k + 1, name, len) == 0;
    }
    if (raw < len || memchr(k + 1, '\\', raw) == NULL) {
        return false;
    }
    char buf[sizeof(name)];
    sink key = {.out = buf, .room = len};
    scan again = {.p = k, .start = s->start, .end = s->p,
                  .err = NULL, .errlen = 0, .failed = true};
    (void)string(&again, &key); /* valid: it was scanned already */
    return !key.cut && key.n == len && memcmp(buf, name, len) == 0;
}

/* too_big_real tells whether a number (without its sign) with integer
 * digits [ib, ie), fraction digits [fb, fe) (fb == fe == ie if none) and
 * exponent digits [xb, xe) (sign at xb[-1] if any; xb == xe if none)
 * overflows a double, that is whether strtod would return +-HUGE_VAL with
 * ERANGE (jansson's "real number overflow"). Decided on the digits, not
 * with strtod: exact for numbers of any length, no copy, and independent
 * of LC_NUMERIC (strtod wants the locale's decimal point; jansson
 * rewrites '.' to it before calling strtod, so it is locale-independent
 * too). Underflow is not an error in jansson, nor here. Assumes the
 * default round-to-nearest mode, as strtod in jansson does. */
static bool
too_big_real(const unsigned char *ib, const unsigned char *ie,
             const unsigned char *fb, const unsigned char *fe,
             const unsigned char *xb, const unsigned char *xe)
{
    /* The least decimal that rounds to infinity: 2^1024 - 2^970, halfway
     * between DBL_MAX and 2^1024 (a tie goes to the even significand,
     * 2^1024). 309 digits, so a value overflows iff it is
     * 0.d1d2... x 10^e with e > 309, or e == 309 and d1d2... >= these. */
    static const char huge[] =
        "17976931348623158079372897140530341507993413271003782693617377898"
        "04449682927647509466490179775872070963302864166928879109465555478"
        "51940402630657488671505820681908902000708383676273854845817711531"
        "76447573027006985557136695962284291481986083493647529271907416844"
        "4365510704342711559699508093042880177904174497792";
    /* the exponent saturates at 1e17: far past 309 even less a text's
     * length of leading zeros, and x * 10 + 9 still fits */
    const long long cap = 100000000000000000LL;
    long long x = 0, e;
    for (const unsigned char *q = xb; q < xe; q++) {
        if (x < cap) {
            x = x * 10 + (*q - '0');
        }
    }
    if (xb < xe && xb[-1] == '-') {
        x = -x;
    }
    const unsigned char *d = ib; /* first significant digit */
    if (*ib != '0') {
        e = (long long)(ie - ib) + x; /* no leading zeros: ib[0] != '0' */
    } else {                          /* "0" then maybe a fraction */
        for (d = fb; d < fe && *d == '0'; d++) {
        }
        if (d == fe) {
            return false; /* zero */
        }
        e = x - (long long)(d - fb);
    }
    if (e != 309) {
        return e > 309;
    }
    for (size_t i = 0; i < sizeof(huge) - 1; i++) {
        if (d == ie) {
            d = fb; /* over the '.' */
        }
        char c = d < fe ? (char)*d++ : '0';
        if (c != huge[i]) {
            return c > huge[i];
        }
    }
    return true; /* >= 2^1024 - 2^970 */
}

static const unsigned char *
digits(scan *s)
{
    const unsigned char *b = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        s->p++;
    }
    return s->p > b ? s->p : NULL;
}

/* number scans a number; out of range is an error, as in jansson: an
 * integer (no fraction, no exponent) must fit json_int_t (long long), a
 * real must not overflow a double. Reported at the number's first byte. */
static int
number(scan *s)
{
    _Static_assert(LLONG_MAX == 9223372036854775807LL, "json_int_t");
    const unsigned char *b = s->p;
    bool neg = *s->p == '-';
    if (neg) {
        s->p++;
    }
    const unsigned char *ib = s->p, *ie, *fb, *fe, *xb, *xe;
    if (s->p < s->end && *s->p == '0') {
        s->p++;
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            return fail(s, "leading zero");
        }
    } else if (digits(s) == NULL) {
        return fail(s, "bad number");
    }
    ie = fb = fe = s->p;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        fb = s->p;
        if ((fe = digits(s)) == NULL) {
            return fail(s, "bad number");
        }
    }
    xb = xe = s->p;
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) {
            s->p++;
        }
        xb = s->p;
        if ((xe = digits(s)) == NULL) {
            return fail(s, "bad number");
        }
    }
    const char *what = NULL;
    if (xb == fe && fb == ie) { /* an integer */
        size_t n = (size_t)(ie - ib);
        if (n > 19 ||
            (n == 19 && memcmp(ib, neg ? "9223372036854775808"
                                       : "9223372036854775807", 19) > 0)) {
            what = neg ? "too big negative integer" : "too big integer";
        }
    } else if (too_big_real(ib, ie, fb, fe, xb, xe)) {
        what = "real number overflow";
    }
    if (what != NULL) {
        s->p = b;
        return fail(s, what);
    }
    return 0;
}

static int
literal(scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
        return fail(s, "unexpected token");
    }
    s->p += n;
    return 0;
}

static int
scalar(scan *s)
{
    switch (*s->p) {
    case '"':
        return string(s, NULL);
    case 't':
        return literal(s, "true");
    case 'f':
        return literal(s, "false");
    case 'n':
        return literal(s, "null");
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
            return number(s);
        }
        return fail(s, "unexpected character");
    }
}

/* parse scans one value and all that it holds, without recursion. Depth
 * is counted as jansson counts it: every value, scalars included, is one
 * level deeper than its container, the outermost value is level 1, and a
 * value at a level past CRA_JSON_MAX_DEPTH is an error. When bp is not
 * NULL (the value is an object), a top-level "blueprint-name" member sets
 * it: the last such member wins, "" if its value is not a string. */
static int
parse(scan *s, sink *bp)
{
    _Static_assert(CRA_JSON_MAX_DEPTH % 8 == 0, "whole bytes of bits");
    unsigned char obj[CRA_JSON_MAX_DEPTH / 8]; /* 1 bit per open level */
    size_t depth = 0;                          /* containers open */
    bool is_obj = false, want_bp = false;
    const unsigned char *key;

value: /* a value at level depth + 1 */
    if (depth >= CRA_JSON_MAX_DEPTH) {
        return fail(s, "nested too deeply");
    }
    if (s->p >= s->end) {
        return fail(s, "unexpected end");
    }
    if (want_bp) {
        want_bp = false;
        bp->n = 0;
        bp->cut = false;
        bp->out[0] = '\0';
        if (*s->p == '"') {
            if (string(s, bp) != 0) {
                return -1;
            }
            goto next;
        }
    }
    if (*s->p == '{' || *s->p == '[') {
        is_obj = *s->p == '{';
        if (is_obj) {
            obj[depth / 8] |= (unsigned char)(1u << (depth % 8));
        } else {
            obj[depth / 8] &= (unsigned char)~(1u << (depth % 8));
        }
        depth++;
        s->p++;
        ws(s);
        if (s->p < s->end && *s->p == (is_obj ? '}' : ']')) {
            s->p++;
            depth--;
            goto next;
        }
        if (is_obj) {
            goto member;
        }
        goto value;
    }
    if (scalar(s) != 0) {
        return -1;
    }

next: /* after a value: the next member, or the end of containers */
    if (depth == 0) {
        return 0;
    }
    is_obj = (obj[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
    ws(s);
    if (s->p >= s->end) {
        return fail(s, "unexpected end");
    }
    if (*s->p == (is_obj ? '}' : ']')) {
        s->p++;
        depth--;
        goto next;
    }
    if (*s->p != ',') {
        return fail(s, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    s->p++;
    ws(s);
    if (!is_obj) {
        goto value;
    }

member: /* at a key of the object at level depth */
    if (s->p >= s->end || *s->p != '"') {
        return fail(s, "expected a string key");
    }
    key = s->p;
    if (string(s, NULL) != 0) {
        return -1;
    }
    want_bp = bp != NULL && depth == 1 && is_bp_key(s, key);
    ws(s);
    if (s->p >= s->end || *s->p != ':') {
        return fail(s, "expected ':'");
    }
    s->p++;
    ws(s);
    goto value;
}

int
cra_json_scan_object(const char *p, size_t n, char *bp, size_t bplen,
                     char *err, size_t errlen)
{
    scan s = {.p = (const unsigned char *)p,
              .start = (const unsigned char *)p,
              .end = (const unsigned char *)p + n,
              .err = err,
              .errlen = errlen};
    sink b = {.out = bp, .room = bplen > 0 ? bplen - 1 : 0};
    if (bp != NULL && bplen > 0) {
        bp[0] = '\0';
    }
    ws(&s);
    bool object = s.p < s.end && *s.p == '{';
    int rc = parse(&s, object && bp != NULL && bplen > 0 ? &b : NULL);
    ws(&s);
    if (rc == 0 && s.p != s.end) {
        rc = fail(&s, "trailing characters");
    }
    if (rc == 0 && !object) {
        snprintf(err, errlen, "flow value is not a JSON object");
        rc = -1;
    }
    if (rc != 0 && bp != NULL && bplen > 0) {
        bp[0] = '\0';
    }
    return rc;
}
