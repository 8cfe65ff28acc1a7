/*
 * rt.c - runtime creation and teardown, error strings, the clock.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msg.h"
#include "rt.h"

static _Thread_local cr_ctx *current;

cr_ctx *
cri_current(void)
{
    return current;
}

void
cri_set_current(cr_ctx *a)
{
    current = a;
}

uint64_t
cr_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int
cr_cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rv = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rv;
}

void
cr_deadline_ts(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

const char *
cr_strerror(int err)
{
    switch (err) {
    case CR_OK:
        return "success";
    case CR_ENOMEM:
        return "out of memory";
    case CR_EINVAL:
        return "invalid argument";
    case CR_ENOENT:
        return "no such actor, name or timer";
    case CR_EEXIST:
        return "name already registered";
    case CR_EFULL:
        return "mailbox full";
    case CR_ETIMEDOUT:
        return "timed out";
    case CR_ECLOSED:
        return "actor stopped or runtime closing";
    case CR_EPROTO:
        return "malformed envelope or payload";
    case CR_ENNG:
        return "unexpected nng failure";
    case CR_EFAIL:
        return "failure";
    default:
        return "unknown error";
    }
}

const char *
cr_state_name(cr_actor_state s)
{
    switch (s) {
    case CR_STATE_STARTING:
        return "starting";
    case CR_STATE_RUNNING:
        return "running";
    case CR_STATE_STOPPING:
        return "stopping";
    case CR_STATE_EXITED:
        return "exited";
    default:
        return "unknown";
    }
}

int
cr_rt_new(const cr_rt_opts *opts, cr_rt **rtp)
{
    if (rtp == NULL) {
        return CR_EINVAL;
    }
    cr_rt *rt = calloc(1, sizeof(*rt));
    if (rt == NULL) {
        return CR_ENOMEM;
    }
    if (opts != NULL) {
        rt->opts = *opts;
    }
    if (rt->opts.default_stack == 0) {
        rt->opts.default_stack = 256 * 1024;
    }
    if (rt->opts.default_cap == 0) {
        rt->opts.default_cap = 65536;
    }
    if (rt->opts.batch_max == 0) {
        rt->opts.batch_max = 256;
    }
    atomic_init(&rt->next_id, 1);
    int rv;
    if ((rv = cri_registry_init(rt)) != 0) {
        goto fail;
    }
    if ((rv = cri_calls_init(rt)) != 0) {
        goto fail_reg;
    }
    if ((rv = cri_service_start(rt)) != 0) {
        goto fail_calls;
    }
    *rtp = rt;
    return 0;

fail_calls:
    cri_calls_fini(rt);
fail_reg:
    cri_registry_fini(rt);
fail:
    free(rt);
    return rv;
}

void
cr_rt_destroy(cr_rt *rt)
{
    if (rt == NULL) {
        return;
    }
    assert((cri_current() == NULL || cri_current()->rt != rt) &&
           "cr_rt_destroy called from one of its actors");
    pthread_rwlock_wrlock(&rt->reg_lk);
    rt->closing = true;
    pthread_rwlock_unlock(&rt->reg_lk);

    /* Reverse spawn order, one at a time: an actor's terminate may still
     * talk to the actors spawned before it. */
    cr_ctx *a;
    while ((a = cri_last_live(rt)) != NULL) {
        cr_id id = a->id;
        cri_actor_put(a);
        (void)cr_stop_wait(rt, id, -1);
    }
    cri_service_stop(rt); /* waits for every actor thread to be joined */
    cri_calls_fini(rt);
    cri_registry_fini(rt);
    free(rt);
}
