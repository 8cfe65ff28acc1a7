/*
 * test_redial.c - a dialer that has stopped redialing is replaced
 * (transport/redial.h).
 *
 * nng 1.5.2 sometimes stops redialing after its peer restarts; that
 * cannot be provoked on demand, so it is simulated: this executable is
 * linked with -Wl,--wrap=nng_dial to learn the transport's dialer, and
 * the test closes it (its pipe goes with it). Nothing in nng dials again
 * after that: only the watchdog can bring the connection back.
 */
#include <cfgrecv/actor.h> /* before criterion (its cr_fail macro) */

#include <criterion/criterion.h>
#include <nng/nng.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "notify.h"
#include "server.h"

#include "ipc_fixture.h"

int __real_nng_dial(nng_socket, const char *, nng_dialer *, int);
int __wrap_nng_dial(nng_socket, const char *, nng_dialer *, int);

static _Atomic uint32_t last_dialer;
static atomic_int dials;

int
__wrap_nng_dial(nng_socket s, const char *u, nng_dialer *dp, int flags)
{
    nng_dialer d;
    int rv = __real_nng_dial(s, u, &d, flags);
    if (rv == 0) {
        atomic_store(&last_dialer, (uint32_t)nng_dialer_id(d));
        atomic_fetch_add(&dials, 1);
        if (dp != NULL) {
            *dp = d;
        }
    }
    return rv;
}

static void
kill_last_dialer(void)
{
    nng_dialer d = {.id = atomic_load(&last_dialer)};
    cr_assert_eq(nng_dialer_close(d), 0);
}

TestSuite(redial, .init = fx_make, .fini = fx_remove, .timeout = 60);


Test(redial, client_dials_again_after_its_dialer_is_gone)
{
    static crt_server *srv;
    crt_client *c;
    echo_open(&srv, &c);
    expect_echo(c, "one", 5000);
    int before = atomic_load(&dials);
    kill_last_dialer();
    /* nothing dials any more; within ~3.5 s the watchdog does, and "two"
     * is answered over the new connection */
    expect_echo(c, "two", 15000);
    cr_assert_gt(atomic_load(&dials), before, "the watchdog dialed");
    crt_client_close(c);
    crt_server_close(srv);
}

static atomic_int reconnects;

static void
on_event(void *arg, crt_sub_event ev)
{
    (void)arg;
    if (ev == CRT_SUB_RECONNECTED) {
        atomic_fetch_add(&reconnects, 1);
    }
}

Test(redial, subscriber_dials_again_after_its_dialer_is_gone)
{
    crt_pub *p;
    crt_sub *s;
    crt_sub_opts so = {.on_event = on_event};
    cr_assert_eq(crt_pub_open(url, &p), 0);
    cr_assert_eq(crt_sub_open(url, &so, &s), 0);
    for (int i = 0; i < 500 && !crt_sub_connected(s); i++) {
        usleep(10000);
    }
    cr_assert(crt_sub_connected(s));
    kill_last_dialer();
    for (int i = 0; i < 1000 && atomic_load(&reconnects) == 0; i++) {
        usleep(10000);
    }
    cr_assert_eq(atomic_load(&reconnects), 1, "reconnected by the watchdog");
    cr_assert(crt_sub_connected(s));
    crt_sub_close(s);
    crt_pub_close(p);
}
