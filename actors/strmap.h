/*
 * strmap.h - an open-addressing hash map from byte-string keys to
 * pointers. Keys are copied (with their length, not NUL-assumed); values
 * are owned by the caller. Not thread-safe: each map belongs to one actor.
 */
#ifndef CRA_STRMAP_H
#define CRA_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct cra_strmap cra_strmap;

/* cra_strmap_new returns an empty map, or NULL on allocation failure. */
cra_strmap *cra_strmap_new(void);

/* cra_strmap_free frees the map and its key copies; calls free_val (may be
 * NULL) on every value first. NULL is a no-op. */
void cra_strmap_free(cra_strmap *m, void (*free_val)(void *));

/* cra_strmap_get returns the value for key[0..len), or NULL. */
void *cra_strmap_get(const cra_strmap *m, const char *key, size_t len);

/* cra_strmap_put inserts or replaces; *old (may be NULL) receives the
 * replaced value or NULL. Returns 0, or -1 on allocation failure (map
 * unchanged). A NULL value is not allowed. */
int cra_strmap_put(cra_strmap *m, const char *key, size_t len, void *val,
                   void **old);

/* cra_strmap_del removes key and returns its value, or NULL if absent. */
void *cra_strmap_del(cra_strmap *m, const char *key, size_t len);

/* cra_strmap_count returns the number of entries. */
size_t cra_strmap_count(const cra_strmap *m);

/* Iteration: `for (size_t it = 0; cra_strmap_next(m, &it, &k, &kl, &v);)`.
 * The map must not be modified during iteration except by
 * cra_strmap_del of the entry just returned. Order is unspecified. */
int cra_strmap_next(const cra_strmap *m, size_t *it, const char **key,
                    size_t *len, void **val);

/* cra_hash64 is the map's 64-bit hash, also used for content hashes. */
uint64_t cra_hash64(const void *data, size_t len);

#endif
