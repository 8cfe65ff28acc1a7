/*
 * mpread.c - bounded msgpack reader (see mpread.h for the rules).
 *
 * The reader decodes the msgpack wire format directly from the spec
 * (https://github.com/msgpack/msgpack/blob/master/spec.md) instead of
 * using msgpack-c's unpacker, so that no count claimed by the input is
 * ever trusted before it has been checked against the bytes left.
 */
#include "mpread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cfgrecv/actor.h>

const char crt_empty_str[1] = "";

#define ALLOC_OVERHEAD 16 /* charged per allocation, roughly malloc's */

void
crt_str_free(char *s)
{
    if (s != NULL && s != crt_empty_str) {
        free(s);
    }
}

char *
crt_strdup(const char *s)
{
    if (s == NULL || s[0] == '\0') {
        return (char *)crt_empty_str;
    }
    return strdup(s);
}

void
crt_mpr_init(crt_mpr *r, const void *data, size_t len, unsigned max_depth)
{
    memset(r, 0, sizeof(*r));
    r->start = data;
    r->p = data;
    r->end = r->p + len;
    r->max_depth = max_depth ? max_depth : 16;
    r->budget = (len > (SIZE_MAX - (1u << 20)) / 8) ? SIZE_MAX
                                                     : 8 * len + (1u << 20);
}

int
crt_mpr_fail(crt_mpr *r, const char *fmt, ...)
{
    if (r->rv == 0) {
        va_list ap;
        int n = snprintf(r->err, sizeof(r->err), "at byte %zu: ",
                         (size_t)(r->p - r->start));
        if (n < 0 || (size_t)n >= sizeof(r->err)) {
            n = 0;
        }
        va_start(ap, fmt);
        vsnprintf(r->err + n, sizeof(r->err) - (size_t)n, fmt, ap);
        va_end(ap);
        r->rv = CR_EPROTO;
    }
    return r->rv;
}

static int
nomem(crt_mpr *r)
{
    if (r->rv == 0) {
        snprintf(r->err, sizeof(r->err), "out of memory");
        r->rv = CR_ENOMEM;
    }
    return r->rv;
}

size_t
crt_mpr_left(const crt_mpr *r)
{
    return (size_t)(r->end - r->p);
}

static int
need(crt_mpr *r, size_t n, const char *what)
{
    if (r->rv != 0) {
        return r->rv;
    }
    if (crt_mpr_left(r) < n) {
        return crt_mpr_fail(r, "truncated %s (need %zu bytes, %zu left)",
                            what, n, crt_mpr_left(r));
    }
    return 0;
}

static uint64_t
be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static crt_mp_type
type_of(uint8_t b)
{
    if (b <= 0x7f || b == 0xcc || b == 0xcd || b == 0xce || b == 0xcf) {
        return CRT_MP_UINT;
    }
    if (b >= 0xe0 || (b >= 0xd0 && b <= 0xd3)) {
        return CRT_MP_INT;
    }
    if ((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf) {
        return CRT_MP_MAP;
    }
    if ((b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd) {
        return CRT_MP_ARRAY;
    }
    if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)) {
        return CRT_MP_STR;
    }
    switch (b) {
    case 0xc0:
        return CRT_MP_NIL;
    case 0xc2:
    case 0xc3:
        return CRT_MP_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return CRT_MP_BIN;
    case 0xca:
    case 0xcb:
        return CRT_MP_FLOAT;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return CRT_MP_EXT;
    default:
        return CRT_MP_INVALID;
    }
}

const char *
crt_mp_type_name(crt_mp_type t)
{
    static const char *names[] = {"nil",   "bool", "uint", "int",
                                  "float", "str",  "bin",  "array",
                                  "map",   "ext",  "invalid"};
    return (unsigned)t <= CRT_MP_INVALID ? names[t] : "?";
}

int
crt_mpr_peek(crt_mpr *r, crt_mp_type *t)
{
    int rv;
    if ((rv = need(r, 1, "object")) != 0) {
        return rv;
    }
    *t = type_of(*r->p);
    return 0;
}

bool
crt_mpr_nil(crt_mpr *r)
{
    if (r->rv == 0 && r->p < r->end && *r->p == 0xc0) {
        r->p++;
        return true;
    }
    return false;
}

static int
wrong_type(crt_mpr *r, const char *want)
{
    return crt_mpr_fail(r, "expected %s, found %s", want,
                        crt_mp_type_name(type_of(*r->p)));
}

/* Reads a container header of type `t` into *n (no checks on n). */
static int
header(crt_mpr *r, crt_mp_type t, uint32_t *n)
{
    int rv;
    uint8_t b;
    int w;
    if ((rv = need(r, 1, "header")) != 0) {
        return rv;
    }
    b = *r->p;
    if (type_of(b) != t) {
        return wrong_type(r, crt_mp_type_name(t));
    }
    if ((b & 0xf0) == 0x80 || (b & 0xf0) == 0x90) {
        *n = b & 0x0f;
        r->p++;
        return 0;
    }
    w = (b == 0xdc || b == 0xde) ? 2 : 4;
    if ((rv = need(r, 1 + (size_t)w, crt_mp_type_name(t))) != 0) {
        return rv;
    }
    *n = (uint32_t)be(r->p + 1, w);
    r->p += 1 + w;
    return 0;
}

static int
enter(crt_mpr *r)
{
    if (r->depth >= r->max_depth) {
        return crt_mpr_fail(r, "nesting deeper than %u", r->max_depth);
    }
    r->depth++;
    return 0;
}

int
crt_mpr_array(crt_mpr *r, uint32_t *n)
{
    int rv;
    uint32_t c;
    if ((rv = header(r, CRT_MP_ARRAY, &c)) != 0) {
        return rv;
    }
    if (c > crt_mpr_left(r)) {
        return crt_mpr_fail(r, "array claims %u elements, only %zu bytes "
                               "left", c, crt_mpr_left(r));
    }
    if ((rv = enter(r)) != 0) {
        return rv;
    }
    *n = c;
    return 0;
}

int
crt_mpr_map(crt_mpr *r, uint32_t *n)
{
    int rv;
    uint32_t c;
    if ((rv = header(r, CRT_MP_MAP, &c)) != 0) {
        return rv;
    }
    if ((uint64_t)c * 2 > crt_mpr_left(r)) {
        return crt_mpr_fail(r, "map claims %u entries, only %zu bytes left",
                            c, crt_mpr_left(r));
    }
    if ((rv = enter(r)) != 0) {
        return rv;
    }
    *n = c;
    return 0;
}

void
crt_mpr_leave(crt_mpr *r)
{
    if (r->depth > 0) {
        r->depth--;
    }
}

int
crt_mpr_str(crt_mpr *r, const char **s, size_t *len)
{
    int rv;
    uint8_t b;
    int w = 0;
    size_t n;
    if ((rv = need(r, 1, "string")) != 0) {
        return rv;
    }
    b = *r->p;
    if (b >= 0xa0 && b <= 0xbf) {
        n = b & 0x1f;
    } else if (b == 0xd9 || b == 0xc4) {
        w = 1;
    } else if (b == 0xda || b == 0xc5) {
        w = 2;
    } else if (b == 0xdb || b == 0xc6) {
        w = 4;
    } else {
        return wrong_type(r, "string");
    }
    if (w > 0) {
        if ((rv = need(r, 1 + (size_t)w, "string length")) != 0) {
            return rv;
        }
        n = (size_t)be(r->p + 1, w);
    }
    if (crt_mpr_left(r) - 1 - (size_t)w < n) {
        return crt_mpr_fail(r, "string of %zu bytes, only %zu left", n,
                            crt_mpr_left(r) - 1 - (size_t)w);
    }
    *s = (const char *)r->p + 1 + w;
    *len = n;
    r->p += 1 + (size_t)w + n;
    return 0;
}

int
crt_mpr_key(crt_mpr *r, const char **s, size_t *len)
{
    crt_mp_type t;
    int rv;
    if ((rv = crt_mpr_peek(r, &t)) != 0) {
        return rv;
    }
    if (t == CRT_MP_STR || t == CRT_MP_BIN) {
        return crt_mpr_str(r, s, len);
    }
    *s = "";
    *len = 0;
    return crt_mpr_skip(r);
}

void *
crt_mpr_alloc(crt_mpr *r, size_t size)
{
    void *p;
    if (r->rv != 0 || size == 0) {
        return NULL;
    }
    if (size > r->budget || r->budget - size < ALLOC_OVERHEAD) {
        crt_mpr_fail(r, "decoded message needs more memory than its size "
                        "allows");
        return NULL;
    }
    if ((p = calloc(1, size)) == NULL) {
        nomem(r);
        return NULL;
    }
    r->budget -= size + ALLOC_OVERHEAD;
    return p;
}

void *
crt_mpr_alloc_array(crt_mpr *r, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        crt_mpr_fail(r, "element count overflow");
        return NULL;
    }
    return crt_mpr_alloc(r, n * size);
}

int
crt_mpr_strdup(crt_mpr *r, char **out)
{
    const char *s;
    size_t n;
    char *c;
    int rv;
    if ((rv = crt_mpr_str(r, &s, &n)) != 0) {
        return rv;
    }
    if (n == 0) {
        *out = (char *)crt_empty_str;
        return 0;
    }
    if (memchr(s, '\0', n) != NULL) {
        r->p -= n; /* report the string's position */
        return crt_mpr_fail(r, "string contains a NUL byte");
    }
    if ((c = crt_mpr_alloc(r, n + 1)) == NULL) {
        return r->rv;
    }
    memcpy(c, s, n);
    c[n] = '\0';
    *out = c;
    return 0;
}

int
crt_mpr_int(crt_mpr *r, int64_t *v)
{
    int rv;
    uint8_t b;
    uint64_t u;
    if ((rv = need(r, 1, "integer")) != 0) {
        return rv;
    }
    b = *r->p;
    if (b <= 0x7f) {
        *v = b;
        r->p++;
        return 0;
    }
    if (b >= 0xe0) {
        *v = (int8_t)b;
        r->p++;
        return 0;
    }
    if (b >= 0xcc && b <= 0xcf) {
        int w = 1 << (b - 0xcc);
        if ((rv = need(r, 1 + (size_t)w, "integer")) != 0) {
            return rv;
        }
        u = be(r->p + 1, w);
        if (u > INT64_MAX) {
            return crt_mpr_fail(r, "integer out of range");
        }
        *v = (int64_t)u;
        r->p += 1 + w;
        return 0;
    }
    if (b >= 0xd0 && b <= 0xd3) {
        int w = 1 << (b - 0xd0);
        if ((rv = need(r, 1 + (size_t)w, "integer")) != 0) {
            return rv;
        }
        u = be(r->p + 1, w);
        switch (w) {
        case 1:
            *v = (int8_t)u;
            break;
        case 2:
            *v = (int16_t)u;
            break;
        case 4:
            *v = (int32_t)u;
            break;
        default:
            *v = (int64_t)u;
            break;
        }
        r->p += 1 + w;
        return 0;
    }
    return wrong_type(r, "integer");
}

int
crt_mpr_uint(crt_mpr *r, uint64_t *v)
{
    int rv;
    uint8_t b;
    int64_t s;
    if ((rv = need(r, 1, "integer")) != 0) {
        return rv;
    }
    b = *r->p;
    if (b == 0xcf) { /* the full uint64 range */
        if ((rv = need(r, 9, "integer")) != 0) {
            return rv;
        }
        *v = be(r->p + 1, 8);
        r->p += 9;
        return 0;
    }
    if ((rv = crt_mpr_int(r, &s)) != 0) {
        return rv;
    }
    if (s < 0) {
        return crt_mpr_fail(r, "negative value where an unsigned integer "
                               "is expected");
    }
    *v = (uint64_t)s;
    return 0;
}

int
crt_mpr_bool(crt_mpr *r, bool *v)
{
    int rv;
    if ((rv = need(r, 1, "bool")) != 0) {
        return rv;
    }
    if (*r->p != 0xc2 && *r->p != 0xc3) {
        return wrong_type(r, "bool");
    }
    *v = *r->p == 0xc3;
    r->p++;
    return 0;
}

/* Skips `len` payload bytes after a header of `hdr` bytes. */
static int
skip_bytes(crt_mpr *r, size_t hdr, size_t len)
{
    int rv;
    if ((rv = need(r, hdr, "header")) != 0) {
        return rv;
    }
    if (crt_mpr_left(r) - hdr < len) {
        return crt_mpr_fail(r, "object of %zu bytes, only %zu left", len,
                            crt_mpr_left(r) - hdr);
    }
    r->p += hdr + len;
    return 0;
}

int
crt_mpr_skip(crt_mpr *r)
{
    int rv;
    uint8_t b;
    uint32_t n;
    if ((rv = need(r, 1, "object")) != 0) {
        return rv;
    }
    b = *r->p;
    switch (type_of(b)) {
    case CRT_MP_NIL:
    case CRT_MP_BOOL:
        r->p++;
        return 0;
    case CRT_MP_UINT:
    case CRT_MP_INT: {
        int64_t dummy;
        uint64_t u;
        return b == 0xcf ? crt_mpr_uint(r, &u) : crt_mpr_int(r, &dummy);
    }
    case CRT_MP_FLOAT:
        return skip_bytes(r, 1, b == 0xca ? 4 : 8);
    case CRT_MP_STR:
    case CRT_MP_BIN: {
        const char *s;
        size_t len;
        return crt_mpr_str(r, &s, &len);
    }
    case CRT_MP_EXT:
        switch (b) {
        case 0xd4:
            return skip_bytes(r, 2, 1);
        case 0xd5:
            return skip_bytes(r, 2, 2);
        case 0xd6:
            return skip_bytes(r, 2, 4);
        case 0xd7:
            return skip_bytes(r, 2, 8);
        case 0xd8:
            return skip_bytes(r, 2, 16);
        default: {
            int w = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
            if ((rv = need(r, 2 + (size_t)w, "ext header")) != 0) {
                return rv;
            }
            return skip_bytes(r, 2 + (size_t)w, (size_t)be(r->p + 1, w));
        }
        }
    case CRT_MP_ARRAY:
        if ((rv = crt_mpr_array(r, &n)) != 0) {
            return rv;
        }
        for (uint32_t i = 0; i < n; i++) {
            if ((rv = crt_mpr_skip(r)) != 0) {
                return rv;
            }
        }
        crt_mpr_leave(r);
        return 0;
    case CRT_MP_MAP:
        if ((rv = crt_mpr_map(r, &n)) != 0) {
            return rv;
        }
        for (uint64_t i = 0; i < (uint64_t)n * 2; i++) {
            if ((rv = crt_mpr_skip(r)) != 0) {
                return rv;
            }
        }
        crt_mpr_leave(r);
        return 0;
    default:
        return crt_mpr_fail(r, "invalid msgpack byte 0x%02x", b);
    }
}

int
crt_mpr_finish(crt_mpr *r)
{
    if (r->rv != 0) {
        return r->rv;
    }
    if (r->p != r->end) {
        return crt_mpr_fail(r, "%zu trailing bytes after the message",
                            crt_mpr_left(r));
    }
    return 0;
}
