/*
 * mailbox.h - cri_mailbox, an actor's bounded, batching nng inbox.
 *
 * Any thread may put; only the owning actor thread receives and closes.
 */
#ifndef CRI_MAILBOX_H
#define CRI_MAILBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#include "cfgrecv/actor.h"

/* Put flags. */
#define CRI_PUT_FORCE 1u /* ignore capacity: runtime messages (DOWN, WAKE,
                            REPLY, timers), bounded by their own sources */

typedef struct cri_mailbox {
    nng_socket pull; /* read by the owner thread only */
    nng_socket push; /* shared by all senders (nng sockets are thread-safe) */
    nng_aio *aio;    /* the one send in flight */
    uint32_t cap;       /* immutable after init */
    uint32_t batch_max; /* immutable after init */

    pthread_mutex_t mu;
    pthread_cond_t room; /* "depth fell below cap" (waits on mu) */
    nng_msg *staged;     /* batch being filled (protected by mu) */
    uint32_t staged_n;   /* envelopes in staged (protected by mu) */
    nng_msg **ready;     /* FIFO of full batches waiting for the aio */
    size_t ready_head;   /* (ready* protected by mu) */
    size_t ready_n;
    size_t ready_cap;
    bool flushing; /* aio busy (protected by mu) */
    bool closed;   /* no more puts (protected by mu) */

    /* Counters: depth = envelopes accepted and not yet done. */
    _Atomic uint32_t depth;
    _Atomic uint32_t high_water;
    _Atomic uint32_t waiters; /* threads blocked in a waiting put */
    _Atomic uint64_t batches; /* nng messages sent (bench/diagnostics) */
    _Atomic uint64_t cbs;     /* send completions (diagnostics) */
} cri_mailbox;

/* cri_mailbox_init opens the PULL/PUSH pair on url. Returns 0, or
 * CR_ENOMEM/CR_ENNG with nothing left open. */
int cri_mailbox_init(cri_mailbox *mb, const char *url, uint32_t cap,
                     uint32_t batch_max);

/* cri_mailbox_put appends one envelope (payload copied). timeout_ms: 0 =
 * fail with CR_EFULL at capacity, <0 = wait forever, >0 = wait that long
 * then CR_ETIMEDOUT. Returns CR_ECLOSED once closed, CR_ENOMEM, CR_EINVAL
 * (payload >= 4 GiB). Nothing is queued on failure. */
int cri_mailbox_put(cri_mailbox *mb, uint32_t type, cr_id from, uint64_t corr,
                    const void *data, size_t len, unsigned flags,
                    int timeout_ms);

/* cri_mailbox_recv blocks for the next batch (owner thread only). Returns
 * 0 with *batch owned by the caller, or CR_ENNG. */
int cri_mailbox_recv(cri_mailbox *mb, nng_msg **batch);

/* cri_mailbox_done marks n envelopes handled: lowers depth and wakes
 * waiting senders. */
void cri_mailbox_done(cri_mailbox *mb, uint32_t n);

/* cri_mailbox_close refuses further puts, wakes waiting senders, cancels
 * the send in flight, closes both sockets (queued envelopes are freed)
 * and frees the aio. Owner thread (or spawn failure path) only; once. */
void cri_mailbox_close(cri_mailbox *mb);

/* cri_mailbox_fini releases the lock and condvar after close, once no
 * thread can touch mb any more (last actor reference gone). */
void cri_mailbox_fini(cri_mailbox *mb);

#endif
