/*
 * cfgrecv/utf8.h - one UTF-8 sequence checked the way jansson checks it:
 * overlong forms, surrogates and code points past U+10FFFF are invalid.
 * Shared by the flow JSON scanner (actors/json_scan.c) and the flow
 * directory writer (actors/flow_dir.c), which must agree with jansson on
 * what a string is, and by the JSON log lines (runtime/log.c).
 */
#ifndef CFGRECV_UTF8_H
#define CFGRECV_UTF8_H

#include <stddef.h>

#define CR_UTF8_INVALID (-1)
#define CR_UTF8_TRUNCATED (-2)

/* cr_utf8_seq returns the length (1-4) of the valid UTF-8 sequence at s,
 * of which n bytes are readable (n >= 1), or CR_UTF8_INVALID, or
 * CR_UTF8_TRUNCATED when the lead byte asks for more than n bytes. */
static inline int
cr_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp;
    int len;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return CR_UTF8_INVALID;
    }
    if ((size_t)len > n) {
        return CR_UTF8_TRUNCATED;
    }
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return CR_UTF8_INVALID;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return CR_UTF8_INVALID;
    }
    return len;
}

#endif /* CFGRECV_UTF8_H */
