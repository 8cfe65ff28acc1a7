/*
 * lguard.c - the listener guard (lguard.h says why).
 *
 * One thread for the whole process, started with the first watched
 * listener and joined when the last one stops. gmu protects the list,
 * every guard's `watching`, `probing` and `next_ms`, and the thread
 * state; a probe runs without it (it takes up to CRT_LGUARD_WAIT_MS), and
 * crt_lguard_stop waits for the probe of its guard to end.
 */
#include "lguard.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cfgrecv/actor.h>
#include <cfgrecv/log.h>

#define COMP "listener"

struct crt_lguard {
    atomic_uint pipes; /* pipes the socket reported added */
    atomic_uint restarts;
    atomic_bool stopping; /* crt_lguard_stop began: a probe gives up */
    /* set by start, read by the guard thread */
    nng_socket sock;
    nng_listener lst; /* (the guard thread's once watching) */
    char url[512];
    crt_lguard_peer_fn peer;
    int peer_proto; /* the SP protocol number of the listener's peer,
                       -1 if the socket would not say */
    crt_lguard_listen_fn relisten;
    void *arg;
    uint64_t period_ms;
    bool refused; /* (guard thread) the last probe's connection was
                     refused: nobody listens there */
    bool down; /* (guard thread) the last relisten failed: the next
                  failures are logged at debug, the recovery at info */
    /* protected by gmu */
    bool watching, probing;
    uint64_t next_ms;
    crt_lguard *next;
};

enum { THR_NONE, THR_RUNNING, THR_EXITING };

static pthread_mutex_t gmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gcv = PTHREAD_COND_INITIALIZER;
static crt_lguard *glist;
static int gstate = THR_NONE;
static pthread_t gthr;

crt_lguard *
crt_lguard_new(void)
{
    crt_lguard *g = calloc(1, sizeof(*g));
    if (g != NULL) {
        atomic_init(&g->pipes, 0);
        atomic_init(&g->restarts, 0);
        atomic_init(&g->stopping, false);
    }
    return g;
}

void
crt_lguard_pipe_added(crt_lguard *g)
{
    if (g != NULL) {
        atomic_fetch_add(&g->pipes, 1);
    }
}

void
crt_lguard_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    (void)ev;
    crt_lguard_pipe_added(arg);
}

int
crt_lguard_listen(void *arg, nng_socket s, const char *url, nng_listener *out)
{
    (void)arg;
    return nng_listen(s, url, out, 0);
}

unsigned
crt_lguard_restarts(const crt_lguard *g)
{
    return g != NULL ? atomic_load(&g->restarts) : 0;
}

static void
probe_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    (void)ev;
    atomic_store((atomic_bool *)arg, true);
}

/* probe_cut shortens a probe's deadline once its guard is stopping: a
 * healthy listener still gets the few ms its answer takes (closing an nng
 * dial in flight leaks its dialer), one that never answers no more than
 * CRT_LGUARD_STOP_WAIT_MS. */
static void
probe_cut(crt_lguard *g, uint64_t *end, bool *cut)
{
    if (!*cut && atomic_load(&g->stopping)) {
        *cut = true;
        uint64_t soon = cr_now_ms() + CRT_LGUARD_STOP_WAIT_MS;
        *end = soon < *end ? soon : *end;
    }
}

/* probe_nng dials g's URL with an nng socket of the peer protocol and
 * reports whether any pipe was added to g's socket within
 * CRT_LGUARD_WAIT_MS. A probe that cannot even be made (no memory, no
 * socket) says yes: the guard restarts only on evidence.
 *
 * The probe is not hung up before its own connection is up on its side
 * (the listener's SP header received), even when another client's pipe
 * already proved the listener alive: hanging up before the listener has
 * written its header is what wedges it. */
static bool
probe_nng(crt_lguard *g)
{
    nng_socket ps;
    if (g->peer(&ps) != 0) {
        return true;
    }
    atomic_bool up;
    atomic_init(&up, false);
    unsigned c0 = atomic_load(&g->pipes);
    bool seen = true;
    if (nng_pipe_notify(ps, NNG_PIPE_EV_ADD_POST, probe_pipe_cb, &up) == 0 &&
        nng_dial(ps, g->url, NULL, NNG_FLAG_NONBLOCK) == 0) {
        uint64_t end = cr_now_ms() + CRT_LGUARD_WAIT_MS;
        bool cut = false;
        for (;;) {
            seen = atomic_load(&g->pipes) != c0;
            if ((seen && atomic_load(&up)) || cr_now_ms() >= end) {
                break;
            }
            probe_cut(g, &end, &cut);
            usleep(5000);
        }
    }
    nng_close(ps); /* no pipe callback runs after it: `up` may go */
    return seen;
}

/* raw_open starts a non-blocking stream connection to g's URL without
 * nng: AF_UNIX for ipc://, TCP for tcp://, tcp4:// and tcp6:// (a
 * wildcard host - empty, "*", 0.0.0.0, :: - is reached on the loopback).
 * Returns the descriptor (*connecting when the connection is still
 * being made, *failed when it was refused at once), -1 when no socket
 * could be had (the probe then says yes), or -2 for a URL of another
 * kind (probe it with nng). */
static int
raw_open(const crt_lguard *g, bool *connecting, bool *failed)
{
    *connecting = *failed = false;
    struct sockaddr_storage ss;
    socklen_t sl;
    int family;
    if (strncmp(g->url, "ipc://", 6) == 0) {
        struct sockaddr_un *a = (struct sockaddr_un *)&ss;
        const char *path = g->url + 6;
        if (strlen(path) >= sizeof(a->sun_path)) {
            return -2;
        }
        memset(a, 0, sizeof(*a));
        a->sun_family = AF_UNIX;
        memcpy(a->sun_path, path, strlen(path) + 1);
        sl = sizeof(*a);
        family = AF_UNIX;
    } else {
        const char *hp = NULL;
        int want = AF_UNSPEC;
        if (strncmp(g->url, "tcp://", 6) == 0) {
            hp = g->url + 6;
        } else if (strncmp(g->url, "tcp4://", 7) == 0) {
            hp = g->url + 7;
            want = AF_INET;
        } else if (strncmp(g->url, "tcp6://", 7) == 0) {
            hp = g->url + 7;
            want = AF_INET6;
        } else {
            return -2;
        }
        char host[256];
        const char *colon = strrchr(hp, ':');
        const char *h = hp;
        size_t hl = colon != NULL ? (size_t)(colon - hp) : 0;
        if (colon == NULL || hl >= sizeof(host)) {
            return -2;
        }
        if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
            h++;
            hl -= 2;
        }
        memcpy(host, h, hl);
        host[hl] = '\0';
        if (hl == 0 || strcmp(host, "*") == 0 ||
            strcmp(host, "0.0.0.0") == 0) {
            snprintf(host, sizeof(host), "%s",
                     want == AF_INET6 ? "::1" : "127.0.0.1");
        } else if (strcmp(host, "::") == 0) {
            snprintf(host, sizeof(host), "::1");
        }
        struct addrinfo hints = {.ai_family = want,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL ||
            ai->ai_addrlen > sizeof(ss)) {
            if (ai != NULL) {
                freeaddrinfo(ai);
            }
            return -2;
        }
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        sl = ai->ai_addrlen;
        family = ai->ai_family;
        freeaddrinfo(ai);
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        /* AF_UNIX connects at once or fails (EAGAIN: its backlog is
         * full); TCP goes on in the background */
        *connecting = errno == EINPROGRESS;
        *failed = !*connecting;
    }
    return fd;
}

/* probe_raw is probe_nng without nng, for ipc:// and tcp:// listeners: a
 * plain connection that sends the SP header of the listener's peer
 * protocol and waits for the listener's. The guard thread runs for the
 * daemon's whole life, probing every few seconds; this way it never
 * opens and closes an nng socket to do so (nng 1.5.2 can hang for good
 * in nng_close, issues #1543 and #1813: it hung a benchmark's guard
 * thread here once). As in probe_nng, the connection is closed only
 * once the listener's header has arrived (or the wait is over). A
 * connection refused (an ipc file removed, nobody listening) proves
 * nothing alive: unless another client's pipe comes, a restart. */
static bool
probe_raw(crt_lguard *g)
{
    bool connecting, failed;
    unsigned c0 = atomic_load(&g->pipes);
    int fd = raw_open(g, &connecting, &failed);
    if (fd == -2) {
        return probe_nng(g);
    } else if (fd < 0) {
        return true;
    }
    bool live = !failed;
    int cerr = failed ? errno : 0;
    const unsigned char hdr[8] = {
        0, 'S', 'P', 0, (unsigned char)(g->peer_proto >> 8),
        (unsigned char)g->peer_proto, 0, 0};
    unsigned char in[8];
    size_t got = 0;
    bool sent = false, seen, cut = false;
    uint64_t end = cr_now_ms() + CRT_LGUARD_WAIT_MS;
    for (;;) {
        if (live && connecting) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            int err = 0;
            socklen_t el = sizeof(err);
            if (poll(&pf, 1, 0) == 1) {
                connecting = false;
                live = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 &&
                       err == 0;
                cerr = err;
            }
        }
        if (live && !connecting && !sent) {
            ssize_t w = send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
            sent = w == (ssize_t)sizeof(hdr);
            live = sent || (w < 0 && (errno == EAGAIN || errno == EINTR));
        }
        if (live && sent && got < sizeof(in)) {
            ssize_t r = recv(fd, in + got, sizeof(in) - got, 0);
            if (r > 0) {
                got += (size_t)r;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                live = false; /* the listener hung up on us */
            }
        }
        seen = atomic_load(&g->pipes) != c0;
        if ((seen && (got == sizeof(in) || !live)) || cr_now_ms() >= end) {
            break;
        }
        probe_cut(g, &end, &cut);
        if (live && got < sizeof(in)) {
            struct pollfd pf = {.fd = fd,
                                .events = connecting ? POLLOUT : POLLIN};
            (void)poll(&pf, 1, 5);
        } else {
            usleep(5000); /* nothing more to read (a PUB may publish) */
        }
    }
    close(fd);
    g->refused = cerr == ECONNREFUSED || cerr == ENOENT;
    return seen;
}

/* probe reports whether g's listener still completes connections. */
static bool
probe(crt_lguard *g)
{
    g->refused = false;
    return g->peer_proto >= 0 ? probe_raw(g) : probe_nng(g);
}

static void
restart(crt_lguard *g)
{
    const char *path = strncmp(g->url, "ipc://", 6) == 0 ? g->url + 6 : NULL;
    if (g->down) {
        /* already said (below); the listener is closed */
    } else if (path != NULL && access(path, F_OK) != 0) {
        CR_WARN(COMP, "the socket file of the listener on %s was removed: "
                      "listening again",
                g->url);
    } else if (g->refused) {
        CR_WARN(COMP, "the listener on %s refuses connections (it is no "
                      "longer listening): listening again",
                g->url);
    } else {
        CR_WARN(COMP, "the listener on %s has stopped completing "
                      "connections (an nng 1.5.2 bug, after a client hung "
                      "up while connecting): restarting it; its clients "
                      "reconnect",
                g->url);
    }
    nng_listener_close(g->lst);
    nng_listener nl;
    int rv = g->relisten(g->arg, g->sock, g->url, &nl);
    if (rv != 0) {
        if (!g->down) {
            CR_ERROR(COMP, "cannot listen on %s again: %s (retried every "
                           "%llu ms; logged again only once it works)",
                     g->url, nng_strerror(rv),
                     (unsigned long long)g->period_ms);
        } else {
            CR_DEBUG(COMP, "cannot listen on %s again: %s", g->url,
                     nng_strerror(rv));
        }
        g->down = true;
        return;
    }
    if (g->down) {
        CR_INFO(COMP, "listening on %s again", g->url);
        g->down = false;
    }
    g->lst = nl;
    atomic_fetch_add(&g->restarts, 1);
}

static void *
guard_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gmu);
    while (gstate == THR_RUNNING) {
        uint64_t now = cr_now_ms(), soonest = now + 60000;
        crt_lguard *due = NULL;
        for (crt_lguard *g = glist; g != NULL && due == NULL; g = g->next) {
            if (g->next_ms <= now) {
                due = g;
            } else if (g->next_ms < soonest) {
                soonest = g->next_ms;
            }
        }
        if (due == NULL) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = soonest - now;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&gcv, &gmu, &ts);
            continue;
        }
        due->probing = true;
        pthread_mutex_unlock(&gmu);
        if (!probe(due) && !atomic_load(&due->stopping)) {
            restart(due);
        }
        pthread_mutex_lock(&gmu);
        due->probing = false;
        due->next_ms = cr_now_ms() + due->period_ms;
        pthread_cond_broadcast(&gcv);
    }
    pthread_mutex_unlock(&gmu);
    return NULL;
}

int
crt_lguard_start(crt_lguard *g, nng_socket s, nng_listener l, const char *url,
                 crt_lguard_peer_fn peer, crt_lguard_listen_fn relisten,
                 void *arg, int period_ms)
{
    if (g == NULL || url == NULL || peer == NULL || relisten == NULL ||
        strlen(url) >= sizeof(g->url) - 8) {
        return CR_EINVAL;
    }
    g->sock = s;
    g->lst = l;
    snprintf(g->url, sizeof(g->url), "%s", url);
    size_t n = strlen(g->url);
    int port = 0;
    if (strncmp(url, "tcp", 3) == 0 && n > 2 &&
        strcmp(g->url + n - 2, ":0") == 0 &&
        nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
        snprintf(g->url + n - 1, sizeof(g->url) - (n - 1), "%d", port);
    }
    g->peer = peer;
    if (nng_socket_get_int(s, NNG_OPT_PEER, &g->peer_proto) != 0 ||
        g->peer_proto < 0 || g->peer_proto > 0xffff) {
        g->peer_proto = -1;
    }
    g->relisten = relisten;
    g->arg = arg;
    g->period_ms = period_ms > 0 ? (uint64_t)period_ms : CRT_LGUARD_PERIOD_MS;
    atomic_store(&g->stopping, false);
    g->down = false;
    pthread_mutex_lock(&gmu);
    while (gstate == THR_EXITING) { /* the last stop is joining it */
        pthread_cond_wait(&gcv, &gmu);
    }
    if (gstate == THR_NONE) {
        if (pthread_create(&gthr, NULL, guard_main, NULL) != 0) {
            pthread_mutex_unlock(&gmu);
            CR_WARN(COMP, "no guard thread: %s runs unguarded", g->url);
            return CR_ENOMEM;
        }
        gstate = THR_RUNNING;
    }
    g->watching = true;
    g->next_ms = cr_now_ms() + g->period_ms;
    g->next = glist;
    glist = g;
    pthread_cond_broadcast(&gcv);
    pthread_mutex_unlock(&gmu);
    return 0;
}

void
crt_lguard_stop(crt_lguard *g)
{
    if (g == NULL) {
        return;
    }
    pthread_mutex_lock(&gmu);
    if (!g->watching) {
        pthread_mutex_unlock(&gmu);
        return;
    }
    /* a probe of a listener that never answers (wedged, or its ipc file
     * removed) takes CRT_LGUARD_WAIT_MS: the daemon's stop, which stops
     * each listener's guard in turn, took that long for each */
    atomic_store(&g->stopping, true);
    while (g->probing) {
        pthread_cond_wait(&gcv, &gmu);
    }
    g->watching = false;
    for (crt_lguard **pp = &glist; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    if (glist == NULL && gstate == THR_RUNNING) {
        gstate = THR_EXITING;
        pthread_cond_broadcast(&gcv);
        pthread_mutex_unlock(&gmu);
        pthread_join(gthr, NULL);
        pthread_mutex_lock(&gmu);
        gstate = THR_NONE;
        pthread_cond_broadcast(&gcv);
    }
    pthread_mutex_unlock(&gmu);
}

void
crt_lguard_free(crt_lguard *g)
{
    crt_lguard_stop(g);
    free(g);
}
