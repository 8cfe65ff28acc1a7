/*
 * bench_pingpong.c - one message in flight at a time: the cost of the
 * runtime's send path when there is nothing to batch.
 *
 * Two raw nng inproc PAIR1 sockets bounce a message between two threads;
 * then two actors bounce an envelope between them through their
 * mailboxes. Both report round trips per second and the mean round trip;
 * the ratio runtime / raw is the runtime's overhead on an idle mailbox
 * (1.0 = none).
 *
 * Entry point: bench_pingpong(argc, argv); argv may hold "n=ROUNDS".
 */
#include "bench.h"
#include "cfgrecv/actor.h"

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PING (CR_MSG_USER + 1)
#define PONG (CR_MSG_USER + 2)

static long
arg_long(int argc, char **argv, const char *key, long def)
{
    size_t n = strlen(key);
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], key, n) == 0 && argv[i][n] == '=') {
            return atol(argv[i] + n + 1);
        }
    }
    return def;
}

/* ---- raw nng ---------------------------------------------------------- */

typedef struct raw {
    nng_socket s;
    long n;
} raw;

static void *
raw_echo(void *arg)
{
    raw *r = arg;
    for (long i = 0; i < r->n; i++) {
        nng_msg *m;
        if (nng_recvmsg(r->s, &m, 0) != 0 || nng_sendmsg(r->s, m, 0) != 0) {
            break;
        }
    }
    return NULL;
}

static uint64_t
raw_pingpong(long n)
{
    nng_socket a, b;
    raw r = {.n = n};
    if (nng_pair1_open(&a) != 0 || nng_pair1_open(&b) != 0 ||
        nng_listen(a, "inproc://bench-pingpong", NULL, 0) != 0 ||
        nng_dial(b, "inproc://bench-pingpong", NULL, 0) != 0) {
        return 0;
    }
    r.s = b;
    pthread_t t;
    pthread_create(&t, NULL, raw_echo, &r);
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++) {
        nng_msg *m;
        nng_msg_alloc(&m, 16);
        if (nng_sendmsg(a, m, 0) != 0 || nng_recvmsg(a, &m, 0) != 0) {
            break;
        }
        nng_msg_free(m);
    }
    uint64_t ns = bench_now_ns() - t0;
    pthread_join(t, NULL);
    nng_close(a);
    nng_close(b);
    return ns;
}

/* ---- runtime ------------------------------------------------------------- */

typedef struct pp {
    long left;
    cr_id peer;
    atomic_bool done;
    uint64_t ns;
    uint64_t t0;
} pp;

static pp shared_state;

static int
pp_init(cr_ctx *ctx, void *arg, void **state)
{
    *state = arg;
    return 0;
}

static int
pinger(cr_ctx *ctx, void *state, const cr_msg *m)
{
    pp *p = state;
    if (cr_msg_type(m) == PING) { /* kick-off from main */
        p->t0 = bench_now_ns();
    } else if (--p->left <= 0) {
        p->ns = bench_now_ns() - p->t0;
        atomic_store(&p->done, true);
        return 0;
    }
    cr_msg *out = cr_msg_new_bytes(PING, "0123456789abcdef", 16);
    if (out != NULL && cr_ctx_send(ctx, p->peer, out) != 0) {
        cr_msg_free(out);
    }
    return 0;
}

static int
ponger(cr_ctx *ctx, void *state, const cr_msg *m)
{
    cr_msg *out = cr_msg_new_bytes(PONG, cr_msg_data(m), cr_msg_len(m));
    if (out != NULL && cr_ctx_send(ctx, cr_msg_from(m), out) != 0) {
        cr_msg_free(out);
    }
    return 0;
}

static const cr_behaviour ping_b = {.kind = "ping", .init = pp_init,
                                    .handle = pinger};
static const cr_behaviour pong_b = {.kind = "pong", .init = pp_init,
                                    .handle = ponger};

static uint64_t
rt_pingpong(long n)
{
    cr_rt *rt;
    cr_id a, b;
    if (cr_rt_new(NULL, &rt) != 0) {
        return 0;
    }
    shared_state = (pp){.left = n};
    if (cr_spawn(rt, &pong_b, NULL, NULL, &b) != 0) {
        return 0;
    }
    shared_state.peer = b;
    if (cr_spawn(rt, &ping_b, &shared_state, NULL, &a) != 0) {
        return 0;
    }
    cr_send(rt, CR_NOBODY, a, cr_msg_new(PING));
    while (!atomic_load(&shared_state.done)) {
        usleep(1000);
    }
    cr_rt_destroy(rt);
    return shared_state.ns;
}

int
bench_pingpong(int argc, char **argv)
{
    long n = arg_long(argc, argv, "n", 20000);
    uint64_t raw_ns = raw_pingpong(n);
    uint64_t rt_ns = rt_pingpong(n);
    if (raw_ns == 0 || rt_ns == 0) {
        return 1;
    }
    double raw_rate = bench_rate("pingpong", "raw nng inproc PAIR1 round trips",
                                 (uint64_t)n, raw_ns);
    double rt_rate = bench_rate("pingpong", "runtime actor<->actor round trips",
                                (uint64_t)n, rt_ns);
    printf("pingpong   mean round trip: raw %.1f us, runtime %.1f us\n",
           raw_ns / 1e3 / n, rt_ns / 1e3 / n);
    printf("pingpong   ratio runtime / raw (idle mailboxes)   %6.2fx\n",
           rt_rate / raw_rate);
    return 0;
}
