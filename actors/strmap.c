/*
 * strmap.c - linear probing with tombstones; the table doubles at 70%
 * load (live + tombstones) and rehashes without tombstones. Keys are
 * stored as malloc'd copies with an explicit length. The hash is kept in
 * each slot so growth and probing avoid re-hashing and most memcmp calls.
 */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

typedef struct slot {
    char *key; /* NULL = empty; TOMB = deleted */
    size_t len;
    uint64_t hash;
    void *val;
} slot;

static char tomb_marker;
#define TOMB (&tomb_marker)

struct cra_strmap {
    slot *slots;
    size_t cap;  /* power of two */
    size_t live; /* entries */
    size_t used; /* entries + tombstones */
};

/* cra_hash64: 8 bytes per step (multiply-xorshift, as in wyhash/murmur
 * finalisers) rather than FNV's byte per step: flow definitions are ~2 KB
 * and both the flow manager and every handler hash each one. */
static inline uint64_t
mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t
cra_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xbf58476d1ce4e5b9ULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix(w)) * 0x94d049bb133111ebULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t t = 0;
    memcpy(&t, p, len);
    h ^= mix(t ^ len);
    return mix(h);
}

cra_strmap *
cra_strmap_new(void)
{
    cra_strmap *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return NULL;
    }
    m->cap = 16;
    m->slots = calloc(m->cap, sizeof(slot));
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void
cra_strmap_free(cra_strmap *m, void (*free_val)(void *))
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->cap; i++) {
        slot *s = &m->slots[i];
        if (s->key != NULL && s->key != TOMB) {
            if (free_val != NULL) {
                free_val(s->val);
            }
            free(s->key);
        }
    }
    free(m->slots);
    free(m);
}

/* find returns the slot holding key, or NULL. */
static slot *
find(const cra_strmap *m, const char *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot *s = &m->slots[i];
        if (s->key == NULL) {
            return NULL;
        }
        if (s->key != TOMB && s->hash == h && s->len == len &&
            memcmp(s->key, key, len) == 0) {
            return s;
        }
    }
}

static int
grow(cra_strmap *m)
{
    size_t ncap = m->live * 2 >= m->cap / 2 ? m->cap * 2 : m->cap;
    slot *ns = calloc(ncap, sizeof(slot));
    if (ns == NULL) {
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        slot *s = &m->slots[i];
        if (s->key == NULL || s->key == TOMB) {
            continue;
        }
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key != NULL) {
            j = (j + 1) & (ncap - 1);
        }
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->live;
    return 0;
}

void *
cra_strmap_get(const cra_strmap *m, const char *key, size_t len)
{
    slot *s = find(m, key, len, cra_hash64(key, len));
    return s ? s->val : NULL;
}

int
cra_strmap_put(cra_strmap *m, const char *key, size_t len, void *val,
               void **old)
{
    uint64_t h = cra_hash64(key, len);
    slot *s = find(m, key, len, h);
    if (old != NULL) {
        *old = NULL;
    }
    if (s != NULL) {
        if (old != NULL) {
            *old = s->val;
        }
        s->val = val;
        return 0;
    }
    if ((m->used + 1) * 10 >= m->cap * 7 && grow(m) != 0) {
        return -1;
    }
    char *k = malloc(len + 1);
    if (k == NULL) {
        return -1;
    }
    memcpy(k, key, len);
    k[len] = '\0';
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key != NULL && m->slots[i].key != TOMB) {
        i = (i + 1) & mask;
    }
    if (m->slots[i].key == NULL) {
        m->used++;
    }
    m->slots[i] = (slot){.key = k, .len = len, .hash = h, .val = val};
    m->live++;
    return 0;
}

void *
cra_strmap_del(cra_strmap *m, const char *key, size_t len)
{
    slot *s = find(m, key, len, cra_hash64(key, len));
    if (s == NULL) {
        return NULL;
    }
    void *v = s->val;
    free(s->key);
    s->key = TOMB;
    s->val = NULL;
    m->live--;
    return v;
}

size_t
cra_strmap_count(const cra_strmap *m)
{
    return m->live;
}

int
cra_strmap_next(const cra_strmap *m, size_t *it, const char **key,
                size_t *len, void **val)
{
    for (; *it < m->cap; (*it)++) {
        slot *s = &m->slots[*it];
        if (s->key != NULL && s->key != TOMB) {
            (*it)++;
            *key = s->key;
            *len = s->len;
            *val = s->val;
            return 1;
        }
    }
    return 0;
}
