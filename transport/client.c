/*
 * client.c - REQ client with a fixed pool of contexts and a FIFO queue.
 *
 * Each slot owns one nng_ctx and one aio and runs one request at a time
 * through two states: SEND (the request is handed to nng) then RECV (the
 * reply). When a slot finishes it runs the user callback (no lock held),
 * then takes the next queued job itself, so no extra thread is needed.
 * A queued job whose deadline passed while waiting completes with
 * CR_ETIMEDOUT without being sent.
 *
 * Lock order: c->mu only; it is never held while calling into nng or
 * into a user callback. Every nng_ctx_* call goes through c->gate, which
 * close shuts before nng_close (gate.h: nng 1.5.2 aborts if the two
 * overlap, as they did when a client was closed right after its one
 * request was answered).
 */
#include "client.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <cfgrecv/actor.h>
#include <cfgrecv/log.h>

#include "gate.h"
#include "nngerr.h"
#include "proto.h"
#include "redial.h"

typedef struct job {
    struct job *next;
    nng_msg *msg;      /* the request until handed to nng */
    uint64_t deadline; /* now_ms() based; UINT64_MAX = none */
    crt_client_cb cb;
    void *arg;
} job;

enum { SLOT_IDLE, SLOT_SEND, SLOT_RECV };

typedef struct slot {
    crt_client *c;
    nng_ctx ctx;
    nng_aio *aio;
    int state; /* written by the slot's own callback chain only */
    job *cur;
} slot;

struct crt_client {
    nng_socket sock;
    unsigned nslots;
    slot *slots;
    pthread_mutex_t mu;
    job *head; /* queued jobs, FIFO (protected by mu) */
    job *tail; /* (protected by mu) */
    unsigned idle; /* slots without a job (protected by mu) */
    bool *busy;    /* per slot (protected by mu) */
    bool closing;  /* (protected by mu) */
    pthread_cond_t idle_cv; /* signalled when a slot becomes idle */
    crt_gate gate;
    crt_redial *redial; /* set before the dial (redial.h) */
};

/* Pipe events only feed the redial watchdog (atomics: nng holds the
 * socket lock here). */
static void
client_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    crt_client *c = arg;
    (void)pipe;
    crt_redial_pipe_event(c->redial, ev);
}

static int
map_nng(int rv)
{
    switch (rv) {
    case 0:
        return CR_OK;
    case NNG_ETIMEDOUT:
        return CR_ETIMEDOUT;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
        return CR_ECLOSED;
    case NNG_ENOMEM:
        return CR_ENOMEM;
    default:
        CR_WARN("client", "nng: %s", nng_strerror(rv));
        return CR_ENNG;
    }
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static nng_duration
remaining(const job *j)
{
    uint64_t now = now_ms();
    if (j->deadline == UINT64_MAX) {
        return NNG_DURATION_INFINITE;
    }
    if (now >= j->deadline) {
        return 0;
    }
    return (nng_duration)(j->deadline - now > INT32_MAX ? INT32_MAX
                                                        : j->deadline - now);
}

static void
job_done(job *j, int status, nng_msg *reply)
{
    if (reply != NULL) {
        j->cb(j->arg, status, nng_msg_body(reply), nng_msg_len(reply));
        nng_msg_free(reply);
    } else {
        j->cb(j->arg, status, NULL, 0);
    }
    if (j->msg != NULL) {
        nng_msg_free(j->msg);
    }
    free(j);
}

/* Starts j on s, or completes it at once if its deadline passed. Returns
 * true if the slot is now busy with j. */
static bool
start(slot *s, job *j)
{
    nng_duration t = remaining(j);
    if (t == 0) {
        job_done(j, CR_ETIMEDOUT, NULL);
        return false;
    }
    if (!crt_gate_enter(&s->c->gate)) { /* closing */
        job_done(j, CR_ECLOSED, NULL);
        return false;
    }
    s->cur = j;
    s->state = SLOT_SEND;
    nng_aio_set_msg(s->aio, j->msg);
    j->msg = NULL;
    nng_aio_set_timeout(s->aio, t);
    nng_ctx_send(s->ctx, s->aio);
    crt_gate_leave(&s->c->gate); /* s and j may be done with already */
    return true;
}

/* The slot finished its job: take queued ones until one starts. */
static void
next(slot *s)
{
    crt_client *c = s->c;
    for (;;) {
        job *j;
        pthread_mutex_lock(&c->mu);
        if (c->closing || (j = c->head) == NULL) {
            c->busy[s - c->slots] = false;
            c->idle++;
            pthread_cond_broadcast(&c->idle_cv);
            pthread_mutex_unlock(&c->mu);
            return;
        }
        c->head = j->next;
        if (c->head == NULL) {
            c->tail = NULL;
        }
        pthread_mutex_unlock(&c->mu);
        if (start(s, j)) {
            return;
        }
    }
}

static void
slot_cb(void *arg)
{
    slot *s = arg;
    int rv = nng_aio_result(s->aio);
    job *j = s->cur;
    nng_msg *m;

    if (rv != 0) {
        /* while closing, nng may report a connection reset first */
        pthread_mutex_lock(&s->c->mu);
        if (s->c->closing) {
            rv = NNG_ECLOSED;
        }
        pthread_mutex_unlock(&s->c->mu);
    }

    if (s->state == SLOT_SEND) {
        if (rv != 0) {
            /* nng gives the request back on a failed send */
            if ((m = nng_aio_get_msg(s->aio)) != NULL) {
                nng_msg_free(m);
            }
            goto finish;
        }
        if (crt_gate_enter(&s->c->gate)) {
            s->state = SLOT_RECV;
            nng_aio_set_timeout(s->aio,
                                remaining(j) == 0 ? 1 : remaining(j));
            nng_ctx_recv(s->ctx, s->aio);
            crt_gate_leave(&s->c->gate);
            return;
        }
        rv = NNG_ECLOSED; /* closing: the reply would not be read */
    }
    m = rv == 0 ? nng_aio_get_msg(s->aio) : NULL;
    s->cur = NULL;
    s->state = SLOT_IDLE;
    job_done(j, rv == 0 ? CR_OK : map_nng(rv), m);
    next(s);
    return;
finish:
    s->cur = NULL;
    s->state = SLOT_IDLE;
    job_done(j, map_nng(rv), NULL);
    next(s);
}

/* client_free releases what crt_client_open allocated, once the socket is
 * closed (or was never opened) and no callback can run. */
static void
client_free(crt_client *c)
{
    for (unsigned i = 0; i < c->nslots; i++) {
        if (c->slots[i].aio != NULL) {
            nng_aio_free(c->slots[i].aio);
        }
    }
    crt_gate_fini(&c->gate);
    pthread_cond_destroy(&c->idle_cv);
    pthread_mutex_destroy(&c->mu);
    free(c->busy);
    free(c->slots);
    free(c);
}

int
crt_client_open(const char *url, const crt_client_opts *opts,
                crt_client **out)
{
    crt_client *c;
    int rv;
    unsigned n = opts && opts->nctx ? opts->nctx : CRT_CLIENT_DEFAULT_NCTX;
    size_t maxr = opts && opts->max_recv ? opts->max_recv
                                         : CRT_DEFAULT_MAX_SIZE;

    if (url == NULL || out == NULL) {
        return CR_EINVAL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL ||
        (c->slots = calloc(n, sizeof(slot))) == NULL ||
        (c->busy = calloc(n, sizeof(bool))) == NULL) {
        if (c != NULL) {
            free(c->slots);
        }
        free(c);
        return CR_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->idle_cv, NULL);
    crt_gate_init(&c->gate);
    c->nslots = n;
    c->idle = n;
    if ((rv = nng_req0_open(&c->sock)) != 0) {
        goto fail_sock;
    }
    if ((rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
                                NNG_DURATION_INFINITE)) != 0 ||
        (rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, maxr)) != 0 ||
        (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50)) != 0 ||
        (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 1000)) != 0) {
        goto fail;
    }
    for (unsigned i = 0; i < n; i++) {
        slot *s = &c->slots[i];
        s->c = c;
        if ((rv = nng_ctx_open(&s->ctx, c->sock)) != 0 ||
            (rv = nng_aio_alloc(&s->aio, slot_cb, s)) != 0) {
            goto fail;
        }
    }
    if ((rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, client_pipe_cb,
                              c)) != 0 ||
        (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, client_pipe_cb,
                              c)) != 0 ||
        (rv = crt_redial_new(c->sock, url, 0, "client", &c->redial)) != 0) {
        goto fail;
    }
    if ((rv = crt_redial_start(c->redial)) != 0) {
        CR_WARN("client", "dial %s: %s", url, nng_strerror(rv));
        goto fail;
    }
    *out = c;
    return 0;

fail:
    crt_redial_stop(c->redial);
    nng_close(c->sock);
    crt_redial_free(c->redial);
fail_sock:
    client_free(c);
    return crt_open_error(rv);
}

int
crt_client_request_async(crt_client *c, const void *req, size_t len,
                         int timeout_ms, crt_client_cb cb, void *arg)
{
    job *j;
    slot *s = NULL;
    if (c == NULL || cb == NULL || (req == NULL && len > 0)) {
        return CR_EINVAL;
    }
    if ((j = calloc(1, sizeof(*j))) == NULL) {
        return CR_ENOMEM;
    }
    if (nng_msg_alloc(&j->msg, 0) != 0 ||
        nng_msg_append(j->msg, req, len) != 0) {
        if (j->msg != NULL) {
            nng_msg_free(j->msg);
        }
        free(j);
        return CR_ENOMEM;
    }
    if (timeout_ms == 0) {
        timeout_ms = CRT_CLIENT_DEFAULT_TIMEOUT;
    }
    j->deadline =
        timeout_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)timeout_ms;
    j->cb = cb;
    j->arg = arg;

    pthread_mutex_lock(&c->mu);
    if (c->closing) {
        pthread_mutex_unlock(&c->mu);
        nng_msg_free(j->msg);
        free(j);
        return CR_ECLOSED;
    }
    if (c->idle > 0 && c->head == NULL) {
        for (unsigned i = 0; i < c->nslots; i++) {
            if (!c->busy[i]) {
                s = &c->slots[i];
                c->busy[i] = true;
                c->idle--;
                break;
            }
        }
    }
    if (s == NULL) {
        if (c->tail != NULL) {
            c->tail->next = j;
        } else {
            c->head = j;
        }
        c->tail = j;
    }
    pthread_mutex_unlock(&c->mu);
    if (s != NULL && !start(s, j)) {
        next(s); /* not reached in practice: the deadline is fresh */
    }
    return 0;
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
    void *buf;
    size_t len;
} waiter;

static void
wait_cb(void *arg, int status, const void *reply, size_t len)
{
    waiter *w = arg;
    void *copy = NULL;
    if (status == CR_OK) {
        if ((copy = malloc(len ? len : 1)) == NULL) {
            status = CR_ENOMEM;
        } else {
            memcpy(copy, reply, len);
        }
    }
    pthread_mutex_lock(&w->mu);
    w->status = status;
    w->buf = copy;
    w->len = status == CR_OK ? len : 0;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int
crt_client_request(crt_client *c, const void *req, size_t len,
                   int timeout_ms, void **reply, size_t *rlen)
{
    waiter w;
    int rv;
    *reply = NULL;
    *rlen = 0;
    memset(&w, 0, sizeof(w));
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    if ((rv = crt_client_request_async(c, req, len, timeout_ms, wait_cb,
                                       &w)) == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) {
            pthread_cond_wait(&w.cv, &w.mu);
        }
        pthread_mutex_unlock(&w.mu);
        rv = w.status;
        *reply = w.buf;
        *rlen = w.len;
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rv;
}

void
crt_client_close(crt_client *c)
{
    job *q;
    if (c == NULL) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    q = c->head;
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (q != NULL) {
        job *j = q;
        q = q->next;
        job_done(j, CR_ECLOSED, NULL);
    }
    /* Closing the socket makes every operation of every context fail
     * with NNG_ECLOSED, so each busy slot completes its job and goes idle.
     * Wait for that before stopping the aios: an aio stopped while its
     * callback re-arms it would never call back, losing a job. The gate
     * first: no nng_ctx_* call may still be on its way out (gate.h). */
    crt_redial_stop(c->redial); /* it dials: before the close */
    crt_gate_shut(&c->gate);
    nng_close(c->sock);
    pthread_mutex_lock(&c->mu);
    while (c->idle < c->nslots) {
        pthread_cond_wait(&c->idle_cv, &c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    crt_redial_free(c->redial); /* after nng_close: pipe callbacks done */
    client_free(c);
}
