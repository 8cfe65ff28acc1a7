/*
 * monitor.c - monitors and the DOWN message.
 *
 * A monitor lives on its target's list and in rt->monitors (for
 * cr_demonitor), both under reg_lk. The target's exit detaches the whole
 * list in the same critical section that removes it from the id table,
 * so cr_monitor either attaches before that (and gets the DOWN) or finds
 * no target (and gets a NOPROC DOWN): no monitor is ever missed.
 * DOWN payload: msgpack [who, ref, kind, code, text, name].
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "cfgrecv/log.h"
#include "msg.h"
#include "rt.h"

struct cri_monitor {
    uint64_t ref;
    cr_id watcher;
    cr_ctx *target; /* NULL once detached */
    cri_monitor *prev, *next;
};

int
cri_monitor_add_locked(cr_rt *rt, cr_ctx *a, cr_id watcher, uint64_t *refp)
{
    cri_monitor *mo = calloc(1, sizeof(*mo));
    if (mo == NULL) {
        return CR_ENOMEM;
    }
    mo->ref = ++rt->next_ref;
    mo->watcher = watcher;
    mo->target = a;
    if (cri_map_put(&rt->monitors, mo->ref, mo) != 0) {
        free(mo);
        return CR_ENOMEM;
    }
    mo->next = a->monitors;
    if (a->monitors != NULL) {
        a->monitors->prev = mo;
    }
    a->monitors = mo;
    if (refp != NULL) {
        *refp = mo->ref;
    }
    return 0;
}

cri_monitor *
cri_monitors_detach_locked(cr_rt *rt, cr_ctx *a)
{
    cri_monitor *list = a->monitors;
    for (cri_monitor *mo = list; mo != NULL; mo = mo->next) {
        cri_map_del(&rt->monitors, mo->ref);
        mo->target = NULL;
    }
    a->monitors = NULL;
    return list;
}

static cr_msg *
down_new(cr_id who, uint64_t ref, const char *name, const cr_exit *why)
{
    cr_msg *m = cr_msg_new(CR_MSG_DOWN);
    if (m == NULL) {
        return NULL;
    }
    msgpack_packer *pk = cr_msg_packer(m);
    size_t tl = strnlen(why->text, sizeof(why->text) - 1);
    size_t nl = strnlen(name, 63);
    msgpack_pack_array(pk, 6);
    msgpack_pack_uint64(pk, who);
    msgpack_pack_uint64(pk, ref);
    msgpack_pack_int(pk, (int)why->kind);
    msgpack_pack_int(pk, why->code);
    msgpack_pack_str_with_body(pk, why->text, tl);
    msgpack_pack_str_with_body(pk, name, nl);
    if (cr_msg_packer_failed(m)) {
        cr_msg_free(m);
        return NULL;
    }
    return m;
}

static void
send_down(cr_rt *rt, cr_id watcher, cr_id who, uint64_t ref,
          const char *name, const cr_exit *why)
{
    cr_msg *m = down_new(who, ref, name, why);
    if (m == NULL) {
        CR_ERROR("runtime", "DOWN for %llu lost: out of memory",
                 (unsigned long long)who);
        return;
    }
    /* Forced past the capacity: one per monitor, and losing one would
     * leave a supervisor waiting forever. */
    if (cri_send(rt, who, watcher, m, CRI_PUT_FORCE, 0) != 0) {
        cr_msg_free(m); /* watcher gone too: nobody to tell */
    }
}

void
cri_monitors_fire(cr_rt *rt, cri_monitor *list, cr_id who, const char *name,
                  const cr_exit *why)
{
    while (list != NULL) {
        cri_monitor *next = list->next;
        send_down(rt, list->watcher, who, list->ref, name, why);
        free(list);
        list = next;
    }
}

void
cri_monitors_free(cri_monitor *list)
{
    while (list != NULL) {
        cri_monitor *next = list->next;
        free(list);
        list = next;
    }
}

int
cr_monitor(cr_rt *rt, cr_id watcher, cr_id target, uint64_t *refp)
{
    if (rt == NULL) {
        return CR_EINVAL;
    }
    uint64_t ref = 0;
    pthread_rwlock_wrlock(&rt->reg_lk);
    cr_ctx *a = cri_map_get(&rt->actors, target);
    int rv;
    if (a != NULL) {
        rv = cri_monitor_add_locked(rt, a, watcher, &ref);
    } else {
        ref = ++rt->next_ref;
        rv = 0;
    }
    pthread_rwlock_unlock(&rt->reg_lk);
    if (rv != 0) {
        return rv;
    }
    if (a == NULL) {
        cr_exit why = {.kind = CR_EXIT_NOPROC, .code = 0};
        strcpy(why.text, "noproc");
        send_down(rt, watcher, target, ref, "", &why);
    }
    if (refp != NULL) {
        *refp = ref;
    }
    return 0;
}

int
cr_demonitor(cr_rt *rt, uint64_t ref)
{
    if (rt == NULL) {
        return CR_EINVAL;
    }
    pthread_rwlock_wrlock(&rt->reg_lk);
    cri_monitor *mo = cri_map_del(&rt->monitors, ref);
    if (mo != NULL) {
        if (mo->prev != NULL) {
            mo->prev->next = mo->next;
        } else {
            mo->target->monitors = mo->next;
        }
        if (mo->next != NULL) {
            mo->next->prev = mo->prev;
        }
    }
    pthread_rwlock_unlock(&rt->reg_lk);
    free(mo);
    return mo != NULL ? 0 : CR_ENOENT;
}

/* copy_str copies a msgpack str into dst[cap] (truncating). */
static int
copy_str(const msgpack_object *o, char *dst, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        return -1;
    }
    size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
    memcpy(dst, o->via.str.ptr, n);
    dst[n] = '\0';
    return 0;
}

int
cr_down_decode(const cr_msg *m, cr_down *out)
{
    if (m == NULL || out == NULL || m->type != CR_MSG_DOWN ||
        m->len > 1024) {
        return CR_EPROTO;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rv = CR_EPROTO;
    if (msgpack_unpack_next(&u, (const char *)m->data, m->len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        off != m->len) {
        goto out;
    }
    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 6) {
        goto out;
    }
    const msgpack_object *f = o->via.array.ptr;
    if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        f[2].via.u64 > CR_EXIT_NOPROC ||
        (f[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
         f[3].type != MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
        goto out;
    }
    memset(out, 0, sizeof(*out));
    out->who = f[0].via.u64;
    out->ref = f[1].via.u64;
    out->why.kind = (cr_exit_kind)f[2].via.u64;
    out->why.code = (int)f[3].via.i64;
    if (copy_str(&f[4], out->why.text, sizeof(out->why.text)) != 0 ||
        copy_str(&f[5], out->name, sizeof(out->name)) != 0) {
        goto out;
    }
    rv = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rv;
}
