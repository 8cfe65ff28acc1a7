/*
 * registry.c - the per-runtime id table, names and the live list.
 *
 * Design notes. Every send looks its target up here, so lookups take
 * reg_lk for reading only (a writer-preferring rwlock, so spawn/exit do
 * not starve under a send storm) and return a *referenced* actor: a send
 * racing with the target's exit holds a valid struct and gets CR_ECLOSED
 * from the closed mailbox instead of touching freed memory. The table
 * holds one reference from spawn until the actor's exit removes it, the
 * thread holds one until the reaper joined it. Names live in the actor
 * (regname) chained by a 64-bit FNV hash, so naming allocates nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "rt.h"

static uint64_t
name_key(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;
}

/* Call with reg_lk held. */
static cr_ctx *
name_find(cr_rt *rt, const char *name)
{
    cr_ctx *a = cri_map_get(&rt->names, name_key(name));
    while (a != NULL && strcmp(a->regname, name) != 0) {
        a = a->name_next;
    }
    return a;
}

/* name_link names a (reg_lk held for writing). 0 or CR_ENOMEM. */
static int
name_link(cr_rt *rt, cr_ctx *a, const char *name)
{
    uint64_t key = name_key(name);
    cr_ctx *head = cri_map_get(&rt->names, key);
    if (head == NULL) {
        if (cri_map_put(&rt->names, key, a) != 0) {
            return CR_ENOMEM;
        }
    } else {
        while (head->name_next != NULL) {
            head = head->name_next;
        }
        head->name_next = a;
    }
    a->name_next = NULL;
    strcpy(a->regname, name);
    return 0;
}

/* name_unlink drops a's name, if any (reg_lk held for writing). */
static void
name_unlink(cr_rt *rt, cr_ctx *a)
{
    if (a->regname[0] == '\0') {
        return;
    }
    uint64_t key = name_key(a->regname);
    cr_ctx *head = cri_map_get(&rt->names, key);
    if (head == a) {
        cri_map_del(&rt->names, key);
        if (a->name_next != NULL) {
            /* Cannot fail: the delete just made room. */
            (void)cri_map_put(&rt->names, key, a->name_next);
        }
    } else {
        while (head != NULL && head->name_next != a) {
            head = head->name_next;
        }
        if (head != NULL) {
            head->name_next = a->name_next;
        }
    }
    a->name_next = NULL;
    a->regname[0] = '\0';
}

int
cri_registry_init(cr_rt *rt)
{
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rv = pthread_rwlock_init(&rt->reg_lk, &ra);
    pthread_rwlockattr_destroy(&ra);
    if (rv != 0) {
        return CR_ENOMEM;
    }
    cri_map_init(&rt->actors);
    cri_map_init(&rt->names);
    cri_map_init(&rt->monitors);
    return 0;
}

void
cri_registry_fini(cr_rt *rt)
{
    cri_map_fini(&rt->actors);
    cri_map_fini(&rt->names);
    cri_map_fini(&rt->monitors);
    pthread_rwlock_destroy(&rt->reg_lk);
}

void
cri_actor_ref(cr_ctx *a)
{
    /* relaxed: the caller already holds a reference or reg_lk. */
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
}

void
cri_actor_put(cr_ctx *a)
{
    /* acq_rel: the freeing thread must see every other holder's writes. */
    if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    if (a->mb_open) {
        cri_mailbox_fini(&a->mb);
    }
    pthread_cond_destroy(&a->end_cv);
    pthread_mutex_destroy(&a->end_mu);
    free(a);
}

cr_ctx *
cri_actor_get(cr_rt *rt, cr_id id)
{
    pthread_rwlock_rdlock(&rt->reg_lk);
    cr_ctx *a = cri_map_get(&rt->actors, id);
    if (a != NULL) {
        cri_actor_ref(a);
    }
    pthread_rwlock_unlock(&rt->reg_lk);
    return a;
}

int
cri_registry_add(cr_rt *rt, cr_ctx *a, const char *name, cr_id link_monitor)
{
    int rv = 0;
    if (name != NULL && (name[0] == '\0' || strlen(name) >= 64)) {
        return CR_EINVAL;
    }
    pthread_rwlock_wrlock(&rt->reg_lk);
    if (rt->closing) {
        rv = CR_ECLOSED;
    } else if (name != NULL && name_find(rt, name) != NULL) {
        rv = CR_EEXIST;
    } else if ((rv = cri_map_put(&rt->actors, a->id, a)) == 0) {
        if (name != NULL && (rv = name_link(rt, a, name)) != 0) {
            cri_map_del(&rt->actors, a->id);
        } else if (link_monitor != CR_NOBODY &&
                   (rv = cri_monitor_add_locked(rt, a, link_monitor, NULL)) !=
                       0) {
            name_unlink(rt, a);
            cri_map_del(&rt->actors, a->id);
        }
    }
    if (rv == 0) {
        a->registered = true;
        a->prev = rt->live_tail;
        a->next = NULL;
        if (rt->live_tail != NULL) {
            rt->live_tail->next = a;
        } else {
            rt->live_head = a;
        }
        rt->live_tail = a;
        rt->live_n++;
    }
    pthread_rwlock_unlock(&rt->reg_lk);
    return rv;
}

cri_monitor *
cri_registry_remove(cr_rt *rt, cr_ctx *a)
{
    pthread_rwlock_wrlock(&rt->reg_lk);
    if (!a->registered) {
        pthread_rwlock_unlock(&rt->reg_lk);
        return NULL;
    }
    a->registered = false;
    cri_map_del(&rt->actors, a->id);
    name_unlink(rt, a);
    if (a->prev != NULL) {
        a->prev->next = a->next;
    } else {
        rt->live_head = a->next;
    }
    if (a->next != NULL) {
        a->next->prev = a->prev;
    } else {
        rt->live_tail = a->prev;
    }
    a->prev = a->next = NULL;
    rt->live_n--;
    cri_monitor *mons = cri_monitors_detach_locked(rt, a);
    pthread_rwlock_unlock(&rt->reg_lk);
    cri_actor_put(a); /* the table's reference */
    return mons;
}

cr_ctx *
cri_last_live(cr_rt *rt)
{
    pthread_rwlock_rdlock(&rt->reg_lk);
    cr_ctx *a = rt->live_tail;
    if (a != NULL) {
        cri_actor_ref(a);
    }
    pthread_rwlock_unlock(&rt->reg_lk);
    return a;
}

cr_id
cr_whereis(cr_rt *rt, const char *name)
{
    if (rt == NULL || name == NULL) {
        return CR_NOBODY;
    }
    pthread_rwlock_rdlock(&rt->reg_lk);
    cr_ctx *a = name_find(rt, name);
    cr_id id = a != NULL ? a->id : CR_NOBODY;
    pthread_rwlock_unlock(&rt->reg_lk);
    return id;
}

int
cr_register(cr_rt *rt, const char *name, cr_id id)
{
    if (rt == NULL || name == NULL || name[0] == '\0' || strlen(name) >= 64) {
        return CR_EINVAL;
    }
    int rv;
    pthread_rwlock_wrlock(&rt->reg_lk);
    cr_ctx *a = cri_map_get(&rt->actors, id);
    if (a == NULL) {
        rv = CR_ENOENT;
    } else if (a->regname[0] != '\0' || name_find(rt, name) != NULL) {
        rv = CR_EEXIST; /* one name per actor, one actor per name */
    } else {
        rv = name_link(rt, a, name);
    }
    pthread_rwlock_unlock(&rt->reg_lk);
    return rv;
}

int
cr_unregister(cr_rt *rt, const char *name)
{
    if (rt == NULL || name == NULL) {
        return CR_EINVAL;
    }
    int rv = CR_ENOENT;
    pthread_rwlock_wrlock(&rt->reg_lk);
    cr_ctx *a = name_find(rt, name);
    if (a != NULL) {
        name_unlink(rt, a);
        rv = 0;
    }
    pthread_rwlock_unlock(&rt->reg_lk);
    return rv;
}

bool
cr_alive(cr_rt *rt, cr_id id)
{
    cr_ctx *a = cri_actor_get(rt, id);
    if (a == NULL) {
        return false;
    }
    bool alive = atomic_load(&a->state) < CR_STATE_EXITED;
    cri_actor_put(a);
    return alive;
}

/* fill copies a's counters (reg_lk held). */
static void
fill(const cr_ctx *a, cr_actor_info *out)
{
    memset(out, 0, sizeof(*out));
    out->id = a->id;
    strcpy(out->name, a->regname);
    strcpy(out->kind, a->kind);
    out->state = (cr_actor_state)atomic_load_explicit(&a->state,
                                                      memory_order_relaxed);
    out->msgs_in = atomic_load_explicit(&a->msgs_in, memory_order_relaxed);
    out->msgs_out = atomic_load_explicit(&a->msgs_out, memory_order_relaxed);
    out->depth = atomic_load_explicit(&a->mb.depth, memory_order_relaxed);
    out->high_water =
        atomic_load_explicit(&a->mb.high_water, memory_order_relaxed);
    out->capacity = a->mb.cap;
    out->started_ms = a->started_ms;
}

int
cr_actor_info_get(cr_rt *rt, cr_id id, cr_actor_info *out)
{
    if (rt == NULL || out == NULL) {
        return CR_EINVAL;
    }
    int rv = CR_ENOENT;
    pthread_rwlock_rdlock(&rt->reg_lk);
    cr_ctx *a = cri_map_get(&rt->actors, id);
    if (a != NULL) {
        fill(a, out);
        rv = 0;
    }
    pthread_rwlock_unlock(&rt->reg_lk);
    return rv;
}

size_t
cr_snapshot(cr_rt *rt, cr_actor_info *out, size_t max)
{
    if (rt == NULL) {
        return 0;
    }
    size_t i = 0;
    pthread_rwlock_rdlock(&rt->reg_lk);
    for (cr_ctx *a = rt->live_head; a != NULL && i < max; a = a->next) {
        fill(a, &out[i++]);
    }
    size_t n = rt->live_n;
    pthread_rwlock_unlock(&rt->reg_lk);
    return n;
}

size_t
cr_rt_actor_count(cr_rt *rt)
{
    pthread_rwlock_rdlock(&rt->reg_lk);
    size_t n = rt->live_n;
    pthread_rwlock_unlock(&rt->reg_lk);
    return n;
}
