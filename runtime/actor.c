/*
 * actor.c - spawning, the actor thread loop, stopping and exit.
 *
 * Design notes. An actor is a pthread that blocks in nng_recvmsg on its
 * PULL socket, decodes each batch in place and hands every envelope to
 * handle() as a borrowed view into the batch (no copy). Exit, whatever the
 * cause, runs one path (finish): leave the registry (id, name, live list;
 * senders now get CR_ENOENT, and those already holding a reference get
 * CR_ECLOSED from the closed mailbox), close the mailbox (queued envelopes
 * are freed with their batches), call terminate, drop pending async
 * calls, send DOWN to the monitors - after terminate, so a supervisor that
 * restarts on DOWN finds the old actor's resources released and its name
 * free - and finally hand the thread to the reaper (the service thread
 * joins it, so no exited thread lingers). cr_stop sets an atomic flag and
 * sends a WAKE envelope; the loop checks the flag before each envelope
 * and before blocking, so the message in hand is finished first. A
 * behaviour with drain_on_stop runs on until it meets a WAKE with the
 * flag set: stop's own WAKE, queued behind everything sent before it.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfgrecv/log.h"
#include "msg.h"
#include "rt.h"

/* ---- exit reasons (actor thread only) ---- */

static void
set_exit(cr_ctx *a, cr_exit_kind kind, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
vset_exit(cr_ctx *a, cr_exit_kind kind, int code, const char *fmt,
          va_list ap)
{
    a->exit_req = true;
    a->exit.kind = kind;
    a->exit.code = code;
    vsnprintf(a->exit.text, sizeof(a->exit.text), fmt, ap);
}

static void
set_exit(cr_ctx *a, cr_exit_kind kind, int code, const char *fmt, ...)
{
    if (a->exit_req) {
        return; /* the first reason wins (cr_fail overrides, see there) */
    }
    va_list ap;
    va_start(ap, fmt);
    vset_exit(a, kind, code, fmt, ap);
    va_end(ap);
}

int
cr_defer(void (*fn)(void *arg), void *arg)
{
    cr_ctx *a = cri_current();
    if (a == NULL) {
        return CR_ENOENT;
    }
    for (unsigned i = 0; i < a->ndeferred; i++) {
        if (a->deferred[i].fn == fn && a->deferred[i].arg == arg) {
            return 0;
        }
    }
    if (a->ndeferred == CR_DEFER_MAX) {
        return CR_EFULL;
    }
    a->deferred[a->ndeferred].fn = fn;
    a->deferred[a->ndeferred].arg = arg;
    a->ndeferred++;
    return 0;
}

/* run_deferred runs what cr_defer recorded, in order. What a callback
 * defers while they run (itself included) runs after them. */
static void
run_deferred(cr_ctx *a)
{
    while (a->ndeferred > 0) {
        unsigned n = a->ndeferred;
        cri_deferred run[CR_DEFER_MAX];
        memcpy(run, a->deferred, n * sizeof(run[0]));
        a->ndeferred = 0;
        for (unsigned i = 0; i < n; i++) {
            run[i].fn(run[i].arg);
        }
    }
}

/* after_callback folds a callback's return code into the exit reason. */
static void
after_callback(cr_ctx *a, int rc, const char *what)
{
    if (rc == 0) {
        return;
    }
    if (rc == CR_STOP_NORMAL) {
        set_exit(a, CR_EXIT_NORMAL, 0, "normal");
    } else {
        set_exit(a, CR_EXIT_ERROR, rc, "%s returned %d (%s)", what, rc,
                 cr_strerror(rc));
    }
}

void(cr_fail)(cr_ctx *ctx, int code, const char *fmt, ...)
{
    if (ctx == NULL || (ctx->exit_req && ctx->exit.kind == CR_EXIT_ERROR)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vset_exit(ctx, CR_EXIT_ERROR, code, fmt, ap);
    va_end(ap);
}

void
cr_exit_self(cr_ctx *ctx, cr_exit_kind kind)
{
    if (ctx == NULL) {
        return;
    }
    if (kind != CR_EXIT_SHUTDOWN) {
        kind = CR_EXIT_NORMAL;
    }
    set_exit(ctx, kind, 0, "%s", kind == CR_EXIT_NORMAL ? "normal"
                                                         : "shutdown");
}

cr_id
cr_self(cr_ctx *ctx)
{
    return ctx->id;
}

cr_rt *
cr_ctx_rt(cr_ctx *ctx)
{
    return ctx->rt;
}

const char *
cr_ctx_name(cr_ctx *ctx)
{
    return ctx->spawn_name;
}

/* ---- sending ---- */

int
cri_send(cr_rt *rt, cr_id from, cr_id to, cr_msg *m, unsigned flags,
         int timeout_ms)
{
    if (rt == NULL || m == NULL || m->borrowed) {
        return CR_EINVAL;
    }
    cr_ctx *a = cri_actor_get(rt, to);
    if (a == NULL) {
        return CR_ENOENT;
    }
    if (timeout_ms != 0 && a == cri_current()) {
        timeout_ms = 0; /* waiting for our own mailbox would deadlock */
    }
    int rv = cri_mailbox_put(&a->mb, m->type, from, m->corr, m->data, m->len,
                             flags, timeout_ms);
    cri_actor_put(a);
    if (rv == 0) {
        cr_msg_free(m);
    }
    return rv;
}

int
cr_send(cr_rt *rt, cr_id from, cr_id to, cr_msg *m)
{
    return cri_send(rt, from, to, m, 0, 0);
}

int
cr_send_wait(cr_rt *rt, cr_id from, cr_id to, cr_msg *m, int timeout_ms)
{
    return cri_send(rt, from, to, m, 0, timeout_ms);
}

int
cr_ctx_send_wait(cr_ctx *ctx, cr_id to, cr_msg *m, int timeout_ms)
{
    if (ctx == NULL) {
        return CR_EINVAL;
    }
    int rv = cri_send(ctx->rt, ctx->id, to, m, 0, timeout_ms);
    if (rv == 0) {
        atomic_fetch_add_explicit(&ctx->msgs_out, 1, memory_order_relaxed);
    }
    return rv;
}

int
cr_ctx_send(cr_ctx *ctx, cr_id to, cr_msg *m)
{
    return cr_ctx_send_wait(ctx, to, m, 0);
}

/* ---- the actor thread ---- */

/* run is the receive loop; returns once an exit reason is set. */
static void
run(cr_ctx *a)
{
    const bool drain = a->b->drain_on_stop;
    for (;;) {
        if (!drain && atomic_load(&a->stop_req)) {
            set_exit(a, CR_EXIT_SHUTDOWN, 0, "shutdown");
            return;
        }
        nng_msg *nm;
        if (cri_mailbox_recv(&a->mb, &nm) != 0) {
            set_exit(a, CR_EXIT_ERROR, CR_ENNG, "mailbox receive failed");
            return;
        }
        const uint8_t *body = nng_msg_body(nm);
        size_t size = nng_msg_len(nm), pos = 0;
        cri_env env;
        int r;
        while ((r = cri_env_next(body, size, &pos, &env)) == 1) {
            if (atomic_load(&a->stop_req) &&
                (!drain || env.type == CR_MSG_WAKE)) {
                set_exit(a, CR_EXIT_SHUTDOWN, 0, "shutdown");
                break;
            }
            if (env.type == CR_MSG_WAKE) {
                cri_mailbox_done(&a->mb, 1);
                continue;
            }
            cr_msg view;
            cri_msg_view(&view, &env);
            int rc = a->b->handle(a, a->state_ptr, &view);
            atomic_fetch_add_explicit(&a->msgs_in, 1, memory_order_relaxed);
            if (env.type == CR_MSG_TIMER && env.corr != 0) {
                cri_timer_ack(a->rt, env.corr);
            }
            cri_mailbox_done(&a->mb, 1);
            after_callback(a, rc, "handle");
            if (a->exit_req) {
                break;
            }
        }
        if (r < 0) {
            /* Only our encoder writes here: this is a runtime bug. The
             * rest of the batch is lost (and its depth with it). */
            CR_ERROR("runtime", "actor %llu: malformed batch at %zu/%zu",
                     (unsigned long long)a->id, pos, size);
        }
        nng_msg_free(nm);
        if (a->b->batch_end != NULL) {
            after_callback(a, a->b->batch_end(a, a->state_ptr), "batch_end");
        }
        run_deferred(a);
        if (a->exit_req) {
            return;
        }
    }
}

static void
finish(cr_ctx *a)
{
    cr_rt *rt = a->rt;
    atomic_store(&a->state, CR_STATE_STOPPING);
    cri_monitor *mons = cri_registry_remove(rt, a);
    cri_mailbox_close(&a->mb);
    if (a->b->terminate != NULL) {
        a->b->terminate(a, a->state_ptr, &a->exit);
    }
    run_deferred(a);
    cri_calls_drop_actor(rt, a);
    if (a->exit.kind == CR_EXIT_ERROR) {
        CR_WARN("runtime", "actor %llu (%s%s%s) failed: %s (code %d)",
                (unsigned long long)a->id, a->kind,
                a->spawn_name[0] ? " " : "", a->spawn_name, a->exit.text,
                a->exit.code);
    }
    cri_monitors_fire(rt, mons, a->id, a->spawn_name, &a->exit);
    atomic_store(&a->state, CR_STATE_EXITED);
    cri_set_current(NULL);
    cri_reap(rt, a); /* a may be freed from here on */
}

static void *
actor_main(void *arg)
{
    cr_ctx *a = arg;
    cri_set_current(a);
    char tname[16]; /* Linux limit: 15 chars + NUL */
    const char *src = a->spawn_name[0] ? a->spawn_name
                                       : (a->kind[0] ? a->kind : "actor");
    size_t n = strnlen(src, sizeof(tname) - 1);
    memcpy(tname, src, n);
    tname[n] = '\0';
    pthread_setname_np(pthread_self(), tname);

    int rc = a->b->init != NULL ? a->b->init(a, a->arg, &a->state_ptr) : 0;
    after_callback(a, rc, "init");
    pthread_mutex_lock(&a->end_mu); /* a cr_spawn with wait_init returns */
    a->inited = true;
    pthread_cond_broadcast(&a->end_cv);
    pthread_mutex_unlock(&a->end_mu);
    run_deferred(a);
    if (!a->exit_req) {
        atomic_store(&a->state, CR_STATE_RUNNING);
        run(a);
    }
    finish(a);
    return NULL;
}

void
cri_actor_reaped(cr_ctx *a)
{
    pthread_mutex_lock(&a->end_mu);
    a->joined = true;
    pthread_cond_broadcast(&a->end_cv);
    pthread_mutex_unlock(&a->end_mu);
    cri_actor_put(a); /* the thread's reference */
}

/* ---- spawn ---- */

int
cr_spawn(cr_rt *rt, const cr_behaviour *b, void *arg,
         const cr_spawn_opts *opts, cr_id *idp)
{
    static const cr_spawn_opts none = {0};
    if (rt == NULL || b == NULL || b->handle == NULL) {
        return CR_EINVAL;
    }
    if (opts == NULL) {
        opts = &none;
    }
    if (opts->name != NULL &&
        (opts->name[0] == '\0' || strlen(opts->name) >= 64)) {
        return CR_EINVAL;
    }
    cr_ctx *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return CR_ENOMEM;
    }
    atomic_init(&a->refs, 1); /* ours, for the duration of spawn */
    a->rt = rt;
    a->id = atomic_fetch_add(&rt->next_id, 1);
    a->b = b;
    a->arg = arg;
    if (opts->name != NULL) {
        strcpy(a->spawn_name, opts->name);
    }
    snprintf(a->kind, sizeof(a->kind), "%s", b->kind ? b->kind : "");
    a->started_ms = cr_now_ms();
    atomic_init(&a->state, CR_STATE_STARTING);
    pthread_mutex_init(&a->end_mu, NULL);
    cr_cond_init_monotonic(&a->end_cv);

    int rv;
    char url[96];
    snprintf(url, sizeof(url), "inproc://cfgrecv/%p/%llu", (void *)rt,
             (unsigned long long)a->id);
    uint32_t cap = opts->mailbox_cap ? opts->mailbox_cap : rt->opts.default_cap;
    if ((rv = cri_mailbox_init(&a->mb, url, cap, rt->opts.batch_max)) != 0) {
        goto fail;
    }
    a->mb_open = true;

    cri_actor_ref(a); /* the table's */
    if ((rv = cri_registry_add(rt, a, opts->name, opts->link_monitor)) != 0) {
        atomic_fetch_sub(&a->refs, 1);
        goto fail_mb;
    }

    size_t stack = opts->stack_size ? opts->stack_size : rt->opts.default_stack;
    if (stack < (size_t)PTHREAD_STACK_MIN) {
        stack = (size_t)PTHREAD_STACK_MIN;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack);
    cri_actor_ref(a); /* the thread's */
    cri_thread_started(rt);
    rv = pthread_create(&a->thr, &attr, actor_main, a);
    pthread_attr_destroy(&attr);
    if (rv != 0) {
        CR_ERROR("runtime", "spawn %s: pthread_create: %s", a->kind,
                 strerror(rv));
        cri_thread_unstarted(rt);
        atomic_fetch_sub(&a->refs, 1);
        cri_monitors_free(cri_registry_remove(rt, a));
        pthread_mutex_lock(&a->end_mu);
        a->joined = true; /* wakes a racing cr_stop_wait */
        pthread_cond_broadcast(&a->end_cv);
        pthread_mutex_unlock(&a->end_mu);
        rv = CR_ENOMEM;
        goto fail_mb;
    }
    if (opts->wait_init) {
        pthread_mutex_lock(&a->end_mu);
        while (!a->inited && !a->joined) {
            pthread_cond_wait(&a->end_cv, &a->end_mu);
        }
        pthread_mutex_unlock(&a->end_mu);
    }
    if (idp != NULL) {
        *idp = a->id;
    }
    cri_actor_put(a);
    return 0;

fail_mb:
    cri_mailbox_close(&a->mb);
fail:
    if (!a->mb_open) {
        pthread_cond_destroy(&a->end_cv);
        pthread_mutex_destroy(&a->end_mu);
        free(a);
        return rv;
    }
    cri_actor_put(a);
    return rv;
}

/* ---- stopping ---- */

int
cr_stop(cr_rt *rt, cr_id id)
{
    if (rt == NULL) {
        return CR_EINVAL;
    }
    cr_ctx *a = cri_actor_get(rt, id);
    if (a == NULL) {
        return CR_ENOENT;
    }
    atomic_store(&a->stop_req, true);
    cri_calls_interrupt(rt, a);
    /* Forced: a full mailbox must not block a stop. ECLOSED is fine. */
    (void)cri_mailbox_put(&a->mb, CR_MSG_WAKE, CR_NOBODY, 0, NULL, 0,
                          CRI_PUT_FORCE, 0);
    cri_actor_put(a);
    return 0;
}

int
cr_stop_wait(cr_rt *rt, cr_id id, int timeout_ms)
{
    if (rt == NULL) {
        return CR_EINVAL;
    }
    cr_ctx *a = cri_actor_get(rt, id);
    if (a == NULL) {
        return CR_ENOENT;
    }
    if (a == cri_current()) {
        cri_actor_put(a);
        return CR_EINVAL;
    }
    atomic_store(&a->stop_req, true);
    cri_calls_interrupt(rt, a);
    (void)cri_mailbox_put(&a->mb, CR_MSG_WAKE, CR_NOBODY, 0, NULL, 0,
                          CRI_PUT_FORCE, 0);
    struct timespec dl;
    if (timeout_ms >= 0) {
        cr_deadline_ts(&dl, (uint64_t)timeout_ms);
    }
    int w = 0;
    pthread_mutex_lock(&a->end_mu);
    while (!a->joined && w != ETIMEDOUT) {
        w = timeout_ms >= 0 ? pthread_cond_timedwait(&a->end_cv, &a->end_mu, &dl)
                            : pthread_cond_wait(&a->end_cv, &a->end_mu);
    }
    bool joined = a->joined;
    pthread_mutex_unlock(&a->end_mu);
    cri_actor_put(a);
    return joined ? 0 : CR_ETIMEDOUT;
}
