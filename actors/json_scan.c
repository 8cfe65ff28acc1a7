/*
 * json_scan.c - a single-pass JSON validator (RFC 8259) that mirrors
 * jansson's decoder on what it rejects: invalid UTF-8, control characters
 * in strings, "\u0000", lone surrogates, leading zeros, trailing garbage.
 */
#include "json_scan.h"

#include "utf8.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct scan {
    const unsigned char *p, *start, *end;
    char *err;
    size_t errlen;
    bool failed;
} scan;

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
 * and copies it to out (if room). */
static int
utf8(scan *s, char *out, size_t *n, size_t cap)
{
    const unsigned char *p = s->p;
    int len = cra_utf8_seq(p, (size_t)(s->end - p));
    if (len < 0) {
        return fail(s, len == CRA_UTF8_TRUNCATED ? "truncated UTF-8"
                                                 : "invalid UTF-8");
    }
    if (out != NULL && *n + (size_t)len < cap) {
        memcpy(out + *n, p, (size_t)len);
        *n += (size_t)len;
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

/* string scans a string at s->p ('"'); if out is not NULL the unescaped
 * text is copied (truncated) and NUL-terminated. */
static int
string(scan *s, char *out, size_t cap)
{
    size_t n = 0;
    s->p++; /* opening quote */
    while (s->p < s->end) {
        if (out == NULL) {
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
            if (out != NULL && cap > 0) {
                out[n < cap ? n : cap - 1] = '\0';
            }
            return 0;
        }
        if (c < 0x20) {
            return fail(s, "control character in a string");
        }
        if (c >= 0x80) {
            if (utf8(s, out, &n, cap) != 0) {
                return -1;
            }
            continue;
        }
        s->p++;
        if (c != '\\') {
            if (out != NULL && n + 1 < cap) {
                out[n++] = (char)c;
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
        if (out != NULL && n + 4 < cap) {
            n += put_utf8(out + n, cp);
        }
    }
    return fail(s, "unterminated string");
}

static int
digits(scan *s)
{
    const unsigned char *b = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        s->p++;
    }
    return s->p > b ? 0 : fail(s, "bad number");
}

static int
number(scan *s)
{
    if (*s->p == '-') {
        s->p++;
    }
    if (s->p < s->end && *s->p == '0') {
        s->p++;
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            return fail(s, "leading zero");
        }
    } else if (digits(s) != 0) {
        return -1;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (digits(s) != 0) {
            return -1;
        }
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) {
            s->p++;
        }
        if (digits(s) != 0) {
            return -1;
        }
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

static int value(scan *s, int depth, char *bp, size_t bplen);

static int
container(scan *s, int depth, bool object, char *bp, size_t bplen)
{
    if (depth >= CRA_JSON_MAX_DEPTH) {
        return fail(s, "nested too deeply");
    }
    char close = object ? '}' : ']';
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        bool want_bp = false;
        if (object) {
            if (s->p >= s->end || *s->p != '"') {
                return fail(s, "expected a string key");
            }
            const unsigned char *k = s->p;
            if (string(s, NULL, 0) != 0) {
                return -1;
            }
            want_bp = bp != NULL && depth == 0 &&
                      s->p - k == 16 && memcmp(k, "\"blueprint-name\"", 16) == 0;
            ws(s);
            if (s->p >= s->end || *s->p != ':') {
                return fail(s, "expected ':'");
            }
            s->p++;
            ws(s);
        }
        if (want_bp && s->p < s->end && *s->p == '"') {
            if (string(s, bp, bplen) != 0) {
                return -1;
            }
        } else if (value(s, depth + 1, NULL, 0) != 0) {
            return -1;
        }
        ws(s);
        if (s->p >= s->end) {
            return fail(s, "unexpected end");
        }
        if (*s->p == ',') {
            s->p++;
            ws(s);
            continue;
        }
        if (*s->p == close) {
            s->p++;
            return 0;
        }
        return fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int
value(scan *s, int depth, char *bp, size_t bplen)
{
    if (s->p >= s->end) {
        return fail(s, "unexpected end");
    }
    switch (*s->p) {
    case '{':
        return container(s, depth, true, bp, bplen);
    case '[':
        return container(s, depth, false, NULL, 0);
    case '"':
        return string(s, NULL, 0);
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

int
cra_json_scan_object(const char *p, size_t n, char *bp, size_t bplen,
                     char *err, size_t errlen)
{
    scan s = {.p = (const unsigned char *)p,
              .start = (const unsigned char *)p,
              .end = (const unsigned char *)p + n,
              .err = err,
              .errlen = errlen};
    if (bp != NULL && bplen > 0) {
        bp[0] = '\0';
    }
    ws(&s);
    bool object = s.p < s.end && *s.p == '{';
    if (value(&s, 0, object ? bp : NULL, bplen) != 0) {
        return -1;
    }
    ws(&s);
    if (s.p != s.end) {
        return fail(&s, "trailing characters");
    }
    if (!object) {
        snprintf(err, errlen, "flow value is not a JSON object");
        return -1;
    }
    return 0;
}
