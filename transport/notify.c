/*
 * notify.c - PUB publisher and aio-driven SUB subscriber.
 *
 * The subscriber keeps exactly one receive aio armed; its callback hands
 * the body to on_msg and re-arms. Pipe events are counted with atomics
 * (the pipe callback holds the socket lock, so nothing else is done
 * there) and forwarded; a redial watchdog (redial.h) dials again when
 * nng's dialer has stopped trying. On close, a flag set before nng_close stops the
 * forwarding, because nng may still call the pipe callback while
 * tearing connections down.
 */
#include "notify.h"

/* Messages queued per subscriber (PUB side) and on the SUB side before
 * nng starts dropping (nng's default is 16 and 128). */
#define CRT_NOTIFY_QUEUE 4096

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include <cfgrecv/actor.h>
#include <cfgrecv/log.h>

#include "lguard.h"
#include "nngerr.h"
#include "proto.h"
#include "redial.h"

/* ---- publisher ------------------------------------------------------ */

struct crt_pub {
    nng_socket sock;
    atomic_int peers;  /* connected subscribers (and a guard's probe) */
    crt_lguard *guard; /* restarts a wedged listener (lguard.h) */
};

static void
pub_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    crt_pub *p = arg;
    (void)pipe;
    if (ev == NNG_PIPE_EV_ADD_POST) {
        atomic_fetch_add(&p->peers, 1);
        crt_lguard_pipe_added(p->guard);
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        atomic_fetch_sub(&p->peers, 1);
    }
}

int
crt_pub_open(const char *url, crt_pub **out)
{
    crt_pub *p;
    int rv;
    if (url == NULL || out == NULL) {
        return CR_EINVAL;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        return CR_ENOMEM;
    }
    atomic_init(&p->peers, 0);
    p->guard = crt_lguard_new();
    nng_listener l;
    if ((rv = nng_pub0_open(&p->sock)) != 0) {
        crt_lguard_free(p->guard);
        free(p);
        return crt_open_error(rv);
    }
    /* PUB drops a message for a subscriber whose queue is full; a deep
     * queue absorbs bursts (a notify storm) instead of dropping them. */
    if ((rv = nng_socket_set_int(p->sock, NNG_OPT_SENDBUF,
                                 CRT_NOTIFY_QUEUE)) != 0 ||
        (rv = nng_pipe_notify(p->sock, NNG_PIPE_EV_ADD_POST, pub_pipe_cb,
                              p)) != 0 ||
        (rv = nng_pipe_notify(p->sock, NNG_PIPE_EV_REM_POST, pub_pipe_cb,
                              p)) != 0 ||
        (rv = nng_listen(p->sock, url, &l, 0)) != 0) {
        CR_WARN("notify", "listen %s: %s", url, nng_strerror(rv));
        nng_close(p->sock);
        crt_lguard_free(p->guard);
        free(p);
        return crt_open_error(rv);
    }
    (void)crt_lguard_start(p->guard, p->sock, l, url, nng_sub0_open,
                           crt_lguard_listen, NULL, 0);
    *out = p;
    return 0;
}

int
crt_pub_send(crt_pub *p, const void *data, size_t len)
{
    nng_msg *m;
    int rv;
    if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, data, len) != 0) {
        return CR_ENOMEM;
    }
    if ((rv = nng_sendmsg(p->sock, m, NNG_FLAG_NONBLOCK)) != 0) {
        nng_msg_free(m);
        CR_WARN("notify", "publish: %s", nng_strerror(rv));
        return rv == NNG_ENOMEM ? CR_ENOMEM : CR_ENNG;
    }
    return 0;
}

int
crt_pub_subscribers(crt_pub *p)
{
    return atomic_load(&p->peers);
}

void
crt_pub_close(crt_pub *p)
{
    if (p == NULL) {
        return;
    }
    crt_lguard_stop(p->guard); /* before the close: it may relisten */
    nng_close(p->sock);
    crt_lguard_free(p->guard);
    free(p);
}

/* ---- subscriber ----------------------------------------------------- */

struct crt_sub {
    nng_socket sock;
    nng_aio *aio;
    crt_sub_opts o;
    atomic_int up;       /* pipes connected now */
    atomic_int connects; /* connections made so far */
    atomic_bool closing;
    crt_redial *redial; /* set before the dial (redial.h) */
};

const char *
crt_sub_event_name(crt_sub_event ev)
{
    switch (ev) {
    case CRT_SUB_CONNECTED:
        return "connected";
    case CRT_SUB_DISCONNECTED:
        return "disconnected";
    case CRT_SUB_RECONNECTED:
        return "reconnected";
    default:
        return "?";
    }
}

static void
sub_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    crt_sub *s = arg;
    crt_sub_event out;
    (void)pipe;
    crt_redial_pipe_event(s->redial, ev);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        atomic_fetch_add(&s->up, 1);
        out = atomic_fetch_add(&s->connects, 1) == 0 ? CRT_SUB_CONNECTED
                                                      : CRT_SUB_RECONNECTED;
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        atomic_fetch_sub(&s->up, 1);
        out = CRT_SUB_DISCONNECTED;
    } else {
        return;
    }
    if (s->o.on_event != NULL && !atomic_load(&s->closing)) {
        s->o.on_event(s->o.arg, out);
    }
}

static void
sub_recv_cb(void *arg)
{
    crt_sub *s = arg;
    int rv = nng_aio_result(s->aio);
    if (rv == 0) {
        nng_msg *m = nng_aio_get_msg(s->aio);
        if (!atomic_load(&s->closing) && s->o.on_msg != NULL) {
            s->o.on_msg(s->o.arg, nng_msg_body(m), nng_msg_len(m));
        }
        nng_msg_free(m);
    } else if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
        return;
    } else {
        CR_WARN("notify", "receive: %s", nng_strerror(rv));
    }
    if (!atomic_load(&s->closing)) {
        nng_recv_aio(s->sock, s->aio);
    }
}

int
crt_sub_open(const char *url, const crt_sub_opts *opts, crt_sub **out)
{
    crt_sub *s;
    int rv;
    if (url == NULL || opts == NULL || out == NULL) {
        return CR_EINVAL;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        return CR_ENOMEM;
    }
    s->o = *opts;
    atomic_init(&s->up, 0);
    atomic_init(&s->connects, 0);
    atomic_init(&s->closing, false);
    if ((rv = nng_sub0_open(&s->sock)) != 0) {
        free(s);
        return crt_open_error(rv);
    }
    if ((rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
        (rv = nng_socket_set_int(s->sock, NNG_OPT_RECVBUF,
                                 CRT_NOTIFY_QUEUE)) != 0 ||
        (rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ,
                                  opts->max_recv ? opts->max_recv
                                                 : CRT_DEFAULT_MAX_SIZE)) !=
            0 ||
        (rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMINT, 50)) != 0 ||
        (rv = nng_socket_set_ms(s->sock, NNG_OPT_RECONNMAXT, 1000)) != 0 ||
        (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, sub_pipe_cb,
                              s)) != 0 ||
        (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, sub_pipe_cb,
                              s)) != 0 ||
        (rv = nng_aio_alloc(&s->aio, sub_recv_cb, s)) != 0 ||
        (rv = crt_redial_new(s->sock, url, 0, "notify", &s->redial)) != 0) {
        goto fail;
    }
    if ((rv = crt_redial_start(s->redial)) != 0) {
        CR_WARN("notify", "dial %s: %s", url, nng_strerror(rv));
        goto fail;
    }
    nng_recv_aio(s->sock, s->aio);
    *out = s;
    return 0;
fail:
    crt_redial_stop(s->redial);
    nng_close(s->sock);
    crt_redial_free(s->redial);
    if (s->aio != NULL) {
        nng_aio_free(s->aio);
    }
    free(s);
    return crt_open_error(rv);
}

int
crt_sub_connected(crt_sub *s)
{
    return atomic_load(&s->up) > 0;
}

void
crt_sub_close(crt_sub *s)
{
    if (s == NULL) {
        return;
    }
    atomic_store(&s->closing, true);
    crt_redial_stop(s->redial); /* before the close: it dials */
    nng_close(s->sock);    /* fails the pending receive with ECLOSED */
    crt_redial_free(s->redial);
    nng_aio_free(s->aio);  /* waits for a running callback */
    free(s);
}
