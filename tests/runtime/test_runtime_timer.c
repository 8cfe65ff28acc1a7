/*
 * test_runtime_timer.c - send_after ordering, cancel, periodic ticks.
 * Counts are asserted loosely: never tight timing.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdbool.h>

#include "runtime/rt_helpers.h"

#define T_USER (CR_MSG_USER + 30)

Test(runtime_timer, send_after_order)
{
    rec_rt f = {0};
    cr_assert_eq(rec_rt_up(&f), 0);
    static const uint64_t delays[] = {120, 30, 80, 60, 60, 0};
    static const uint64_t order[] = {5, 1, 3, 4, 2, 0};
    uint64_t tids[6];
    for (uint64_t i = 0; i < 6; i++) {
        cr_assert_eq(cr_send_after(f.rt, f.id, msg_u64(T_USER, i), delays[i],
                                   &tids[i]),
                     0);
        cr_expect_neq(tids[i], 0);
    }
    cr_assert_eq(rec_wait(&f.r, 6, 5000), 6);
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(get_u64(f.r.msgs[i]), order[i], "position %d", i);
        cr_expect_eq(cr_msg_from(f.r.msgs[i]), CR_NOBODY);
    }
    /* Fired timers are gone. */
    cr_expect_eq(cr_timer_cancel(f.rt, tids[0]), CR_ENOENT);
    rec_rt_down(&f);
}

Test(runtime_timer, cancel)
{
    rec_rt f = {0};
    cr_assert_eq(rec_rt_up(&f), 0);
    uint64_t t1, t2, t3;
    cr_assert_eq(cr_send_after(f.rt, f.id, msg_u64(T_USER, 1), 80, &t1), 0);
    cr_assert_eq(cr_timer_after(f.rt, f.id, 80, 77, &t2), 0);
    cr_assert_eq(cr_tick_every(f.rt, f.id, 30, 5, &t3), 0);
    cr_expect_eq(cr_timer_cancel(f.rt, t1), 0); /* frees the message once */
    cr_expect_eq(cr_timer_cancel(f.rt, t1), CR_ENOENT);
    cr_expect_eq(cr_timer_cancel(f.rt, t2), 0);
    cr_expect_eq(cr_timer_cancel(f.rt, t3), 0);
    cr_expect_eq(cr_timer_cancel(f.rt, 999999), CR_ENOENT);
    sleep_ms(200);
    cr_expect_eq(rec_count(&f.r), 0);

    /* Timer message payload. */
    uint64_t t4, tid = 0, tag = 0;
    cr_assert_eq(cr_timer_after(f.rt, f.id, 1, 1234, &t4), 0);
    cr_assert_eq(rec_wait(&f.r, 1, 5000), 1);
    cr_expect_eq(cr_msg_type(f.r.msgs[0]), CR_MSG_TIMER);
    cr_assert_eq(cr_timer_decode(f.r.msgs[0], &tid, &tag), 0);
    cr_expect_eq(tid, t4);
    cr_expect_eq(tag, 1234);

    /* A pending send_after at destroy is freed (ASan checks). */
    cr_assert_eq(cr_send_after(f.rt, f.id, msg_u64(T_USER, 2), 60000, NULL),
                 0);
    rec_rt_down(&f);
}

Test(runtime_timer, periodic_ticks)
{
    rec_rt f = {0};
    cr_assert_eq(rec_rt_up(&f), 0);
    uint64_t tid;
    cr_assert_eq(cr_tick_every(f.rt, f.id, 20, 9, &tid), 0);
    sleep_ms(500);
    size_t n = rec_count(&f.r);
    cr_expect_geq(n, 5, "ticks in 500 ms at 20 ms: %zu", n);
    cr_expect_leq(n, 30, "ticks in 500 ms at 20 ms: %zu", n);
    cr_assert_eq(cr_timer_cancel(f.rt, tid), 0);
    size_t after = rec_count(&f.r);
    sleep_ms(100);
    cr_expect_leq(rec_count(&f.r), after + 1);
    uint64_t t = 0, tag = 0;
    cr_assert_eq(cr_timer_decode(f.r.msgs[0], &t, &tag), 0);
    cr_expect_eq(t, tid);
    cr_expect_eq(tag, 9);
    rec_rt_down(&f);
}

/* A delay or period near UINT64_MAX means "not in this process's life":
 * it wrapped the deadline into the past, so the timer fired at once and a
 * periodic one on every pass of the timer thread (cfgrecvd
 * --resync-interval 18446744073709551615ms spun a core). */
Test(runtime_timer, huge_delays_never_fire)
{
    rec_rt f = {0};
    cr_assert_eq(rec_rt_up(&f), 0);
    uint64_t t1, t2, t3;
    cr_assert_eq(cr_timer_after(f.rt, f.id, UINT64_MAX, 1, &t1), 0);
    cr_assert_eq(cr_timer_after(f.rt, f.id, UINT64_MAX - 5, 2, &t2), 0);
    cr_assert_eq(cr_tick_every(f.rt, f.id, UINT64_MAX / 2 + 1, 3, &t3), 0);
    cr_assert_eq(cr_timer_after(f.rt, f.id, 10, 4, NULL), 0);
    cr_assert_eq(rec_wait(&f.r, 1, 5000), 1, "an ordinary timer still fires");
    sleep_ms(200);
    cr_assert_eq(rec_count(&f.r), 1, "only the 10 ms one fired");
    uint64_t tid = 0, tag = 0;
    cr_assert_eq(cr_timer_decode(f.r.msgs[0], &tid, &tag), 0);
    cr_expect_eq(tag, 4);
    cr_expect_eq(cr_timer_cancel(f.rt, t1), 0);
    cr_expect_eq(cr_timer_cancel(f.rt, t2), 0);
    cr_expect_eq(cr_timer_cancel(f.rt, t3), 0);
    rec_rt_down(&f);
}

Test(runtime_timer, tick_skipped_while_queued)
{
    int per_tick_ms = 100;
    rec_rt f = {.hook = rec_slow_hook, .user = &per_tick_ms};
    cr_assert_eq(rec_rt_up(&f), 0);
    uint64_t tid;
    cr_assert_eq(cr_tick_every(f.rt, f.id, 5, 0, &tid), 0);
    sleep_ms(600);
    cr_actor_info info;
    cr_assert_eq(cr_actor_info_get(f.rt, f.id, &info), 0);
    /* 5 ms ticks, 100 ms per tick: without skipping ~120 would queue. */
    cr_expect_leq(info.high_water, 2u);
    cr_expect_leq(rec_count(&f.r), 8);
    cr_expect_geq(rec_count(&f.r), 2);
    rec_rt_down(&f); /* also frees the periodic timer */
}

/* wait_no_timers polls cr_rt_timer_count (which, unlike a cancel, does
 * not change what it looks at) for up to 5 s. */
static size_t
wait_no_timers(cr_rt *rt)
{
    size_t n = cr_rt_timer_count(rt);
    for (int i = 0; i < 500 && n > 0; i++) {
        sleep_ms(10);
        n = cr_rt_timer_count(rt);
    }
    return n;
}

Test(runtime_timer, periodic_timer_dies_with_target)
{
    rec_rt f = {0};
    cr_assert_eq(rec_rt_up(&f), 0);
    uint64_t tid;
    cr_assert_eq(cr_tick_every(f.rt, f.id, 5, 0, &tid), 0);
    cr_assert_eq(cr_rt_timer_count(f.rt), 1);
    cr_assert_eq(cr_stop_wait(f.rt, f.id, 5000), 0);
    cr_expect_eq(wait_no_timers(f.rt), 0);
    cr_expect_eq(cr_timer_cancel(f.rt, tid), CR_ENOENT);
    rec_rt_down(&f);
}

/* The target dies with a tick in its mailbox, never handled, so never
 * acknowledged: the timer, which skips ticks while one is unhandled,
 * must still notice that the target is gone. */
Test(runtime_timer, periodic_timer_dies_with_a_tick_unhandled)
{
    rec_rt f = {.hook = rec_hold_hook};
    cr_assert_eq(rec_rt_up(&f), 0);
    /* a first message held in hand ... */
    cr_assert_eq(cr_send(f.rt, CR_NOBODY, f.id, cr_msg_new(CR_MSG_USER)), 0);
    rec_hold_wait();
    /* ... a tick queued behind it (the next ones are skipped) ... */
    uint64_t tid;
    cr_assert_eq(cr_tick_every(f.rt, f.id, 5, 0, &tid), 0);
    cr_actor_info info = {0};
    for (int i = 0; i < 500 && info.depth < 2; i++) {
        sleep_ms(10);
        cr_assert_eq(cr_actor_info_get(f.rt, f.id, &info), 0);
    }
    cr_assert_geq(info.depth, 2, "the tick is queued");
    /* ... and the stop takes effect before the tick is handled */
    cr_assert_eq(cr_stop(f.rt, f.id), 0);
    rec_hold_release();
    /* (it may be gone already: then there is nothing to wait for) */
    int w = cr_stop_wait(f.rt, f.id, 5000);
    cr_assert(w == 0 || w == CR_ENOENT, "%s", cr_strerror(w));
    cr_expect_eq(rec_count(&f.r), 1, "the queued tick was not handled");
    cr_expect_eq(wait_no_timers(f.rt), 0);
    cr_expect_eq(cr_timer_cancel(f.rt, tid), CR_ENOENT);
    rec_rt_down(&f);
}
