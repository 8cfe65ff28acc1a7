/*
 * map.c - linear probing with backward-shift deletion (no tombstones), so
 * a table that sees endless put/del churn (correlation ids, timer ids)
 * never degrades. Grows at 50 % load, never shrinks.
 */
#include "map.h"

#include <stdlib.h>

#include "cfgrecv/actor.h"

static inline size_t
slot(uint64_t key, size_t cap)
{
    /* splitmix64 finaliser: ids are sequential, spread them. */
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    key ^= key >> 31;
    return (size_t)key & (cap - 1);
}

void
cri_map_init(cri_map *m)
{
    m->ents = NULL;
    m->cap = 0;
    m->count = 0;
}

void
cri_map_fini(cri_map *m)
{
    free(m->ents);
    cri_map_init(m);
}

void *
cri_map_get(const cri_map *m, uint64_t key)
{
    if (m->cap == 0 || key == 0) {
        return NULL;
    }
    for (size_t i = slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->ents[i].key == key) {
            return m->ents[i].val;
        }
        if (m->ents[i].key == 0) {
            return NULL;
        }
    }
}

static void
insert(cri_map_ent *ents, size_t cap, uint64_t key, void *val)
{
    size_t i = slot(key, cap);
    while (ents[i].key != 0) {
        i = (i + 1) & (cap - 1);
    }
    ents[i].key = key;
    ents[i].val = val;
}

int
cri_map_put(cri_map *m, uint64_t key, void *val)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        cri_map_ent *n = calloc(ncap, sizeof(*n));
        if (n == NULL) {
            return CR_ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->ents[i].key != 0) {
                insert(n, ncap, m->ents[i].key, m->ents[i].val);
            }
        }
        free(m->ents);
        m->ents = n;
        m->cap = ncap;
    }
    insert(m->ents, m->cap, key, val);
    m->count++;
    return 0;
}

void *
cri_map_del(cri_map *m, uint64_t key)
{
    if (m->cap == 0 || key == 0) {
        return NULL;
    }
    size_t mask = m->cap - 1;
    size_t i = slot(key, m->cap);
    while (m->ents[i].key != key) {
        if (m->ents[i].key == 0) {
            return NULL;
        }
        i = (i + 1) & mask;
    }
    void *val = m->ents[i].val;
    /* Backward shift: pull later members of the probe run into the hole
     * when their home slot does not lie cyclically in (hole, j]. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->ents[j].key != 0; j = (j + 1) & mask) {
        size_t home = slot(m->ents[j].key, m->cap);
        int movable = (hole <= j) ? (home <= hole || home > j)
                                  : (home <= hole && home > j);
        if (movable) {
            m->ents[hole] = m->ents[j];
            hole = j;
        }
    }
    m->ents[hole].key = 0;
    m->ents[hole].val = NULL;
    m->count--;
    return val;
}

void *
cri_map_first(const cri_map *m, uint64_t *keyp)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->ents[i].key != 0) {
            if (keyp != NULL) {
                *keyp = m->ents[i].key;
            }
            return m->ents[i].val;
        }
    }
    return NULL;
}
