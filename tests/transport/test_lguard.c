/*
 * test_lguard.c - the listener guard. A client that connects to an ipc
 * listener and hangs up at once can wedge it for good in nng 1.5.2 (every
 * later client is accepted and never served). The guard notices and
 * listens again: a REP server (crt_server) and a bare PUB socket serve new
 * clients again within the guard's period plus its probe's wait.
 */
#include "cfgrecv/actor.h"
#include "lguard.h"

#include <criterion/criterion.h>

#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "ipc_fixture.h"

TestSuite(lguard, .init = fx_make, .fini = fx_remove, .timeout = 90);

/* hang_up connects to the ipc path of url and closes at once, n times
 * (what a client killed while connecting does). */
static void
hang_up(const char *u, int n)
{
    const char *path = u + strlen("ipc://");
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        cr_assert_lt(strlen(path), sizeof(a.sun_path));
        memcpy(a.sun_path, path, strlen(path) + 1);
        (void)connect(fd, (struct sockaddr *)&a, sizeof(a));
        close(fd);
        usleep(20000);
    }
}

/* ask opens a new client (a new connection), asks once, closes it. */
static int
ask(int timeout_ms)
{
    crt_client *c;
    void *rep = NULL;
    size_t rlen;
    cr_assert_eq(crt_client_open(url, NULL, &c), 0);
    int rv = crt_client_request(c, "ping", 4, timeout_ms, &rep, &rlen);
    free(rep);
    crt_client_close(c);
    return rv;
}

Test(lguard, rep_server_serves_new_clients_after_hang_ups)
{
    static crt_server *srv;
    crt_server_opts so = {.guard_ms = 200};
    cr_assert_eq(crt_server_open(url, &so, echo_cb, &srv, &srv), 0);
    cr_assert_eq(ask(5000), 0);
    /* without the guard the first hang-up leaves the listener wedged (in
     * nearly every run): every later ask times out */
    for (int round = 0; round < 3; round++) {
        hang_up(url, 5);
        /* new clients are served again within the guard's period and
         * wait (a request caught by the restart fails: the restart
         * closes its connection) */
        uint64_t end = cr_now_ms() + 2 * CRT_LGUARD_WAIT_MS + 5000;
        int rv;
        while ((rv = ask(2000)) != 0 && cr_now_ms() < end) {
        }
        cr_assert_eq(rv, 0, "round %d: no answer (%s)", round,
                     cr_strerror(rv));
    }
    crt_server_close(srv);
}

/* A socket file removed under a running server (a /tmp cleaner, an
 * operator's rm) leaves it unreachable; the guard's probe cannot connect
 * and the listener is made again, file included. */
Test(lguard, removed_socket_file_is_made_again)
{
    static crt_server *srv;
    crt_server_opts so = {.guard_ms = 100};
    cr_assert_eq(crt_server_open(url, &so, echo_cb, &srv, &srv), 0);
    cr_assert_eq(ask(5000), 0);
    const char *path = url + strlen("ipc://");
    cr_assert_eq(unlink(path), 0);
    uint64_t end = cr_now_ms() + 2 * CRT_LGUARD_WAIT_MS + 5000;
    while (access(path, F_OK) != 0 && cr_now_ms() < end) {
        usleep(20000);
    }
    cr_assert_eq(access(path, F_OK), 0, "the socket file is still gone");
    int rv;
    while ((rv = ask(2000)) != 0 && cr_now_ms() < end) {
    }
    cr_assert_eq(rv, 0, "no answer after the file came back (%s)",
                 cr_strerror(rv));
    cr_assert_geq(crt_server_restarts(srv), 1);
    crt_server_close(srv);
}

/* The guard's own probes never wedge a busy listener: a probe that sees
 * another client's pipe first still waits for its own connection before
 * hanging up (hanging up mid-handshake is the trigger). Probes every
 * 10 ms against clients connecting back to back for 3 s. */
Test(lguard, probes_never_wedge_a_busy_listener)
{
    static crt_server *srv;
    crt_server_opts so = {.guard_ms = 10};
    cr_assert_eq(crt_server_open(url, &so, echo_cb, &srv, &srv), 0);
    uint64_t end = cr_now_ms() + 3000;
    int asked = 0;
    while (cr_now_ms() < end) {
        cr_assert_eq(ask(5000), 0, "ask %d", asked);
        asked++;
    }
    cr_assert_eq(crt_server_restarts(srv), 0,
                 "%u restarts in %d asks: a probe wedged the listener",
                 crt_server_restarts(srv), asked);
    crt_server_close(srv);
}

/* ---- a bare PUB socket under the guard ---------------------------------- */

static crt_lguard *pub_guard;

static int
relisten(void *arg, nng_socket s, const char *u, nng_listener *l)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    return nng_listen(s, u, l, 0);
}

/* guarded_pub opens a PUB socket whose pipes a new guard counts, listening
 * on listen_url; the guard is not started. */
static crt_lguard *
guarded_pub(const char *listen_url, nng_socket *pub, nng_listener *l)
{
    crt_lguard *g = crt_lguard_new();
    cr_assert_not_null(g);
    cr_assert_eq(nng_pub0_open(pub), 0);
    cr_assert_eq(nng_pipe_notify(*pub, NNG_PIPE_EV_ADD_POST,
                                 crt_lguard_pipe_cb, g),
                 0);
    cr_assert_eq(nng_listen(*pub, listen_url, l, 0), 0);
    return g;
}

/* heard: a new subscriber gets one of the messages published every 50 ms
 * within timeout_ms. */
static bool
heard(nng_socket pub, int timeout_ms)
{
    nng_socket sub;
    cr_assert_eq(nng_sub0_open(&sub), 0);
    cr_assert_eq(nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
    cr_assert_eq(nng_dial(sub, url, NULL, NNG_FLAG_NONBLOCK), 0);
    bool got = false;
    for (int waited = 0; !got && waited < timeout_ms; waited += 50) {
        nng_send(pub, "n", 1, NNG_FLAG_NONBLOCK);
        usleep(50000);
        char *b;
        size_t n;
        if (nng_recv(sub, &b, &n, NNG_FLAG_NONBLOCK | NNG_FLAG_ALLOC) == 0) {
            nng_free(b, n);
            got = true;
        }
    }
    nng_close(sub);
    return got;
}

Test(lguard, pub_listener_restarted_after_hang_ups)
{
    nng_socket pub;
    nng_listener l;
    atomic_int relistens = 0;
    pub_guard = guarded_pub(url, &pub, &l);
    cr_assert_eq(crt_lguard_start(pub_guard, pub, l, url, nng_sub0_open,
                                  relisten, &relistens, 200),
                 0);
    cr_assert(heard(pub, 5000));
    hang_up(url, 5);
    cr_assert(heard(pub, 2 * CRT_LGUARD_WAIT_MS + 5000),
              "no message reached a new subscriber");
    /* the guard's own probes never restart a healthy listener */
    unsigned before = crt_lguard_restarts(pub_guard);
    usleep(1500000); /* several periods */
    cr_assert_eq(crt_lguard_restarts(pub_guard), before);
    cr_assert_eq(atomic_load(&relistens), (int)before);
    crt_lguard_stop(pub_guard);
    nng_close(pub);
    crt_lguard_free(pub_guard);
}

/* Stopping a guard whose probe waits on a listener that never answers
 * (here its ipc file is gone) ends that probe: cfgrecvd's stop, which
 * stops every listener's guard in turn, took CRT_LGUARD_WAIT_MS for each
 * (20 s once the daemon's socket directory had been removed). */
Test(lguard, stop_cuts_a_probe_short)
{
    nng_socket pub;
    nng_listener l;
    atomic_int relistens = 0;
    crt_lguard *g = guarded_pub(url, &pub, &l);
    cr_assert_eq(unlink(url + strlen("ipc://")), 0);
    cr_assert_eq(crt_lguard_start(g, pub, l, url, nng_sub0_open, relisten,
                                  &relistens, 50),
                 0);
    usleep(300000); /* the first probe (after 50 ms) is waiting */
    uint64_t t0 = cr_now_ms();
    crt_lguard_stop(g);
    uint64_t took = cr_now_ms() - t0;
    cr_expect_lt(took, CRT_LGUARD_WAIT_MS / 2, "the stop waited %llu ms",
                 (unsigned long long)took);
    cr_expect_eq(atomic_load(&relistens), 0, "a stopped guard relistened");
    nng_close(pub);
    crt_lguard_free(g);
}

/* ---- tcp: the same probe, over a plain TCP connection ------------------ */

/* A healthy tcp:// listener probed every 10 ms while clients connect back
 * to back is never restarted: the probe completes the SP handshake
 * before it hangs up, as over ipc. */
Test(lguard, tcp_probes_never_restart_a_healthy_listener)
{
    static crt_server *srv;
    crt_server_opts so = {.guard_ms = 10};
    cr_assert_eq(crt_server_open("tcp://127.0.0.1:0", &so, echo_cb, &srv,
                                 &srv),
                 0);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", crt_server_port(srv));
    uint64_t end = cr_now_ms() + 2000;
    int asked = 0;
    while (cr_now_ms() < end) {
        cr_assert_eq(ask(5000), 0, "ask %d", asked);
        asked++;
    }
    cr_assert_eq(crt_server_restarts(srv), 0, "%u restarts in %d asks",
                 crt_server_restarts(srv), asked);
    crt_server_close(srv);
}

/* A tcp:// listener that stopped listening (closed behind the guard's
 * back) refuses the probe: it is listened on again, on the same port,
 * and new subscribers hear the PUB again. */
Test(lguard, tcp_listener_gone_is_listened_on_again)
{
    nng_socket pub;
    nng_listener l;
    atomic_int relistens = 0;
    crt_lguard *g = guarded_pub("tcp://127.0.0.1:0", &pub, &l);
    int port = 0;
    cr_assert_eq(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    cr_assert_eq(crt_lguard_start(g, pub, l, "tcp://127.0.0.1:0",
                                  nng_sub0_open, relisten, &relistens, 100),
                 0);
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    cr_assert(heard(pub, 5000));
    cr_assert_eq(atomic_load(&relistens), 0, "a healthy listener restarted");
    cr_assert_eq(nng_listener_close(l), 0);
    uint64_t end = cr_now_ms() + 2 * CRT_LGUARD_WAIT_MS + 5000;
    while (atomic_load(&relistens) == 0 && cr_now_ms() < end) {
        usleep(20000);
    }
    cr_assert_geq(atomic_load(&relistens), 1, "never listened on again");
    cr_assert(heard(pub, 5000), "nothing heard on port %d again", port);
    crt_lguard_stop(g);
    nng_close(pub);
    crt_lguard_free(g);
}

/* a guard that cannot even start (bad arguments) leaves the caller free
 * to run unguarded; stop and free take NULL */
Test(lguard, bad_arguments)
{
    crt_lguard *g = crt_lguard_new();
    nng_socket s = NNG_SOCKET_INITIALIZER;
    nng_listener l = NNG_LISTENER_INITIALIZER;
    cr_assert_eq(crt_lguard_start(g, s, l, NULL, nng_sub0_open, relisten,
                                  NULL, 0),
                 CR_EINVAL);
    cr_assert_eq(crt_lguard_start(NULL, s, l, url, nng_sub0_open, relisten,
                                  NULL, 0),
                 CR_EINVAL);
    crt_lguard_pipe_added(NULL);
    crt_lguard_stop(NULL);
    crt_lguard_free(NULL);
    crt_lguard_free(g);
}
