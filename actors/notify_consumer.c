/*
 * notify_consumer.c - the notify stream as messages.
 *
 * Two callbacks of the subscriber (transport/notify.h): a message arrived
 * (validated with the bounded codec and sent straight to the flow
 * manager as RM_PUSH, or through this actor when the manager cannot take
 * it now), and the stream went up or down (posted here as RM_STREAM). The second runs inside nng's pipe
 * callback with the SUB socket's lock held, so it touches nothing but
 * this actor's mailbox (another socket). Everything else happens on the actor's
 * thread: validation with the bounded codec, forwarding to the manager.
 */
#include "notify_consumer.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/log.h"
#include "events.h"
#include "notify.h"
#include "proto.h"
#include "recv_msgs.h"

#define COMP "notify"

typedef struct consumer {
    const cra_notify_opts *o;
    cr_ctx *ctx;
    cr_rt *rt;
    cr_id self;
    crt_sub *sub;
    atomic_bool closing;
} consumer;

static void
post(consumer *c, cr_msg *m)
{
    if (m != NULL && cr_send(c->rt, CR_NOBODY, c->self, m) != 0) {
        cr_msg_free(m);
    }
}

/* on_event runs inside nng's pipe callback (socket lock held): post only */
static void
on_event(void *arg, crt_sub_event ev)
{
    consumer *c = arg;
    if (atomic_load(&c->closing)) {
        return;
    }
    post(c, rm_stream_new(ev != CRT_SUB_DISCONNECTED,
                          ev == CRT_SUB_RECONNECTED));
}

/* on_msg runs on an nng thread and never blocks. A valid push goes
 * straight to the flow manager (one mailbox hop fewer on every change);
 * when the manager's mailbox is full or it is restarting, the push is
 * posted to this actor, which may wait. A malformed push is logged and
 * dropped here. */
static void
on_msg(void *arg, const void *data, size_t len)
{
    consumer *c = arg;
    if (atomic_load(&c->closing)) {
        return;
    }
    crt_push p;
    crt_decode_error err;
    crt_limits lim = {.max_size = c->o->max_size};
    if (crt_push_decode(data, len, &lim, &p, &err) != 0) {
        CR_WARN(COMP, "malformed notify (%zu bytes) dropped: %s", len,
                err.text);
        return;
    }
    CR_DEBUG(COMP, "notify version %llu (%zu change types)",
             (unsigned long long)p.version, p.nchanges);
    crt_push_free(&p);
    cr_msg *m = cr_msg_new_bytes(RM_PUSH, data, len);
    if (m == NULL) {
        CR_ERROR(COMP, "out of memory: notify dropped");
        return;
    }
    cr_id fm = cr_whereis(c->rt, "flow-manager");
    if (fm != CR_NOBODY && cr_send(c->rt, c->self, fm, m) == 0) {
        return;
    }
    post(c, m); /* slow path: n_handle forwards it, waiting if need be */
}

static int
n_init(cr_ctx *ctx, void *arg, void **state)
{
    const cra_notify_opts *o = arg;
    consumer *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return CR_ENOMEM;
    }
    *state = c;
    c->o = o;
    c->ctx = ctx;
    c->rt = cr_ctx_rt(ctx);
    c->self = cr_self(ctx);
    crt_sub_opts so = {
        .on_msg = on_msg,
        .on_event = on_event,
        .arg = c,
        .max_recv = o->max_size,
    };
    /* Subscribe first: the flow manager starts discovery only once this
     * stream is up (RM_STREAM), so no change falls between the two. */
    int rv = crt_sub_open(o->notify_url, &so, &c->sub);
    if (rv != 0) {
        cr_fail(ctx, rv, "notify stream %s: %s", o->notify_url,
                cr_strerror(rv));
        return rv;
    }
    CR_INFO(COMP, "subscribed to %s", o->notify_url);
    return 0;
}

static int
n_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    consumer *c = state;
    cr_id fm = cr_whereis(c->rt, "flow-manager");
    if (cr_msg_type(m) == RM_PUSH) {
        /* already validated by on_msg; the manager was busy or away */
    } else if (cr_msg_type(m) == RM_STREAM) {
        bool up, re;
        if (rm_stream_decode(m, &up, &re) == 0) {
            if (up) {
                CR_INFO(COMP, "notify stream %s", re ? "reconnected"
                                                     : "connected");
            } else {
                CR_WARN(COMP, "notify stream lost; redialing");
            }
            cra_emit(c->rt, up ? "config.connected" : "config.disconnected",
                     json_pack("{s:s, s:b}", "url", c->o->notify_url,
                               "reconnect", re));
        }
    } else {
        CR_WARN(COMP, "unexpected message type %u dropped", cr_msg_type(m));
        return 0;
    }
    cr_msg *fwd = cr_msg_dup(m);
    if (fm == CR_NOBODY || fwd == NULL) {
        cr_msg_free(fwd);
        CR_WARN(COMP, "flow manager unavailable; notify dropped (it "
                      "resyncs when it starts)");
        return 0;
    }
    int rv = cr_ctx_send_wait(ctx, fm, fwd, 10000);
    if (rv != 0) {
        cr_msg_free(fwd);
        CR_WARN(COMP, "notify not forwarded: %s", cr_strerror(rv));
    }
    return 0;
}

static void
n_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    consumer *c = state;
    if (c == NULL) {
        return;
    }
    atomic_store(&c->closing, true);
    crt_sub_close(c->sub);
    free(c);
}

const cr_behaviour cra_notify_behaviour = {
    .kind = "notify-consumer",
    .init = n_init,
    .handle = n_handle,
    .terminate = n_terminate,
};
