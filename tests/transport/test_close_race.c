/*
 * test_close_race.c - nng_close never overlaps a call into nng on one of
 * the socket's contexts (transport/gate.h).
 *
 * nng 1.5.2 aborts ("panic: pthread_mutex_lock: Invalid argument") when
 * nng_close runs while an nng_ctx_recv is still on its way out: cfgctl
 * died of it about once in 10,000 runs. The window is a few instructions
 * wide, so these tests widen it instead of hoping to hit it: this
 * executable is linked with -Wl,--wrap for nng_ctx_open, nng_ctx_recv,
 * nng_ctx_send and nng_close (only the transport library's calls are
 * wrapped, not nng's own). A wrapped ctx call does the real call, then
 * stays "inside" a while longer (while `widen` is set); a wrapped close
 * counts a violation if a call on one of that socket's contexts is still
 * inside. Without the gate, each test below sees violations; with it,
 * close waits.
 */
#include <cfgrecv/actor.h> /* before criterion (its cr_fail macro) */

#include <criterion/criterion.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "gate.h"
#include "server.h"

#include "ipc_fixture.h"

/* ---- the wrappers ------------------------------------------------------ */

int __real_nng_ctx_open(nng_ctx *, nng_socket);
void __real_nng_ctx_recv(nng_ctx, nng_aio *);
void __real_nng_ctx_send(nng_ctx, nng_aio *);
int __real_nng_close(nng_socket);
int __wrap_nng_ctx_open(nng_ctx *, nng_socket);
void __wrap_nng_ctx_recv(nng_ctx, nng_aio *);
void __wrap_nng_ctx_send(nng_ctx, nng_aio *);
int __wrap_nng_close(nng_socket);

#define MAXCTX 256
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static uint32_t ctx_sock[MAXCTX]; /* context id -> socket id */
static uint32_t ctx_ids[MAXCTX];
static int nctx;
static int inside[MAXCTX]; /* per socket id (small in a test) */
static atomic_int widen;   /* ms to stay inside after the real call */
static atomic_int violations;

static uint32_t
sock_of(nng_ctx c)
{
    uint32_t s = 0;
    pthread_mutex_lock(&wmu);
    for (int i = 0; i < nctx; i++) {
        if (ctx_ids[i] == (uint32_t)nng_ctx_id(c)) {
            s = ctx_sock[i];
        }
    }
    pthread_mutex_unlock(&wmu);
    return s % MAXCTX;
}

int
__wrap_nng_ctx_open(nng_ctx *c, nng_socket s)
{
    int rv = __real_nng_ctx_open(c, s);
    if (rv == 0) {
        pthread_mutex_lock(&wmu);
        if (nctx < MAXCTX) {
            ctx_ids[nctx] = (uint32_t)nng_ctx_id(*c);
            ctx_sock[nctx] = (uint32_t)nng_socket_id(s);
            nctx++;
        }
        pthread_mutex_unlock(&wmu);
    }
    return rv;
}

static void
stay_inside(uint32_t s)
{
    int ms = atomic_load(&widen);
    if (ms > 0) {
        usleep((useconds_t)ms * 1000);
    }
    pthread_mutex_lock(&wmu);
    inside[s]--;
    pthread_mutex_unlock(&wmu);
}

static void
enter(uint32_t s)
{
    pthread_mutex_lock(&wmu);
    inside[s]++;
    pthread_mutex_unlock(&wmu);
}

/* wrapped runs one real context call, counted inside for its socket. */
static void
wrapped(void (*real)(nng_ctx, nng_aio *), nng_ctx c, nng_aio *aio)
{
    uint32_t s = sock_of(c);
    enter(s);
    real(c, aio);
    stay_inside(s);
}

void
__wrap_nng_ctx_recv(nng_ctx c, nng_aio *aio)
{
    wrapped(__real_nng_ctx_recv, c, aio);
}

void
__wrap_nng_ctx_send(nng_ctx c, nng_aio *aio)
{
    wrapped(__real_nng_ctx_send, c, aio);
}

int
__wrap_nng_close(nng_socket s)
{
    pthread_mutex_lock(&wmu);
    if (inside[(uint32_t)nng_socket_id(s) % MAXCTX] > 0) {
        atomic_fetch_add(&violations, 1);
    }
    pthread_mutex_unlock(&wmu);
    return __real_nng_close(s);
}

/* ---- fixture ------------------------------------------------------------ */

static void
setup(void)
{
    fx_make();
    atomic_store(&violations, 0);
    atomic_store(&widen, 0);
}

TestSuite(close_race, .init = setup, .fini = fx_remove, .timeout = 60);


/* ---- the gate itself ---------------------------------------------------- */

typedef struct gate_run {
    crt_gate *g;
    atomic_bool shut_returned;
} gate_run;

static void *
shut_thread(void *arg)
{
    gate_run *r = arg;
    crt_gate_shut(r->g);
    atomic_store(&r->shut_returned, true);
    return NULL;
}

Test(close_race, gate_shut_waits_for_callers_inside_then_refuses)
{
    crt_gate g;
    gate_run r = {.g = &g};
    pthread_t t;
    crt_gate_init(&g);
    atomic_init(&r.shut_returned, false);
    cr_assert(crt_gate_enter(&g));
    cr_assert(crt_gate_enter(&g)); /* two callers inside */
    cr_assert_eq(pthread_create(&t, NULL, shut_thread, &r), 0);
    usleep(50000); /* time enough for shut to have returned if it could */
    cr_assert_not(atomic_load(&r.shut_returned), "shut waits for both");
    crt_gate_leave(&g);
    usleep(50000);
    cr_assert_not(atomic_load(&r.shut_returned), "one is still inside");
    crt_gate_leave(&g);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert(atomic_load(&r.shut_returned));
    cr_assert_not(crt_gate_enter(&g), "a shut gate refuses callers");
    crt_gate_shut(&g); /* idempotent, returns at once */
    crt_gate_fini(&g);
}

/* ---- the client and the server use it ---------------------------------- */

/* The client's slot arms its receive from the send's callback; the
 * answer arrives, the caller wakes and closes while that call is still
 * inside (widened to 30 ms): cfgctl's sequence. */
Test(close_race, client_closed_right_after_its_answer)
{
    static crt_server *srv;
    cr_assert_eq(crt_server_open(url, NULL, echo_cb, &srv, &srv), 0);
    for (int i = 0; i < 5; i++) {
        crt_client *c;
        cr_assert_eq(crt_client_open(url, NULL, &c), 0);
        atomic_store(&widen, 30);
        expect_echo(c, "ping", 5000);
        crt_client_close(c);
        atomic_store(&widen, 0);
    }
    cr_assert_eq(atomic_load(&violations), 0,
                 "nng_close ran while a context call was inside, %d times",
                 atomic_load(&violations));
    crt_server_close(srv);
}

/* The server re-arms a context's receive from the answer's callback; the
 * client sees the answer and the server is closed at once. */
Test(close_race, server_closed_right_after_an_answer)
{
    for (int i = 0; i < 5; i++) {
        static crt_server *srv;
        crt_client *c;
        echo_open(&srv, &c);
        atomic_store(&widen, 30);
        expect_echo(c, "ping", 5000);
        crt_server_close(srv);
        atomic_store(&widen, 0);
        crt_client_close(c);
    }
    cr_assert_eq(atomic_load(&violations), 0,
                 "nng_close ran while a context call was inside, %d times",
                 atomic_load(&violations));
}
