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

/* ---- tests ---------------------------------------------------------------- */

TestSuite(fetcher, .timeout = 60);

/* The flow manager's own fetch of a workspace fails (the service answers
 * it with an error) while the fetcher's fetch of the same workspace is
 * still in flight. That fetch may have been answered before the change
 * the manager wanted, so it must run once more when it completes:
 * otherwise the manager waits for an answer nobody sends. */
Test(fetcher, failed_direct_fetch_during_own_fetch_runs_it_again)
{
    char dir[] = "/tmp/cfgrecv-fetcher-XXXXXX";
    char url[128], cmd[160];
    cr_rt *rt;
    crt_server *srv;
    cra_fetch_lane lane;
    cr_id fm, fid;
    cr_assert_not_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "ipc://%s/req.ipc", dir);
    cr_assert_eq(crt_server_open(url, NULL, hold_cb, NULL, &srv), 0);
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    cra_fetch_lane_init(&lane);
    cr_assert_eq(cr_spawn(rt, &fm_behaviour, NULL,
                          &(cr_spawn_opts){.name = "flow-manager"}, &fm),
                 0);
    cra_fetcher_opts fo = {.request_url = url, .timeout_ms = 10000,
                           .concurrency = 8, .lane = &lane};
    cr_assert_eq(cr_spawn(rt, &cra_fetcher_behaviour, &fo,
                          &(cr_spawn_opts){.name = "fetcher"}, &fid),
                 0);

    /* 1. the fetcher's own fetch of ws1, held by the service */
    const char *names[] = {"ws1"};
    cr_assert_eq(cr_send(rt, CR_NOBODY, fid,
                         rm_strlist_new(RM_FETCH, names, 1)),
                 0);
    cr_assert(wait_requests(1, 5000));
    cr_assert_str_eq(held.op[0], "config");
    cr_assert_str_eq(held.ws[0], "ws1");

    /* 2. the manager's direct fetch of ws1, answered with an error; the
     * fetcher frees its lane slot once it has taken that failure over */
    cr_assert(cra_fetch_direct(rt, &lane, "ws1", 3));
    cr_assert(wait_requests(2, 5000));
    cr_assert_eq(atomic_load(&lane.inflight), 2);
    answer_error(srv, 1);
    for (int i = 0; i < 1000 && atomic_load(&lane.inflight) != 1; i++) {
        usleep(5000);
    }
    cr_assert_eq(atomic_load(&lane.inflight), 1, "the failure taken over");
    cr_assert_eq(atomic_load(&fetched), 0);

    /* 3. the first fetch completes: ws1 is fetched once more */
    answer_config(srv, 0, 1);
    cr_assert(wait_fetched(1, 5000));
    cr_assert(wait_requests(3, 5000), "ws1 fetched again after the "
                                      "failed direct fetch");
    cr_assert_str_eq(held.ws[2], "ws1");
    answer_config(srv, 2, 2);
    cr_assert(wait_fetched(2, 5000));
    usleep(100000);
    cr_assert_eq(requests(), 3, "and only once");

    cr_rt_destroy(rt);
    cra_fetch_lane_fini(&lane);
    crt_server_close(srv);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
