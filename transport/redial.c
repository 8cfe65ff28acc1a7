/*
 * redial.c - see redial.h.
 */
#include "redial.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cfgrecv/actor.h>
#include <cfgrecv/log.h>

struct crt_redial {
    nng_socket sock;
    nng_dialer dialer; /* the watchdog's callback only, after start */
    char *url;
    const char *what;
    unsigned stuck_ms;
    nng_aio *aio;
    atomic_int pipes;
    _Atomic uint64_t down_since; /* cr_now_ms(); 0 while a pipe is up */
    atomic_bool stopping;
    _Atomic uint64_t redials;
    bool logged; /* the callback only: INFO once per outage, then DEBUG */
};

static void
check(void *arg)
{
    crt_redial *w = arg;
    if (nng_aio_result(w->aio) != 0 || atomic_load(&w->stopping)) {
        return; /* stopped */
    }
    uint64_t since = atomic_load(&w->down_since);
    uint64_t now = cr_now_ms();
    if (atomic_load(&w->pipes) > 0) {
        w->logged = false; /* connected: the next outage is news again */
    }
    if (atomic_load(&w->pipes) <= 0 && since != 0 &&
        now - since >= w->stuck_ms) {
        if (!w->logged) {
            CR_INFO(w->what, "no connection to %s for %llu ms: dialing "
                             "again (an nng dialer can stop retrying)",
                    w->url, (unsigned long long)(now - since));
            w->logged = true;
        } else {
            CR_DEBUG(w->what, "still no connection to %s: dialing again",
                     w->url);
        }
        nng_dialer_close(w->dialer);
        int rv = nng_dial(w->sock, w->url, &w->dialer, NNG_FLAG_NONBLOCK);
        if (rv != 0) {
            CR_WARN(w->what, "dial %s: %s", w->url, nng_strerror(rv));
        }
        atomic_fetch_add(&w->redials, 1);
        /* a pipe that came up meanwhile has cleared down_since: keep it */
        uint64_t expect = since;
        atomic_compare_exchange_strong(&w->down_since, &expect, now);
    }
    if (!atomic_load(&w->stopping)) {
        nng_sleep_aio(CRT_REDIAL_PERIOD_MS, w->aio);
    }
}

int
crt_redial_new(nng_socket sock, const char *url, unsigned stuck_ms,
               const char *what, crt_redial **out)
{
    crt_redial *w = calloc(1, sizeof(*w));
    if (w == NULL || (w->url = strdup(url)) == NULL ||
        nng_aio_alloc(&w->aio, check, w) != 0) {
        if (w != NULL) {
            free(w->url);
        }
        free(w);
        return NNG_ENOMEM;
    }
    w->sock = sock;
    w->what = what;
    w->stuck_ms = stuck_ms ? stuck_ms : CRT_REDIAL_STUCK_MS;
    atomic_init(&w->pipes, 0);
    atomic_init(&w->down_since, cr_now_ms());
    atomic_init(&w->stopping, false);
    atomic_init(&w->redials, 0);
    *out = w;
    return 0;
}

int
crt_redial_start(crt_redial *w)
{
    int rv = nng_dial(w->sock, w->url, &w->dialer, NNG_FLAG_NONBLOCK);
    if (rv == 0) {
        nng_sleep_aio(CRT_REDIAL_PERIOD_MS, w->aio);
    }
    return rv;
}

void
crt_redial_pipe_event(crt_redial *w, nng_pipe_ev ev)
{
    if (w == NULL) {
        return;
    }
    if (ev == NNG_PIPE_EV_ADD_POST) {
        atomic_fetch_add(&w->pipes, 1);
        atomic_store(&w->down_since, 0);
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        if (atomic_fetch_sub(&w->pipes, 1) == 1) {
            atomic_store(&w->down_since, cr_now_ms());
        }
    }
}

bool
crt_redial_connected(const crt_redial *w)
{
    return w != NULL && atomic_load(&w->pipes) > 0;
}

uint64_t
crt_redial_count(const crt_redial *w)
{
    return w ? atomic_load(&w->redials) : 0;
}

void
crt_redial_stop(crt_redial *w)
{
    if (w == NULL) {
        return;
    }
    atomic_store(&w->stopping, true);
    nng_aio_stop(w->aio); /* waits for a running check; none re-arms */
}

void
crt_redial_free(crt_redial *w)
{
    if (w == NULL) {
        return;
    }
    crt_redial_stop(w);
    nng_aio_free(w->aio);
    free(w->url);
    free(w);
}
