/*
 * cfgrecv/backoff.h - exponential backoff with jitter; injectable clock and
 * random source.
 *
 * A small pure module: no allocation, no locks, no threads. The policy is
 * shared (one per supervisor or per flow handler); the state is 8 bytes per
 * retried thing, so 100,000 flows may each hold one.
 *
 * The delay for the n-th consecutive failure (n = 0, 1, 2, ...) is drawn
 * from a window built on the exponential ceiling
 *
 *     c(n) = min(max_ms, min_ms * factor^n)
 *
 *     CR_JITTER_NONE   delay = c(n)                      100, 200, 400, ...
 *     CR_JITTER_FULL   delay uniform in [min_ms, c(n+1)]  [100,200],
 *                                                         [100,400], ...
 *     CR_JITTER_EQUAL  delay uniform in [c(n+1)/2, c(n+1)], never below
 *                      min_ms                            [100,200],
 *                                                         [200,400], ...
 *
 * so every delay lies in [min_ms, max_ms] (min_ms is a real minimum, unlike
 * the "full jitter" of AWS's article, which may return 0), and jittered
 * windows use the *next* ceiling so that even the first failure is spread:
 * 1,000 actors failing together restart over [100 ms, 200 ms], not all at
 * 100 ms. With factor 2 the mean of FULL for n >= 1 is within min_ms/2 of
 * NONE's c(n). The attempt counter saturates; once c(n) reaches max_ms the
 * window stays [min_ms, max_ms] for FULL and [max_ms/2, max_ms] for EQUAL.
 *
 * Reset: a failure after the thing stayed up for at least stable_ms starts
 * the sequence again at n = 0 (cr_backoff_stable).
 *
 * Thread-safety: a cr_backoff and a cr_rng are owned by one thread (an
 * actor); a policy is read-only once set up and may be shared.
 */
#ifndef CFGRECV_BACKOFF_H
#define CFGRECV_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An injectable clock: returns monotonic milliseconds. The default is
 * cr_clock_default (CLOCK_MONOTONIC); tests pass a fake. */
typedef uint64_t (*cr_clock_fn)(void *arg);

/* cr_clock_default returns cr_now_ms(); arg is ignored. */
uint64_t cr_clock_default(void *arg);

/* An injectable random source: returns 64 uniformly random bits. */
typedef uint64_t (*cr_rng_fn)(void *arg);

/* A seeded splitmix64 generator: `state` is its whole state. Not for
 * cryptography. Use cr_rng_next as a cr_rng_fn with &rng as its argument. */
typedef struct cr_rng {
    uint64_t state;
} cr_rng;

/* cr_rng_seed seeds r; seed 0 picks a seed from the clock, the address of
 * r and a process-wide counter (different for every call). Never fails. */
void cr_rng_seed(cr_rng *r, uint64_t seed);

/* cr_rng_next returns the next 64 random bits of the cr_rng at arg. */
uint64_t cr_rng_next(void *arg);

typedef enum {
    CR_JITTER_NONE = 0,
    CR_JITTER_FULL = 1,
    CR_JITTER_EQUAL = 2,
} cr_jitter;

typedef struct cr_backoff_policy {
    uint32_t min_ms;    /* first delay / lower bound; default 100; 0 makes
                           every delay 0 (immediate retries) */
    uint32_t max_ms;    /* upper bound; default 30000 */
    double factor;      /* growth per failure, >= 1.0; default 2.0 */
    cr_jitter jitter;   /* default CR_JITTER_FULL */
    uint32_t stable_ms; /* up this long => reset; default 10000; 0 = never */
} cr_backoff_policy;

#define CR_BACKOFF_MIN_MS_DEFAULT    100u
#define CR_BACKOFF_MAX_MS_DEFAULT    30000u
#define CR_BACKOFF_FACTOR_DEFAULT    2.0
#define CR_BACKOFF_STABLE_MS_DEFAULT 10000u

#define CR_BACKOFF_POLICY_DEFAULT                                              \
    {                                                                          \
        .min_ms = CR_BACKOFF_MIN_MS_DEFAULT,                                   \
        .max_ms = CR_BACKOFF_MAX_MS_DEFAULT,                                   \
        .factor = CR_BACKOFF_FACTOR_DEFAULT, .jitter = CR_JITTER_FULL,         \
        .stable_ms = CR_BACKOFF_STABLE_MS_DEFAULT                              \
    }

/* The per-thing state. Zero-initialised = fresh (next delay is n = 0). */
typedef struct cr_backoff {
    uint32_t attempt;       /* consecutive failures so far (saturating) */
    uint32_t last_delay_ms; /* the last delay returned, 0 if none */
} cr_backoff;

/* cr_backoff_policy_default fills *p with the defaults above. */
void cr_backoff_policy_default(cr_backoff_policy *p);

/* cr_backoff_policy_is_zero reports whether *p is all-zero (callers such
 * as the supervisor treat a zero policy as "use the defaults"). */
bool cr_backoff_policy_is_zero(const cr_backoff_policy *p);

/* cr_backoff_policy_check returns 0 if *p is usable, CR_EINVAL
 * (cfgrecv/actor.h) if
 * min_ms > max_ms, factor is below 1.0 or not a number, or jitter is not a
 * cr_jitter value. */
int cr_backoff_policy_check(const cr_backoff_policy *p);

/* cr_backoff_reset forgets past failures: the next delay is n = 0's. */
void cr_backoff_reset(cr_backoff *b);

/* cr_backoff_stable resets b if up_ms >= p->stable_ms (and stable_ms != 0)
 * and returns whether it did. Call it with how long the thing stayed up
 * before failing, just before cr_backoff_next. */
bool cr_backoff_stable(cr_backoff *b, const cr_backoff_policy *p,
                       uint64_t up_ms);

/* cr_backoff_ceiling returns c(n) for the policy (see the table above). */
uint32_t cr_backoff_ceiling(const cr_backoff_policy *p, uint32_t n);

/* cr_backoff_window sets [*lo, *hi], the range the delay of failure n is
 * drawn from (lo == hi for CR_JITTER_NONE). */
void cr_backoff_window(const cr_backoff_policy *p, uint32_t n, uint32_t *lo,
                       uint32_t *hi);

/* cr_backoff_next returns the delay (ms) before the next retry and counts
 * one more failure in b. rng may be NULL: a per-thread generator seeded
 * with cr_rng_seed(.., 0) is then used. The policy must pass
 * cr_backoff_policy_check (programmer error otherwise). */
uint32_t cr_backoff_next(cr_backoff *b, const cr_backoff_policy *p,
                         cr_rng_fn rng, void *rng_arg);

#ifdef __cplusplus
}
#endif
#endif /* CFGRECV_BACKOFF_H */
