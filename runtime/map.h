/*
 * map.h - cri_map, a small open-addressing hash table from a non-zero
 * uint64_t key to a pointer. Used for the id, correlation, timer and
 * monitor tables. Not thread-safe: every user states its lock.
 */
#ifndef CRI_MAP_H
#define CRI_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct cri_map_ent {
    uint64_t key; /* 0 = empty slot */
    void *val;
} cri_map_ent;

typedef struct cri_map {
    cri_map_ent *ents;
    size_t cap; /* power of two, or 0 */
    size_t count;
} cri_map;

/* cri_map_init makes an empty map (no allocation until the first put). */
void cri_map_init(cri_map *m);

/* cri_map_fini frees the table (not the values). */
void cri_map_fini(cri_map *m);

/* cri_map_get returns the value stored for key, or NULL. */
void *cri_map_get(const cri_map *m, uint64_t key);

/* cri_map_put stores val under key (key != 0, not present). Returns 0, or
 * CR_ENOMEM with the map unchanged. */
int cri_map_put(cri_map *m, uint64_t key, void *val);

/* cri_map_del removes key and returns its value, or NULL if absent. */
void *cri_map_del(cri_map *m, uint64_t key);

/* cri_map_first returns some entry's value (and its key in *keyp), or
 * NULL if the map is empty. Used to drain a map at shutdown. */
void *cri_map_first(const cri_map *m, uint64_t *keyp);

#endif
