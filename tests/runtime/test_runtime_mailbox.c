/*
 * test_runtime_mailbox.c - ordering, bounds, ownership on failure paths,
 * counters.
 */
#include <criterion/criterion.h>

#include "runtime/rt_helpers.h"

#define T_USER (CR_MSG_USER + 1)

/* ---- per-sender ordering ---- */

#define SENDERS 4
#define PER_SENDER 20000

typedef struct order_state {
    uint64_t next[SENDERS];
    _Atomic uint64_t violations;
    _Atomic uint64_t total;
} order_state;

static int
order_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    (void)ctx;
    order_state *os = r->user;
    uint64_t v = get_u64(m);
    uint64_t s = v >> 32, seq = v & 0xffffffffu;
    if (s >= SENDERS || os->next[s] != seq) {
        atomic_fetch_add(&os->violations, 1);
    } else {
        os->next[s]++;
    }
    atomic_fetch_add(&os->total, 1);
    return 0;
}

typedef struct sender_arg {
    cr_rt *rt;
    cr_id to;
    uint64_t sender;
    int failures;
} sender_arg;

static void *
sender_main(void *p)
{
    sender_arg *sa = p;
    for (uint64_t i = 0; i < PER_SENDER; i++) {
        cr_msg *m = msg_u64(T_USER, (sa->sender << 32) | i);
        if (cr_send_wait(sa->rt, CR_NOBODY, sa->to, m, -1) != 0) {
            cr_msg_free(m);
            sa->failures++;
        }
    }
    return NULL;
}

Test(runtime_mailbox, per_sender_order)
{
    order_state os = {0};
    rec_rt f = {.hook = order_hook,
                .user = &os,
                .rt_opts = {.default_cap = 1024}};
    cr_assert_eq(rec_rt_up(&f), 0);

    pthread_t th[SENDERS];
    sender_arg sa[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        sa[i] = (sender_arg){.rt = f.rt, .to = f.id, .sender = (uint64_t)i};
        pthread_create(&th[i], NULL, sender_main, &sa[i]);
    }
    for (int i = 0; i < SENDERS; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(sa[i].failures, 0);
    }
    cr_assert_eq(rec_wait(&f.r, SENDERS * PER_SENDER, 30000),
                 SENDERS * PER_SENDER);
    cr_expect_eq(atomic_load(&os.violations), 0);
    for (int i = 0; i < SENDERS; i++) {
        cr_expect_eq(os.next[i], PER_SENDER);
    }
    cr_actor_info info;
    cr_assert_eq(cr_actor_info_get(f.rt, f.id, &info), 0);
    cr_expect_leq(info.high_water, 1024u);
    cr_expect_eq(info.capacity, 1024u);
    rec_rt_down(&f);
}

/* ---- bounded mailbox ---- */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    int entered;
} gate;

static int
gate_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    (void)ctx;
    (void)m;
    gate *g = r->user;
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open) {
        pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void
gate_wait_entered(gate *g, int n)
{
    pthread_mutex_lock(&g->mu);
    while (g->entered < n) {
        pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
}

static void
gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* gated_up spawns a recorder behind gate g with a mailbox of cap and sends
 * it message 0, which it holds (in hand, still counted in the mailbox)
 * until gate_open: the mailbox then fills from the test alone. */
static void
gated_up(rec_rt *f, gate *g, uint32_t cap)
{
    *f = (rec_rt){.hook = gate_hook, .user = g, .so = {.mailbox_cap = cap}};
    cr_assert_eq(rec_rt_up(f), 0);
    cr_assert_eq(cr_send(f->rt, CR_NOBODY, f->id, msg_u64(T_USER, 0)), 0);
    gate_wait_entered(g, 1);
}

Test(runtime_mailbox, full_mailbox_and_send_wait)
{
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    rec_rt f;
    gated_up(&f, &g, 4);
    for (uint64_t i = 1; i < 4; i++) {
        cr_assert_eq(cr_send(f.rt, CR_NOBODY, f.id, msg_u64(T_USER, i)), 0);
    }
    /* Full: the caller keeps the message (ASan catches a double free). */
    cr_msg *m = msg_u64(T_USER, 99);
    cr_assert_eq(cr_send(f.rt, CR_NOBODY, f.id, m), CR_EFULL);
    cr_assert_eq(cr_msg_type(m), T_USER);
    cr_assert_eq(cr_send_wait(f.rt, CR_NOBODY, f.id, m, 50), CR_ETIMEDOUT);
    cr_assert_eq(get_u64(m), 99);

    cr_actor_info info;
    cr_assert_eq(cr_actor_info_get(f.rt, f.id, &info), 0);
    cr_expect_eq(info.depth, 4u);
    cr_expect_eq(info.high_water, 4u);
    cr_expect_eq(info.capacity, 4u);

    gate_open(&g);
    cr_assert_eq(cr_send_wait(f.rt, CR_NOBODY, f.id, m, 5000), 0);
    cr_assert_eq(rec_wait(&f.r, 5, 5000), 5);
    cr_expect_eq(get_u64(f.r.msgs[4]), 99);
    rec_rt_down(&f);
}

typedef struct waiter_arg {
    cr_rt *rt;
    cr_id to;
    int rv;
} waiter_arg;

static void *
waiter_main(void *p)
{
    waiter_arg *wa = p;
    cr_msg *m = msg_u64(T_USER, 7);
    wa->rv = cr_send_wait(wa->rt, CR_NOBODY, wa->to, m, 10000);
    if (wa->rv != 0) {
        cr_msg_free(m);
    }
    return NULL;
}

Test(runtime_mailbox, send_wait_released_by_stop)
{
    /* A sender blocked on a full mailbox is released when the actor goes
     * away (CR_ECLOSED), never left hanging. */
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    rec_rt f;
    gated_up(&f, &g, 1);
    waiter_arg wa = {.rt = f.rt, .to = f.id, .rv = -1};
    pthread_t th;
    pthread_create(&th, NULL, waiter_main, &wa);
    sleep_ms(50);
    cr_assert_eq(cr_stop(f.rt, f.id), 0);
    gate_open(&g);
    pthread_join(th, NULL);
    /* Either it got in before the stop took effect, or it was refused. */
    cr_expect(wa.rv == 0 || wa.rv == CR_ECLOSED || wa.rv == CR_ENOENT,
              "rv=%d", wa.rv);
    rec_rt_down(&f);
}

/* ---- ownership on failure paths ---- */

Test(runtime_mailbox, ownership_on_failure)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    cr_msg *m = msg_u64(T_USER, 1);

    cr_assert_eq(cr_send(rt, CR_NOBODY, 424242, m), CR_ENOENT);
    cr_assert_eq(cr_send_wait(rt, CR_NOBODY, 424242, m, 10), CR_ENOENT);
    cr_assert_eq(cr_send(rt, CR_NOBODY, CR_NOBODY, m), CR_ENOENT);
    cr_assert_eq(cr_send(NULL, CR_NOBODY, 1, m), CR_EINVAL);
    cr_assert_eq(cr_send(rt, CR_NOBODY, 1, NULL), CR_EINVAL);

    rec r;
    rec_init(&r);
    cr_id id;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &r, NULL, &id), 0);
    cr_assert_eq(cr_stop_wait(rt, id, 5000), 0);
    cr_assert_eq(cr_send(rt, CR_NOBODY, id, m), CR_ENOENT);
    cr_msg *reply = NULL;
    cr_assert_eq(cr_call(rt, CR_NOBODY, id, m, 100, &reply), CR_ENOENT);
    cr_assert_null(reply);
    cr_assert_eq(cr_send_after(rt, id, m, 0, NULL), 0); /* taken */
    cr_expect_eq(cr_stop(rt, id), CR_ENOENT);
    cr_expect_eq(cr_stop_wait(rt, id, 10), CR_ENOENT);
    cr_expect(!cr_alive(rt, id));
    cr_rt_destroy(rt); /* frees the pending timer's message if needed */
    rec_fini(&r);
}

/* ---- counters ---- */

static int
forward_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    static int turn; /* the forwarding actor's thread only */
    cr_id to = *(cr_id *)r->user;
    cr_msg *c = cr_msg_dup(m);
    /* alternate: both forms count in msgs_out */
    int rv = (turn++ % 2) ? cr_ctx_send_wait(ctx, to, c, 1000)
                          : cr_ctx_send(ctx, to, c);
    if (rv != 0) {
        cr_msg_free(c);
        return CR_EFAIL;
    }
    return 0;
}

Test(runtime_mailbox, snapshot_counters)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    rec rb, ra;
    rec_init(&rb);
    rec_init(&ra);
    cr_id b, a;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &rb,
                          &(cr_spawn_opts){.name = "sink"}, &b),
                 0);
    ra.hook = forward_hook;
    ra.user = &b;
    cr_assert_eq(cr_spawn(rt, &rec_behaviour, &ra,
                          &(cr_spawn_opts){.name = "fwd"}, &a),
                 0);
    for (uint64_t i = 0; i < 10; i++) {
        cr_assert_eq(cr_send(rt, CR_NOBODY, a, msg_u64(T_USER, i)), 0);
    }
    cr_assert_eq(rec_wait(&rb, 10, 5000), 10);
    cr_expect_eq(cr_msg_from(rb.msgs[0]), a);

    /* msgs_in counts after the handler returns: let the last one land. */
    cr_actor_info info[4];
    size_t n;
    for (int i = 0; i < 2000; i++) {
        n = cr_snapshot(rt, info, 4);
        if (n == 2 && info[0].msgs_in == 10 && info[1].msgs_in == 10) {
            break;
        }
        sleep_ms(1);
    }
    n = cr_snapshot(rt, info, 4);
    cr_assert_eq(n, 2);
    cr_expect_eq(info[0].id, b);
    cr_expect_str_eq(info[0].name, "sink");
    cr_expect_str_eq(info[0].kind, "recorder");
    cr_expect_eq(info[0].msgs_in, 10);
    cr_expect_eq(info[0].msgs_out, 0);
    cr_expect_eq(info[1].id, a);
    cr_expect_eq(info[1].msgs_in, 10);
    cr_expect_eq(info[1].msgs_out, 10);
    cr_expect_geq(info[1].high_water, 1u);
    cr_expect_eq(info[1].state, CR_STATE_RUNNING);
    cr_expect_eq(cr_snapshot(rt, info, 1), 2);
    cr_expect_eq(cr_rt_actor_count(rt), 2);
    cr_expect_str_eq(cr_state_name(CR_STATE_RUNNING), "running");
    cr_rt_destroy(rt);
    rec_fini(&ra);
    rec_fini(&rb);
}
