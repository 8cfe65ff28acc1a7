/*
 * test_runtime_timer.c - send_after ordering, cancel, periodic ticks.
 * Counts are asserted loosely: never tight timing.
 */
#include <criterion/criterion.h>

#include "runtime/rt_helpers.h"

#define T_USER (CR_MSG_USER + 30)

Test(runtime_timer, send_after_order)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    rec r;
    rec_init(&r);
    cr_id id;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &r, NULL, &id), 0);
    static const uint64_t delays[] = {120, 30, 80, 60, 60, 0};
    static const uint64_t order[] = {5, 1, 3, 4, 2, 0};
    uint64_t tids[6];
    for (uint64_t i = 0; i < 6; i++) {
        cr_assert_eq(cr_send_after(rt, id, msg_u64(T_USER, i), delays[i],
                                   &tids[i]),
                     0);
        cr_expect_neq(tids[i], 0);
    }
    cr_assert_eq(rec_wait(&r, 6, 5000), 6);
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(get_u64(r.msgs[i]), order[i], "position %d", i);
        cr_expect_eq(cr_msg_from(r.msgs[i]), CR_NOBODY);
    }
    /* Fired timers are gone. */
    cr_expect_eq(cr_timer_cancel(rt, tids[0]), CR_ENOENT);
    cr_rt_destroy(rt);
    rec_fini(&r);
}

Test(runtime_timer, cancel)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    rec r;
    rec_init(&r);
    cr_id id;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &r, NULL, &id), 0);
    uint64_t t1, t2, t3;
    cr_assert_eq(cr_send_after(rt, id, msg_u64(T_USER, 1), 80, &t1), 0);
    cr_assert_eq(cr_timer_after(rt, id, 80, 77, &t2), 0);
    cr_assert_eq(cr_tick_every(rt, id, 30, 5, &t3), 0);
    cr_expect_eq(cr_timer_cancel(rt, t1), 0); /* frees the message once */
    cr_expect_eq(cr_timer_cancel(rt, t1), CR_ENOENT);
    cr_expect_eq(cr_timer_cancel(rt, t2), 0);
    cr_expect_eq(cr_timer_cancel(rt, t3), 0);
    cr_expect_eq(cr_timer_cancel(rt, 999999), CR_ENOENT);
    sleep_ms(200);
    cr_expect_eq(rec_count(&r), 0);

    /* Timer message payload. */
    uint64_t t4, tid = 0, tag = 0;
    cr_assert_eq(cr_timer_after(rt, id, 1, 1234, &t4), 0);
    cr_assert_eq(rec_wait(&r, 1, 5000), 1);
    cr_expect_eq(cr_msg_type(r.msgs[0]), CR_MSG_TIMER);
    cr_assert_eq(cr_timer_decode(r.msgs[0], &tid, &tag), 0);
    cr_expect_eq(tid, t4);
    cr_expect_eq(tag, 1234);

    /* A pending send_after at destroy is freed (ASan checks). */
    cr_assert_eq(cr_send_after(rt, id, msg_u64(T_USER, 2), 60000, NULL), 0);
    cr_rt_destroy(rt);
    rec_fini(&r);
}

Test(runtime_timer, periodic_ticks)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    rec r;
    rec_init(&r);
    cr_id id;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &r, NULL, &id), 0);
    uint64_t tid;
    cr_assert_eq(cr_tick_every(rt, id, 20, 9, &tid), 0);
    sleep_ms(500);
    size_t n = rec_count(&r);
    cr_expect_geq(n, 5, "ticks in 500 ms at 20 ms: %zu", n);
    cr_expect_leq(n, 30, "ticks in 500 ms at 20 ms: %zu", n);
    cr_assert_eq(cr_timer_cancel(rt, tid), 0);
    size_t after = rec_count(&r);
    sleep_ms(100);
    cr_expect_leq(rec_count(&r), after + 1);
    uint64_t t = 0, tag = 0;
    cr_assert_eq(cr_timer_decode(r.msgs[0], &t, &tag), 0);
    cr_expect_eq(t, tid);
    cr_expect_eq(tag, 9);
    cr_rt_destroy(rt);
    rec_fini(&r);
}

static int
slow_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    (void)ctx;
    (void)r;
    (void)m;
    sleep_ms(100);
    return 0;
}

Test(runtime_timer, tick_skipped_while_queued)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    rec r;
    rec_init(&r);
    r.hook = slow_hook;
    cr_id id;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &r, NULL, &id), 0);
    uint64_t tid;
    cr_assert_eq(cr_tick_every(rt, id, 5, 0, &tid), 0);
    sleep_ms(600);
    cr_actor_info info;
    cr_assert_eq(cr_actor_info_get(rt, id, &info), 0);
    /* 5 ms ticks, 100 ms per tick: without skipping ~120 would queue. */
    cr_expect_leq(info.high_water, 2u);
    cr_expect_leq(rec_count(&r), 8);
    cr_expect_geq(rec_count(&r), 2);
    cr_rt_destroy(rt); /* also frees the periodic timer */
    rec_fini(&r);
}

Test(runtime_timer, periodic_timer_dies_with_target)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    rec r;
    rec_init(&r);
    cr_id id;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &r, NULL, &id), 0);
    uint64_t tid;
    cr_assert_eq(cr_tick_every(rt, id, 5, 0, &tid), 0);
    cr_assert_eq(cr_stop_wait(rt, id, 5000), 0);
    sleep_ms(50);
    cr_expect_eq(cr_timer_cancel(rt, tid), CR_ENOENT);
    cr_rt_destroy(rt);
    rec_fini(&r);
}
