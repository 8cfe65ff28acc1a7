/*
 * mailbox.c - the batching nng mailbox.
 *
 * Design notes. nng 1.5.2 inproc costs ~25 us per message (NOTES.md), so
 * a mailbox must not spend one nng message per envelope. Senders append
 * the encoded envelope to a staged nng_msg under mu. If no send is in
 * flight the sender hands the staged batch to the mailbox's single aio at
 * once (low latency when idle); otherwise it just leaves it staged, and
 * the aio callback sends whatever accumulated when the previous batch
 * completes. A busy mailbox therefore carries up to batch_max envelopes
 * per nng message; full batches wait in a small FIFO (bounded, because
 * depth is bounded by cap). One aio in flight and FIFO hand-off keep the
 * global put order, hence per-sender order.
 *
 * Bounding: depth counts envelopes from put to done (after the handler),
 * reserved with a CAS before encoding so depth never exceeds cap (except
 * for CRI_PUT_FORCE runtime messages). A waiting put sleeps on `room`;
 * done() signals only when waiters > 0. Both sides use seq_cst on depth
 * and waiters (a Dekker pair): either the sleeper sees the lowered depth
 * or done() sees the waiter, and done() takes mu before broadcasting, so
 * no wake-up is lost.
 *
 * Lock order: mu, then nng's internal locks (we call nng_send_aio under
 * mu, both from put and from the aio callback; nng never runs the
 * callback inline).
 */
#include "mailbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "cfgrecv/log.h"
#include "msg.h"

#define STAGE_INITIAL 4096

static void send_cb(void *arg);

int
cri_mailbox_init(cri_mailbox *mb, const char *url, uint32_t cap,
                 uint32_t batch_max)
{
    int rv;
    memset(mb, 0, sizeof(*mb));
    mb->cap = cap;
    mb->batch_max = batch_max;
    if ((rv = nng_pull0_open(&mb->pull)) != 0) {
        goto fail;
    }
    if ((rv = nng_push0_open(&mb->push)) != 0) {
        goto fail_pull;
    }
    if ((rv = nng_listen(mb->pull, url, NULL, 0)) != 0 ||
        (rv = nng_dial(mb->push, url, NULL, 0)) != 0 ||
        (rv = nng_aio_alloc(&mb->aio, send_cb, mb)) != 0) {
        goto fail_push;
    }
    cr_cond_init_monotonic(&mb->room);
    pthread_mutex_init(&mb->mu, NULL);
    return 0;

fail_push:
    nng_close(mb->push);
fail_pull:
    nng_close(mb->pull);
fail:
    CR_ERROR("mailbox", "open %s: %s", url, nng_strerror(rv));
    return rv == NNG_ENOMEM ? CR_ENOMEM : CR_ENNG;
}

/* next_batch pops the next batch to send, or NULL. Call with mu held. */
static nng_msg *
next_batch(cri_mailbox *mb)
{
    nng_msg *m;
    if (mb->ready_n > 0) {
        m = mb->ready[mb->ready_head];
        mb->ready_head = (mb->ready_head + 1) % mb->ready_cap;
        mb->ready_n--;
        return m;
    }
    m = mb->staged;
    mb->staged = NULL;
    mb->staged_n = 0;
    return m;
}

/* start sends m on the aio. Call with mu held and flushing set. */
static void
start(cri_mailbox *mb, nng_msg *m)
{
    nng_aio_set_msg(mb->aio, m);
    nng_send_aio(mb->push, mb->aio);
    atomic_fetch_add_explicit(&mb->batches, 1, memory_order_relaxed);
}

static uint32_t
batch_count(nng_msg *m)
{
    const uint8_t *body = nng_msg_body(m);
    size_t size = nng_msg_len(m), pos = 0;
    cri_env env;
    uint32_t n = 0;
    while (cri_env_next(body, size, &pos, &env) == 1) {
        n++;
    }
    return n;
}

static void
send_cb(void *arg)
{
    cri_mailbox *mb = arg;
    int rv = nng_aio_result(mb->aio);
    uint32_t lost_n = 0;
    atomic_fetch_add_explicit(&mb->cbs, 1, memory_order_relaxed);
    pthread_mutex_lock(&mb->mu);
    if (rv != 0) {
        nng_msg *lost = nng_aio_get_msg(mb->aio);
        nng_aio_set_msg(mb->aio, NULL);
        if (lost != NULL) {
            if (!mb->closed) {
                /* Not expected on inproc; keep depth honest. */
                lost_n = batch_count(lost);
                CR_ERROR("mailbox", "batch send failed (%s): %u lost",
                         nng_strerror(rv), lost_n);
            }
            nng_msg_free(lost);
        }
    }
    nng_msg *next = mb->closed ? NULL : next_batch(mb);
    if (next != NULL) {
        start(mb, next);
    } else {
        mb->flushing = false;
    }
    pthread_mutex_unlock(&mb->mu);
    if (lost_n > 0) {
        cri_mailbox_done(mb, lost_n); /* takes mu itself */
    }
}

/* push_ready appends a full batch to the FIFO. Call with mu held. */
static int
push_ready(cri_mailbox *mb, nng_msg *m)
{
    if (mb->ready_n == mb->ready_cap) {
        size_t ncap = mb->ready_cap ? mb->ready_cap * 2 : 8;
        nng_msg **n = malloc(ncap * sizeof(*n));
        if (n == NULL) {
            return CR_ENOMEM;
        }
        for (size_t i = 0; i < mb->ready_n; i++) {
            n[i] = mb->ready[(mb->ready_head + i) % mb->ready_cap];
        }
        free(mb->ready);
        mb->ready = n;
        mb->ready_head = 0;
        mb->ready_cap = ncap;
    }
    mb->ready[(mb->ready_head + mb->ready_n) % mb->ready_cap] = m;
    mb->ready_n++;
    return 0;
}

/* reserve takes one unit of depth. Returns 0, CR_EFULL, CR_ETIMEDOUT or
 * CR_ECLOSED. */
static int
reserve(cri_mailbox *mb, unsigned flags, int timeout_ms)
{
    struct timespec dl;
    bool have_dl = false;
    uint32_t d = atomic_load(&mb->depth);
    for (;;) {
        if ((flags & CRI_PUT_FORCE) || d < mb->cap) {
            if (atomic_compare_exchange_weak(&mb->depth, &d, d + 1)) {
                break;
            }
            continue; /* d reloaded by the failed CAS */
        }
        if (timeout_ms == 0) {
            return CR_EFULL;
        }
        if (timeout_ms > 0 && !have_dl) {
            cr_deadline_ts(&dl, (uint64_t)timeout_ms);
            have_dl = true;
        }
        int rv = 0;
        pthread_mutex_lock(&mb->mu);
        atomic_fetch_add(&mb->waiters, 1);
        while (!mb->closed && atomic_load(&mb->depth) >= mb->cap &&
               rv != ETIMEDOUT) {
            rv = timeout_ms > 0 ? pthread_cond_timedwait(&mb->room, &mb->mu, &dl)
                                : pthread_cond_wait(&mb->room, &mb->mu);
        }
        atomic_fetch_sub(&mb->waiters, 1);
        bool closed = mb->closed;
        pthread_mutex_unlock(&mb->mu);
        if (closed) {
            return CR_ECLOSED;
        }
        d = atomic_load(&mb->depth);
        if (rv == ETIMEDOUT && d >= mb->cap) {
            return CR_ETIMEDOUT;
        }
    }
    d++;
    uint32_t hw = atomic_load_explicit(&mb->high_water, memory_order_relaxed);
    while (d > hw && !atomic_compare_exchange_weak_explicit(
                         &mb->high_water, &hw, d, memory_order_relaxed,
                         memory_order_relaxed)) {
    }
    return 0;
}

/* append encodes one envelope into the staged batch. Call with mu held.
 * Returns 0 or CR_ENOMEM (staged unchanged). */
static int
append(cri_mailbox *mb, uint32_t type, cr_id from, uint64_t corr,
       const void *data, size_t len)
{
    uint8_t hdr[CRI_ENV_HDR_MAX];
    size_t hlen = cri_env_hdr(hdr, type, from, corr, len);
    if (mb->staged == NULL) {
        size_t want = hlen + len > STAGE_INITIAL ? hlen + len : STAGE_INITIAL;
        if (nng_msg_alloc(&mb->staged, 0) != 0) {
            mb->staged = NULL;
            return CR_ENOMEM;
        }
        if (nng_msg_reserve(mb->staged, want) != 0) {
            nng_msg_free(mb->staged);
            mb->staged = NULL;
            return CR_ENOMEM;
        }
    }
    nng_msg *m = mb->staged;
    size_t old = nng_msg_len(m);
    size_t capa = nng_msg_capacity(m);
    if (capa - old < hlen + len) {
        /* nng grows messages exactly; double here to stay amortised. */
        size_t ncap = capa * 2;
        if (ncap < old + hlen + len) {
            ncap = old + hlen + len;
        }
        if (nng_msg_reserve(m, ncap) != 0) {
            return CR_ENOMEM;
        }
    }
    if (nng_msg_append(m, hdr, hlen) != 0 ||
        (len > 0 && nng_msg_append(m, data, len) != 0)) {
        nng_msg_chop(m, nng_msg_len(m) - old);
        if (mb->staged_n == 0) {
            nng_msg_free(m);
            mb->staged = NULL;
        }
        return CR_ENOMEM;
    }
    mb->staged_n++;
    return 0;
}

int
cri_mailbox_put(cri_mailbox *mb, uint32_t type, cr_id from, uint64_t corr,
                const void *data, size_t len, unsigned flags, int timeout_ms)
{
    int rv;
    if (len > UINT32_MAX) {
        return CR_EINVAL;
    }
    if ((rv = reserve(mb, flags, timeout_ms)) != 0) {
        return rv;
    }
    pthread_mutex_lock(&mb->mu);
    if (mb->closed) {
        rv = CR_ECLOSED;
    } else {
        rv = append(mb, type, from, corr, data, len);
    }
    if (rv == 0) {
        if (!mb->flushing) {
            /* Idle mailbox: hand the batch to nng from this thread when
             * the pipe can take it now (no aio, no task-queue hop), else
             * start the aio and batch behind it. Nothing else is in flight
             * (flushing is false under mu), so order is kept. */
            nng_msg *m = next_batch(mb);
            if (nng_sendmsg(mb->push, m, NNG_FLAG_NONBLOCK) == 0) {
                atomic_fetch_add_explicit(&mb->batches, 1,
                                          memory_order_relaxed);
            } else {
                mb->flushing = true;
                start(mb, m);
            }
        } else if (mb->staged_n >= mb->batch_max) {
            /* On ENOMEM the batch simply keeps growing past batch_max. */
            if (push_ready(mb, mb->staged) == 0) {
                mb->staged = NULL;
                mb->staged_n = 0;
            }
        }
    }
    pthread_mutex_unlock(&mb->mu);
    if (rv != 0) {
        cri_mailbox_done(mb, 1);
    }
    return rv;
}

int
cri_mailbox_recv(cri_mailbox *mb, nng_msg **batch)
{
    int rv = nng_recvmsg(mb->pull, batch, 0);
    if (rv != 0) {
        CR_ERROR("mailbox", "recv: %s", nng_strerror(rv));
        return CR_ENNG;
    }
    return 0;
}

void
cri_mailbox_done(cri_mailbox *mb, uint32_t n)
{
    atomic_fetch_sub(&mb->depth, n);
    if (atomic_load(&mb->waiters) > 0) {
        pthread_mutex_lock(&mb->mu);
        pthread_cond_broadcast(&mb->room);
        pthread_mutex_unlock(&mb->mu);
    }
}

void
cri_mailbox_close(cri_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    mb->closed = true;
    nng_msg *m;
    while ((m = next_batch(mb)) != NULL) {
        nng_msg_free(m);
    }
    free(mb->ready);
    mb->ready = NULL;
    mb->ready_cap = 0;
    pthread_cond_broadcast(&mb->room);
    pthread_mutex_unlock(&mb->mu);

    /* Cancels the send in flight; send_cb frees its batch (closed). */
    nng_aio_stop(mb->aio);
    nng_close(mb->push);
    nng_close(mb->pull);
    nng_aio_free(mb->aio);
    mb->aio = NULL;
}

void
cri_mailbox_fini(cri_mailbox *mb)
{
    pthread_cond_destroy(&mb->room);
    pthread_mutex_destroy(&mb->mu);
}
