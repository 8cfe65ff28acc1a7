/*
 * bench_supervisor.c - 1,000 children failing repeatedly under one
 * one_for_one supervisor.
 *
 *  herd   all children are running; at t0 every one is told to fail.
 *         With the default policy (100 ms, 30 s, x2, full jitter) their
 *         restarts should be scheduled over [100, 200] ms after their
 *         failure, ~100 per 10 ms, instead of landing together. Reported
 *         for full jitter and, for contrast, none: the exit->restart delay
 *         distribution (p0/p50/p99/p100), and for both the scheduled
 *         (failure time + backoff delay) and the actual restart times the
 *         span of the wave and the most restarts in any 10 ms window (the
 *         "herd" figure). Actual times are also bounded by how fast one
 *         supervisor thread can spawn (a thread and an nng socket pair per
 *         restart), so the scheduled figure is the policy's.
 *  churn  every child's init fails, policy 1..10 ms, unlimited intensity:
 *         the supervisor restarts as fast as the backoff lets it. Reported:
 *         restarts per second and process CPU per restart.
 *
 * Entry point: bench_supervisor(argc, argv); argv may hold "children=N"
 * and "seconds=S" (churn duration). Build standalone with
 * -DCR_BENCH_STANDALONE for a main().
 */
#include "cfgrecv/actor.h"
#include "cfgrecv/backoff.h"
#include "cfgrecv/log.h"
#include "cfgrecv/supervisor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int bench_supervisor(int argc, char **argv);

enum { B_DIE = CR_MSG_USER + 1 };

/* ---- children ---- */

typedef struct bchild {
    bool init_fails;
    char name[16];
} bchild;

static int
bc_init(cr_ctx *ctx, void *arg, void **state)
{
    const bchild *c = arg;
    *state = NULL;
    return c->init_fails ? CR_EFAIL : 0;
}

static int
bc_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    return cr_msg_type(m) == B_DIE ? CR_EFAIL : 0;
}

static const cr_behaviour bc_behaviour = {
    .kind = "bench-child",
    .init = bc_init,
    .handle = bc_handle,
};

/* ---- an event recorder ---- */

typedef struct brec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t cap, nrestart;
    uint64_t *exit_t;    /* per child index: last exit time */
    uint64_t *restart_t; /* restart times, in arrival order */
    uint64_t *delay;     /* exit -> restart per restart */
    uint64_t *sched_t;   /* intended restart times (t + delay_ms) */
    size_t nsched;
    uint64_t nexit, nstart;
} brec;

static int
child_index(const char *name)
{
    return atoi(name + 1); /* "c123" */
}

static int
br_init(cr_ctx *ctx, void *arg, void **state)
{
    *state = arg;
    return 0;
}

static int
br_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    brec *r = state;
    cr_sup_event ev;
    if (cr_msg_type(m) != CR_MSG_SUP_EVENT || cr_sup_event_decode(m, &ev)) {
        return 0;
    }
    pthread_mutex_lock(&r->mu);
    int i = child_index(ev.child);
    if (ev.kind == CR_SUP_EV_EXIT) {
        r->exit_t[i] = ev.t_ms;
        r->nexit++;
    } else if (ev.kind == CR_SUP_EV_RESTART_SCHEDULED &&
               r->nsched < r->cap) {
        r->sched_t[r->nsched++] = ev.t_ms + ev.delay_ms;
    } else if (ev.kind == CR_SUP_EV_START) {
        r->nstart++;
    } else if (ev.kind == CR_SUP_EV_RESTART && r->nrestart < r->cap) {
        r->restart_t[r->nrestart] = ev.t_ms;
        r->delay[r->nrestart] = ev.t_ms - r->exit_t[i];
        r->nrestart++;
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static const cr_behaviour br_behaviour = {
    .kind = "bench-recorder",
    .init = br_init,
    .handle = br_handle,
};

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* peak_10ms returns the most entries of sorted t[0..k) in any 10 ms. */
static uint64_t
peak_10ms(const uint64_t *t, size_t k)
{
    uint64_t peak = 0;
    for (size_t a = 0, b = 0; b < k; b++) {
        while (t[b] - t[a] >= 10) {
            a++;
        }
        if (b - a + 1 > peak) {
            peak = b - a + 1;
        }
    }
    return peak;
}

static double
cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* wait_for waits until *counter >= want or timeout; returns whether it got
 * there. */
static bool
wait_for(brec *r, const uint64_t *counter, uint64_t want, int timeout_s)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_s;
    pthread_mutex_lock(&r->mu);
    while (*counter < want) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) != 0) {
            break;
        }
    }
    bool ok = *counter >= want;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static int
run_phase(int n, bool churn, cr_jitter jitter, int seconds)
{
    cr_rt *rt;
    if (cr_rt_new(NULL, &rt) != 0) {
        return 1;
    }
    brec r = {.cap = 4u << 20};
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    r.exit_t = calloc((size_t)n, sizeof(*r.exit_t));
    r.restart_t = calloc(r.cap, sizeof(*r.restart_t));
    r.delay = calloc(r.cap, sizeof(*r.delay));
    r.sched_t = calloc(r.cap, sizeof(*r.sched_t));
    bchild *kids = calloc((size_t)n, sizeof(*kids));
    cr_child_spec *specs = calloc((size_t)n, sizeof(*specs));
    cr_id rec;
    if (!r.exit_t || !r.restart_t || !r.delay || !r.sched_t || !kids ||
        !specs ||
        cr_spawn(rt, &br_behaviour, &r, NULL, &rec) != 0) {
        fprintf(stderr, "bench_supervisor: set-up failed\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        kids[i].init_fails = churn;
        snprintf(kids[i].name, sizeof(kids[i].name), "c%d", i);
        specs[i] = (cr_child_spec){.name = kids[i].name,
                                   .behaviour = &bc_behaviour,
                                   .arg = &kids[i],
                                   .restart = CR_RESTART_PERMANENT,
                                   .stack_size = 64 * 1024};
    }
    cr_sup_opts o = {.name = "bench-sup",
                     .strategy = CR_SUP_ONE_FOR_ONE,
                     .max_restarts = CR_SUP_UNLIMITED,
                     .subscriber = rec};
    cr_backoff_policy_default(&o.backoff);
    o.backoff.jitter = jitter;
    if (churn) {
        o.backoff.min_ms = 1;
        o.backoff.max_ms = 10;
    }
    cr_id sup;
    double c0 = cpu_s();
    uint64_t t0 = cr_now_ms();
    if (cr_sup_start(rt, &o, specs, (size_t)n, &sup) != 0) {
        fprintf(stderr, "bench_supervisor: cr_sup_start failed\n");
        return 1;
    }
    if (!churn) {
        if (!wait_for(&r, &r.nstart, (uint64_t)n, 60)) {
            fprintf(stderr, "bench_supervisor: children did not start\n");
            return 1;
        }
        uint64_t t_started = cr_now_ms();
        usleep(200 * 1000);
        /* children are anonymous: their ids come from the supervisor */
        cr_sup_child_info *ci;
        size_t nc;
        if (cr_sup_which_children(rt, sup, &ci, &nc) != 0) {
            return 1;
        }
        double cs = cpu_s();
        for (size_t i = 0; i < nc; i++) {
            cr_msg *m = cr_msg_new(B_DIE);
            if (cr_send(rt, CR_NOBODY, ci[i].id, m) != 0) {
                cr_msg_free(m);
            }
        }
        free(ci);
        bool all = wait_for(&r, &r.nrestart, (uint64_t)n, 60);
        double ce = cpu_s();
        pthread_mutex_lock(&r.mu);
        size_t k = r.nrestart;
        uint64_t *d = malloc(k * sizeof(*d));
        memcpy(d, r.delay, k * sizeof(*d));
        qsort(d, k, sizeof(*d), cmp_u64);
        qsort(r.restart_t, k, sizeof(*r.restart_t), cmp_u64);
        uint64_t peak = peak_10ms(r.restart_t, k);
        uint64_t span = k ? r.restart_t[k - 1] - r.restart_t[0] : 0;
        size_t ks = r.nsched;
        qsort(r.sched_t, ks, sizeof(*r.sched_t), cmp_u64);
        uint64_t speak = peak_10ms(r.sched_t, ks);
        uint64_t sspan = ks ? r.sched_t[ks - 1] - r.sched_t[0] : 0;
        pthread_mutex_unlock(&r.mu);
        printf("supervisor.herd.%s children=%d start_ms=%llu restarted=%zu%s "
               "delay_ms p0=%llu p50=%llu p99=%llu p100=%llu "
               "| scheduled: span_ms=%llu peak_per_10ms=%llu "
               "| actual: span_ms=%llu peak_per_10ms=%llu | cpu_s=%.3f\n",
               jitter == CR_JITTER_NONE ? "no_jitter" : "full_jitter", n,
               (unsigned long long)(t_started - t0), k,
               all ? "" : " (incomplete)",
               (unsigned long long)(k ? d[0] : 0),
               (unsigned long long)(k ? d[k / 2] : 0),
               (unsigned long long)(k ? d[k * 99 / 100] : 0),
               (unsigned long long)(k ? d[k - 1] : 0),
               (unsigned long long)sspan, (unsigned long long)speak,
               (unsigned long long)span, (unsigned long long)peak, ce - cs);
        free(d);
    } else {
        usleep((useconds_t)seconds * 1000000u);
        double c1 = cpu_s();
        uint64_t t1 = cr_now_ms();
        pthread_mutex_lock(&r.mu);
        size_t k = r.nrestart;
        pthread_mutex_unlock(&r.mu);
        double secs = (double)(t1 - t0) / 1000.0;
        printf("supervisor.churn children=%d seconds=%.1f restarts=%zu "
               "restarts_per_s=%.0f cpu_s=%.2f cpu_us_per_restart=%.1f "
               "cpu_util=%.0f%%\n",
               n, secs, k, (double)k / secs, c1 - c0,
               k ? (c1 - c0) * 1e6 / (double)k : 0.0,
               100.0 * (c1 - c0) / secs);
    }
    cr_sup_stop(rt, sup, -1);
    cr_stop_wait(rt, rec, -1);
    cr_rt_destroy(rt);
    free(r.exit_t);
    free(r.restart_t);
    free(r.delay);
    free(r.sched_t);
    free(kids);
    free(specs);
    return 0;
}

int
bench_supervisor(int argc, char **argv)
{
    int n = 1000, seconds = 5;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "children=", 9) == 0) {
            n = atoi(argv[i] + 9);
        } else if (strncmp(argv[i], "seconds=", 8) == 0) {
            seconds = atoi(argv[i] + 8);
        }
    }
    if (n < 1 || n > 100000 || seconds < 1) {
        fprintf(stderr, "bench_supervisor: bad arguments\n");
        return 2;
    }
    int rv = run_phase(n, false, CR_JITTER_FULL, 0);
    rv |= run_phase(n, false, CR_JITTER_NONE, 0);
    rv |= run_phase(n, true, CR_JITTER_FULL, seconds);
    return rv;
}

#ifdef CR_BENCH_STANDALONE
int
main(int argc, char **argv)
{
    cr_log_setup(CR_LEVEL_ERROR, CR_LOG_TEXT, 2);
    return bench_supervisor(argc - 1, argv + 1);
}
#endif
