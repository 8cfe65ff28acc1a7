/*
 * test_backoff.c - the backoff module: sequences with a scripted random
 * source and a fake clock, jitter bounds, reset after the stable period.
 */
/* cfgrecv headers first: criterion defines a cr_fail() macro that would
 * otherwise mangle actor.h's cr_fail prototype. */
#include "cfgrecv/actor.h"
#include "cfgrecv/backoff.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>

/* A scripted random source: returns vals[i++], cycling. */
typedef struct script {
    const uint64_t *vals;
    size_t n, i;
} script;

static uint64_t
script_next(void *arg)
{
    script *s = arg;
    uint64_t v = s->vals[s->i % s->n];
    s->i++;
    return v;
}

/* A fake clock the test moves by hand. */
static uint64_t
fake_clock(void *arg)
{
    return *(const uint64_t *)arg;
}

Test(backoff, defaults)
{
    cr_backoff_policy p;
    cr_backoff_policy_default(&p);
    cr_assert_eq(p.min_ms, 100);
    cr_assert_eq(p.max_ms, 30000);
    cr_assert_float_eq(p.factor, 2.0, 1e-9);
    cr_assert_eq(p.jitter, CR_JITTER_FULL);
    cr_assert_eq(p.stable_ms, 10000);
    cr_assert_eq(cr_backoff_policy_check(&p), 0);
    cr_backoff_policy z = {0};
    cr_assert(cr_backoff_policy_is_zero(&z));
    cr_assert_not(cr_backoff_policy_is_zero(&p));
}

Test(backoff, policy_check_rejects_bad_values)
{
    cr_backoff_policy p = CR_BACKOFF_POLICY_DEFAULT;
    p.min_ms = 500;
    p.max_ms = 100;
    cr_assert_eq(cr_backoff_policy_check(&p), CR_EINVAL);
    p = (cr_backoff_policy)CR_BACKOFF_POLICY_DEFAULT;
    p.factor = 0.5;
    cr_assert_eq(cr_backoff_policy_check(&p), CR_EINVAL);
    p.factor = NAN;
    cr_assert_eq(cr_backoff_policy_check(&p), CR_EINVAL);
    p = (cr_backoff_policy)CR_BACKOFF_POLICY_DEFAULT;
    p.jitter = (cr_jitter)7;
    cr_assert_eq(cr_backoff_policy_check(&p), CR_EINVAL);
}

Test(backoff, sequence_without_jitter)
{
    cr_backoff_policy p = CR_BACKOFF_POLICY_DEFAULT;
    p.jitter = CR_JITTER_NONE;
    cr_backoff b = {0};
    const uint32_t want[] = {100,  200,   400,   800,   1600,  3200, 6400,
                             12800, 25600, 30000, 30000, 30000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        /* rng must not even be consulted: pass NULL */
        uint32_t d = cr_backoff_next(&b, &p, NULL, NULL);
        cr_assert_eq(d, want[i], "step %zu: %u != %u", i, d, want[i]);
        cr_assert_eq(b.last_delay_ms, d);
        cr_assert_eq(b.attempt, i + 1);
    }
}

Test(backoff, sequence_full_jitter_scripted_rng)
{
    cr_backoff_policy p = CR_BACKOFF_POLICY_DEFAULT;
    /* Windows: [100,200] [100,400] [100,800] ... span = hi - lo + 1.
     * rng = 0 gives lo; rng = span - 1 gives hi; rng = span gives lo. */
    const uint64_t vals[] = {0, 300, 701, 50};
    script s = {vals, 4, 0};
    cr_backoff b = {0};
    cr_assert_eq(cr_backoff_next(&b, &p, script_next, &s), 100);
    cr_assert_eq(cr_backoff_next(&b, &p, script_next, &s), 400);
    cr_assert_eq(cr_backoff_next(&b, &p, script_next, &s), 100); /* 701%701 */
    cr_assert_eq(cr_backoff_next(&b, &p, script_next, &s), 150);
    cr_assert_eq(s.i, 4);
}

Test(backoff, sequence_equal_jitter_scripted_rng)
{
    cr_backoff_policy p = CR_BACKOFF_POLICY_DEFAULT;
    p.jitter = CR_JITTER_EQUAL;
    const uint64_t vals[] = {0, 200, 0, 400};
    script s = {vals, 4, 0};
    cr_backoff b = {0};
    cr_assert_eq(cr_backoff_next(&b, &p, script_next, &s), 100); /* [100,200] */
    cr_assert_eq(cr_backoff_next(&b, &p, script_next, &s), 400); /* [200,400] */
    cr_assert_eq(cr_backoff_next(&b, &p, script_next, &s), 400); /* [400,800] */
    cr_assert_eq(cr_backoff_next(&b, &p, script_next, &s), 1200);
}

Test(backoff, seeded_rng_is_deterministic)
{
    cr_backoff_policy p = CR_BACKOFF_POLICY_DEFAULT;
    cr_rng r1, r2;
    cr_rng_seed(&r1, 42);
    cr_rng_seed(&r2, 42);
    cr_backoff b1 = {0}, b2 = {0};
    for (int i = 0; i < 40; i++) {
        cr_assert_eq(cr_backoff_next(&b1, &p, cr_rng_next, &r1),
                     cr_backoff_next(&b2, &p, cr_rng_next, &r2));
    }
    cr_rng a, c;
    cr_rng_seed(&a, 0);
    cr_rng_seed(&c, 0);
    cr_assert_neq(a.state, c.state, "seed 0 must differ per call");
}

static void
check_bounds(cr_jitter j)
{
    cr_backoff_policy p = CR_BACKOFF_POLICY_DEFAULT;
    p.jitter = j;
    cr_rng r;
    cr_rng_seed(&r, 7);
    for (uint32_t n = 0; n < 20; n++) {
        uint32_t lo, hi, mn = UINT32_MAX, mx = 0;
        cr_backoff_window(&p, n, &lo, &hi);
        cr_assert_geq(lo, p.min_ms);
        cr_assert_leq(hi, p.max_ms);
        cr_assert_leq(lo, hi);
        for (int k = 0; k < 2000; k++) {
            cr_backoff b = {.attempt = n};
            uint32_t d = cr_backoff_next(&b, &p, cr_rng_next, &r);
            cr_assert(d >= lo && d <= hi, "n=%u d=%u not in [%u,%u]", n, d,
                      lo, hi);
            mn = d < mn ? d : mn;
            mx = d > mx ? d : mx;
        }
        /* 2000 uniform draws cover the window: both ends within 2%. */
        uint32_t slack = (hi - lo) / 50 + 1;
        cr_assert_leq(mn, lo + slack, "n=%u min %u", n, mn);
        cr_assert_geq(mx, hi - slack, "n=%u max %u", n, mx);
    }
}

Test(backoff, full_jitter_bounds)
{
    cr_backoff_policy p = CR_BACKOFF_POLICY_DEFAULT;
    uint32_t lo, hi;
    cr_backoff_window(&p, 0, &lo, &hi);
    cr_assert_eq(lo, 100);
    cr_assert_eq(hi, 200);
    cr_backoff_window(&p, 3, &lo, &hi);
    cr_assert_eq(lo, 100);
    cr_assert_eq(hi, 1600);
    cr_backoff_window(&p, 30, &lo, &hi);
    cr_assert_eq(lo, 100);
    cr_assert_eq(hi, 30000);
    check_bounds(CR_JITTER_FULL);
}

Test(backoff, equal_jitter_bounds)
{
    cr_backoff_policy p = CR_BACKOFF_POLICY_DEFAULT;
    p.jitter = CR_JITTER_EQUAL;
    uint32_t lo, hi;
    cr_backoff_window(&p, 30, &lo, &hi);
    cr_assert_eq(lo, 15000);
    cr_assert_eq(hi, 30000);
    check_bounds(CR_JITTER_EQUAL);
}

Test(backoff, first_failure_is_spread)
{
    /* 1,000 things failing together must not all pick the same delay:
     * with a seeded source, count distinct 10 ms buckets in [100, 200]. */
    cr_backoff_policy p = CR_BACKOFF_POLICY_DEFAULT;
    cr_rng r;
    cr_rng_seed(&r, 1);
    int buckets[11] = {0};
    double sum = 0;
    for (int i = 0; i < 1000; i++) {
        cr_backoff b = {0};
        uint32_t d = cr_backoff_next(&b, &p, cr_rng_next, &r);
        buckets[(d - 100) / 10]++;
        sum += d;
    }
    for (int k = 0; k < 10; k++) {
        cr_assert_gt(buckets[k], 40, "bucket %d has %d", k, buckets[k]);
    }
    cr_assert(fabs(sum / 1000 - 150) < 10, "mean %f", sum / 1000);
}

Test(backoff, reset_after_stable_period_with_fake_clock)
{
    cr_backoff_policy p = CR_BACKOFF_POLICY_DEFAULT;
    p.jitter = CR_JITTER_NONE;
    uint64_t now = 1000;
    cr_backoff b = {0};
    uint64_t started = fake_clock(&now);

    /* fails at once three times: 100, 200, 400 */
    for (int i = 0; i < 3; i++) {
        cr_assert_not(cr_backoff_stable(&b, &p, fake_clock(&now) - started));
        cr_backoff_next(&b, &p, NULL, NULL);
    }
    cr_assert_eq(b.last_delay_ms, 400);

    /* restarted, up 9,999 ms: not stable, the sequence goes on */
    started = fake_clock(&now);
    now += 9999;
    cr_assert_not(cr_backoff_stable(&b, &p, fake_clock(&now) - started));
    cr_assert_eq(cr_backoff_next(&b, &p, NULL, NULL), 800);

    /* restarted, up exactly stable_ms: reset, back to the minimum */
    started = fake_clock(&now);
    now += 10000;
    cr_assert(cr_backoff_stable(&b, &p, fake_clock(&now) - started));
    cr_assert_eq(b.attempt, 0);
    cr_assert_eq(cr_backoff_next(&b, &p, NULL, NULL), 100);

    /* stable_ms = 0 never resets */
    p.stable_ms = 0;
    cr_assert_not(cr_backoff_stable(&b, &p, UINT64_MAX));
}

Test(backoff, edge_policies)
{
    cr_backoff_policy p = {.min_ms = 50, .max_ms = 50, .factor = 1.0,
                           .jitter = CR_JITTER_FULL, .stable_ms = 0};
    cr_backoff b = {0};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(cr_backoff_next(&b, &p, NULL, NULL), 50);
    }
    p = (cr_backoff_policy){.min_ms = 0, .max_ms = 1000, .factor = 2.0};
    b = (cr_backoff){0};
    cr_assert_eq(cr_backoff_next(&b, &p, NULL, NULL), 0);
    /* the attempt counter saturates instead of wrapping to 0 */
    p = (cr_backoff_policy)CR_BACKOFF_POLICY_DEFAULT;
    p.jitter = CR_JITTER_NONE;
    b.attempt = UINT32_MAX;
    cr_assert_eq(cr_backoff_next(&b, &p, NULL, NULL), 30000);
    cr_assert_eq(b.attempt, UINT32_MAX);
    /* a huge factor does not overflow */
    p.factor = 1e300;
    cr_assert_eq(cr_backoff_ceiling(&p, 5), 30000);
    cr_assert_eq(sizeof(cr_backoff), 8);
}
