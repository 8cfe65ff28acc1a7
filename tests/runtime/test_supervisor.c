/*
 * test_supervisor.c - the supervisor: strategies, start/stop order,
 * restart types, backoff through the supervisor (injected clock and
 * random source), stable-period reset, intensity and escalation through
 * two levels, shutdown timeout, an init that always fails, cancelling a
 * pending restart, dynamic children, queries and events.
 *
 * Assertions only on the test thread; timing only through event order or
 * generous bounds. Every test ends with a clean shutdown: no actor left.
 */
#include "cfgrecv/actor.h"
#include "cfgrecv/supervisor.h"
#include "sup_testlib.h"

#include <criterion/criterion.h>

void sup_test_quiet_logs(void); /* test_supervisor_log.c */

#define W 10000 /* generous wait for an event, ms */

static cr_rt *rt;
static tcol col;
static tlog lg;

static void
setup(void)
{
    sup_test_quiet_logs();
    atomic_store(&tfake_now, 1000000);
    tlog_init(&lg);
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    cr_assert_eq(tcol_start(rt, &col), 0);
}

/* finish stops sup (if any), proves that only the collector is left, then
 * stops it and destroys the runtime. */
static void
finish(cr_id sup)
{
    if (sup != 0) {
        cr_assert_eq(cr_sup_stop(rt, sup, 20000), 0);
    }
    cr_assert_eq(col.bad, 0, "undecodable events");
    /* children left to exit after a stop timeout end on their own */
    for (int i = 0; i < 500 && cr_rt_actor_count(rt) > 1; i++) {
        usleep(10000);
    }
    cr_assert_eq(cr_rt_actor_count(rt), 1, "actors left: %zu",
                 cr_rt_actor_count(rt));
    tcol_stop(rt, &col);
    cr_assert_eq(cr_rt_actor_count(rt), 0);
    cr_rt_destroy(rt);
    rt = NULL;
}

TestSuite(supervisor, .init = setup, .timeout = 60);

/* which returns a child's info (asserting it exists). */
static cr_sup_child_info
which(cr_id sup, const char *name)
{
    cr_sup_child_info *ci, out;
    size_t n;
    cr_assert_eq(cr_sup_which_children(rt, sup, &ci, &n), 0);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ci[i].name, name) == 0) {
            out = ci[i];
            found = true;
        }
    }
    free(ci);
    cr_assert(found, "child %s not found", name);
    return out;
}

static size_t
nchildren(cr_id sup)
{
    cr_sup_child_info *ci;
    size_t n;
    cr_assert_eq(cr_sup_which_children(rt, sup, &ci, &n), 0);
    free(ci);
    return n;
}

/* start3 starts a supervisor over children a, b, c. */
static cr_id
start3(cr_sup_strategy st, tchild t[3])
{
    const char *names[3] = {"a", "b", "c"};
    cr_child_spec specs[3];
    for (int i = 0; i < 3; i++) {
        t[i] = (tchild){.name = names[i], .log = &lg};
        specs[i] = tspec(&t[i], CR_RESTART_PERMANENT);
    }
    cr_sup_opts o = fast_opts(st, col.id);
    o.name = "sup";
    cr_id sup;
    cr_assert_eq(cr_sup_start(rt, &o, specs, 3, &sup), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_START, "c", 0, 1, W), 0);
    return sup;
}

/* kinds_after lists "ev:child" for events from index `from` on. */
static void
kinds_after(int from, char *out, size_t cap)
{
    out[0] = '\0';
    pthread_mutex_lock(&col.mu);
    for (int i = from; i < col.n; i++) {
        char one[96];
        snprintf(one, sizeof(one), "%s%s:%s", out[0] ? "," : "",
                 cr_sup_event_name(col.ev[i].kind), col.ev[i].child);
        strncat(out, one, cap - strlen(out) - 1);
    }
    pthread_mutex_unlock(&col.mu);
}

Test(supervisor, starts_in_order_and_stops_in_reverse)
{
    tchild t[3];
    cr_id sup = start3(CR_SUP_ONE_FOR_ONE, t);
    char buf[512];
    kinds_after(0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "start:a,start:b,start:c");
    cr_id ida = which(sup, "a").id, idb = which(sup, "b").id,
          idc = which(sup, "c").id;
    cr_assert(ida < idb && idb < idc, "spawned in spec order");
    cr_assert_eq(cr_whereis(rt, "sup"), sup);
    cr_assert_eq(cr_sup_stop(rt, sup, 20000), 0);
    tlog_join(&lg, "stop:", buf, sizeof(buf));
    cr_assert_str_eq(buf, "c,b,a");
    finish(0);
}

Test(supervisor, one_for_one_restarts_only_the_failed_child)
{
    tchild t[3];
    cr_id sup = start3(CR_SUP_ONE_FOR_ONE, t);
    cr_id ida = which(sup, "a").id, idb = which(sup, "b").id,
          idc = which(sup, "c").id;
    int from = col.n;
    cr_assert_eq(tsend(rt, idb, T_DIE), 0);
    int i = tcol_wait(&col, CR_SUP_EV_RESTART, "b", 0, 1, W);
    cr_assert_geq(i, 0);
    char buf[512];
    kinds_after(from, buf, sizeof(buf));
    cr_assert_str_eq(buf, "exit:b,restart_scheduled:b,restart:b");
    cr_sup_event ex = tcol_get(&col, from);
    cr_assert_eq(ex.id, idb);
    cr_assert_eq(ex.reason.kind, CR_EXIT_ERROR);
    cr_assert_eq(ex.reason.code, CR_EFAIL);
    cr_sup_event rs = tcol_get(&col, from + 1);
    cr_assert_eq(rs.delay_ms, 1, "first delay is min_ms");
    cr_sup_event re = tcol_get(&col, i);
    cr_assert_neq(re.id, idb);
    cr_assert_eq(re.restarts, 1);
    cr_assert_eq(which(sup, "a").id, ida);
    cr_assert_eq(which(sup, "c").id, idc);
    cr_sup_child_info b = which(sup, "b");
    cr_assert_eq(b.id, re.id);
    cr_assert_eq(b.state, CR_CHILD_RUNNING);
    cr_assert_eq(b.restarts, 1);
    cr_assert_eq(b.last_exit.kind, CR_EXIT_ERROR);
    cr_assert(strstr(b.last_exit.text, "handle returned") != NULL, "%s",
              b.last_exit.text);
    /* cr_fail counts as a failure too */
    cr_assert_eq(tsend(rt, re.id, T_FAIL), 0);
    i = tcol_wait(&col, CR_SUP_EV_EXIT, "b", 0, 2, W);
    cr_assert_geq(i, 0);
    cr_sup_event ex2 = tcol_get(&col, i);
    cr_assert_eq(ex2.reason.kind, CR_EXIT_ERROR);
    cr_assert_eq(ex2.reason.code, CR_EPROTO);
    cr_assert_str_eq(ex2.reason.text, "asked to fail");
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "b", 0, 2, W), 0);
    finish(sup);
}

Test(supervisor, one_for_all_stops_all_in_reverse_and_restarts_in_order)
{
    tchild t[3];
    cr_id sup = start3(CR_SUP_ONE_FOR_ALL, t);
    cr_id idb = which(sup, "b").id;
    int from = col.n;
    cr_assert_eq(tsend(rt, idb, T_DIE), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "c", 0, 1, W), 0);
    char buf[512];
    kinds_after(from, buf, sizeof(buf));
    cr_assert_str_eq(buf,
                     "exit:b,exit:c,exit:a,"
                     "restart_scheduled:a,restart_scheduled:b,"
                     "restart_scheduled:c,"
                     "restart:a,restart:b,restart:c");
    tlog_join(&lg, "stop:", buf, sizeof(buf));
    cr_assert_str_eq(buf, "b,c,a"); /* b died; then c, a in reverse */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(which(sup, t[i].name).restarts, 1);
    }
    finish(sup);
}

Test(supervisor, rest_for_one_restarts_the_rest)
{
    tchild t[3];
    cr_id sup = start3(CR_SUP_REST_FOR_ONE, t);
    cr_id ida = which(sup, "a").id, idb = which(sup, "b").id;
    int from = col.n;
    cr_assert_eq(tsend(rt, idb, T_DIE), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "c", 0, 1, W), 0);
    char buf[512];
    kinds_after(from, buf, sizeof(buf));
    cr_assert_str_eq(buf, "exit:b,exit:c,restart_scheduled:b,"
                          "restart_scheduled:c,restart:b,restart:c");
    cr_assert_eq(which(sup, "a").id, ida);
    cr_assert_eq(which(sup, "a").restarts, 0);
    /* the first child failing restarts everything */
    from = col.n;
    cr_assert_eq(tsend(rt, ida, T_DIE), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "c", 0, 2, W), 0);
    kinds_after(from, buf, sizeof(buf));
    cr_assert_str_eq(buf, "exit:a,exit:c,exit:b,restart_scheduled:a,"
                          "restart_scheduled:b,restart_scheduled:c,"
                          "restart:a,restart:b,restart:c");
    finish(sup);
}

Test(supervisor, restart_types)
{
    tchild perm = {.name = "perm"}, trn = {.name = "trn"},
           tmp = {.name = "tmp"};
    cr_child_spec specs[3] = {tspec(&perm, CR_RESTART_PERMANENT),
                              tspec(&trn, CR_RESTART_TRANSIENT),
                              tspec(&tmp, CR_RESTART_TEMPORARY)};
    cr_sup_opts o = fast_opts(CR_SUP_ONE_FOR_ONE, col.id);
    cr_id sup;
    cr_assert_eq(cr_sup_start(rt, &o, specs, 3, &sup), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_START, "tmp", 0, 1, W), 0);

    /* permanent: restarted even after a normal exit */
    cr_assert_eq(tsend(rt, which(sup, "perm").id, T_NORMAL), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "perm", 0, 1, W), 0);

    /* transient: a failure restarts it, a normal exit does not */
    cr_assert_eq(tsend(rt, which(sup, "trn").id, T_DIE), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "trn", 0, 1, W), 0);
    cr_assert_eq(tsend(rt, which(sup, "trn").id, T_NORMAL), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_EXIT, "trn", 0, 2, W), 0);
    cr_sup_child_info ti = which(sup, "trn");
    cr_assert_eq(ti.state, CR_CHILD_STOPPED);
    cr_assert_eq(ti.id, 0);
    cr_assert_eq(ti.last_exit.kind, CR_EXIT_NORMAL);

    /* temporary: never restarted, and forgotten */
    cr_assert_eq(tsend(rt, which(sup, "tmp").id, T_DIE), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_REMOVED, "tmp", 0, 1, W), 0);
    cr_assert_eq(nchildren(sup), 2);
    cr_assert_eq(tcol_count(&col, CR_SUP_EV_RESTART, "tmp", 0), 0);
    cr_assert_eq(tcol_count(&col, CR_SUP_EV_RESTART, "trn", 0), 1);
    finish(sup);
}

Test(supervisor, backoff_sequence_with_init_failing_every_time)
{
    tchild bad = {.name = "bad", .init_fails = true};
    cr_child_spec spec = tspec(&bad, CR_RESTART_PERMANENT);
    cr_sup_opts o = fast_opts(CR_SUP_ONE_FOR_ONE, col.id);
    cr_id sup;
    cr_assert_eq(cr_sup_start(rt, &o, &spec, 1, &sup), 0);
    /* min 1, factor 2, max 20, no jitter: 1 2 4 8 16 20 20 */
    const uint64_t want[] = {1, 2, 4, 8, 16, 20, 20};
    for (int k = 0; k < 7; k++) {
        int i = tcol_wait(&col, CR_SUP_EV_RESTART_SCHEDULED, "bad", 0, k + 1,
                          W);
        cr_assert_geq(i, 0);
        cr_assert_eq(tcol_get(&col, i).delay_ms, want[k], "step %d", k);
    }
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_EXIT, "bad", 0, 8, W), 0);
    cr_sup_event ex = tcol_get(&col, tcol_wait(&col, CR_SUP_EV_EXIT, "bad", 0,
                                               1, W));
    cr_assert_eq(ex.reason.kind, CR_EXIT_ERROR);
    cr_assert(strstr(ex.reason.text, "init returned") != NULL, "%s",
              ex.reason.text);
    cr_sup_child_info ci = which(sup, "bad");
    cr_assert_geq(ci.restarts, 7);
    cr_assert_geq(atomic_load(&bad.inits), 8);
    finish(sup);
    cr_assert_eq(atomic_load(&bad.frees), 0, "arg_free not set");
}

Test(supervisor, injected_rng_drives_full_jitter)
{
    tchild bad = {.name = "bad", .init_fails = true};
    cr_child_spec spec = tspec(&bad, CR_RESTART_PERMANENT);
    cr_sup_opts o = fast_opts(CR_SUP_ONE_FOR_ONE, col.id);
    o.backoff.min_ms = 3;
    o.backoff.jitter = CR_JITTER_FULL;
    o.rng = trng_zero; /* always the low end of the window: min_ms */
    cr_id sup;
    cr_assert_eq(cr_sup_start(rt, &o, &spec, 1, &sup), 0);
    for (int k = 1; k <= 6; k++) {
        int i = tcol_wait(&col, CR_SUP_EV_RESTART_SCHEDULED, "bad", 0, k, W);
        cr_assert_geq(i, 0);
        cr_assert_eq(tcol_get(&col, i).delay_ms, 3);
    }
    finish(sup);
}

Test(supervisor, jitter_bounds_through_the_supervisor)
{
    tchild bad = {.name = "bad", .init_fails = true};
    cr_child_spec spec = tspec(&bad, CR_RESTART_PERMANENT);
    cr_sup_opts o = fast_opts(CR_SUP_ONE_FOR_ONE, col.id);
    o.backoff = (cr_backoff_policy){.min_ms = 2, .max_ms = 30, .factor = 2,
                                    .jitter = CR_JITTER_FULL};
    cr_rng r;
    cr_rng_seed(&r, 99);
    o.rng = cr_rng_next;
    o.rng_arg = &r; /* used on the supervisor's thread only */
    cr_id sup;
    cr_assert_eq(cr_sup_start(rt, &o, &spec, 1, &sup), 0);
    for (uint32_t k = 0; k < 12; k++) {
        int i = tcol_wait(&col, CR_SUP_EV_RESTART_SCHEDULED, "bad", 0,
                          (int)k + 1, W);
        cr_assert_geq(i, 0);
        uint32_t lo, hi;
        cr_backoff_window(&o.backoff, k, &lo, &hi);
        uint64_t d = tcol_get(&col, i).delay_ms;
        cr_assert(d >= lo && d <= hi, "k=%u d=%llu [%u,%u]", k,
                  (unsigned long long)d, lo, hi);
    }
    finish(sup);
}

Test(supervisor, backoff_resets_after_stable_period)
{
    tchild w = {.name = "w"};
    cr_child_spec spec = tspec(&w, CR_RESTART_PERMANENT);
    cr_sup_opts o = fast_opts(CR_SUP_ONE_FOR_ONE, col.id);
    cr_id sup;
    cr_assert_eq(cr_sup_start(rt, &o, &spec, 1, &sup), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_START, "w", 0, 1, W), 0);
    const uint64_t want[] = {1, 2, 4, 1, 2};
    for (int k = 0; k < 5; k++) {
        if (k == 3) {
            /* up for the stable period (fake clock): the delay resets */
            atomic_fetch_add(&tfake_now, 10000);
        } else {
            atomic_fetch_add(&tfake_now, 9999 / 4);
        }
        cr_assert_eq(tsend(rt, which(sup, "w").id, T_DIE), 0);
        int i = tcol_wait(&col, CR_SUP_EV_RESTART_SCHEDULED, "w", 0, k + 1,
                          W);
        cr_assert_geq(i, 0);
        cr_assert_eq(tcol_get(&col, i).delay_ms, want[k], "step %d", k);
        cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "w", 0, k + 1, W),
                      0);
    }
    finish(sup);
}

Test(supervisor, intensity_exceeded_gives_up)
{
    tchild bad = {.name = "bad", .init_fails = true},
           ok = {.name = "ok", .log = &lg};
    cr_child_spec specs[2] = {tspec(&ok, CR_RESTART_PERMANENT),
                              tspec(&bad, CR_RESTART_PERMANENT)};
    cr_sup_opts o = fast_opts(CR_SUP_ONE_FOR_ONE, col.id);
    o.name = "root";
    o.max_restarts = 3;
    o.within_ms = 5000; /* the fake clock stands still: all within */
    cr_id sup;
    cr_assert_eq(cr_sup_start(rt, &o, specs, 2, &sup), 0);
    cr_exit why;
    cr_assert_eq(cr_sup_wait(rt, sup, 20000, &why), 0);
    cr_assert_eq(why.kind, CR_EXIT_ERROR);
    cr_assert(strstr(why.text, "more than 3 restarts within 5000 ms") != NULL,
              "%s", why.text);
    cr_assert_eq(cr_sup_exit_status(&why), 1);
    /* the events reach the collector on its own thread: cr_sup_wait
     * returning says nothing about them, so wait for the last one (one
     * sender, so the ones before it are in) and count after */
    int g = tcol_wait(&col, CR_SUP_EV_GIVEUP, NULL, 0, 1, W);
    cr_assert_geq(g, 0);
    cr_assert_eq(tcol_count(&col, CR_SUP_EV_RESTART_SCHEDULED, "bad", 0), 3);
    cr_assert_eq(tcol_count(&col, CR_SUP_EV_GIVEUP, NULL, 0), 1);
    cr_assert_eq(tcol_get(&col, g).reason.kind, CR_EXIT_ERROR);
    /* the healthy sibling was stopped on the way out */
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_EXIT, "ok", 0, 1, W), g);
    char buf[128];
    tlog_join(&lg, "stop:", buf, sizeof(buf));
    cr_assert_str_eq(buf, "ok");
    finish(0);
}

Test(supervisor, escalation_through_two_levels)
{
    tchild bad = {.name = "bad", .init_fails = true};
    cr_child_spec leaf = tspec(&bad, CR_RESTART_PERMANENT);
    cr_sup_opts mo = fast_opts(CR_SUP_ONE_FOR_ONE, col.id);
    mo.name = "mid";
    mo.max_restarts = 2;
    mo.within_ms = 5000;
    cr_sup_args *margs;
    cr_assert_eq(cr_sup_args_new(&mo, &leaf, 1, &margs), 0);
    cr_child_spec mid;
    cr_sup_child_spec(&mid, "mid", margs);
    tchild ok = {.name = "ok", .log = &lg};
    cr_child_spec specs[2] = {tspec(&ok, CR_RESTART_PERMANENT), mid};
    cr_sup_opts ro = fast_opts(CR_SUP_REST_FOR_ONE, col.id);
    ro.name = "root";
    ro.max_restarts = 1;
    ro.within_ms = 5000;
    cr_id root;
    cr_assert_eq(cr_sup_start(rt, &ro, specs, 2, &root), 0);
    cr_exit why;
    cr_assert_eq(cr_sup_wait(rt, root, 20000, &why), 0);
    cr_assert_eq(why.kind, CR_EXIT_ERROR);
    cr_assert(strstr(why.text, "child 'mid'") != NULL, "%s", why.text);
    cr_assert(strstr(why.text, "more than 2 restarts") != NULL,
              "mid's reason is carried up: %s", why.text);
    /* mid gave up twice (two instances), root once, after one restart;
     * the root's give-up is the last event (wait for it, then count) */
    int last = tcol_wait(&col, CR_SUP_EV_GIVEUP, NULL, root, 1, W);
    cr_assert_geq(last, 0);
    cr_assert_eq(tcol_count(&col, CR_SUP_EV_GIVEUP, NULL, 0), 3);
    cr_assert_eq(tcol_count(&col, CR_SUP_EV_RESTART, "mid", root), 1);
    cr_assert_eq(tcol_count(&col, CR_SUP_EV_RESTART_SCHEDULED, "bad", 0), 4);
    cr_sup_event g = tcol_get(&col, last);
    cr_assert_eq(g.sup, root);
    cr_assert_str_eq(g.sup_name, "root");
    cr_assert_eq(tcol_count(&col, CR_SUP_EV_GIVEUP, NULL, root), 1);
    /* and the leaf's args were freed by the root's copy of mid's spec */
    finish(0);
}

Test(supervisor, shutdown_timeout_is_reported_and_the_child_left_to_exit)
{
    tchild fast = {.name = "fast", .log = &lg},
           slow = {.name = "slow", .log = &lg, .block_ms = 1500};
    cr_child_spec specs[2] = {tspec(&fast, CR_RESTART_PERMANENT),
                              tspec(&slow, CR_RESTART_PERMANENT)};
    specs[1].shutdown_timeout_ms = 100;
    cr_sup_opts o = fast_opts(CR_SUP_ONE_FOR_ONE, col.id);
    cr_id sup;
    cr_assert_eq(cr_sup_start(rt, &o, specs, 2, &sup), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_START, "slow", 0, 1, W), 0);
    cr_id ids = which(sup, "slow").id;
    cr_assert_eq(tsend(rt, ids, T_BLOCK), 0);
    for (int k = 0; k < 500 && atomic_load(&slow.blocking) == 0; k++) {
        usleep(10000); /* until it is in the handler */
    }
    cr_assert_eq(atomic_load(&slow.blocking), 1);
    cr_assert_eq(cr_sup_stop(rt, sup, 20000), 0);
    int i = tcol_wait(&col, CR_SUP_EV_STOP_TIMEOUT, "slow", 0, 1, W);
    cr_assert_geq(i, 0);
    cr_sup_event e = tcol_get(&col, i);
    cr_assert_eq(e.id, ids);
    cr_assert_eq(e.timeout_ms, 100);
    /* the supervisor moved on to the next child (reverse order) */
    cr_assert_gt(tcol_wait(&col, CR_SUP_EV_EXIT, "fast", 0, 1, W), i);
    char buf[128];
    tlog_join(&lg, "stop:", buf, sizeof(buf));
    cr_assert_str_eq(buf, "fast", "slow is still in its handler: %s", buf);
    /* slow finishes its handler, runs terminate and exits on its own
     * (it leaves the registry before its terminate runs: wait for both) */
    for (int k = 0; k < 500; k++) {
        tlog_join(&lg, "stop:", buf, sizeof(buf));
        if (!cr_alive(rt, ids) && strcmp(buf, "fast,slow") == 0) {
            break;
        }
        usleep(10000);
    }
    cr_assert_not(cr_alive(rt, ids));
    tlog_join(&lg, "stop:", buf, sizeof(buf));
    cr_assert_str_eq(buf, "fast,slow");
    finish(0);
}

Test(supervisor, removing_a_child_cancels_its_pending_restart)
{
    tchild w = {.name = "w"}, other = {.name = "other"};
    cr_child_spec specs[2] = {tspec(&w, CR_RESTART_PERMANENT),
                              tspec(&other, CR_RESTART_PERMANENT)};
    specs[0].arg_free = tchild_free;
    cr_sup_opts o = fast_opts(CR_SUP_ONE_FOR_ONE, col.id);
    o.backoff.min_ms = o.backoff.max_ms = 800;
    cr_id sup;
    cr_assert_eq(cr_sup_start(rt, &o, specs, 2, &sup), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_START, "other", 0, 1, W), 0);
    cr_assert_eq(tsend(rt, which(sup, "w").id, T_DIE), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART_SCHEDULED, "w", 0, 1, W),
                  0);
    cr_sup_child_info ci = which(sup, "w");
    cr_assert_eq(ci.state, CR_CHILD_RESTARTING);
    cr_assert_eq(ci.next_delay_ms, 800);
    cr_assert_eq(ci.id, 0);
    cr_assert_eq(cr_sup_remove_child(rt, sup, "w"), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_REMOVED, "w", 0, 1, W), 0);
    cr_assert_eq(atomic_load(&w.frees), 1, "the supervisor owned the arg");
    cr_assert_eq(nchildren(sup), 1);
    usleep(1300 * 1000); /* well past the cancelled restart */
    cr_assert_eq(tcol_count(&col, CR_SUP_EV_RESTART, "w", 0), 0);
    cr_assert_eq(atomic_load(&w.inits), 1);
    cr_assert_eq(cr_sup_remove_child(rt, sup, "w"), CR_ENOENT);
    finish(sup);
    cr_assert_eq(atomic_load(&w.frees), 1);
}

Test(supervisor, add_and_remove_while_running)
{
    tchild t[3];
    cr_id sup = start3(CR_SUP_REST_FOR_ONE, t);
    tchild d = {.name = "d", .log = &lg};
    cr_child_spec sd = tspec(&d, CR_RESTART_PERMANENT);
    sd.arg_free = tchild_free;
    sd.register_name = true;
    cr_id idd;
    cr_assert_eq(cr_sup_add_child(rt, sup, &sd, &idd), 0);
    cr_assert_neq(idd, 0);
    cr_assert_eq(cr_whereis(rt, "d"), idd);
    cr_assert_eq(cr_sup_add_child(rt, sup, &sd, NULL), CR_EEXIST);
    cr_assert_eq(atomic_load(&d.frees), 0, "rejected: caller keeps arg");
    cr_sup_child_info *ci;
    size_t n;
    cr_assert_eq(cr_sup_which_children(rt, sup, &ci, &n), 0);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(ci[3].name, "d");
    cr_assert_eq(ci[3].state, CR_CHILD_RUNNING);
    free(ci);
    /* d was appended: a failure of c restarts d too (rest_for_one) */
    cr_assert_eq(tsend(rt, which(sup, "c").id, T_DIE), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "d", 0, 1, W), 0);
    cr_assert_eq(cr_whereis(rt, "d"), which(sup, "d").id,
                 "the name follows the restart");
    cr_assert_eq(cr_sup_remove_child(rt, sup, "b"), 0);
    cr_assert_eq(nchildren(sup), 3);
    char buf[128];
    tlog_join(&lg, "stop:", buf, sizeof(buf));
    cr_assert_str_eq(buf, "c,d,b");
    cr_assert_eq(cr_sup_add_child(rt, 12345678, &sd, NULL), CR_ENOENT);
    cr_child_spec bad = sd;
    bad.name = "";
    cr_assert_eq(cr_sup_add_child(rt, sup, &bad, NULL), CR_EINVAL);
    finish(sup);
    cr_assert_eq(atomic_load(&d.frees), 1, "freed once, at exit");
}

Test(supervisor, subscribe_and_unsubscribe)
{
    tchild t[3];
    cr_id sup = start3(CR_SUP_ONE_FOR_ONE, t);
    tcol other;
    cr_assert_eq(tcol_start(rt, &other), 0);
    cr_assert_eq(cr_sup_subscribe(rt, sup, other.id, CR_SUP_EV_RESTART), 0);
    cr_assert_eq(tsend(rt, which(sup, "a").id, T_DIE), 0);
    cr_assert_geq(tcol_wait(&other, CR_SUP_EV_RESTART, "a", 0, 1, W), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "a", 0, 1, W), 0);
    cr_assert_eq(tcol_count(&other, 0, NULL, 0), 1, "only what it asked");
    cr_assert_eq(cr_sup_subscribe(rt, sup, other.id, 0), 0);
    cr_assert_eq(tsend(rt, which(sup, "a").id, T_DIE), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "a", 0, 2, W), 0);
    cr_assert_eq(tcol_count(&other, 0, NULL, 0), 1);
    /* a subscriber that is gone is dropped without harm */
    tcol_stop(rt, &other);
    cr_assert_eq(tsend(rt, which(sup, "a").id, T_DIE), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "a", 0, 3, W), 0);
    /* event sequence numbers are strictly increasing per supervisor */
    uint64_t last = 0;
    for (int i = 0; i < col.n; i++) {
        cr_sup_event e = tcol_get(&col, i);
        cr_assert_gt(e.seq, last);
        last = e.seq;
    }
    finish(sup);
}

Test(supervisor, bad_arguments)
{
    tchild a = {.name = "a"};
    cr_child_spec specs[2] = {tspec(&a, CR_RESTART_PERMANENT),
                              tspec(&a, CR_RESTART_PERMANENT)};
    cr_id sup;
    cr_assert_eq(cr_sup_start(rt, NULL, specs, 2, &sup), CR_EINVAL,
                 "duplicate names");
    specs[1].name = "this-name-is-far-too-long-for-a-child-because-it-has-"
                    "more-than-63-characters";
    cr_assert_eq(cr_sup_start(rt, NULL, specs, 2, &sup), CR_EINVAL);
    specs[1].name = "b";
    specs[1].behaviour = NULL;
    cr_assert_eq(cr_sup_start(rt, NULL, specs, 2, &sup), CR_EINVAL);
    cr_sup_opts o = {.backoff = {.min_ms = 10, .max_ms = 5, .factor = 2}};
    cr_assert_eq(cr_sup_start(rt, &o, specs, 1, &sup), CR_EINVAL);
    /* no children at all is fine; and defaults apply */
    cr_assert_eq(cr_sup_start(rt, NULL, NULL, 0, &sup), 0);
    cr_assert_eq(nchildren(sup), 0);
    cr_assert_eq(cr_sup_remove_child(rt, sup, "nope"), CR_ENOENT);
    finish(sup);
}

Test(supervisor, wait_on_a_non_root_and_exit_status)
{
    cr_exit why = {.kind = CR_EXIT_NORMAL};
    cr_assert_eq(cr_sup_exit_status(&why), 0);
    why.kind = CR_EXIT_SHUTDOWN;
    cr_assert_eq(cr_sup_exit_status(&why), 0);
    tchild x = {.name = "x"};
    cr_child_spec spec = tspec(&x, CR_RESTART_PERMANENT);
    cr_sup_args *args;
    cr_assert_eq(cr_sup_args_new(NULL, &spec, 1, &args), 0);
    cr_child_spec nested;
    cr_sup_child_spec(&nested, "inner", args);
    cr_sup_opts o = fast_opts(CR_SUP_ONE_FOR_ONE, col.id);
    cr_id root;
    cr_assert_eq(cr_sup_start(rt, &o, &nested, 1, &root), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_START, "inner", 0, 1, W), 0);
    cr_id inner = which(root, "inner").id;
    cr_assert_eq(cr_sup_wait(rt, inner, 50, &why), CR_ETIMEDOUT);
    cr_assert_eq(tsend(rt, inner, T_DIE), 0); /* unknown type: ignored */
    cr_assert_eq(cr_stop(rt, inner), 0);
    cr_assert_eq(cr_sup_wait(rt, inner, 20000, &why), 0);
    cr_assert(why.kind == CR_EXIT_SHUTDOWN || why.kind == CR_EXIT_NOPROC);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_RESTART, "inner", 0, 1, W), 0);
    finish(root);
}

/* A nested supervisor's subtree exists before its next sibling starts:
 * the receiver's flow manager, started after the handlers' supervisor,
 * must find every handler registered at its first sync. The nested
 * supervisor's clock (read before it spawns its child) is slowed, so
 * without the wait the sibling's init would always run first. */
static _Atomic int slow_clock_calls;

static uint64_t
slow_clock(void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&slow_clock_calls, 1) == 0) {
        usleep(200000);
    }
    return tfake_clock(NULL);
}

static _Atomic int sibling_saw_leaf = -1;

static int
sibling_init(cr_ctx *ctx, void *arg, void **state)
{
    (void)arg;
    *state = NULL;
    atomic_store(&sibling_saw_leaf,
                 cr_whereis(cr_ctx_rt(ctx), "leaf") != CR_NOBODY);
    return 0;
}

static int
sibling_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    (void)ctx, (void)state, (void)m;
    return 0;
}

static const cr_behaviour sibling_behaviour = {
    .kind = "sibling",
    .init = sibling_init,
    .handle = sibling_handle,
};

Test(supervisor, nested_subtree_exists_before_the_next_sibling)
{
    tchild leaf = {.name = "leaf"};
    cr_child_spec lspec = tspec(&leaf, CR_RESTART_PERMANENT);
    lspec.register_name = true;
    cr_sup_opts io = fast_opts(CR_SUP_ONE_FOR_ONE, CR_NOBODY);
    io.clock = slow_clock;
    cr_sup_args *args;
    cr_assert_eq(cr_sup_args_new(&io, &lspec, 1, &args), 0);
    cr_child_spec specs[2];
    cr_sup_child_spec(&specs[0], "inner", args);
    specs[1] = (cr_child_spec){.name = "sibling",
                               .behaviour = &sibling_behaviour,
                               .restart = CR_RESTART_PERMANENT,
                               .shutdown_timeout_ms = 5000};
    cr_sup_opts o = fast_opts(CR_SUP_REST_FOR_ONE, col.id);
    cr_id root;
    cr_assert_eq(cr_sup_start(rt, &o, specs, 2, &root), 0);
    cr_assert_geq(tcol_wait(&col, CR_SUP_EV_START, "sibling", 0, 1, W), 0);
    for (int i = 0; i < 1000 && atomic_load(&sibling_saw_leaf) < 0; i++) {
        usleep(10000);
    }
    cr_assert_eq(atomic_load(&sibling_saw_leaf), 1,
                 "the sibling's init ran before the nested child existed");
    cr_assert_geq(atomic_load(&slow_clock_calls), 1);
    finish(root);
}
