/*
 * stress_mailbox.c - standalone stress driver for the runtime core (plain
 * main, exit status 1 on failure; runs under TSan where criterion cannot).
 *
 * Concurrently: 8 sender threads x N messages into one actor (per-sender
 * order and totals checked), 2 threads making blocking calls, an actor
 * making async calls, periodic and one-shot timers with cancels, and a
 * thread churning spawn/monitor/stop. Usage: stress_runtime_mailbox [N].
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/actor.h"
#include "runtime/rt_helpers.h"

#define SENDERS 8
#define CALLERS 2
#define CALLS_EACH 2000
#define CHURN 300

#define T_SEQ (CR_MSG_USER + 1)
#define T_REQ (CR_MSG_USER + 2)
#define T_GO (CR_MSG_USER + 3)

static uint64_t per_sender = 50000;
static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            failures++;                                                        \
        }                                                                      \
    } while (0)

/* ---- the sink: ordered stream + request/reply ---- */

typedef struct sink {
    uint64_t next[SENDERS]; /* sink thread only */
    _Atomic uint64_t total;
    _Atomic uint64_t violations;
    _Atomic uint64_t ticks;
} sink;

static int
sink_init(cr_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    *state = arg;
    return 0;
}

static int
sink_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    sink *s = state;
    switch (cr_msg_type(m)) {
    case T_SEQ: {
        uint64_t v = get_u64(m), snd = v >> 32, seq = v & 0xffffffffu;
        if (snd >= SENDERS || s->next[snd] != seq) {
            atomic_fetch_add(&s->violations, 1);
        } else {
            s->next[snd]++;
        }
        atomic_fetch_add(&s->total, 1);
        break;
    }
    case T_REQ:
        cr_reply(ctx, m, msg_u64(T_REQ, get_u64(m) * 2));
        break;
    case CR_MSG_TIMER:
        atomic_fetch_add(&s->ticks, 1);
        break;
    default:
        break;
    }
    return 0;
}

static const cr_behaviour sink_b = {
    .kind = "sink", .init = sink_init, .handle = sink_handle};

/* ---- threads ---- */

typedef struct targ {
    cr_rt *rt;
    cr_id to;
    uint64_t idx;
    _Atomic uint64_t *ok;
} targ;

static void *
sender_main(void *p)
{
    targ *t = p;
    for (uint64_t i = 0; i < per_sender; i++) {
        cr_msg *m = msg_u64(T_SEQ, (t->idx << 32) | i);
        int rv;
        /* Alternate the non-waiting and the waiting send. */
        while ((rv = cr_send(t->rt, CR_NOBODY, t->to, m)) == CR_EFULL &&
               (i & 1)) {
            sched_yield();
        }
        if (rv == CR_EFULL) {
            rv = cr_send_wait(t->rt, CR_NOBODY, t->to, m, -1);
        }
        if (rv != 0) {
            cr_msg_free(m);
            fprintf(stderr, "send: %s\n", cr_strerror(rv));
            return NULL;
        }
    }
    atomic_fetch_add(t->ok, 1);
    return NULL;
}

static void *
caller_main(void *p)
{
    targ *t = p;
    for (uint64_t i = 0; i < CALLS_EACH; i++) {
        cr_msg *reply = NULL;
        int rv = cr_call(t->rt, CR_NOBODY, t->to, msg_u64(T_REQ, i), 30000,
                         &reply);
        if (rv == 0 && get_u64(reply) == 2 * i) {
            atomic_fetch_add(t->ok, 1);
        }
        cr_msg_free(reply);
    }
    return NULL;
}

/* Async caller actor: on T_GO issues one async call; counts replies. */
typedef struct acaller {
    cr_id to;
    uint64_t want; /* caller thread only */
    _Atomic uint64_t replies;
    _Atomic uint64_t bad;
} acaller;

static int
ac_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    acaller *a = state;
    if (cr_msg_type(m) == T_GO) {
        cr_msg *req = msg_u64(T_REQ, 21);
        int rc;
        /* The sink is flooded: a non-waiting send may meet CR_EFULL. */
        while ((rc = cr_call_async(ctx, a->to, req, &a->want)) == CR_EFULL) {
            sleep_ms(1);
        }
        if (rc != 0) {
            cr_msg_free(req);
            atomic_fetch_add(&a->bad, 1);
        }
    } else if (cr_msg_type(m) == CR_MSG_REPLY) {
        if (cr_msg_corr(m) != a->want || get_u64(m) != 42) {
            fprintf(stderr, "async: reply corr %llu want %llu value %llu\n",
                    (unsigned long long)cr_msg_corr(m),
                    (unsigned long long)a->want,
                    (unsigned long long)get_u64(m));
            atomic_fetch_add(&a->bad, 1);
        }
        atomic_fetch_add(&a->replies, 1);
    }
    return 0;
}

static const cr_behaviour ac_b = {
    .kind = "acaller", .init = sink_init, .handle = ac_handle};

/* Churn: spawn, monitor, poke, stop. */
typedef struct watcher {
    _Atomic uint64_t downs;
    _Atomic uint64_t bad;
} watcher;

static int
w_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    (void)ctx;
    watcher *w = state;
    if (cr_msg_type(m) == CR_MSG_DOWN) {
        cr_down d;
        if (cr_down_decode(m, &d) != 0 || d.why.kind != CR_EXIT_SHUTDOWN) {
            atomic_fetch_add(&w->bad, 1);
        }
        atomic_fetch_add(&w->downs, 1);
    }
    return 0;
}

static const cr_behaviour w_b = {
    .kind = "watcher", .init = sink_init, .handle = w_handle};

static int
idle_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    (void)ctx;
    (void)state;
    (void)m;
    return 0;
}

static const cr_behaviour idle_b = {.kind = "idle", .handle = idle_handle};

typedef struct churn_arg {
    cr_rt *rt;
    cr_id watcher;
    cr_id sink;
    _Atomic uint64_t spawned;
} churn_arg;

static void *
churn_main(void *p)
{
    churn_arg *c = p;
    for (int i = 0; i < CHURN; i++) {
        cr_id id;
        cr_spawn_opts so = {.link_monitor = c->watcher, .mailbox_cap = 16};
        if (cr_spawn(c->rt, &idle_b, NULL, &so, &id) != 0) {
            continue;
        }
        atomic_fetch_add(&c->spawned, 1);
        for (int k = 0; k < 8; k++) {
            cr_msg *m = cr_msg_new(T_SEQ + 100);
            if (cr_send(c->rt, CR_NOBODY, id, m) != 0) {
                cr_msg_free(m);
            }
        }
        /* Timers into the dying actor, some cancelled, some dropped. */
        uint64_t tid;
        if (cr_timer_after(c->rt, id, (uint64_t)(i % 3), 1, &tid) == 0 &&
            (i & 1)) {
            (void)cr_timer_cancel(c->rt, tid);
        }
        cr_msg *late = cr_msg_new(T_SEQ + 101);
        if (cr_send_after(c->rt, id, late, 2, NULL) != 0) {
            cr_msg_free(late);
        }
        if (cr_stop_wait(c->rt, id, 30000) != 0) {
            fprintf(stderr, "churn: stop_wait failed\n");
        }
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    if (argc > 1) {
        per_sender = strtoull(argv[1], NULL, 10);
    }
    /* Warm nng up (its task threads start with the first socket), so the
     * thread count before and after compares like with like. */
    cr_rt *rt;
    if (cr_rt_new(NULL, &rt) != 0) {
        fprintf(stderr, "cr_rt_new failed\n");
        return 1;
    }
    cr_id warm;
    if (cr_spawn(rt, &idle_b, NULL, NULL, &warm) == 0) {
        cr_stop_wait(rt, warm, -1);
    }
    cr_rt_destroy(rt);
    sleep_ms(20); /* let the warm-up threads leave /proc */
    int tasks0 = count_tasks();
    if (cr_rt_new(&(cr_rt_opts){.default_cap = 4096}, &rt) != 0) {
        fprintf(stderr, "cr_rt_new failed\n");
        return 1;
    }
    uint64_t t0 = cr_now_ms();
    sink s = {0};
    watcher w = {0};
    acaller ac = {0};
    cr_id sid, wid, acid;
    CHECK(cr_spawn(rt, &sink_b, &s, &(cr_spawn_opts){.name = "sink"}, &sid) ==
              0,
          "spawn sink");
    CHECK(cr_spawn(rt, &w_b, &w, NULL, &wid) == 0, "spawn watcher");
    ac.to = sid;
    CHECK(cr_spawn(rt, &ac_b, &ac, NULL, &acid) == 0, "spawn acaller");
    uint64_t tick;
    CHECK(cr_tick_every(rt, sid, 1, 7, &tick) == 0, "tick_every");

    _Atomic uint64_t senders_ok = 0, calls_ok = 0;
    pthread_t st[SENDERS], ct[CALLERS], cht;
    targ sa[SENDERS], ca[CALLERS];
    for (int i = 0; i < SENDERS; i++) {
        sa[i] = (targ){.rt = rt, .to = sid, .idx = (uint64_t)i,
                       .ok = &senders_ok};
        pthread_create(&st[i], NULL, sender_main, &sa[i]);
    }
    for (int i = 0; i < CALLERS; i++) {
        ca[i] = (targ){.rt = rt, .to = sid, .ok = &calls_ok};
        pthread_create(&ct[i], NULL, caller_main, &ca[i]);
    }
    churn_arg ch = {.rt = rt, .watcher = wid, .sink = sid};
    pthread_create(&cht, NULL, churn_main, &ch);

    /* Async calls, one at a time. */
    for (uint64_t i = 0; i < 200; i++) {
        cr_msg *go = cr_msg_new(T_GO);
        if (cr_send_wait(rt, CR_NOBODY, acid, go, -1) != 0) {
            cr_msg_free(go);
        }
        uint64_t until = cr_now_ms() + 30000;
        while (atomic_load(&ac.replies) < i + 1 && cr_now_ms() < until) {
            sleep_ms(1);
        }
    }

    for (int i = 0; i < SENDERS; i++) {
        pthread_join(st[i], NULL);
    }
    for (int i = 0; i < CALLERS; i++) {
        pthread_join(ct[i], NULL);
    }
    pthread_join(cht, NULL);

    uint64_t want = SENDERS * per_sender;
    uint64_t until = cr_now_ms() + 60000;
    while (atomic_load(&s.total) < want && cr_now_ms() < until) {
        sleep_ms(5);
    }
    until = cr_now_ms() + 10000;
    while (atomic_load(&w.downs) < atomic_load(&ch.spawned) &&
           cr_now_ms() < until) {
        sleep_ms(5);
    }
    uint64_t ms = cr_now_ms() - t0;

    cr_actor_info info;
    CHECK(cr_actor_info_get(rt, sid, &info) == 0, "info");
    CHECK(atomic_load(&senders_ok) == SENDERS, "senders ok %llu",
          (unsigned long long)atomic_load(&senders_ok));
    CHECK(atomic_load(&s.total) == want, "total %llu want %llu",
          (unsigned long long)atomic_load(&s.total),
          (unsigned long long)want);
    CHECK(atomic_load(&s.violations) == 0, "order violations %llu",
          (unsigned long long)atomic_load(&s.violations));
    CHECK(atomic_load(&calls_ok) == CALLERS * CALLS_EACH, "calls ok %llu",
          (unsigned long long)atomic_load(&calls_ok));
    CHECK(atomic_load(&ac.replies) == 200 && atomic_load(&ac.bad) == 0,
          "async replies %llu bad %llu",
          (unsigned long long)atomic_load(&ac.replies),
          (unsigned long long)atomic_load(&ac.bad));
    CHECK(atomic_load(&ch.spawned) == CHURN, "spawned %llu",
          (unsigned long long)atomic_load(&ch.spawned));
    CHECK(atomic_load(&w.downs) == atomic_load(&ch.spawned) &&
              atomic_load(&w.bad) == 0,
          "downs %llu bad %llu", (unsigned long long)atomic_load(&w.downs),
          (unsigned long long)atomic_load(&w.bad));
    CHECK(atomic_load(&s.ticks) > 0, "no ticks");
    CHECK(info.high_water <= 4096 + 64, "high water %u over cap",
          info.high_water);
    CHECK(info.msgs_in >= want + CALLERS * CALLS_EACH, "msgs_in %llu",
          (unsigned long long)info.msgs_in);
    CHECK(cr_timer_cancel(rt, tick) == 0, "cancel tick");

    cr_rt_destroy(rt);
    int tasks1 = count_tasks_settled(tasks0, 2000);
    CHECK(tasks1 == tasks0, "threads left: %d before, %d after", tasks0,
          tasks1);
    printf("stress: %llu msgs from %d senders, %d calls, 200 async calls, "
           "%d spawn/stop, %llu ticks, high water %u, in %llu ms: %s\n",
           (unsigned long long)want, SENDERS, CALLERS * CALLS_EACH, CHURN,
           (unsigned long long)atomic_load(&s.ticks), info.high_water,
           (unsigned long long)ms, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
