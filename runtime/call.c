/*
 * call.c - request/reply: the per-runtime pending-call table.
 *
 * Design notes. Every call gets a fresh 64-bit correlation id (never
 * reused) entered in rt->calls under call_mu. A blocking cr_call parks on
 * its own condvar (on its stack) with call_mu; cr_reply finds the entry,
 * hands the reply over and removes the entry in one critical section, so
 * the reply goes straight to the waiter without touching a mailbox. A
 * call that times out removes its entry under the same lock: a late reply
 * then finds nothing and is dropped (counted in replies_dropped), never
 * delivered to a later call. An async entry is heap-allocated, linked on
 * the calling actor's `asyncs` list (freed when that actor exits), and its
 * reply travels to the caller's mailbox as CR_MSG_REPLY.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "msg.h"
#include "rt.h"

struct cri_pending {
    uint64_t corr;
    bool async;
    /* sync: */
    pthread_cond_t cv;
    bool done;      /* (protected by call_mu) */
    cr_msg *reply;  /* (protected by call_mu) */
    /* async: */
    cr_id caller;
    cr_ctx *owner;  /* actor whose asyncs list holds it */
    cri_pending *prev, *next;
};

int
cri_calls_init(cr_rt *rt)
{
    pthread_mutex_init(&rt->call_mu, NULL);
    cri_map_init(&rt->calls);
    atomic_init(&rt->next_corr, 1);
    return 0;
}

void
cri_calls_fini(cr_rt *rt)
{
    /* Every actor is gone, so only abandoned sync waiters could remain,
     * which would be a caller bug (calling while destroying). */
    cri_map_fini(&rt->calls);
    pthread_mutex_destroy(&rt->call_mu);
}

/* unlink_async removes p from its owner's list (call_mu held). */
static void
unlink_async(cri_pending *p)
{
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        p->owner->asyncs = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
}

void
cri_calls_drop_actor(cr_rt *rt, cr_ctx *a)
{
    pthread_mutex_lock(&rt->call_mu);
    cri_pending *p = a->asyncs;
    a->asyncs = NULL;
    while (p != NULL) {
        cri_pending *next = p->next;
        cri_map_del(&rt->calls, p->corr);
        free(p);
        p = next;
    }
    pthread_mutex_unlock(&rt->call_mu);
}

void
cri_calls_interrupt(cr_rt *rt, cr_ctx *a)
{
    /* cr_call tests stop_req with call_mu held before it waits, and the
     * caller set stop_req before this: the wake-up cannot be missed */
    pthread_mutex_lock(&rt->call_mu);
    if (a->waiting != NULL) {
        pthread_cond_signal(&a->waiting->cv);
    }
    pthread_mutex_unlock(&rt->call_mu);
}

int
cr_call(cr_rt *rt, cr_id from, cr_id to, cr_msg *m, int timeout_ms,
        cr_msg **reply)
{
    if (rt == NULL || m == NULL || m->borrowed || reply == NULL) {
        return CR_EINVAL;
    }
    cr_ctx *self = cri_current();
    if (self != NULL && self->rt == rt && self->id == to) {
        return CR_EINVAL; /* would deadlock until the timeout */
    }
    /* An actor asked to stop while it waits here stops waiting: whoever
     * stops it may be the very actor it called (a supervisor stopping its
     * children answers nothing until they are gone), and the two would
     * wait on each other until the call timed out. A call made once the
     * stop was asked (terminate, drain_on_stop) waits as usual. */
    cr_ctx *stoppable = NULL;
    if (self != NULL && self->rt == rt && !atomic_load(&self->stop_req)) {
        stoppable = self;
    }
    cri_pending p = {.corr = atomic_fetch_add(&rt->next_corr, 1)};
    cr_cond_init_monotonic(&p.cv);

    struct timespec dl;
    if (timeout_ms >= 0) {
        cr_deadline_ts(&dl, (uint64_t)timeout_ms);
    }
    pthread_mutex_lock(&rt->call_mu);
    int rv = cri_map_put(&rt->calls, p.corr, &p);
    pthread_mutex_unlock(&rt->call_mu);
    if (rv != 0) {
        pthread_cond_destroy(&p.cv);
        return rv;
    }

    m->corr = p.corr;
    rv = cri_send(rt, from, to, m, 0, timeout_ms < 0 ? -1 : timeout_ms);
    if (rv == CR_ETIMEDOUT) {
        cr_msg_free(m); /* contract: on ETIMEDOUT the runtime owns m */
    } else if (rv != 0) {
        m->corr = 0;
    }

    pthread_mutex_lock(&rt->call_mu);
    if (stoppable != NULL) {
        stoppable->waiting = &p;
    }
    int w = 0;
    while (rv == 0 && !p.done && w != ETIMEDOUT &&
           !(stoppable != NULL && atomic_load(&stoppable->stop_req))) {
        w = timeout_ms >= 0 ? pthread_cond_timedwait(&p.cv, &rt->call_mu, &dl)
                            : pthread_cond_wait(&p.cv, &rt->call_mu);
    }
    if (stoppable != NULL) {
        stoppable->waiting = NULL;
    }
    if (!p.done) {
        cri_map_del(&rt->calls, p.corr);
        if (rv == 0) {
            rv = CR_ETIMEDOUT;
        }
    }
    pthread_mutex_unlock(&rt->call_mu);
    pthread_cond_destroy(&p.cv);
    if (rv == 0) {
        *reply = p.reply;
    }
    return rv;
}

int
cr_call_async(cr_ctx *ctx, cr_id to, cr_msg *m, uint64_t *corrp)
{
    if (ctx == NULL || m == NULL || m->borrowed) {
        return CR_EINVAL;
    }
    cr_rt *rt = ctx->rt;
    cri_pending *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return CR_ENOMEM;
    }
    uint64_t corr = atomic_fetch_add(&rt->next_corr, 1);
    p->corr = corr; /* read corr, not p, later: a fast reply frees p */
    p->async = true;
    p->caller = ctx->id;
    p->owner = ctx;
    pthread_mutex_lock(&rt->call_mu);
    int rv = cri_map_put(&rt->calls, p->corr, p);
    if (rv == 0) {
        p->next = ctx->asyncs;
        if (ctx->asyncs != NULL) {
            ctx->asyncs->prev = p;
        }
        ctx->asyncs = p;
    }
    pthread_mutex_unlock(&rt->call_mu);
    if (rv != 0) {
        free(p);
        return rv;
    }
    m->corr = corr;
    rv = cri_send(rt, ctx->id, to, m, 0, 0);
    if (rv != 0) {
        m->corr = 0;
        cr_call_forget(ctx, corr);
        return rv;
    }
    atomic_fetch_add_explicit(&ctx->msgs_out, 1, memory_order_relaxed);
    if (corrp != NULL) {
        *corrp = corr;
    }
    return 0;
}

void
cr_call_forget(cr_ctx *ctx, uint64_t corr)
{
    if (ctx == NULL) {
        return;
    }
    cr_rt *rt = ctx->rt;
    pthread_mutex_lock(&rt->call_mu);
    cri_pending *p = cri_map_get(&rt->calls, corr);
    if (p != NULL && p->async && p->owner == ctx) {
        cri_map_del(&rt->calls, corr);
        unlink_async(p);
        free(p);
    }
    pthread_mutex_unlock(&rt->call_mu);
}

int
cr_reply(cr_ctx *ctx, const cr_msg *req, cr_msg *reply)
{
    if (reply == NULL) {
        return CR_EINVAL;
    }
    if (ctx == NULL || req == NULL || req->corr == 0 || reply->borrowed) {
        cr_msg_free(reply);
        return CR_EINVAL;
    }
    cr_rt *rt = ctx->rt;
    uint64_t corr = req->corr;
    reply->from = ctx->id;
    reply->corr = corr;
    pthread_mutex_lock(&rt->call_mu);
    cri_pending *p = cri_map_del(&rt->calls, corr);
    if (p != NULL && !p->async) {
        p->reply = reply;
        p->done = true;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&rt->call_mu);
        return 0;
    }
    cr_id caller = CR_NOBODY;
    if (p != NULL) {
        caller = p->caller;
        unlink_async(p);
        free(p);
    }
    pthread_mutex_unlock(&rt->call_mu);
    if (p == NULL) {
        atomic_fetch_add_explicit(&rt->replies_dropped, 1,
                                  memory_order_relaxed);
        cr_msg_free(reply);
        return CR_ENOENT;
    }
    reply->type = CR_MSG_REPLY;
    /* Forced: the caller admitted this reply when it made the call. */
    if (cri_send(rt, ctx->id, caller, reply, CRI_PUT_FORCE, 0) != 0) {
        cr_msg_free(reply);
        return CR_ENOENT;
    }
    return 0;
}
