/*
 * sup_testlib.h - helpers shared by the supervisor tests and the stress
 * driver: an event-collecting actor, a scriptable child behaviour, a fake
 * clock and a scripted random source. Header-only (static functions) so
 * every test binary stays one translation unit. No criterion here: the
 * helpers report, the test thread asserts.
 */
#ifndef SUP_TESTLIB_H
#define SUP_TESTLIB_H

#include "cfgrecv/actor.h"
#include "cfgrecv/backoff.h"
#include "cfgrecv/supervisor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TL_UNUSED __attribute__((unused))

/* ---- messages to test children ---- */
enum {
    T_DIE = CR_MSG_USER + 1,    /* handle returns CR_EFAIL */
    T_NORMAL = CR_MSG_USER + 2, /* handle returns CR_STOP_NORMAL */
    T_FAIL = CR_MSG_USER + 3,   /* handle calls cr_fail and returns 0 */
    T_BLOCK = CR_MSG_USER + 4,  /* handle sleeps block_ms */
};

/* ---- an ordered log of "start:x" / "stop:x" lines ---- */
typedef struct tlog {
    pthread_mutex_t mu;
    char lines[512][32];
    int n;
} tlog;

TL_UNUSED static void
tlog_init(tlog *l)
{
    pthread_mutex_init(&l->mu, NULL);
    l->n = 0;
}

TL_UNUSED static void
tlog_add(tlog *l, const char *what, const char *name)
{
    pthread_mutex_lock(&l->mu);
    if (l->n < 512) {
        snprintf(l->lines[l->n++], 32, "%s:%s", what, name);
    }
    pthread_mutex_unlock(&l->mu);
}

/* tlog_join copies the lines matching prefix, joined by ',', into out. */
TL_UNUSED static void
tlog_join(tlog *l, const char *prefix, char *out, size_t cap)
{
    out[0] = '\0';
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->n; i++) {
        if (strncmp(l->lines[i], prefix, strlen(prefix)) == 0) {
            if (out[0] != '\0') {
                strncat(out, ",", cap - strlen(out) - 1);
            }
            strncat(out, l->lines[i] + strlen(prefix),
                    cap - strlen(out) - 1);
        }
    }
    pthread_mutex_unlock(&l->mu);
}

/* ---- a scriptable child ---- */
typedef struct tchild {
    const char *name;
    tlog *log;           /* may be NULL */
    bool init_fails;     /* init returns CR_EFAIL every time */
    int block_ms;        /* T_BLOCK sleeps this long */
    int terminate_ms;    /* terminate sleeps this long */
    _Atomic int inits;   /* init calls */
    _Atomic int frees;   /* tchild_free calls (arg_free) */
    _Atomic int blocking; /* T_BLOCKs entered (a test waits for it) */
} tchild;

TL_UNUSED static int
tchild_init(cr_ctx *ctx, void *arg, void **state)
{
    tchild *t = arg;
    *state = t;
    atomic_fetch_add(&t->inits, 1);
    if (t->init_fails) {
        return CR_EFAIL;
    }
    if (t->log != NULL) {
        tlog_add(t->log, "start", t->name);
    }
    return 0;
}

TL_UNUSED static int
tchild_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    tchild *t = state;
    switch (cr_msg_type(m)) {
    case T_DIE:
        return CR_EFAIL;
    case T_NORMAL:
        return CR_STOP_NORMAL;
    case T_FAIL:
        (cr_fail)(ctx, CR_EPROTO, "asked to fail");
        return 0;
    case T_BLOCK:
        atomic_fetch_add(&t->blocking, 1);
        usleep((useconds_t)t->block_ms * 1000);
        return 0;
    default:
        return 0;
    }
}

TL_UNUSED static void
tchild_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    tchild *t = state;
    if (t == NULL || t->init_fails) {
        return;
    }
    if (t->terminate_ms > 0) {
        usleep((useconds_t)t->terminate_ms * 1000);
    }
    if (t->log != NULL) {
        tlog_add(t->log, "stop", t->name);
    }
}

TL_UNUSED static void
tchild_free(void *arg)
{
    tchild *t = arg;
    atomic_fetch_add(&t->frees, 1);
}

TL_UNUSED static const cr_behaviour tchild_behaviour = {
    .kind = "test-child",
    .init = tchild_init,
    .handle = tchild_handle,
    .terminate = tchild_terminate,
};

TL_UNUSED static cr_child_spec
tspec(tchild *t, cr_restart_type rt)
{
    cr_child_spec s = {
        .name = t->name,
        .behaviour = &tchild_behaviour,
        .arg = t,
        .restart = rt,
        .shutdown_timeout_ms = 5000,
    };
    return s;
}

/* ---- an event collector actor ---- */
#define TCOL_MAX 8192

typedef struct tcol {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cr_sup_event *ev; /* TCOL_MAX */
    int n;
    int bad; /* undecodable events */
    cr_id id;
} tcol;

TL_UNUSED static int
tcol_init(cr_ctx *ctx, void *arg, void **state)
{
    *state = arg;
    return 0;
}

TL_UNUSED static int
tcol_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    tcol *c = state;
    if (cr_msg_type(m) != CR_MSG_SUP_EVENT) {
        return 0;
    }
    cr_sup_event ev;
    int rv = cr_sup_event_decode(m, &ev);
    pthread_mutex_lock(&c->mu);
    if (rv != 0) {
        c->bad++;
    } else if (c->n < TCOL_MAX) {
        c->ev[c->n++] = ev;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

TL_UNUSED static const cr_behaviour tcol_behaviour = {
    .kind = "test-collector",
    .init = tcol_init,
    .handle = tcol_handle,
};

TL_UNUSED static int
tcol_start(cr_rt *rt, tcol *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->ev = calloc(TCOL_MAX, sizeof(*c->ev));
    if (c->ev == NULL) {
        return CR_ENOMEM;
    }
    return cr_spawn(rt, &tcol_behaviour, c, NULL, &c->id);
}

TL_UNUSED static void
tcol_stop(cr_rt *rt, tcol *c)
{
    cr_stop_wait(rt, c->id, -1);
    free(c->ev);
    c->ev = NULL;
}

/* tcol_count counts events of kind (0 = any) for child (NULL = any) from
 * supervisor sup (0 = any). */
TL_UNUSED static int
tcol_count(tcol *c, cr_sup_event_kind kind, const char *child, cr_id sup)
{
    int k = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n; i++) {
        const cr_sup_event *e = &c->ev[i];
        if ((kind == 0 || e->kind == kind) &&
            (child == NULL || strcmp(e->child, child) == 0) &&
            (sup == 0 || e->sup == sup)) {
            k++;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return k;
}

/* tcol_wait waits up to timeout_ms for at least `count` matching events
 * and returns the index of the count-th one, or -1 on timeout. */
TL_UNUSED static int
tcol_wait(tcol *c, cr_sup_event_kind kind, const char *child, cr_id sup,
          int count, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    for (;;) {
        int k = 0;
        for (int i = 0; i < c->n; i++) {
            const cr_sup_event *e = &c->ev[i];
            if ((kind == 0 || e->kind == kind) &&
                (child == NULL || strcmp(e->child, child) == 0) &&
                (sup == 0 || e->sup == sup) && ++k == count) {
                pthread_mutex_unlock(&c->mu);
                return i;
            }
        }
        if (pthread_cond_timedwait(&c->cv, &c->mu, &dl) != 0) {
            pthread_mutex_unlock(&c->mu);
            return -1;
        }
    }
}

/* tcol_get copies event i. */
TL_UNUSED static cr_sup_event
tcol_get(tcol *c, int i)
{
    pthread_mutex_lock(&c->mu);
    cr_sup_event e = c->ev[i];
    pthread_mutex_unlock(&c->mu);
    return e;
}

/* ---- fake clock, scripted rng ---- */
TL_UNUSED static _Atomic uint64_t tfake_now = 1000000;

TL_UNUSED static uint64_t
tfake_clock(void *arg)
{
    (void)arg;
    return atomic_load(&tfake_now);
}

TL_UNUSED static uint64_t
trng_zero(void *arg)
{
    (void)arg;
    return 0;
}

/* ---- misc ---- */

/* tsend sends an empty message of type to id; returns the cr_send code. */
TL_UNUSED static int
tsend(cr_rt *rt, cr_id id, uint32_t type)
{
    cr_msg *m = cr_msg_new(type);
    if (m == NULL) {
        return CR_ENOMEM;
    }
    int rv = cr_send(rt, CR_NOBODY, id, m);
    if (rv != 0) {
        cr_msg_free(m);
    }
    return rv;
}

/* tchild_id looks child name up in sup; 0 if absent or not running. */
TL_UNUSED static cr_id
tchild_id(cr_rt *rt, cr_id sup, const char *name)
{
    cr_sup_child_info *ci;
    size_t n;
    cr_id id = 0;
    if (cr_sup_which_children(rt, sup, &ci, &n) != 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ci[i].name, name) == 0) {
            id = ci[i].id;
        }
    }
    free(ci);
    return id;
}

/* fast_opts: tiny backoff, no jitter, unlimited intensity, fake clock. */
TL_UNUSED static cr_sup_opts
fast_opts(cr_sup_strategy st, cr_id subscriber)
{
    cr_sup_opts o = {
        .strategy = st,
        .max_restarts = CR_SUP_UNLIMITED,
        .backoff = {.min_ms = 1, .max_ms = 20, .factor = 2.0,
                    .jitter = CR_JITTER_NONE, .stable_ms = 10000},
        .clock = tfake_clock,
        .subscriber = subscriber,
    };
    return o;
}

#endif
