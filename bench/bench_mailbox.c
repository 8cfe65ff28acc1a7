/*
 * bench_mailbox.c - scenario "mailbox": actor-to-actor throughput through
 * the runtime against raw nng inproc in the same run (PUSH/PULL with
 * default buffers, and PAIR1 with SENDBUF/RECVBUF 256), 16-byte payloads.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "bench.h"
#include "cfgrecv/actor.h"

#define PAYLOAD 16
#define N_RAW_PUSH 40000u
#define N_RAW_PAIR 300000u
#define N_RT 1000000u
#define FANIN_THREADS 4

/* ---- raw nng ---- */

typedef struct raw_rx {
    nng_socket s;
    uint32_t n;
    int rv;
} raw_rx;

static void *
raw_rx_main(void *p)
{
    raw_rx *rx = p;
    for (uint32_t i = 0; i < rx->n; i++) {
        nng_msg *m;
        if ((rx->rv = nng_recvmsg(rx->s, &m, 0)) != 0) {
            return NULL;
        }
        nng_msg_free(m);
    }
    return NULL;
}

static double
raw_run(const char *what, nng_socket tx, nng_socket rxs, const char *url,
        uint32_t n)
{
    int rv;
    if ((rv = nng_listen(rxs, url, NULL, 0)) != 0 ||
        (rv = nng_dial(tx, url, NULL, 0)) != 0) {
        fprintf(stderr, "%s: %s\n", what, nng_strerror(rv));
        return 0;
    }
    raw_rx rx = {.s = rxs, .n = n};
    pthread_t th;
    pthread_create(&th, NULL, raw_rx_main, &rx);
    uint8_t buf[PAYLOAD] = {0};
    uint64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < n; i++) {
        nng_msg *m;
        if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, buf, PAYLOAD) != 0 ||
            (rv = nng_sendmsg(tx, m, 0)) != 0) {
            fprintf(stderr, "%s: send failed\n", what);
            break;
        }
    }
    pthread_join(th, NULL);
    uint64_t ns = bench_now_ns() - t0;
    nng_close(tx);
    nng_close(rxs);
    return rx.rv == 0 ? bench_rate("mailbox", what, n, ns) : 0;
}

/* ---- runtime ---- */

#define T_DATA (CR_MSG_USER + 1)
#define T_GO (CR_MSG_USER + 2)

typedef struct sink_state {
    uint32_t want;
    uint32_t got; /* consumer thread only */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} sink_state;

static int
sink_init(cr_ctx *ctx, void *arg, void **state)
{
    (void)ctx;
    *state = arg;
    return 0;
}

static int
sink_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    (void)ctx;
    sink_state *s = state;
    if (cr_msg_type(m) == T_DATA && ++s->got == s->want) {
        pthread_mutex_lock(&s->mu);
        s->done = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return 0;
}

static const cr_behaviour sink_b = {
    .kind = "bench-sink", .init = sink_init, .handle = sink_handle};

typedef struct prod_state {
    cr_id to;
    uint32_t n;
    int failures;
} prod_state;

static int
send_one(cr_rt *rt, cr_id from, cr_id to)
{
    static const uint8_t buf[PAYLOAD];
    cr_msg *m = cr_msg_new_bytes(T_DATA, buf, PAYLOAD);
    if (m == NULL) {
        return CR_ENOMEM;
    }
    int rv = cr_send_wait(rt, from, to, m, -1);
    if (rv != 0) {
        cr_msg_free(m);
    }
    return rv;
}

static int
prod_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    prod_state *p = state;
    if (cr_msg_type(m) == T_GO) {
        for (uint32_t i = 0; i < p->n; i++) {
            if (send_one(cr_ctx_rt(ctx), cr_self(ctx), p->to) != 0) {
                p->failures++;
            }
        }
    }
    return 0;
}

static const cr_behaviour prod_b = {
    .kind = "bench-producer", .init = sink_init, .handle = prod_handle};

typedef struct fanin_arg {
    cr_rt *rt;
    cr_id to;
    uint32_t n;
} fanin_arg;

static void *
fanin_main(void *p)
{
    fanin_arg *f = p;
    for (uint32_t i = 0; i < f->n; i++) {
        (void)send_one(f->rt, CR_NOBODY, f->to);
    }
    return NULL;
}

static void
wait_done(sink_state *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->done) {
        pthread_cond_wait(&s->cv, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

static double
rt_run(bool fanin, uint32_t n)
{
    cr_rt *rt;
    if (cr_rt_new(NULL, &rt) != 0) {
        return 0;
    }
    sink_state s = {.want = n,
                    .mu = PTHREAD_MUTEX_INITIALIZER,
                    .cv = PTHREAD_COND_INITIALIZER};
    cr_id sid, pid;
    cr_spawn(rt, &sink_b, &s, &(cr_spawn_opts){.name = "bench-sink"}, &sid);
    uint64_t t0, ns;
    const char *what;
    if (!fanin) {
        prod_state p = {.to = sid, .n = n};
        cr_spawn(rt, &prod_b, &p, &(cr_spawn_opts){.name = "bench-prod"},
                 &pid);
        t0 = bench_now_ns();
        cr_send(rt, CR_NOBODY, pid, cr_msg_new(T_GO));
        wait_done(&s);
        ns = bench_now_ns() - t0;
        what = "runtime actor -> actor";
    } else {
        pthread_t th[FANIN_THREADS];
        fanin_arg fa = {.rt = rt, .to = sid, .n = n / FANIN_THREADS};
        t0 = bench_now_ns();
        for (int i = 0; i < FANIN_THREADS; i++) {
            pthread_create(&th[i], NULL, fanin_main, &fa);
        }
        for (int i = 0; i < FANIN_THREADS; i++) {
            pthread_join(th[i], NULL);
        }
        wait_done(&s);
        ns = bench_now_ns() - t0;
        what = "runtime 4 threads -> actor";
    }
    cr_actor_info info;
    uint32_t hw = cr_actor_info_get(rt, sid, &info) == 0 ? info.high_water : 0;
    double rate = bench_rate("mailbox", what, n, ns);
    printf("%-10s   (consumer mailbox high water %u)\n", "", hw);
    cr_rt_destroy(rt);
    return rate;
}

int
bench_mailbox(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    nng_socket a, b;
    double push = 0, pair = 0;
    if (nng_push0_open(&a) == 0 && nng_pull0_open(&b) == 0) {
        push = raw_run("raw nng inproc PUSH/PULL (default bufs)", a, b,
                       "inproc://bench-mailbox-push", N_RAW_PUSH);
    }
    if (nng_pair1_open(&a) == 0 && nng_pair1_open(&b) == 0) {
        nng_socket_set_int(a, NNG_OPT_SENDBUF, 256);
        nng_socket_set_int(a, NNG_OPT_RECVBUF, 256);
        nng_socket_set_int(b, NNG_OPT_SENDBUF, 256);
        nng_socket_set_int(b, NNG_OPT_RECVBUF, 256);
        pair = raw_run("raw nng inproc PAIR1 (bufs 256)", a, b,
                       "inproc://bench-mailbox-pair", N_RAW_PAIR);
    }
    double rt1 = rt_run(false, N_RT);
    double rt4 = rt_run(true, N_RT);
    if (push <= 0 || pair <= 0 || rt1 <= 0 || rt4 <= 0) {
        return 1;
    }
    printf("mailbox    ratio actor->actor / raw PUSH/PULL          %8.2fx\n",
           rt1 / push);
    printf("mailbox    ratio actor->actor / raw PAIR1 bufs 256     %8.2fx\n",
           rt1 / pair);
    printf("mailbox    ratio 4 threads->actor / raw PAIR1 bufs 256 %8.2fx\n",
           rt4 / pair);
    return 0;
}
