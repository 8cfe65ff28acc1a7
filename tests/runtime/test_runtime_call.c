/*
 * test_runtime_call.c - cr_call / cr_reply / cr_call_async.
 */
#include <criterion/criterion.h>

#include "runtime/rt_helpers.h"

#define T_REQ (CR_MSG_USER + 10)
#define T_GO (CR_MSG_USER + 11)

/* Server: replies value + 1; T_REQ with value 0 is held (no reply) and
 * answered late, just before the next request is answered. */
typedef struct server {
    cr_msg *held;
    _Atomic int late_rc;
} server;

static int
server_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    server *s = r->user;
    if (cr_msg_type(m) != T_REQ) {
        return 0;
    }
    uint64_t v = get_u64(m);
    if (v == 0) {
        s->held = cr_msg_dup(m); /* keeps the corr */
        return 0;
    }
    if (s->held != NULL) {
        atomic_store(&s->late_rc,
                     cr_reply(ctx, s->held, msg_u64(T_REQ, 1000000)));
        cr_msg_free(s->held);
        s->held = NULL;
    }
    cr_reply(ctx, m, msg_u64(T_REQ, v + 1));
    return 0;
}

static void
server_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    rec *r = state;
    server *s = r->user;
    cr_msg_free(s->held);
    s->held = NULL;
    rec_b_terminate(ctx, state, why);
}

static const cr_behaviour server_b = {
    .kind = "server",
    .init = rec_b_init,
    .handle = rec_b_handle,
    .terminate = server_terminate,
};

/* server_up starts a runtime with the server in it, as the recorder of a
 * rec_rt; s is its state (late_rc -1 until it answers a held call). */
static void
server_up(rec_rt *f, server *s)
{
    *s = (server){.late_rc = -1};
    *f = (rec_rt){.b = &server_b, .hook = server_hook, .user = s};
    cr_assert_eq(rec_rt_up(f), 0);
}

Test(runtime_call, call_reply)
{
    server s;
    rec_rt f;
    server_up(&f, &s);
    for (uint64_t i = 1; i <= 100; i++) {
        cr_msg *reply = NULL;
        cr_assert_eq(cr_call(f.rt, CR_NOBODY, f.id, msg_u64(T_REQ, i), 5000,
                             &reply),
                     0);
        cr_assert_not_null(reply);
        cr_expect_eq(get_u64(reply), i + 1);
        cr_expect_eq(cr_msg_from(reply), f.id);
        cr_msg_free(reply);
    }
    rec_rt_down(&f);
}

Test(runtime_call, timeout_then_late_reply_dropped)
{
    server s;
    rec_rt f;
    server_up(&f, &s);

    cr_msg *reply = NULL;
    uint64_t t0 = cr_now_ms();
    /* On CR_ETIMEDOUT the runtime owns the request: do not free it. */
    cr_assert_eq(cr_call(f.rt, CR_NOBODY, f.id, msg_u64(T_REQ, 0), 100,
                         &reply),
                 CR_ETIMEDOUT);
    cr_expect_geq(cr_now_ms() - t0, 90);
    cr_assert_null(reply);

    /* The server answers the timed-out call first, then this one: the
     * late reply must not be delivered to this call. */
    cr_assert_eq(cr_call(f.rt, CR_NOBODY, f.id, msg_u64(T_REQ, 41), 5000,
                         &reply),
                 0);
    cr_expect_eq(get_u64(reply), 42);
    cr_msg_free(reply);
    cr_expect_eq(atomic_load(&s.late_rc), CR_ENOENT);
    rec_rt_down(&f);
}

Test(runtime_call, call_errors_leave_ownership)
{
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    cr_msg *m = msg_u64(T_REQ, 1);
    cr_msg *reply = NULL;
    cr_assert_eq(cr_call(rt, CR_NOBODY, 777, m, 100, &reply), CR_ENOENT);
    cr_assert_eq(cr_call(rt, CR_NOBODY, 777, m, 100, NULL), CR_EINVAL);
    cr_msg_free(m);
    cr_rt_destroy(rt);
}

/* Async caller: on T_GO it calls the server (arg in user) asynchronously
 * and records the corr; the CR_MSG_REPLY is recorded by the recorder. */
typedef struct async_state {
    cr_id server;
    _Atomic uint64_t corr;
    _Atomic int rc;
} async_state;

static int
async_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    async_state *as = r->user;
    if (cr_msg_type(m) == T_GO) {
        uint64_t corr = 0;
        cr_msg *req = msg_u64(T_REQ, 5);
        int rc = cr_call_async(ctx, as->server, req, &corr);
        if (rc != 0) {
            cr_msg_free(req);
        }
        atomic_store(&as->corr, corr);
        atomic_store(&as->rc, rc);
    }
    return 0;
}

/* Both actor-as-caller tests: the server as above, and a client recorder
 * in the same runtime whose hook calls the server when T_GO arrives. */
typedef struct client_fix {
    server s;
    rec_rt srv; /* the runtime and the server */
    async_state as;
    rec rc; /* the client */
    cr_id cid;
} client_fix;

/* client_up starts the server and a client running hook, and sends the
 * client its T_GO. */
static void
client_up(client_fix *f, rec_hook hook)
{
    server_up(&f->srv, &f->s);
    f->as = (async_state){.server = f->srv.id, .rc = -1};
    rec_init(&f->rc);
    f->rc.hook = hook;
    f->rc.user = &f->as;
    cr_assert_eq(cr_spawn(f->srv.rt, &rec_behaviour, &f->rc, NULL, &f->cid),
                 0);
    cr_assert_eq(cr_send(f->srv.rt, CR_NOBODY, f->cid, cr_msg_new(T_GO)), 0);
}

static void
client_down(client_fix *f)
{
    rec_rt_down(&f->srv); /* stops the client too */
    rec_fini(&f->rc);
}

Test(runtime_call, call_async_reply_in_mailbox)
{
    client_fix f;
    client_up(&f, async_hook);
    cr_assert_eq(rec_wait(&f.rc, 2, 5000), 2);
    cr_expect_eq(atomic_load(&f.as.rc), 0);
    cr_assert_eq(cr_msg_type(f.rc.msgs[1]), CR_MSG_REPLY);
    cr_expect_eq(cr_msg_corr(f.rc.msgs[1]), atomic_load(&f.as.corr));
    cr_expect_neq(atomic_load(&f.as.corr), 0);
    cr_expect_eq(get_u64(f.rc.msgs[1]), 6);
    cr_expect_eq(cr_msg_from(f.rc.msgs[1]), f.srv.id);
    client_down(&f);
}

/* An actor calling another actor synchronously from its handler. */
static int
nested_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    async_state *as = r->user;
    if (cr_msg_type(m) == T_GO) {
        cr_msg *reply = NULL;
        int rc = cr_call(cr_ctx_rt(ctx), cr_self(ctx), as->server,
                         msg_u64(T_REQ, 9), 5000, &reply);
        atomic_store(&as->rc, rc);
        atomic_store(&as->corr, rc == 0 ? get_u64(reply) : 0);
        cr_msg_free(reply);
    }
    return 0;
}

Test(runtime_call, call_from_actor)
{
    client_fix f;
    client_up(&f, nested_hook);
    cr_assert_eq(rec_wait(&f.rc, 1, 5000), 1);
    cr_expect_eq(atomic_load(&f.as.rc), 0);
    cr_expect_eq(atomic_load(&f.as.corr), 10);
    client_down(&f);
}

/* A client blocked in a call that is never answered (the server holds
 * value 0): stopping the client ends the wait at once, as a supervisor
 * stopping a child that waits on it needs (cfgrecvd's events actor
 * calling its root supervisor while the root stopped its children waited
 * out the call's 10 s). */
static int
held_hook(cr_ctx *ctx, rec *r, const cr_msg *m)
{
    async_state *as = r->user;
    if (cr_msg_type(m) == T_GO) {
        cr_msg *reply = NULL;
        int rc = cr_call(cr_ctx_rt(ctx), cr_self(ctx), as->server,
                         msg_u64(T_REQ, 0), 30000, &reply);
        atomic_store(&as->rc, rc);
        cr_msg_free(reply);
    }
    return 0;
}

Test(runtime_call, stopping_the_caller_ends_its_call)
{
    client_fix f;
    client_up(&f, held_hook);
    /* the server has the request (and holds it): the client waits */
    cr_assert_eq(rec_wait(&f.srv.r, 1, 5000), 1);
    cr_assert_eq(cr_stop_wait(f.srv.rt, f.cid, 5000), 0,
                 "the client still waits for its call");
    cr_expect_eq(atomic_load(&f.as.rc), CR_ETIMEDOUT);
    client_down(&f);
}
