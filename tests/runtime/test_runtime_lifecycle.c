/*
 * test_runtime_lifecycle.c - monitors and DOWN, init failure, cr_fail,
 * stop (with and without drain_on_stop), names, and 1,000 spawn/stop
 * cycles leaving nothing behind.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>

#include "runtime/rt_helpers.h"

#define T_USER (CR_MSG_USER + 20)
#define T_STOP (CR_MSG_USER + 21)
#define T_ERR (CR_MSG_USER + 22)
#define T_FAIL (CR_MSG_USER + 23)

static int
target_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    (void)r;
    switch (cr_msg_type(m)) {
    case T_STOP:
        return CR_STOP_NORMAL;
    case T_ERR:
        return CR_EFAIL;
    case T_FAIL:
        (cr_fail)(ctx, 42, "boom %d", 7); /* criterion has a cr_fail macro */
        return 0;
    default:
        return 0;
    }
}

/* expect_down spawns a watcher and a named target, sends `type` to the
 * target (0 = stop it from outside) and checks the DOWN. */
static void
expect_down(uint32_t type, cr_exit_kind kind, int code, const char *text)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    rec w, t;
    rec_init(&w);
    rec_init(&t);
    t.hook = target_hook;
    cr_id wid, tid;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &w, NULL, &wid), 0);
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &t,
                          &(cr_spawn_opts){.name = "target"}, &tid),
                 0);
    uint64_t ref = 0;
    cr_assert_eq(cr_monitor(rt, wid, tid, &ref), 0);
    cr_assert_neq(ref, 0);
    if (type != 0) {
        cr_assert_eq(cr_send(rt, CR_NOBODY, tid, cr_msg_new(type)), 0);
    } else {
        cr_assert_eq(cr_stop_wait(rt, tid, 5000), 0);
    }
    cr_assert_eq(rec_wait(&w, 1, 5000), 1);
    cr_down d;
    cr_assert_eq(cr_msg_type(w.msgs[0]), CR_MSG_DOWN);
    cr_assert_eq(cr_down_decode(w.msgs[0], &d), 0);
    cr_expect_eq(d.who, tid);
    cr_expect_eq(d.ref, ref);
    cr_expect_eq(d.why.kind, kind);
    cr_expect_eq(d.why.code, code);
    cr_expect_str_eq(d.name, "target");
    if (text != NULL) {
        cr_expect_str_eq(d.why.text, text);
    }
    cr_assert(rec_wait_term(&t, 5000));
    cr_expect_eq(t.why.kind, kind);
    /* The name is free again once DOWN went out. */
    cr_expect_eq(cr_whereis(rt, "target"), CR_NOBODY);
    cr_rt_destroy(rt);
    rec_fini(&w);
    rec_fini(&t);
}

Test(runtime_lifecycle, down_normal)
{
    expect_down(T_STOP, CR_EXIT_NORMAL, 0, NULL);
}

Test(runtime_lifecycle, down_error)
{
    expect_down(T_ERR, CR_EXIT_ERROR, CR_EFAIL, NULL);
}

Test(runtime_lifecycle, down_cr_fail)
{
    expect_down(T_FAIL, CR_EXIT_ERROR, 42, "boom 7");
}

Test(runtime_lifecycle, down_shutdown)
{
    expect_down(0, CR_EXIT_SHUTDOWN, 0, NULL);
}

Test(runtime_lifecycle, down_noproc_and_demonitor)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    rec w, t;
    rec_init(&w);
    rec_init(&t);
    cr_id wid, tid;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &w, NULL, &wid), 0);
    uint64_t ref;
    cr_assert_eq(cr_monitor(rt, wid, 987654, &ref), 0);
    cr_assert_eq(rec_wait(&w, 1, 5000), 1);
    cr_down d;
    cr_assert_eq(cr_down_decode(w.msgs[0], &d), 0);
    cr_expect_eq(d.who, 987654);
    cr_expect_eq(d.ref, ref);
    cr_expect_eq(d.why.kind, CR_EXIT_NOPROC);

    /* A cancelled monitor sends nothing. */
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &t, NULL, &tid), 0);
    cr_assert_eq(cr_monitor(rt, wid, tid, &ref), 0);
    cr_assert_eq(cr_demonitor(rt, ref), 0);
    cr_expect_eq(cr_demonitor(rt, ref), CR_ENOENT);
    cr_assert_eq(cr_stop_wait(rt, tid, 5000), 0);
    sleep_ms(50);
    cr_expect_eq(rec_count(&w), 1);
    cr_expect_eq(cr_down_decode(w.msgs[0], NULL), CR_EPROTO);
    cr_rt_destroy(rt);
    rec_fini(&w);
    rec_fini(&t);
}

Test(runtime_lifecycle, init_failure)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    rec w, t, n;
    rec_init(&w);
    rec_init(&t);
    rec_init(&n);
    cr_id wid, tid, nid;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &w, NULL, &wid), 0);
    t.init_rc = CR_EFAIL;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &t,
                          &(cr_spawn_opts){.link_monitor = wid}, &tid),
                 0);
    n.init_rc = CR_STOP_NORMAL;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &n,
                          &(cr_spawn_opts){.link_monitor = wid}, &nid),
                 0);
    cr_assert_eq(rec_wait(&w, 2, 5000), 2);
    cr_assert(rec_wait_term(&t, 5000));
    cr_assert(rec_wait_term(&n, 5000));
    cr_expect_eq(t.why.kind, CR_EXIT_ERROR);
    cr_expect_eq(t.why.code, CR_EFAIL);
    cr_expect_eq(n.why.kind, CR_EXIT_NORMAL);
    for (int i = 0; i < 2; i++) {
        cr_down d;
        cr_assert_eq(cr_down_decode(w.msgs[i], &d), 0);
        if (d.who == tid) {
            cr_expect_eq(d.why.kind, CR_EXIT_ERROR);
            cr_expect_eq(d.why.code, CR_EFAIL);
            cr_expect_neq(d.why.text[0], '\0');
        } else {
            cr_expect_eq(d.who, nid);
            cr_expect_eq(d.why.kind, CR_EXIT_NORMAL);
        }
    }
    cr_expect_eq(rec_count(&t), 0);
    cr_rt_destroy(rt);
    rec_fini(&w);
    rec_fini(&t);
    rec_fini(&n);
}

Test(runtime_lifecycle, names)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    rec a, b;
    rec_init(&a);
    rec_init(&b);
    cr_id ida, idb;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &a,
                          &(cr_spawn_opts){.name = "alpha"}, &ida),
                 0);
    cr_expect_eq(cr_spawn(rt, &rec_behaviour, &b,
                          &(cr_spawn_opts){.name = "alpha"}, &idb),
                 CR_EEXIST);
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &b, NULL, &idb), 0);
    cr_expect_eq(cr_whereis(rt, "alpha"), ida);
    cr_expect_eq(cr_register(rt, "alpha", idb), CR_EEXIST);
    cr_expect_eq(cr_register(rt, "beta", idb), 0);
    cr_expect_eq(cr_register(rt, "gamma", idb), CR_EEXIST);
    cr_expect_eq(cr_whereis(rt, "beta"), idb);
    cr_expect_eq(cr_register(rt, "delta", 55555), CR_ENOENT);
    cr_expect_eq(cr_unregister(rt, "beta"), 0);
    cr_expect_eq(cr_unregister(rt, "beta"), CR_ENOENT);
    cr_expect_eq(cr_whereis(rt, "beta"), CR_NOBODY);
    cr_assert_eq(cr_stop_wait(rt, ida, 5000), 0);
    cr_expect_eq(cr_whereis(rt, "alpha"), CR_NOBODY);
    cr_expect_eq(cr_register(rt, "alpha", idb), 0);
    cr_rt_destroy(rt);
    rec_fini(&a);
    rec_fini(&b);
}

/* A stop finishes the message in hand; queued messages are freed. */
Test(runtime_lifecycle, stop_frees_queued)
{
    int per_msg_ms = 20;
    rec_rt f = {.hook = rec_slow_hook, .user = &per_msg_ms};
    cr_assert_eq(rec_rt_up(&f), 0);
    for (uint64_t i = 0; i < 200; i++) {
        cr_msg *m = cr_msg_new(T_USER);
        cr_assert_eq(cr_msg_append(m, "0123456789abcdef", 16), 0);
        cr_assert_eq(cr_send(f.rt, CR_NOBODY, f.id, m), 0);
    }
    rec_wait(&f.r, 1, 5000);
    cr_assert_eq(cr_stop_wait(f.rt, f.id, 5000), 0);
    cr_expect_lt(rec_count(&f.r), 200);
    cr_expect_eq(f.r.why.kind, CR_EXIT_SHUTDOWN);
    rec_rt_down(&f);
}

/* ---- drain_on_stop ------------------------------------------------------ */

static const cr_behaviour drain_behaviour = {
    .kind = "drainer",
    .init = rec_b_init,
    .handle = rec_b_handle,
    .terminate = rec_b_terminate,
    .drain_on_stop = true,
};

/* hundred_behind_one starts an actor of behaviour b, sends it 100
 * messages and returns once it holds the first in hand. */
static void
hundred_behind_one(rec_rt *f, const cr_behaviour *b)
{
    rec_hold.in_hand = rec_hold.released = false;
    *f = (rec_rt){.b = b, .hook = rec_hold_hook};
    cr_assert_eq(rec_rt_up(f), 0);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(cr_send(f->rt, CR_NOBODY, f->id, cr_msg_new(T_USER)), 0);
    }
    rec_hold_wait();
}

/* Sends 100 messages, stops the actor while it holds the first, sends 5
 * more, releases it; returns how many it handled before exiting. */
static size_t
handled_across_a_stop(const cr_behaviour *b)
{
    rec_rt f;
    hundred_behind_one(&f, b);
    cr_assert_eq(cr_stop(f.rt, f.id), 0);
    for (int i = 0; i < 5; i++) { /* behind the stop: never handled */
        cr_msg *m = cr_msg_new(T_USER);
        if (cr_send(f.rt, CR_NOBODY, f.id, m) != 0) {
            cr_msg_free(m);
        }
    }
    rec_hold_release();
    cr_assert(rec_wait_term(&f.r, 10000));
    cr_expect_eq(f.r.why.kind, CR_EXIT_SHUTDOWN);
    size_t n = rec_count(&f.r);
    rec_rt_down(&f);
    return n;
}

Test(runtime_lifecycle, stop_finishes_the_message_in_hand_only)
{
    cr_expect_eq(handled_across_a_stop(&rec_behaviour), 1);
}

Test(runtime_lifecycle, drain_on_stop_handles_what_was_queued_first)
{
    cr_expect_eq(handled_across_a_stop(&drain_behaviour), 100);
}

/* ---- batch_end ------------------------------------------------------------ */

/* What batch_end saw: how often it ran, and the handled count each time
 * (the recorder counts under its lock; batch_end runs on the same thread
 * after the batch's handles, so it reads a settled count). */
static struct {
    atomic_uint calls;
    atomic_size_t last_seen; /* handled count at the latest call */
    atomic_size_t max_gap0;  /* calls that saw no new message (must be 0) */
    size_t prev;             /* actor thread only */
    int fail_after;          /* > 0: return CR_EFAIL at that call */
} be;

static int
be_batch_end(cr_ctx *ctx, void *state)
{
    (void)ctx;
    rec *r = state;
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    if (n == be.prev) {
        atomic_fetch_add(&be.max_gap0, 1);
    }
    be.prev = n;
    atomic_store(&be.last_seen, n);
    unsigned c = atomic_fetch_add(&be.calls, 1) + 1;
    return be.fail_after > 0 && (int)c >= be.fail_after ? CR_EFAIL : 0;
}

static const cr_behaviour batch_behaviour = {
    .kind = "batcher",
    .init = rec_b_init,
    .handle = rec_b_handle,
    .terminate = rec_b_terminate,
    .batch_end = be_batch_end,
};

/* 100 messages queued behind one held in hand: batch_end runs after each
 * received batch, never on an empty one, and last after the 100th. */
Test(runtime_lifecycle, batch_end_after_each_batch)
{
    rec_rt f;
    hundred_behind_one(&f, &batch_behaviour);
    rec_hold_release();
    cr_assert_eq(rec_wait(&f.r, 100, 10000), 100);
    for (int i = 0; i < 1000 && atomic_load(&be.last_seen) != 100; i++) {
        sleep_ms(5);
    }
    cr_expect_eq(atomic_load(&be.last_seen), 100, "called after the last");
    cr_expect_eq(atomic_load(&be.max_gap0), 0, "never on an empty batch");
    unsigned calls = atomic_load(&be.calls);
    cr_expect(calls >= 2 && calls <= 100, "calls %u", calls);
    rec_rt_down(&f);
}

/* A batch_end that fails fails the actor, as a handle would. */
Test(runtime_lifecycle, batch_end_failure_fails_the_actor)
{
    be.fail_after = 1;
    rec_rt f = {.b = &batch_behaviour};
    cr_assert_eq(rec_rt_up(&f), 0);
    cr_assert_eq(cr_send(f.rt, CR_NOBODY, f.id, cr_msg_new(T_USER)), 0);
    cr_assert(rec_wait_term(&f.r, 10000));
    cr_expect_eq(f.r.why.kind, CR_EXIT_ERROR);
    cr_expect_eq(f.r.why.code, CR_EFAIL);
    cr_expect_eq(rec_count(&f.r), 1);
    rec_rt_down(&f);
}

/* ---- cr_defer ---------------------------------------------------------- */

/* A log of what ran, in order: 'h' a handle, 'd' the deferred callback,
 * 'e' the second one, 'i' init, 't' terminate. */
static struct {
    pthread_mutex_t mu;
    char log[64];
    size_t n;
    int full_rc; /* cr_defer's answer once CR_DEFER_MAX wait */
} dl = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void
dl_put(char c)
{
    pthread_mutex_lock(&dl.mu);
    if (dl.n < sizeof(dl.log) - 1) {
        dl.log[dl.n++] = c;
    }
    pthread_mutex_unlock(&dl.mu);
}

static void
dl_fn(void *arg)
{
    dl_put(*(const char *)arg);
}

static void
noop_fn(void *arg)
{
    (void)arg;
}

static int
defer_init(cr_ctx *ctx, void *arg, void **state)
{
    static const char d = 'd';
    dl_put('i');
    cr_defer(dl_fn, (void *)&d);
    return rec_b_init(ctx, arg, state);
}

static int
defer_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    static const char d = 'd', e = 'e';
    dl_put('h');
    cr_defer(dl_fn, (void *)&d);
    cr_defer(dl_fn, (void *)&d); /* the same again: runs once */
    cr_defer(dl_fn, (void *)&e);
    if (cr_msg_type(m) == T_USER + 1) { /* fill the table */
        static const char k[CR_DEFER_MAX] = {0};
        for (int i = 0; i < CR_DEFER_MAX; i++) {
            int rc = cr_defer(noop_fn, (void *)&k[i]);
            if (rc != 0) {
                dl.full_rc = rc;
            }
        }
    }
    return rec_b_handle(ctx, state, m);
}

static void
defer_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    static const char d = 'd';
    dl_put('t');
    cr_defer(dl_fn, (void *)&d);
    rec_b_terminate(ctx, state, why);
}

static const cr_behaviour defer_behaviour = {
    .kind = "deferrer",
    .init = defer_init,
    .handle = defer_handle,
    .terminate = defer_terminate,
};

/* Deferred work runs on the actor's thread after init, after each
 * message it was asked for in (an idle actor's batch is one message),
 * once however often it was asked, and after terminate; a full table
 * says so and a thread that is no actor is refused. */
Test(runtime_lifecycle, defer_runs_after_the_work_in_hand)
{
    static const char d = 'd';
    cr_expect_eq(cr_defer(dl_fn, (void *)&d), CR_ENOENT);
    rec_rt f = {.b = &defer_behaviour};
    cr_assert_eq(rec_rt_up(&f), 0);
    cr_assert_eq(cr_send(f.rt, CR_NOBODY, f.id, cr_msg_new(T_USER)), 0);
    cr_assert_eq(rec_wait(&f.r, 1, 5000), 1);
    /* sent once the first is in hand: another batch */
    cr_assert_eq(cr_send(f.rt, CR_NOBODY, f.id, cr_msg_new(T_USER + 1)), 0);
    cr_assert_eq(rec_wait(&f.r, 2, 5000), 2);
    cr_assert_eq(cr_stop_wait(f.rt, f.id, 5000), 0);
    pthread_mutex_lock(&dl.mu);
    dl.log[dl.n] = '\0';
    pthread_mutex_unlock(&dl.mu);
    cr_expect_str_eq(dl.log, "idhdehdetd");
    cr_expect_eq(dl.full_rc, CR_EFULL, "the ninth distinct callback");
    rec_rt_down(&f);
}

Test(runtime_lifecycle, thousand_actors_leave_nothing)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    /* Warm up nng (its task threads start with the first sockets). */
    rec warm;
    rec_init(&warm);
    cr_id wid;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &warm, NULL, &wid), 0);
    cr_assert_eq(cr_stop_wait(rt, wid, 5000), 0);
    rec_fini(&warm);
    /* the warm-up thread leaves /proc/self/task a moment after its join:
     * take the baseline once the count has held for 100 ms (up to 2 s) */
    int tasks0 = count_tasks();
    for (int held = 0, i = 0; held < 100 && i < 2000; i++) {
        sleep_ms(1);
        int n = count_tasks();
        held = n == tasks0 ? held + 1 : 0;
        tasks0 = n;
    }
    int fds0 = count_fds();

    static rec recs[100];
    for (int round = 0; round < 10; round++) {
        cr_id ids[100];
        for (int i = 0; i < 100; i++) {
            rec_init(&recs[i]);
            char name[32];
            snprintf(name, sizeof(name), "churn-%d-%d", round, i);
            cr_assert_eq(cr_spawn(rt, &rec_behaviour, &recs[i],
                                  &(cr_spawn_opts){.name = name}, &ids[i]),
                         0);
            cr_assert_eq(cr_send(rt, CR_NOBODY, ids[i], cr_msg_new(T_USER)),
                         0);
        }
        cr_expect_eq(cr_rt_actor_count(rt), 100);
        for (int i = 0; i < 100; i++) {
            cr_assert_eq(cr_stop_wait(rt, ids[i], 10000), 0);
            rec_fini(&recs[i]);
        }
    }
    cr_expect_eq(cr_rt_actor_count(rt), 0);
    cr_expect_eq(count_tasks_settled(tasks0, 2000), tasks0);
    cr_expect_eq(count_fds(), fds0);
    cr_rt_destroy(rt);
    cr_expect_eq(count_tasks_settled(tasks0 - 1, 2000), tasks0 - 1); /* service */
}

static int
count_init(cr_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    *state = arg;
    return 0;
}

static int
count_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    (void)ctx;
    (void)m;
    atomic_fetch_add((_Atomic int *)state, 1);
    return 0;
}

static void
count_term(cr_ctx *ctx, void *state, const cr_exit *why)
{
    (void)ctx;
    if (why->kind == CR_EXIT_SHUTDOWN) {
        atomic_fetch_add((_Atomic int *)state, 1000);
    }
}

Test(runtime_lifecycle, destroy_stops_everything)
{
    int tasks0 = count_tasks();
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    static const cr_behaviour b = {.kind = "counter",
                                   .init = count_init,
                                   .handle = count_handle,
                                   .terminate = count_term};
    _Atomic int counter = 0;
    for (int i = 0; i < 20; i++) {
        cr_id id;
        cr_assert_eq(cr_spawn(rt, &b, (void *)&counter, NULL, &id), 0);
    }
    cr_rt_destroy(rt);
    cr_expect_eq(atomic_load(&counter), 20 * 1000);
    cr_expect_eq(count_tasks_settled(tasks0, 2000), tasks0);
}
