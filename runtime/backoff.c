/*
 * backoff.c - exponential backoff with jitter (see cfgrecv/backoff.h for
 * the delay windows), and a splitmix64 random source.
 *
 * Everything here is pure arithmetic on caller-owned state except the
 * per-thread fallback generator and the seed counter. The ceiling is
 * computed by repeated multiplication (at most ~log_factor(max/min) steps,
 * i.e. 9 for the defaults) so the library needs no libm.
 */
#include "cfgrecv/backoff.h"

#include "cfgrecv/actor.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <time.h>

uint64_t
cr_clock_default(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* splitmix64 (Steele, Lea, Flood 2014; public-domain reference by
 * S. Vigna). Every seed, 0 included, gives a full-period sequence. */
uint64_t
cr_rng_next(void *arg)
{
    cr_rng *r = arg;
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Distinguishes seeds picked in the same millisecond. Relaxed: only
 * uniqueness of the fetched values matters, not ordering. */
static _Atomic uint64_t seed_counter;

void
cr_rng_seed(cr_rng *r, uint64_t seed)
{
    if (seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        seed ^= (uint64_t)(uintptr_t)r << 16;
        seed += atomic_fetch_add_explicit(&seed_counter, 1,
                                          memory_order_relaxed) *
                0x9e3779b97f4a7c15ull;
    }
    r->state = seed;
    (void)cr_rng_next(r); /* stir once so small seeds do not start small */
}

void
cr_backoff_policy_default(cr_backoff_policy *p)
{
    cr_backoff_policy d = CR_BACKOFF_POLICY_DEFAULT;
    *p = d;
}

bool
cr_backoff_policy_is_zero(const cr_backoff_policy *p)
{
    return p->min_ms == 0 && p->max_ms == 0 && p->factor == 0.0 &&
           p->jitter == CR_JITTER_NONE && p->stable_ms == 0;
}

int
cr_backoff_policy_check(const cr_backoff_policy *p)
{
    if (p->min_ms > p->max_ms || isnan(p->factor) || !(p->factor >= 1.0)) {
        return CR_EINVAL;
    }
    if (p->jitter != CR_JITTER_NONE && p->jitter != CR_JITTER_FULL &&
        p->jitter != CR_JITTER_EQUAL) {
        return CR_EINVAL;
    }
    return 0;
}

void
cr_backoff_reset(cr_backoff *b)
{
    b->attempt = 0;
    b->last_delay_ms = 0;
}

bool
cr_backoff_stable(cr_backoff *b, const cr_backoff_policy *p, uint64_t up_ms)
{
    if (p->stable_ms != 0 && up_ms >= p->stable_ms) {
        cr_backoff_reset(b);
        return true;
    }
    return false;
}

uint32_t
cr_backoff_ceiling(const cr_backoff_policy *p, uint32_t n)
{
    double c = p->min_ms;
    if (p->min_ms == 0) {
        return 0; /* 0 * factor^n: every delay is 0 */
    }
    for (uint32_t i = 0; i < n && c < p->max_ms; i++) {
        c *= p->factor;
        if (p->factor == 1.0) {
            break; /* constant: no need to loop n times */
        }
    }
    return c >= p->max_ms ? p->max_ms : (uint32_t)c;
}

void
cr_backoff_window(const cr_backoff_policy *p, uint32_t n, uint32_t *lo,
                  uint32_t *hi)
{
    uint32_t next = cr_backoff_ceiling(p, n == UINT32_MAX ? n : n + 1);
    switch (p->jitter) {
    case CR_JITTER_FULL:
        *lo = p->min_ms;
        *hi = next;
        break;
    case CR_JITTER_EQUAL:
        *lo = next / 2 < p->min_ms ? p->min_ms : next / 2;
        *hi = next;
        break;
    case CR_JITTER_NONE:
    default:
        *lo = *hi = cr_backoff_ceiling(p, n);
        break;
    }
}

/* The fallback generator for callers that pass no rng: one per thread, so
 * no locking; seeded on first use. */
static _Thread_local cr_rng tl_rng;
static _Thread_local bool tl_rng_ready;

uint32_t
cr_backoff_next(cr_backoff *b, const cr_backoff_policy *p, cr_rng_fn rng,
                void *rng_arg)
{
    assert(cr_backoff_policy_check(p) == 0);
    uint32_t lo, hi, d;
    cr_backoff_window(p, b->attempt, &lo, &hi);
    if (hi <= lo) {
        d = lo;
    } else {
        if (rng == NULL) {
            if (!tl_rng_ready) {
                cr_rng_seed(&tl_rng, 0);
                tl_rng_ready = true;
            }
            rng = cr_rng_next;
            rng_arg = &tl_rng;
        }
        /* Modulo bias is below 2^-32 for a span under 2^32: irrelevant. */
        uint64_t span = (uint64_t)hi - lo + 1;
        d = lo + (uint32_t)(rng(rng_arg) % span);
    }
    if (b->attempt != UINT32_MAX) {
        b->attempt++;
    }
    b->last_delay_ms = d;
    return d;
}
