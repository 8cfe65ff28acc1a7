/*
 * test_net.c - REQ client / REP server / PUB-SUB notify over ipc:// (in a
 * temp dir) and tcp://: several requests in flight, a slow request does
 * not stall another, queueing beyond the context pool, timeouts, close
 * with requests pending, pushes seen by a real SUB, connection events.
 * Callbacks only record into `ev` under a lock; assertions run on the
 * test thread (criterion asserts are not thread-safe).
 */
#include <cfgrecv/actor.h> /* before criterion (its cr_fail macro) */

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "notify.h"
#include "server.h"

static char dir[64];
static char url[128];

#define MAXEV 64
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    char what[MAXEV][64]; /* what happened, in order */
    int status[MAXEV];
    uint64_t tokens[MAXEV]; /* server side: held tokens */
    int ntokens;
} ev;

static void
setup(void)
{
    memset(&ev, 0, sizeof(ev));
    pthread_mutex_init(&ev.mu, NULL);
    pthread_cond_init(&ev.cv, NULL);
    snprintf(dir, sizeof(dir), "/tmp/cfgsvc-net-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "ipc://%s/req.sock", dir);
}

static void
teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(net, .init = setup, .fini = teardown, .timeout = 60);

/* ---- shared recorder -------------------------------------------------- */

static void
record(const char *what, int status)
{
    pthread_mutex_lock(&ev.mu);
    if (ev.n < MAXEV) {
        snprintf(ev.what[ev.n], sizeof(ev.what[0]), "%s", what);
        ev.status[ev.n] = status;
        ev.n++;
    }
    pthread_cond_broadcast(&ev.cv);
    pthread_mutex_unlock(&ev.mu);
}

/* Waits up to ms for at least n events; returns the count. */
static int
wait_events(int n, int ms)
{
    struct timespec ts;
    int got;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&ev.mu);
    while (ev.n < n &&
           pthread_cond_timedwait(&ev.cv, &ev.mu, &ts) == 0) {
    }
    got = ev.n;
    pthread_mutex_unlock(&ev.mu);
    return got;
}

static int
wait_tokens(int n, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        pthread_mutex_lock(&ev.mu);
        int got = ev.ntokens;
        pthread_mutex_unlock(&ev.mu);
        if (got >= n) {
            return got;
        }
        usleep(10000);
    }
    return ev.ntokens;
}

/* ---- servers ------------------------------------------------------------ */

/* Echoes at once, except requests starting with "slow"/"hold" whose
 * tokens are kept for the test thread to answer (or drop). */
static void
srv_cb(void *arg, uint64_t token, const void *data, size_t len)
{
    crt_server *s = *(crt_server **)arg;
    if (len >= 4 && (memcmp(data, "slow", 4) == 0 ||
                     memcmp(data, "hold", 4) == 0)) {
        pthread_mutex_lock(&ev.mu);
        ev.tokens[ev.ntokens++] = token;
        pthread_mutex_unlock(&ev.mu);
        return;
    }
    crt_server_reply(s, token, data, len);
}

static void
cli_cb(void *arg, int status, const void *reply, size_t len)
{
    char what[64];
    snprintf(what, sizeof(what), "%s:%.*s", (const char *)arg,
             (int)(len > 40 ? 40 : len), reply ? (const char *)reply : "");
    record(what, status);
}

Test(net, echo_blocking)
{
    static crt_server *srv;
    crt_client *c;
    void *rep;
    size_t rlen;
    cr_assert_eq(crt_server_open(url, NULL, srv_cb, &srv, &srv), 0);
    cr_assert_eq(crt_client_open(url, NULL, &c), 0);
    for (int i = 0; i < 50; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof(msg), "hello %d", i);
        cr_assert_eq(crt_client_request(c, msg, (size_t)n, 5000, &rep, &rlen),
                     0);
        cr_assert_eq(rlen, (size_t)n);
        cr_assert_eq(memcmp(rep, msg, rlen), 0);
        free(rep);
    }
    crt_client_close(c);
    crt_server_close(srv);
}

Test(net, slow_request_does_not_stall_another)
{
    static crt_server *srv;
    crt_client *c;
    void *rep;
    size_t rlen;
    cr_assert_eq(crt_server_open(url, NULL, srv_cb, &srv, &srv), 0);
    cr_assert_eq(crt_client_open(url, NULL, &c), 0);
    cr_assert_eq(crt_client_request_async(c, "slow", 4, 5000, cli_cb, "A"),
                 0);
    cr_assert_eq(wait_tokens(1, 5000), 1, "server got the slow request");
    /* the slow one is held by the server; a fast one still goes through */
    cr_assert_eq(crt_client_request(c, "fast", 4, 2000, &rep, &rlen), 0);
    cr_assert_eq(memcmp(rep, "fast", 4), 0);
    free(rep);
    cr_assert_eq(ev.n, 0, "slow request not answered yet");
    cr_assert_eq(crt_server_reply(srv, ev.tokens[0], "late", 4), 0);
    cr_assert_eq(crt_server_reply(srv, ev.tokens[0], "twice", 5), CR_ENOENT,
                 "a token answers once");
    cr_assert_eq(wait_events(1, 5000), 1);
    cr_assert_str_eq(ev.what[0], "A:late");
    cr_assert_eq(ev.status[0], CR_OK);
    crt_client_close(c);
    crt_server_close(srv);
}

Test(net, requests_beyond_pool_queue)
{
    static crt_server *srv;
    crt_client *c;
    crt_client_opts co = {.nctx = 2};
    char names[6][4] = {"0", "1", "2", "3", "4", "5"};
    cr_assert_eq(crt_server_open(url, NULL, srv_cb, &srv, &srv), 0);
    cr_assert_eq(crt_client_open(url, &co, &c), 0);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(crt_client_request_async(c, "hold", 4, 10000, cli_cb,
                                              names[i]),
                     0, "excess requests are accepted");
    }
    cr_assert_eq(wait_tokens(2, 5000), 2);
    usleep(100000);
    cr_assert_eq(ev.ntokens, 2, "only nctx requests in flight");
    /* answer tokens as they come: each answer lets a queued one through */
    for (int answered = 0; answered < 6; answered++) {
        cr_assert_geq(wait_tokens(answered + 1, 5000), answered + 1);
        cr_assert_eq(crt_server_reply(srv, ev.tokens[answered], "ok", 2), 0);
    }
    cr_assert_eq(wait_events(6, 5000), 6);
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(ev.status[i], CR_OK);
    }
    crt_client_close(c);
    crt_server_close(srv);
}

Test(net, timeouts)
{
    static crt_server *srv;
    crt_client *c;
    void *rep;
    size_t rlen;
    /* nobody listening */
    cr_assert_eq(crt_client_open(url, NULL, &c), 0);
    cr_assert_eq(crt_client_request(c, "x", 1, 200, &rep, &rlen),
                 CR_ETIMEDOUT);
    cr_assert_null(rep);
    /* the queued-while-disconnected request is gone; once connected, a
     * server that never answers, then drops */
    cr_assert_eq(crt_server_open(url, NULL, srv_cb, &srv, &srv), 0);
    cr_assert_eq(crt_client_request(c, "ping", 4, 5000, &rep, &rlen), 0);
    free(rep);
    cr_assert_eq(crt_client_request(c, "hold", 4, 300, &rep, &rlen),
                 CR_ETIMEDOUT);
    cr_assert_eq(wait_tokens(1, 5000), 1);
    cr_assert_eq(crt_server_drop(srv, ev.tokens[0]), 0);
    /* the client still works after a timeout (and the server after a
     * drop) */
    cr_assert_eq(crt_client_request(c, "again", 5, 5000, &rep, &rlen), 0);
    free(rep);
    crt_client_close(c);
    crt_server_close(srv);
}

Test(net, close_with_requests_pending)
{
    static crt_server *srv;
    crt_client *c;
    crt_client_opts co = {.nctx = 1};
    cr_assert_eq(crt_server_open(url, NULL, srv_cb, &srv, &srv), 0);
    cr_assert_eq(crt_client_open(url, &co, &c), 0);
    cr_assert_eq(crt_client_request_async(c, "hold", 4, -1, cli_cb, "a"), 0);
    cr_assert_eq(crt_client_request_async(c, "hold", 4, -1, cli_cb, "b"), 0);
    cr_assert_eq(wait_tokens(1, 5000), 1);
    crt_client_close(c); /* both callbacks run before close returns */
    cr_assert_eq(ev.n, 2);
    cr_assert_eq(ev.status[0], CR_ECLOSED);
    cr_assert_eq(ev.status[1], CR_ECLOSED);
    crt_server_close(srv);
}

Test(net, tcp_works)
{
    static crt_server *srv;
    crt_client *c;
    void *rep;
    size_t rlen;
    char turl[64];
    cr_assert_eq(crt_server_open("tcp://127.0.0.1:0", NULL, srv_cb, &srv,
                                 &srv),
                 0);
    snprintf(turl, sizeof(turl), "tcp://127.0.0.1:%d", crt_server_port(srv));
    cr_assert_eq(crt_client_open(turl, NULL, &c), 0);
    /* larger than nng's 1 MiB default receive limit */
    size_t big = 3 << 20;
    char *buf = malloc(big);
    memset(buf, 'z', big);
    cr_assert_eq(crt_client_request(c, buf, big, 10000, &rep, &rlen), 0);
    cr_assert_eq(rlen, big);
    free(rep);
    free(buf);
    crt_client_close(c);
    crt_server_close(srv);
}

Test(net, bad_url)
{
    crt_client *c;
    crt_server *s;
    cr_assert_eq(crt_client_open("bogus://x", NULL, &c), CR_EINVAL);
    cr_assert_neq(crt_server_open("bogus://x", NULL, srv_cb, NULL, &s), 0);
}

/* ---- notify ------------------------------------------------------------ */

static void
sub_msg(void *arg, const void *data, size_t len)
{
    char what[64];
    snprintf(what, sizeof(what), "msg:%.*s", (int)(len > 40 ? 40 : len),
             (const char *)data);
    record(what, 0);
}

static void
sub_event(void *arg, crt_sub_event e)
{
    char what[64];
    snprintf(what, sizeof(what), "ev:%s", crt_sub_event_name(e));
    record(what, 0);
}

/* Index of the first event equal to what at or after from, or -1. */
static int
find_event(const char *what, int from)
{
    int found = -1;
    pthread_mutex_lock(&ev.mu);
    for (int i = from; i < ev.n; i++) {
        if (strcmp(ev.what[i], what) == 0) {
            found = i;
            break;
        }
    }
    pthread_mutex_unlock(&ev.mu);
    return found;
}

static int
wait_for(const char *what, int from, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        int k = find_event(what, from);
        if (k >= 0) {
            return k;
        }
        usleep(10000);
    }
    return -1;
}

Test(net, pub_sub_events)
{
    char nurl[128];
    crt_pub *p;
    crt_sub *s;
    crt_sub_opts so = {.on_msg = sub_msg, .on_event = sub_event};
    snprintf(nurl, sizeof(nurl), "ipc://%s/notify.sock", dir);
    cr_assert_eq(crt_pub_open(nurl, &p), 0);
    cr_assert_eq(crt_sub_open(nurl, &so, &s), 0);
    cr_assert_geq(wait_for("ev:connected", 0, 5000), 0);
    for (int i = 0; i < 100 && crt_pub_subscribers(p) < 1; i++) {
        usleep(10000);
    }
    cr_assert_eq(crt_pub_subscribers(p), 1);
    usleep(50000); /* let the subscription settle on the pipe */
    cr_assert_eq(crt_pub_send(p, "one", 3), 0);
    cr_assert_eq(crt_pub_send(p, "two", 3), 0);
    int k1 = wait_for("msg:one", 0, 5000);
    int k2 = wait_for("msg:two", 0, 5000);
    cr_assert_geq(k1, 0);
    cr_assert_gt(k2, k1, "in order");
    cr_assert(crt_sub_connected(s));

    /* publisher goes away and comes back: disconnected, reconnected */
    crt_pub_close(p);
    cr_assert_geq(wait_for("ev:disconnected", 0, 5000), 0);
    cr_assert_eq(crt_pub_open(nurl, &p), 0);
    int k3 = wait_for("ev:reconnected", 0, 10000);
    cr_assert_geq(k3, 0);
    for (int i = 0; i < 100 && crt_pub_subscribers(p) < 1; i++) {
        usleep(10000);
    }
    usleep(50000);
    cr_assert_eq(crt_pub_send(p, "three", 5), 0);
    cr_assert_gt(wait_for("msg:three", 0, 5000), k3);
    crt_sub_close(s);
    crt_pub_close(p);
}
