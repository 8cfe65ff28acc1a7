/*
 * test_fetcher.c - the fetcher actor alone, against a REP server whose
 * answers the test gives by hand (transport/server.h), with a stand-in
 * "flow-manager" that counts what reaches it. Orderings that a real
 * config service makes a matter of luck are set up here step by step.
 */
/* cfgrecv headers first: criterion defines a cr_fail() macro. */
#include "cfgrecv/actor.h"
#include "fetcher.h"
#include "proto.h"
#include "recv_msgs.h"
#include "server.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the service: requests are held until the test answers them ------- */

#define MAXREQ 16
static struct {
    pthread_mutex_t mu;
    int n;
    uint64_t token[MAXREQ];
    char op[MAXREQ][32];
    char ws[MAXREQ][32];
} held = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void
hold_cb(void *arg, uint64_t token, const void *data, size_t len)
{
    (void)arg;
    crt_request r;
    crt_limits lim = {0};
    if (crt_request_decode(data, len, &lim, &r, NULL) != 0) {
        return;
    }
    pthread_mutex_lock(&held.mu);
    if (held.n < MAXREQ) {
        held.token[held.n] = token;
        snprintf(held.op[held.n], sizeof(held.op[0]), "%s",
                 r.operation ? r.operation : "");
        snprintf(held.ws[held.n], sizeof(held.ws[0]), "%s",
                 r.workspace ? r.workspace : "");
        held.n++;
    }
    pthread_mutex_unlock(&held.mu);
    crt_request_free(&r);
}

static int
requests(void)
{
    pthread_mutex_lock(&held.mu);
    int n = held.n;
    pthread_mutex_unlock(&held.mu);
    return n;
}

static bool
wait_requests(int n, int ms)
{
    for (int i = 0; i < ms / 5 && requests() < n; i++) {
        usleep(5000);
    }
    return requests() >= n;
}

static void
answer_config(crt_server *srv, int i, uint64_t version)
{
    crt_response r = {.version = version};
    void *buf;
    size_t len;
    cr_assert_eq(crt_response_encode(&r, &buf, &len), 0);
    cr_assert_eq(crt_server_reply(srv, held.token[i], buf, len), 0);
    free(buf);
}

static void
answer_error(crt_server *srv, int i)
{
    void *buf;
    size_t len;
    cr_assert_eq(crt_error_response_encode(0, "config-error", "busy", &buf,
                                           &len),
                 0);
    cr_assert_eq(crt_server_reply(srv, held.token[i], buf, len), 0);
    free(buf);
}

/* ---- the stand-in flow manager ---------------------------------------- */

static atomic_int fetched; /* RM_FETCHED received */

static int
fm_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    (void)ctx;
    (void)state;
    if (cr_msg_type(m) == RM_FETCHED) {
        atomic_fetch_add(&fetched, 1);
    }
    return 0;
}

static const cr_behaviour fm_behaviour = {.kind = "fm-stand-in",
                                          .handle = fm_handle};

static bool
wait_fetched(int n, int ms)
{
    for (int i = 0; i < ms / 5 && atomic_load(&fetched) < n; i++) {
        usleep(5000);
    }
    return atomic_load(&fetched) >= n;
}

/* ---- the fixture: service, runtime, lane, stand-in manager, fetcher ---- */

typedef struct fx {
    char dir[32];
    char url[128];
    cr_rt *rt;
    crt_server *srv;
    cra_fetch_lane lane;
    cra_fetcher_opts fo;
    cr_id fm, fid;
} fx;

static void
fx_up(fx *x, unsigned concurrency)
{
    snprintf(x->dir, sizeof(x->dir), "/tmp/cfgrecv-fetcher-XXXXXX");
    cr_assert_not_null(mkdtemp(x->dir));
    snprintf(x->url, sizeof(x->url), "ipc://%s/req.ipc", x->dir);
    cr_assert_eq(crt_server_open(x->url, NULL, hold_cb, NULL, &x->srv), 0);
    cr_assert_eq(cr_rt_new(NULL, &x->rt), 0);
    cra_fetch_lane_init(&x->lane);
    cr_assert_eq(cr_spawn(x->rt, &fm_behaviour, NULL,
                          &(cr_spawn_opts){.name = "flow-manager"}, &x->fm),
                 0);
    x->fo = (cra_fetcher_opts){.request_url = x->url, .timeout_ms = 10000,
                               .concurrency = concurrency, .lane = &x->lane};
    cr_assert_eq(cr_spawn(x->rt, &cra_fetcher_behaviour, &x->fo,
                          &(cr_spawn_opts){.name = "fetcher"}, &x->fid),
                 0);
}

static void
fx_down(fx *x)
{
    char cmd[64];
    cr_rt_destroy(x->rt);
    cra_fetch_lane_fini(&x->lane);
    crt_server_close(x->srv);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", x->dir);
    cr_assert_eq(system(cmd), 0);
}

static void
ask_fetch(fx *x, const char *ws)
{
    const char *names[] = {ws};
    cr_assert_eq(cr_send(x->rt, CR_NOBODY, x->fid,
                         rm_strlist_new(RM_FETCH, names, 1)),
                 0);
}

/* ---- tests ---------------------------------------------------------------- */

TestSuite(fetcher, .timeout = 60);

/* The flow manager's own fetch of a workspace fails (the service answers
 * it with an error) while the fetcher's fetch of the same workspace is
 * still in flight. That fetch may have been answered before the change
 * the manager wanted, so it must run once more when it completes:
 * otherwise the manager waits for an answer nobody sends. */
Test(fetcher, failed_direct_fetch_during_own_fetch_runs_it_again)
{
    fx x;
    fx_up(&x, 8);

    /* 1. the fetcher's own fetch of ws1, held by the service */
    ask_fetch(&x, "ws1");
    cr_assert(wait_requests(1, 5000));
    cr_assert_str_eq(held.op[0], "config");
    cr_assert_str_eq(held.ws[0], "ws1");

    /* 2. the manager's direct fetch of ws1, answered with an error; the
     * fetcher frees its lane slot once it has taken that failure over */
    cr_assert(cra_fetch_direct(x.rt, &x.lane, "ws1", 3));
    cr_assert(wait_requests(2, 5000));
    cr_assert_eq(atomic_load(&x.lane.inflight), 2);
    answer_error(x.srv, 1);
    for (int i = 0; i < 1000 && atomic_load(&x.lane.inflight) != 1; i++) {
        usleep(5000);
    }
    cr_assert_eq(atomic_load(&x.lane.inflight), 1, "the failure taken over");
    cr_assert_eq(atomic_load(&fetched), 0);

    /* 3. the first fetch completes: ws1 is fetched once more */
    answer_config(x.srv, 0, 1);
    cr_assert(wait_fetched(1, 5000));
    cr_assert(wait_requests(3, 5000), "ws1 fetched again after the "
                                      "failed direct fetch");
    cr_assert_str_eq(held.ws[2], "ws1");
    answer_config(x.srv, 2, 2);
    cr_assert(wait_fetched(2, 5000));
    usleep(100000);
    cr_assert_eq(requests(), 3, "and only once");

    fx_down(&x);
}

/* A direct fetch that succeeds frees its slot in the client's callback
 * and wakes the fetcher only when it waits for a slot. Here the only
 * slot is the manager's: the fetcher's own fetch of ws2 waits, and must
 * be sent as soon as the direct fetch of ws1 is answered, although no
 * message of its own arrives. */
Test(fetcher, slot_freed_by_direct_fetch_sends_the_queued_fetch)
{
    fx x;
    fx_up(&x, 1);
    bool sent = false;
    for (int i = 0; i < 1000 && !sent; i++) { /* until the client is up */
        sent = cra_fetch_direct(x.rt, &x.lane, "ws1", 3);
        if (!sent) {
            usleep(5000);
        }
    }
    cr_assert(sent);
    cr_assert(wait_requests(1, 5000));
    cr_assert_str_eq(held.ws[0], "ws1");
    cr_assert_not(atomic_load(&x.lane.wake), "nobody waits yet");

    ask_fetch(&x, "ws2");
    for (int i = 0; i < 1000 && !atomic_load(&x.lane.wake); i++) {
        usleep(5000);
    }
    cr_assert(atomic_load(&x.lane.wake), "the fetcher waits for a slot");
    usleep(50000);
    cr_assert_eq(requests(), 1, "the concurrency bound holds");

    answer_config(x.srv, 0, 1);
    cr_assert(wait_fetched(1, 5000));
    cr_assert(wait_requests(2, 5000), "the queued fetch is sent once the "
                                      "direct one frees its slot");
    cr_assert_str_eq(held.ws[1], "ws2");
    answer_config(x.srv, 1, 1);
    cr_assert(wait_fetched(2, 5000));

    cra_fetcher_stats st;
    cr_assert_eq(cra_fetcher_stats_get(x.rt, 5000, &st), 0);
    cr_assert_eq(st.ok, 2, "direct and own successes both counted");
    cr_assert_eq(st.direct, 1);
    cr_assert_eq(st.sent, 2);
    cr_assert_eq(st.inflight, 0);
    fx_down(&x);
}
