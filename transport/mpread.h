/*
 * mpread.h - a bounded msgpack reader for untrusted input.
 *
 * Why not msgpack_unpack_next: msgpack-c reserves memory for the element
 * count an array/map header *claims* (a 5-byte array32 header claiming
 * 2^26 items costs ~2 GB), fails only at nesting 32 and accepts trailing
 * bytes (see NOTES.md). This reader is a cursor over (ptr,len) that never
 * allocates on its own, and checks, before the caller can allocate:
 *   - every element count against the bytes left (an array element takes
 *     at least 1 byte, a map entry at least 2);
 *   - the nesting depth against max_depth (crt_mpr_array/crt_mpr_map
 *     enter a level, crt_mpr_leave leaves it);
 *   - every length (str/bin/ext) against the bytes left;
 *   - trailing bytes (crt_mpr_finish).
 * Allocations made on behalf of a decoder go through crt_mpr_alloc and
 * crt_mpr_strdup, which charge a per-message budget, so that a message
 * made of many tiny elements cannot expand into a huge allocation.
 *
 * Errors: every function returns 0 or CR_EPROTO (malformed / over a
 * limit) or CR_ENOMEM; the first error's text is kept in r->err, which
 * says what was wrong and at which byte offset. After an error the reader
 * is "failed": every later call returns the same error at once.
 *
 * Strings: crt_mpr_str returns a pointer into the input and a length;
 * nothing is NUL-terminated. crt_mpr_strdup copies with the length and
 * NUL-terminates; it rejects strings containing a NUL byte (all strings
 * of the wire protocol are text). Empty strings are returned as the
 * shared constant crt_empty_str (no allocation); free any string obtained
 * from crt_mpr_strdup with crt_str_free, which knows that constant.
 * Both msgpack str and bin are accepted where a string is expected.
 */
#ifndef CRT_MPREAD_H
#define CRT_MPREAD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum crt_mp_type {
    CRT_MP_NIL = 0,
    CRT_MP_BOOL,
    CRT_MP_UINT, /* non-negative integer */
    CRT_MP_INT,  /* negative integer */
    CRT_MP_FLOAT,
    CRT_MP_STR,
    CRT_MP_BIN,
    CRT_MP_ARRAY,
    CRT_MP_MAP,
    CRT_MP_EXT,
    CRT_MP_INVALID, /* 0xc1, never used by msgpack */
} crt_mp_type;

typedef struct crt_mpr {
    const uint8_t *start;
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* one past the last byte */
    unsigned depth;     /* containers entered and not left */
    unsigned max_depth;
    size_t budget; /* bytes crt_mpr_alloc may still hand out */
    int rv;        /* first error (0 = none) */
    char err[192]; /* first error's text, "" if none */
} crt_mpr;

/* The shared empty string returned for "" by crt_mpr_strdup. */
extern const char crt_empty_str[1];

/* crt_str_free frees a string from crt_mpr_strdup or crt_strdup; NULL and
 * crt_empty_str are no-ops. */
void crt_str_free(char *s);

/* crt_strdup copies a NUL-terminated string (crt_empty_str for ""), or
 * returns NULL on allocation failure. Free with crt_str_free. */
char *crt_strdup(const char *s);

/* crt_mpr_init starts reading data[0..len). max_depth 0 means 16. The
 * allocation budget is 8 * len + 1 MiB. Never fails. */
void crt_mpr_init(crt_mpr *r, const void *data, size_t len,
                  unsigned max_depth);

/* crt_mpr_fail records an error (only the first is kept) and returns
 * CR_EPROTO. The text is prefixed with the current byte offset. */
int crt_mpr_fail(crt_mpr *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* crt_mpr_left returns the number of unread bytes. */
size_t crt_mpr_left(const crt_mpr *r);

/* crt_mpr_peek sets *t to the type of the next object without consuming
 * it. CR_EPROTO at end of input or after an error. */
int crt_mpr_peek(crt_mpr *r, crt_mp_type *t);

/* crt_mpr_nil consumes a nil and returns true if the next object is nil;
 * otherwise returns false and consumes nothing. */
bool crt_mpr_nil(crt_mpr *r);

/* crt_mpr_array reads an array header, checks the count against the
 * bytes left and enters one nesting level. CR_EPROTO if the next object
 * is not an array, the count is impossible or the depth is exceeded. */
int crt_mpr_array(crt_mpr *r, uint32_t *n);

/* crt_mpr_map reads a map header (n entries), like crt_mpr_array. */
int crt_mpr_map(crt_mpr *r, uint32_t *n);

/* crt_mpr_leave leaves the level entered by crt_mpr_array/crt_mpr_map
 * (call it after reading all elements). */
void crt_mpr_leave(crt_mpr *r);

/* crt_mpr_str reads a str or bin: *s points into the input (not
 * NUL-terminated), *len is its length. CR_EPROTO on another type. */
int crt_mpr_str(crt_mpr *r, const char **s, size_t *len);

/* crt_mpr_strdup reads a str or bin into a new NUL-terminated string
 * (charged to the budget). CR_EPROTO on another type or an embedded NUL,
 * CR_ENOMEM; *out is untouched on failure. */
int crt_mpr_strdup(crt_mpr *r, char **out);

/* crt_mpr_key reads a map key: like crt_mpr_str, but an integer or other
 * non-string key is skipped and reported as the empty string so that the
 * caller ignores it like any unknown key. */
int crt_mpr_key(crt_mpr *r, const char **s, size_t *len);

/* crt_mpr_uint reads a non-negative integer. CR_EPROTO on another type
 * or a negative value. */
int crt_mpr_uint(crt_mpr *r, uint64_t *v);

/* crt_mpr_int reads any integer that fits int64_t. */
int crt_mpr_int(crt_mpr *r, int64_t *v);

/* crt_mpr_bool reads true/false. */
int crt_mpr_bool(crt_mpr *r, bool *v);

/* crt_mpr_skip skips one whole object (containers included, depth
 * checked). */
int crt_mpr_skip(crt_mpr *r);

/* crt_mpr_alloc allocates size zeroed bytes charged to the budget;
 * NULL (with the reader failed, CR_EPROTO or CR_ENOMEM) if over budget
 * or out of memory. size 0 returns NULL without failing. */
void *crt_mpr_alloc(crt_mpr *r, size_t size);

/* crt_mpr_alloc_array is crt_mpr_alloc(n * size) with overflow check. */
void *crt_mpr_alloc_array(crt_mpr *r, size_t n, size_t size);

/* crt_mpr_finish checks that the whole input was consumed at depth 0.
 * Returns the reader's first error if any, else CR_EPROTO on trailing
 * bytes, else 0. */
int crt_mpr_finish(crt_mpr *r);

/* crt_mp_type_name returns a static name ("map", "str", ...). */
const char *crt_mp_type_name(crt_mp_type t);

#ifdef __cplusplus
}
#endif
#endif /* CRT_MPREAD_H */
