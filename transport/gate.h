/*
 * gate.h - keeps nng_close from overlapping a call into nng on one of the
 * socket's contexts.
 *
 * Why: with nng 1.5.2, nng_close racing with an nng_ctx_recv (or
 * nng_ctx_send) that has not yet returned can abort the process with
 * "panic: pthread_mutex_lock: Invalid argument": the call has already
 * queued its aio, the operation completes on another thread, the owner
 * learns of it and closes the socket, and the call, still on its way
 * out, locks memory the close has just freed. A client opened, used once
 * and closed (cfgctl, the benchmark's reference-style baseline) hit it
 * about once in 10,000 requests; tests/transport/test_close_race.c
 * provokes it by widening the window.
 *
 * Use: wrap every nng_ctx_send / nng_ctx_recv in crt_gate_enter /
 * crt_gate_leave (enter refuses once the gate is shut: treat that as
 * NNG_ECLOSED), and call crt_gate_shut before nng_close: it refuses new
 * entries and waits for the calls inside to return. The calls inside
 * never block (they only queue an aio), so the wait is short.
 * Do not shut a gate from inside it (a callback that nng ran on the
 * calling thread): it would wait for itself.
 */
#ifndef CRT_GATE_H
#define CRT_GATE_H

#include <pthread.h>
#include <stdbool.h>

typedef struct crt_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned inside; /* calls into nng in progress (protected by mu) */
    bool shut;       /* (protected by mu) */
} crt_gate;

void crt_gate_init(crt_gate *g);
void crt_gate_fini(crt_gate *g);

/* crt_gate_enter returns true and counts the caller in, or false once
 * the gate is shut. Every true is followed by one crt_gate_leave. */
bool crt_gate_enter(crt_gate *g);
void crt_gate_leave(crt_gate *g);

/* crt_gate_shut refuses every later enter and returns once no caller is
 * inside. Idempotent. */
void crt_gate_shut(crt_gate *g);

#endif /* CRT_GATE_H */
