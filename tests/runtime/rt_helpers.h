/*
 * rt_helpers.h - shared helpers for the runtime tests: a recording actor
 * whose results the test thread waits for (criterion asserts only on the
 * test thread), and /proc counters for the clean-shutdown checks.
 */
#ifndef RT_HELPERS_H
#define RT_HELPERS_H

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfgrecv/actor.h"

#define REC_MAX 4096

typedef struct rec rec;
typedef int (*rec_hook)(cr_ctx *ctx, rec *r, const cr_msg *m);

struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t n;              /* messages handled (protected by mu) */
    cr_msg *msgs[REC_MAX]; /* copies of the first REC_MAX */
    bool terminated;
    cr_exit why;
    int init_rc;
    rec_hook hook;   /* optional: runs per message, its rc is returned */
    void *user;      /* for hooks */
    cr_id self;
};

static inline void
rec_init(rec *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

static inline void
rec_fini(rec *r)
{
    for (size_t i = 0; i < REC_MAX && i < r->n; i++) {
        cr_msg_free(r->msgs[i]);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

static inline int
rec_b_init(cr_ctx *ctx, void *arg, void **state)
{
    rec *r = arg;
    *state = r;
    pthread_mutex_lock(&r->mu);
    r->self = cr_self(ctx);
    pthread_mutex_unlock(&r->mu);
    return r->init_rc;
}

static inline int
rec_b_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    rec *r = state;
    int rc = r->hook != NULL ? r->hook(ctx, r, m) : 0;
    cr_msg *copy = cr_msg_dup(m);
    pthread_mutex_lock(&r->mu);
    if (r->n < REC_MAX) {
        r->msgs[r->n] = copy;
        copy = NULL;
    }
    r->n++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    cr_msg_free(copy);
    return rc;
}

static inline void
rec_b_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    (void)ctx;
    rec *r = state;
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->terminated = true;
    r->why = *why;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static const cr_behaviour rec_behaviour = {
    .kind = "recorder",
    .init = rec_b_init,
    .handle = rec_b_handle,
    .terminate = rec_b_terminate,
};

static inline void
ts_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* rec_wait waits until n messages were handled; returns the count seen. */
static inline size_t
rec_wait(rec *r, size_t n, int timeout_ms)
{
    struct timespec ts;
    ts_in(&ts, timeout_ms);
    pthread_mutex_lock(&r->mu);
    while (r->n < n) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0) {
            break;
        }
    }
    size_t got = r->n;
    pthread_mutex_unlock(&r->mu);
    return got;
}

/* rec_wait_term waits until terminate ran. */
static inline bool
rec_wait_term(rec *r, int timeout_ms)
{
    struct timespec ts;
    ts_in(&ts, timeout_ms);
    pthread_mutex_lock(&r->mu);
    while (!r->terminated) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0) {
            break;
        }
    }
    bool t = r->terminated;
    pthread_mutex_unlock(&r->mu);
    return t;
}

static inline size_t
rec_count(rec *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static inline int
count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n;
}

static inline int
count_tasks(void)
{
    return count_dir("/proc/self/task");
}

static inline int
count_fds(void)
{
    return count_dir("/proc/self/fd");
}

/* count_tasks_settled polls /proc/self/task for up to ms until it shows
 * want entries: pthread_join returns when the thread's tid is cleared,
 * a moment before the kernel drops it from /proc. Returns the last
 * count. */
static inline int
count_tasks_settled(int want, int ms)
{
    int n = count_tasks();
    for (int i = 0; i < ms && n != want; i++) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
        n = count_tasks();
    }
    return n;
}

/* msg_u64 builds a message whose payload is one native uint64. */
static inline cr_msg *
msg_u64(uint32_t type, uint64_t v)
{
    return cr_msg_new_bytes(type, &v, sizeof(v));
}

static inline uint64_t
get_u64(const cr_msg *m)
{
    uint64_t v = 0;
    if (cr_msg_len(m) == sizeof(v)) {
        memcpy(&v, cr_msg_data(m), sizeof(v));
    }
    return v;
}

static inline void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* rec_slow_hook holds every message for *(int *)r->user ms: a slow actor,
 * for the tests that need a queue to build up behind it. */
static inline int
rec_slow_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    (void)ctx;
    (void)m;
    sleep_ms(*(const int *)r->user);
    return 0;
}

/* rec_hold_hook holds the first message in hand until the test calls
 * rec_hold_release, so the queue behind it and the moment of a stop are
 * known exactly; rec_hold_wait waits until it is in hand. One hold per
 * process (criterion runs each test in a process of its own). */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool in_hand, released;
} rec_hold = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false,
              false};

static inline int
rec_hold_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    (void)ctx;
    (void)m;
    if (rec_count(r) > 0) {
        return 0;
    }
    pthread_mutex_lock(&rec_hold.mu);
    rec_hold.in_hand = true;
    pthread_cond_broadcast(&rec_hold.cv);
    while (!rec_hold.released) {
        pthread_cond_wait(&rec_hold.cv, &rec_hold.mu);
    }
    pthread_mutex_unlock(&rec_hold.mu);
    return 0;
}

static inline void
rec_hold_wait(void)
{
    pthread_mutex_lock(&rec_hold.mu);
    while (!rec_hold.in_hand) {
        pthread_cond_wait(&rec_hold.cv, &rec_hold.mu);
    }
    pthread_mutex_unlock(&rec_hold.mu);
}

static inline void
rec_hold_release(void)
{
    pthread_mutex_lock(&rec_hold.mu);
    rec_hold.released = true;
    pthread_cond_broadcast(&rec_hold.cv);
    pthread_mutex_unlock(&rec_hold.mu);
}

/* rec_rt is the setup most runtime tests begin with: a runtime and one
 * recorder actor in it. The test may set the first five fields (zero
 * means the defaults) before rec_rt_up, which fills in the rest. */
typedef struct rec_rt {
    const cr_behaviour *b; /* NULL: rec_behaviour */
    rec_hook hook;         /* set on the recorder before it is spawned */
    void *user;
    cr_rt_opts rt_opts;
    cr_spawn_opts so;
    cr_rt *rt;
    rec r;
    cr_id id;
} rec_rt;

/* rec_rt_up makes the runtime and spawns the recorder in it. It returns 0
 * or the failing call's error rather than asserting: the stress drivers
 * include this header too, without criterion, so the test asserts on the
 * result. */
static inline int
rec_rt_up(rec_rt *f)
{
    int rc = cr_rt_new(&f->rt_opts, &f->rt);
    if (rc != 0) {
        return rc;
    }
    rec_init(&f->r);
    f->r.hook = f->hook;
    f->r.user = f->user;
    return cr_spawn(f->rt, f->b != NULL ? f->b : &rec_behaviour, &f->r,
                    &f->so, &f->id);
}

/* rec_rt_down destroys the runtime (which stops the recorder), then the
 * recorder's copies. */
static inline void
rec_rt_down(rec_rt *f)
{
    cr_rt_destroy(f->rt);
    rec_fini(&f->r);
}

#endif
