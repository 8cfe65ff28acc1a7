/*
 * server.c - REP server with a fixed pool of contexts.
 *
 * Slot life cycle: RECV (nng_ctx_recv pending) -> HELD (request given to
 * the callback, waiting for crt_server_reply) -> SEND (answer in nng) ->
 * RECV. A token is (slot index << 32 | sequence): the sequence changes
 * every time the slot is handed out, so a late or duplicate reply is
 * recognised as stale instead of answering someone else's request.
 *
 * Lock: s->mu protects every slot's state and seq and s->closing; never
 * held while calling nng (except nng_aio_set_msg) or the user callback.
 * Every nng_ctx_* call goes through s->gate, which close shuts before
 * nng_close (gate.h: nng 1.5.2 aborts if the two overlap).
 */
#include "server.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include <cfgrecv/actor.h>
#include <cfgrecv/log.h>

#include "gate.h"
#include "lguard.h"
#include "nngerr.h"
#include "proto.h"

enum { ST_RECV, ST_HELD, ST_SEND, ST_DEAD };

typedef struct sslot {
    crt_server *s;
    uint32_t idx;
    nng_ctx ctx;
    nng_aio *aio;
    int state;    /* (protected by s->mu) */
    uint32_t seq; /* (protected by s->mu) */
} sslot;

struct crt_server {
    nng_socket sock;
    nng_listener lst;
    crt_server_cb cb;
    void *arg;
    unsigned n;
    sslot *slots;
    pthread_mutex_t mu;
    bool closing; /* (protected by mu) */
    crt_gate gate;
    crt_lguard *guard; /* restarts a wedged listener (lguard.h) */
    int port;          /* the bound TCP port, or 0 */
};

/* Both leave a closing server's slot unarmed (close frees the aios). */
static void
arm_recv(sslot *sl)
{
    if (crt_gate_enter(&sl->s->gate)) {
        nng_ctx_recv(sl->ctx, sl->aio);
        crt_gate_leave(&sl->s->gate);
    }
}

static int
arm_send(sslot *sl)
{
    if (!crt_gate_enter(&sl->s->gate)) {
        nng_msg_free(nng_aio_get_msg(sl->aio));
        nng_aio_set_msg(sl->aio, NULL);
        return CR_ECLOSED;
    }
    nng_ctx_send(sl->ctx, sl->aio);
    crt_gate_leave(&sl->s->gate);
    return 0;
}

static void
slot_cb(void *arg)
{
    sslot *sl = arg;
    crt_server *s = sl->s;
    int rv = nng_aio_result(sl->aio);
    int state;
    uint64_t token;
    nng_msg *m;

    pthread_mutex_lock(&s->mu);
    state = sl->state;
    if (s->closing || rv == NNG_ECLOSED) {
        sl->state = ST_DEAD;
        pthread_mutex_unlock(&s->mu);
        if (state == ST_SEND && (m = nng_aio_get_msg(sl->aio)) != NULL) {
            nng_msg_free(m);
        } else if (rv == 0 && (m = nng_aio_get_msg(sl->aio)) != NULL) {
            nng_msg_free(m);
        }
        return;
    }
    if (state == ST_SEND) {
        if (rv != 0 && (m = nng_aio_get_msg(sl->aio)) != NULL) {
            nng_msg_free(m); /* the requester is gone; nothing to do */
        }
        sl->state = ST_RECV;
        pthread_mutex_unlock(&s->mu);
        arm_recv(sl);
        return;
    }
    /* ST_RECV */
    if (rv != 0) {
        pthread_mutex_unlock(&s->mu);
        CR_WARN("server", "receive: %s", nng_strerror(rv));
        arm_recv(sl);
        return;
    }
    sl->state = ST_HELD;
    sl->seq++;
    token = ((uint64_t)sl->idx << 32) | sl->seq;
    pthread_mutex_unlock(&s->mu);
    m = nng_aio_get_msg(sl->aio);
    s->cb(s->arg, token, nng_msg_body(m), nng_msg_len(m));
    nng_msg_free(m);
}

/* Finds the slot of a held token; called with s->mu held. */
static sslot *
held(crt_server *s, uint64_t token)
{
    uint32_t idx = (uint32_t)(token >> 32);
    if (idx >= s->n || s->slots[idx].state != ST_HELD ||
        s->slots[idx].seq != (uint32_t)token) {
        return NULL;
    }
    return &s->slots[idx];
}

int
crt_server_reply(crt_server *s, uint64_t token, const void *data, size_t len)
{
    nng_msg *m;
    sslot *sl;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, data, len) != 0) {
        return CR_ENOMEM;
    }
    pthread_mutex_lock(&s->mu);
    if (s->closing) {
        pthread_mutex_unlock(&s->mu);
        nng_msg_free(m);
        return CR_ECLOSED;
    }
    if ((sl = held(s, token)) == NULL) {
        pthread_mutex_unlock(&s->mu);
        nng_msg_free(m);
        return CR_ENOENT;
    }
    sl->state = ST_SEND;
    nng_aio_set_msg(sl->aio, m);
    pthread_mutex_unlock(&s->mu);
    return arm_send(sl);
}

int
crt_server_drop(crt_server *s, uint64_t token)
{
    sslot *sl;
    pthread_mutex_lock(&s->mu);
    if (s->closing || (sl = held(s, token)) == NULL) {
        pthread_mutex_unlock(&s->mu);
        return CR_ENOENT;
    }
    sl->state = ST_RECV;
    pthread_mutex_unlock(&s->mu);
    arm_recv(sl); /* a new receive on a REP context abandons the old one */
    return 0;
}

/* server_free releases what crt_server_open allocated, once the socket
 * is closed (or was never opened). */
static void
server_free(crt_server *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        if (s->slots[i].aio != NULL) {
            nng_aio_free(s->slots[i].aio);
        }
    }
    crt_lguard_free(s->guard);
    crt_gate_fini(&s->gate);
    pthread_mutex_destroy(&s->mu);
    free(s->slots);
    free(s);
}


int
crt_server_open(const char *url, const crt_server_opts *opts,
                crt_server_cb cb, void *arg, crt_server **out)
{
    crt_server *s;
    int rv;
    unsigned n = opts && opts->nctx ? opts->nctx : CRT_SERVER_DEFAULT_NCTX;
    size_t maxr =
        opts && opts->max_recv ? opts->max_recv : 2 * CRT_DEFAULT_MAX_SIZE;

    if (url == NULL || cb == NULL || out == NULL) {
        return CR_EINVAL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL ||
        (s->slots = calloc(n, sizeof(sslot))) == NULL) {
        free(s);
        return CR_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    crt_gate_init(&s->gate);
    s->cb = cb;
    s->arg = arg;
    s->n = n;
    if ((rv = nng_rep0_open(&s->sock)) != 0) {
        goto fail_sock;
    }
    s->guard = crt_lguard_new();
    if ((rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, maxr)) != 0 ||
        (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, crt_lguard_pipe_cb,
                              s->guard)) != 0) {
        goto fail;
    }
    for (unsigned i = 0; i < n; i++) {
        sslot *sl = &s->slots[i];
        sl->s = s;
        sl->idx = i;
        if ((rv = nng_ctx_open(&sl->ctx, s->sock)) != 0 ||
            (rv = nng_aio_alloc(&sl->aio, slot_cb, sl)) != 0) {
            goto fail;
        }
    }
    if ((rv = nng_listen(s->sock, url, &s->lst, 0)) != 0) {
        CR_WARN("server", "listen %s: %s", url, nng_strerror(rv));
        goto fail;
    }
    if (nng_listener_get_int(s->lst, NNG_OPT_TCP_BOUND_PORT, &s->port) != 0) {
        s->port = 0;
    }
    *out = s; /* before the first callback can run: it may reply */
    for (unsigned i = 0; i < n; i++) {
        arm_recv(&s->slots[i]);
    }
    (void)crt_lguard_start(s->guard, s->sock, s->lst, url, nng_req0_open,
                           crt_lguard_listen, NULL,
                           opts ? opts->guard_ms : 0);
    return 0;
fail:
    nng_close(s->sock);
fail_sock:
    server_free(s);
    return crt_open_error(rv);
}

unsigned
crt_server_restarts(const crt_server *s)
{
    return crt_lguard_restarts(s->guard);
}

int
crt_server_port(crt_server *s)
{
    return s->port; /* a restarted listener keeps it (lguard.h) */
}

void
crt_server_close(crt_server *s)
{
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_mutex_unlock(&s->mu);
    crt_lguard_stop(s->guard); /* before the close: it may relisten */
    crt_gate_shut(&s->gate); /* no nng_ctx_* call overlaps the close */
    nng_close(s->sock);
    server_free(s); /* nng_aio_free waits for a running callback */
}
