/*
 * timer.c - the runtime's service thread: a timer min-heap and the
 * reaper of exited actor threads.
 *
 * Design notes. One thread per runtime sleeps on svc_cv until the earliest
 * deadline or until an exiting actor queues itself for joining. Timers
 * live in a binary heap ordered by (deadline, tid) - so timers due at the
 * same millisecond fire in creation order - and in a tid map for cancel.
 * A one-shot timer leaves both tables under svc_mu *before* it fires, so
 * from then on the firing path owns it and cancel reports CR_ENOENT: a
 * message is never freed twice. A periodic timer stays; its `queued` flag
 * (set when a tick is sent, cleared by cri_timer_ack when the actor
 * handled it) skips ticks while the previous one is unhandled, so a slow
 * actor never collects a backlog of ticks. A periodic timer whose target
 * is gone is removed at its next period: when a send fails, or when a
 * skipped tick finds the target dead (it died with a tick unhandled).
 * Timer messages are sent with CRI_PUT_FORCE: each is bounded by its timer, and a dropped timeout
 * would hang whatever waits for it. Messages are built and sent without
 * svc_mu held.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "cfgrecv/log.h"
#include "msg.h"
#include "rt.h"

struct cri_timer {
    uint64_t tid;
    uint64_t deadline; /* cr_now_ms */
    uint64_t period;   /* 0 = one-shot */
    uint64_t tag;
    cr_id to;
    cr_msg *msg; /* cr_send_after's message, or NULL for a TIMER tick */
    size_t hidx; /* index in rt->heap */
    bool queued; /* periodic: a tick is unhandled */
};

/* ---- heap (svc_mu held) ---- */

static bool
before(const cri_timer *a, const cri_timer *b)
{
    return a->deadline < b->deadline ||
           (a->deadline == b->deadline && a->tid < b->tid);
}

static void
heap_set(cr_rt *rt, size_t i, cri_timer *t)
{
    rt->heap[i] = t;
    t->hidx = i;
}

static void
sift_up(cr_rt *rt, size_t i)
{
    cri_timer *t = rt->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, rt->heap[parent])) {
            break;
        }
        heap_set(rt, i, rt->heap[parent]);
        i = parent;
    }
    heap_set(rt, i, t);
}

static void
sift_down(cr_rt *rt, size_t i)
{
    cri_timer *t = rt->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= rt->heap_n) {
            break;
        }
        if (c + 1 < rt->heap_n && before(rt->heap[c + 1], rt->heap[c])) {
            c++;
        }
        if (!before(rt->heap[c], t)) {
            break;
        }
        heap_set(rt, i, rt->heap[c]);
        i = c;
    }
    heap_set(rt, i, t);
}

static int
heap_push(cr_rt *rt, cri_timer *t)
{
    if (rt->heap_n == rt->heap_cap) {
        size_t ncap = rt->heap_cap ? rt->heap_cap * 2 : 16;
        cri_timer **n = realloc(rt->heap, ncap * sizeof(*n));
        if (n == NULL) {
            return CR_ENOMEM;
        }
        rt->heap = n;
        rt->heap_cap = ncap;
    }
    heap_set(rt, rt->heap_n++, t);
    sift_up(rt, t->hidx);
    return 0;
}

static void
heap_remove(cr_rt *rt, cri_timer *t)
{
    size_t i = t->hidx;
    cri_timer *last = rt->heap[--rt->heap_n];
    if (i < rt->heap_n) {
        heap_set(rt, i, last);
        sift_down(rt, i);
        sift_up(rt, last->hidx);
    }
}

/* ---- timer creation / cancel ---- */

/* after returns t + ms, saturated: a delay or period near UINT64_MAX (a
 * caller's "never") must not wrap a deadline into the past, where the
 * timer would fire at once and, periodic, on every pass. */
static uint64_t
after(uint64_t t, uint64_t ms)
{
    return ms > UINT64_MAX - t ? UINT64_MAX : t + ms;
}

static int
add_timer(cr_rt *rt, cr_id to, cr_msg *m, uint64_t delay_ms,
          uint64_t period_ms, uint64_t tag, uint64_t *tidp)
{
    cri_timer *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return CR_ENOMEM;
    }
    t->to = to;
    t->msg = m;
    t->period = period_ms;
    t->tag = tag;
    pthread_mutex_lock(&rt->svc_mu);
    if (rt->svc_stop) {
        pthread_mutex_unlock(&rt->svc_mu);
        free(t);
        return CR_ECLOSED;
    }
    t->tid = ++rt->next_tid;
    t->deadline = after(cr_now_ms(), delay_ms);
    int rv = cri_map_put(&rt->timers, t->tid, t);
    if (rv == 0 && (rv = heap_push(rt, t)) != 0) {
        cri_map_del(&rt->timers, t->tid);
    }
    if (rv == 0) {
        if (t->hidx == 0) {
            pthread_cond_signal(&rt->svc_cv); /* new earliest deadline */
        }
        if (tidp != NULL) {
            *tidp = t->tid;
        }
    }
    pthread_mutex_unlock(&rt->svc_mu);
    if (rv != 0) {
        free(t);
    }
    return rv;
}

int
cr_send_after(cr_rt *rt, cr_id to, cr_msg *m, uint64_t delay_ms,
              uint64_t *tidp)
{
    if (rt == NULL || m == NULL || m->borrowed) {
        return CR_EINVAL;
    }
    m->from = CR_NOBODY;
    return add_timer(rt, to, m, delay_ms, 0, 0, tidp);
}

int
cr_ctx_send_after(cr_ctx *ctx, cr_id to, cr_msg *m, uint64_t delay_ms,
                  uint64_t *tidp)
{
    if (ctx == NULL || m == NULL || m->borrowed) {
        return CR_EINVAL;
    }
    m->from = ctx->id;
    return add_timer(ctx->rt, to, m, delay_ms, 0, 0, tidp);
}

int
cr_tick_every(cr_rt *rt, cr_id to, uint64_t period_ms, uint64_t tag,
              uint64_t *tidp)
{
    if (rt == NULL || period_ms == 0) {
        return CR_EINVAL;
    }
    return add_timer(rt, to, NULL, period_ms, period_ms, tag, tidp);
}

int
cr_timer_after(cr_rt *rt, cr_id to, uint64_t delay_ms, uint64_t tag,
               uint64_t *tidp)
{
    if (rt == NULL) {
        return CR_EINVAL;
    }
    return add_timer(rt, to, NULL, delay_ms, 0, tag, tidp);
}

int
cr_timer_cancel(cr_rt *rt, uint64_t tid)
{
    if (rt == NULL) {
        return CR_EINVAL;
    }
    pthread_mutex_lock(&rt->svc_mu);
    cri_timer *t = cri_map_del(&rt->timers, tid);
    if (t != NULL) {
        heap_remove(rt, t);
    }
    pthread_mutex_unlock(&rt->svc_mu);
    if (t == NULL) {
        return CR_ENOENT;
    }
    cr_msg_free(t->msg);
    free(t);
    return 0;
}

size_t
cr_rt_timer_count(cr_rt *rt)
{
    pthread_mutex_lock(&rt->svc_mu);
    size_t n = rt->heap_n;
    pthread_mutex_unlock(&rt->svc_mu);
    return n;
}

void
cri_timer_ack(cr_rt *rt, uint64_t tid)
{
    pthread_mutex_lock(&rt->svc_mu);
    cri_timer *t = cri_map_get(&rt->timers, tid);
    if (t != NULL) {
        t->queued = false;
    }
    pthread_mutex_unlock(&rt->svc_mu);
}

static cr_msg *
timer_msg(uint64_t tid, uint64_t tag)
{
    cr_msg *m = cr_msg_new(CR_MSG_TIMER);
    if (m == NULL) {
        return NULL;
    }
    msgpack_packer *pk = cr_msg_packer(m);
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, tid);
    msgpack_pack_uint64(pk, tag);
    if (cr_msg_packer_failed(m)) {
        cr_msg_free(m);
        return NULL;
    }
    return m;
}

int
cr_timer_decode(const cr_msg *m, uint64_t *tid, uint64_t *tag)
{
    if (m == NULL || m->type != CR_MSG_TIMER || m->len > 64) {
        return CR_EPROTO;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rv = CR_EPROTO;
    if (msgpack_unpack_next(&u, (const char *)m->data, m->len, &off) ==
            MSGPACK_UNPACK_SUCCESS &&
        off == m->len && u.data.type == MSGPACK_OBJECT_ARRAY &&
        u.data.via.array.size == 2 &&
        u.data.via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        u.data.via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (tid != NULL) {
            *tid = u.data.via.array.ptr[0].via.u64;
        }
        if (tag != NULL) {
            *tag = u.data.via.array.ptr[1].via.u64;
        }
        rv = 0;
    }
    msgpack_unpacked_destroy(&u);
    return rv;
}

/* ---- firing ---- */

/* fire_one pops the due timer at the heap top (svc_mu held, released and
 * re-taken around the send). */
static void
fire_one(cr_rt *rt, uint64_t now)
{
    cri_timer *t = rt->heap[0];
    heap_remove(rt, t);
    uint64_t tid = t->tid, tag = t->tag;
    cr_id to = t->to;
    cr_msg *m = NULL;
    bool periodic = t->period > 0, send = true;
    if (periodic) {
        t->deadline = after(t->deadline, t->period);
        if (t->deadline <= now) {
            t->deadline = after(now, t->period); /* fell behind: no burst */
        }
        if (heap_push(rt, t) != 0) {
            /* Cannot fail: we just removed one slot. */
        }
        send = !t->queued;
        t->queued = true;
    } else {
        cri_map_del(&rt->timers, tid);
        m = t->msg;
        free(t);
    }
    pthread_mutex_unlock(&rt->svc_mu);

    int rv = 0;
    if (send) {
        if (m == NULL) {
            m = timer_msg(tid, tag);
            if (m != NULL && periodic) {
                m->corr = tid; /* tells the actor loop to ack the tick */
            }
        }
        if (m == NULL) {
            rv = CR_ENOMEM;
            CR_WARN("timer", "timer %llu: out of memory, tick lost",
                    (unsigned long long)tid);
        } else if ((rv = cri_send(rt, m->from, to, m, CRI_PUT_FORCE, 0)) !=
                   0) {
            cr_msg_free(m); /* target gone: dropped, as documented */
        }
    } else if (!cr_alive(rt, to)) {
        /* Skipped because a tick is still unhandled, and the target is
         * gone: it died with that tick in its mailbox, which nobody will
         * acknowledge. Without this the timer would stay for good. */
        rv = CR_ENOENT;
    }
    pthread_mutex_lock(&rt->svc_mu);
    if (periodic && rv != 0) {
        t = cri_map_get(&rt->timers, tid);
        if (t != NULL) {
            if (rv == CR_ENOMEM) {
                t->queued = false; /* retry next period */
            } else {
                /* Target gone: a periodic timer would fire forever. */
                cri_map_del(&rt->timers, tid);
                heap_remove(rt, t);
                free(t);
            }
        }
    }
}

/* reap_all joins every queued exited thread (svc_mu held, released and
 * re-taken around each join). */
static void
reap_all(cr_rt *rt)
{
    while (rt->reap_head != NULL) {
        cr_ctx *a = rt->reap_head;
        rt->reap_head = a->reap_next;
        pthread_mutex_unlock(&rt->svc_mu);
        pthread_join(a->thr, NULL);
        cri_actor_reaped(a);
        pthread_mutex_lock(&rt->svc_mu);
        if (--rt->threads == 0) {
            pthread_cond_broadcast(&rt->idle_cv);
        }
    }
}

static void *
service_main(void *arg)
{
    cr_rt *rt = arg;
    pthread_setname_np(pthread_self(), "cr-service");
    pthread_mutex_lock(&rt->svc_mu);
    for (;;) {
        reap_all(rt);
        if (rt->svc_stop) {
            break;
        }
        uint64_t now = cr_now_ms();
        if (rt->heap_n > 0 && rt->heap[0]->deadline <= now) {
            fire_one(rt, now);
            continue;
        }
        if (rt->heap_n == 0) {
            pthread_cond_wait(&rt->svc_cv, &rt->svc_mu);
        } else {
            struct timespec ts;
            cr_deadline_ts(&ts, rt->heap[0]->deadline - now);
            pthread_cond_timedwait(&rt->svc_cv, &rt->svc_mu, &ts);
        }
    }
    pthread_mutex_unlock(&rt->svc_mu);
    return NULL;
}

int
cri_service_start(cr_rt *rt)
{
    cr_cond_init_monotonic(&rt->svc_cv);
    cr_cond_init_monotonic(&rt->idle_cv);
    pthread_mutex_init(&rt->svc_mu, NULL);
    cri_map_init(&rt->timers);
    if (pthread_create(&rt->svc_thr, NULL, service_main, rt) != 0) {
        pthread_cond_destroy(&rt->svc_cv);
        pthread_cond_destroy(&rt->idle_cv);
        pthread_mutex_destroy(&rt->svc_mu);
        return CR_ENOMEM;
    }
    return 0;
}

void
cri_service_stop(cr_rt *rt)
{
    pthread_mutex_lock(&rt->svc_mu);
    while (rt->threads > 0) {
        pthread_cond_wait(&rt->idle_cv, &rt->svc_mu);
    }
    rt->svc_stop = true;
    pthread_cond_signal(&rt->svc_cv);
    pthread_mutex_unlock(&rt->svc_mu);
    pthread_join(rt->svc_thr, NULL);

    for (size_t i = 0; i < rt->heap_n; i++) {
        cr_msg_free(rt->heap[i]->msg);
        free(rt->heap[i]);
    }
    free(rt->heap);
    cri_map_fini(&rt->timers);
    pthread_cond_destroy(&rt->svc_cv);
    pthread_cond_destroy(&rt->idle_cv);
    pthread_mutex_destroy(&rt->svc_mu);
}

void
cri_thread_started(cr_rt *rt)
{
    pthread_mutex_lock(&rt->svc_mu);
    rt->threads++;
    pthread_mutex_unlock(&rt->svc_mu);
}

void
cri_thread_unstarted(cr_rt *rt)
{
    pthread_mutex_lock(&rt->svc_mu);
    if (--rt->threads == 0) {
        pthread_cond_broadcast(&rt->idle_cv);
    }
    pthread_mutex_unlock(&rt->svc_mu);
}

void
cri_reap(cr_rt *rt, cr_ctx *a)
{
    pthread_mutex_lock(&rt->svc_mu);
    a->reap_next = rt->reap_head;
    rt->reap_head = a;
    pthread_cond_signal(&rt->svc_cv);
    pthread_mutex_unlock(&rt->svc_mu);
}
