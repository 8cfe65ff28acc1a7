/*
 * monitor.c - the observation endpoints and the query actor.
 *
 * Sockets outlive actors. cra_monitor_open listens on every endpoint
 * before the receiver's tree starts; the monitor actor only opens a REP
 * context and an aio on the socket, and the events actor only sends on
 * the PUB socket. So a URL that cannot be listened on is a start-up error
 * (not a restart loop under the root supervisor), and a restart of either
 * actor drops no client connection.
 *
 * The query path: one nng context and one aio alternate between receiving
 * a request and sending its reply; only one operation is ever outstanding,
 * so the callback and the actor hand the aio back and forth without a
 * lock (the state flag is atomic for the reader's sake). The callback only
 * posts the request bytes to this actor; the answer is computed on the
 * actor's thread, where blocking calls to other actors (cr_call) are fine.
 * The same thread recomputes the HTTP metrics cache on a timer whose
 * period grows with the cost of computing it (at least 1 s, at least ten
 * times the last computation), so 100,000 flows cannot keep it busy.
 */
#include "monitor.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/transport/ipc/ipc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cfgrecv/log.h"
#include "cfgrecv/supervisor.h"
#include "events.h"
#include "fetcher.h"
#include "flow_manager.h"
#include "lguard.h"
#include "metrics.h"
#include "receiver.h"

#define COMP        "monitor"
#define MON_REQ     (CR_MSG_USER + 300)
#define TAG_METRICS 1
#define QUERY_MS    5000 /* per query to another actor */
#define MAX_DEPTH   8    /* supervision tree depth shown */
#define PUB_SENDBUF 1024 /* events queued per slow subscriber */

/* ---- loopback checks ------------------------------------------------ */

static bool
host_is_loopback(const char *h, size_t n) {
    char buf[256];
    if (n == 0 || n >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, h, n);
    buf[n] = '\0';
    char *host = buf;
    if (host[0] == '[') {
        if (n < 3 || host[n - 1] != ']') {
            return false;
        }
        host[n - 1] = '\0';
        host++;
    }
    if (strcasecmp(host, "localhost") == 0) {
        return true;
    }
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (inet_pton(AF_INET6, host, &a6) == 1) {
        return IN6_IS_ADDR_LOOPBACK(&a6) ||
               (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    }
    return false;
}

/* split_hostport finds the host of "HOST:PORT" / "[V6]:PORT" and checks
 * the port is 0..65535. */
static bool
split_hostport(const char *hp, size_t len, size_t *hostlen) {
    const char *colon;
    if (len > 0 && hp[0] == '[') {
        const char *close = memchr(hp, ']', len);
        if (close == NULL || (size_t)(close - hp) + 1 >= len ||
            close[1] != ':') {
            return false;
        }
        colon = close + 1;
    } else {
        colon = memchr(hp, ':', len);
        if (colon == NULL ||
            memchr(colon + 1, ':', len - (size_t)(colon - hp) - 1) != NULL) {
            return false; /* no port, or a bare IPv6 address */
        }
    }
    const char *port = colon + 1;
    size_t plen = len - (size_t)(port - hp);
    if (plen == 0 || plen > 5) {
        return false;
    }
    unsigned long v = 0;
    for (size_t i = 0; i < plen; i++) {
        if (!isdigit((unsigned char)port[i])) {
            return false;
        }
        v = v * 10 + (unsigned long)(port[i] - '0');
    }
    if (v > 65535) {
        return false;
    }
    *hostlen = (size_t)(colon - hp);
    return true;
}

bool
cra_hostport_is_loopback(const char *hp) {
    size_t hl;
    if (hp == NULL || !split_hostport(hp, strlen(hp), &hl)) {
        return false;
    }
    const char *port = hp + hl + 1;
    if (strtoul(port, NULL, 10) == 0) {
        return false;
    }
    return host_is_loopback(hp, hl);
}

bool
cra_url_is_loopback(const char *url) {
    static const char *const local[] = {"ipc://", "inproc://", "abstract://"};
    static const char *const net[] = {
        "tcp://",  "tcp4://",    "tcp6://",     "ws://",
        "ws4://",  "ws6://",     "wss://",      "wss4://",
        "wss6://", "tls+tcp://", "tls+tcp4://", "tls+tcp6://",
    };
    if (url == NULL) {
        return false;
    }
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        if (strncmp(url, local[i], strlen(local[i])) == 0) {
            return true;
        }
    }
    for (size_t i = 0; i < sizeof(net) / sizeof(net[0]); i++) {
        size_t sl = strlen(net[i]);
        if (strncmp(url, net[i], sl) == 0) {
            const char *hp = url + sl;
            size_t len = strcspn(hp, "/");
            size_t hl;
            return split_hostport(hp, len, &hl) && host_is_loopback(hp, hl);
        }
    }
    return false;
}

/* ---- endpoints -------------------------------------------------------- */

struct cra_monitor_endpoints {
    nng_socket rep; /* valid when rep_open; set once, before actors run */
    bool rep_open;
    nng_socket pub;
    bool pub_open;
    int mode;                        /* ipc permissions */
    crt_lguard *rep_guard, *pub_guard; /* (lguard.h) */
    _Atomic uint64_t last_pub_ms; /* cr_now_ms() of the last publish */
    cra_metrics_http *http;
};

/* PUB_LINGER_MS: nng 1.5.2 has no linger; closing a PUB socket drops what
 * its pipes have not written yet. Close waits this long after the last
 * publish, so the shutdown's last events (flow.stopped) reach watchers. */
#define PUB_LINGER_MS 50u

/* listen_on listens on url with the ipc permissions *(int *)arg (the
 * listener guard calls it again to restart a wedged listener). */
static int
listen_on(void *arg, nng_socket s, const char *url, nng_listener *out) {
    nng_listener l;
    int rv;
    if ((rv = nng_listener_create(&l, s, url)) != 0) {
        return rv;
    }
    if (strncmp(url, "ipc://", 6) == 0 &&
        (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS,
                                   *(int *)arg)) != 0) {
        nng_listener_close(l);
        return rv;
    }
    if ((rv = nng_listener_start(l, 0)) != 0) {
        nng_listener_close(l);
        return rv;
    }
    *out = l;
    return 0;
}

/* Subscribers of the event stream come and go here: events are built
 * only while one is connected (events.h). Atomics only: nng holds the
 * socket lock. arg is the listener's guard. */
static void
pub_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg) {
    (void)p;
    cra_events_watchers_add(ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        crt_lguard_pipe_added(arg);
    }
}

/* open_one listens with a new socket of the given kind, under guard g
 * (mode: where the guard finds the ipc permissions); 0 or CR_ENNG. */
static int
open_one(const char *what, const char *url, int *mode, bool pub,
         crt_lguard *g, nng_socket *s) {
    nng_listener l;
    int rv = pub ? nng_pub0_open(s) : nng_rep0_open(s);
    if (rv == 0) {
        rv = pub ? nng_socket_set_int(*s, NNG_OPT_SENDBUF, PUB_SENDBUF)
                 : nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ,
                                       CRA_MONITOR_MAX_REQUEST);
        if (rv == 0) {
            rv = nng_pipe_notify(*s, NNG_PIPE_EV_ADD_POST,
                                 pub ? pub_pipe_cb : crt_lguard_pipe_cb, g);
        }
        if (rv == 0 && pub) {
            rv = nng_pipe_notify(*s, NNG_PIPE_EV_REM_POST, pub_pipe_cb, g);
        }
        if (rv == 0) {
            rv = listen_on(mode, *s, url, &l);
        }
        if (rv != 0) {
            nng_close(*s);
        }
    }
    if (rv != 0) {
        CR_ERROR(COMP, "cannot listen for %s on %s: %s", what, url,
                 nng_strerror(rv));
        return CR_ENNG;
    }
    (void)crt_lguard_start(g, *s, l, url, pub ? nng_sub0_open : nng_req0_open,
                           listen_on, mode, 0);
    CR_INFO(COMP, "%s listening on %s", what, url);
    return 0;
}

static int
check_local(const cra_monitor_cfg *c, const char *what, const char *url) {
    if (url == NULL || c->allow_remote || cra_url_is_loopback(url)) {
        return 0;
    }
    CR_ERROR(COMP,
             "%s URL %s is not a loopback or ipc address "
             "(allow it with --monitor-allow-remote)",
             what, url);
    return CR_EINVAL;
}

int
cra_monitor_open(const cra_monitor_cfg *c, cra_monitor_endpoints **out) {
    cra_monitor_endpoints *ep = calloc(1, sizeof(*ep));
    if (ep == NULL) {
        return CR_ENOMEM;
    }
    ep->mode = c->ipc_mode ? c->ipc_mode : 0600;
    ep->rep_guard = crt_lguard_new();
    ep->pub_guard = crt_lguard_new();
    int rv;
    if ((rv = check_local(c, "monitor", c->url)) != 0 ||
        (rv = check_local(c, "events", c->events_url)) != 0) {
        goto fail;
    }
    if (c->metrics_listen != NULL && !c->allow_remote &&
        !cra_hostport_is_loopback(c->metrics_listen)) {
        CR_ERROR(COMP, "--metrics-listen %s is not a loopback HOST:PORT",
                 c->metrics_listen);
        rv = CR_EINVAL;
        goto fail;
    }
    if (c->url != NULL) {
        rv = open_one("monitor queries", c->url, &ep->mode, false,
                      ep->rep_guard, &ep->rep);
        ep->rep_open = rv == 0;
        if (rv != 0 && !c->query_optional) {
            goto fail;
        }
        if (rv != 0) {
            CR_WARN(COMP, "running without the monitor query endpoint");
        }
    }
    if (c->events_url != NULL) {
        rv = open_one("events", c->events_url, &ep->mode, true,
                      ep->pub_guard, &ep->pub);
        ep->pub_open = rv == 0;
        if (rv != 0 && !c->events_optional) {
            goto fail;
        }
        if (rv != 0) {
            CR_WARN(COMP, "running without the event stream");
        }
    }
    if (c->metrics_listen != NULL &&
        (rv = cra_metrics_http_start(c->metrics_listen, &ep->http)) != 0) {
        goto fail;
    }
    *out = ep;
    return 0;
fail:
    cra_monitor_close(ep);
    return rv;
}

void
cra_monitor_close(cra_monitor_endpoints *ep) {
    if (ep == NULL) {
        return;
    }
    cra_metrics_http_stop(ep->http);
    crt_lguard_stop(ep->rep_guard); /* before the closes: they relisten */
    crt_lguard_stop(ep->pub_guard);
    if (ep->rep_open) {
        nng_close(ep->rep);
    }
    if (ep->pub_open) {
        uint64_t since = cr_now_ms() - atomic_load(&ep->last_pub_ms);
        if (since < PUB_LINGER_MS) {
            struct timespec ts = {0, (long)(PUB_LINGER_MS - since) * 1000000L};
            nanosleep(&ts, NULL);
        }
        nng_close(ep->pub);
    }
    crt_lguard_free(ep->rep_guard);
    crt_lguard_free(ep->pub_guard);
    free(ep);
}

bool
cra_monitor_has_query(const cra_monitor_endpoints *ep) {
    return ep != NULL && ep->rep_open;
}

bool
cra_monitor_has_events(const cra_monitor_endpoints *ep) {
    return ep != NULL && ep->pub_open;
}

bool
cra_monitor_has_metrics(const cra_monitor_endpoints *ep) {
    return ep != NULL && ep->http != NULL;
}

int
cra_monitor_publish(cra_monitor_endpoints *ep, const char *text, size_t len) {
    if (!cra_monitor_has_events(ep)) {
        return CR_ENOENT;
    }
    atomic_store(&ep->last_pub_ms, cr_now_ms());
    return nng_send(ep->pub, (void *)text, len, NNG_FLAG_NONBLOCK) == 0
               ? 0
               : CR_ENNG;
}

/* ---- answers ---------------------------------------------------------- */

/* with_newline appends "\n" to the malloc'd text s of length n (freed
 * on failure). */
static char *
with_newline(char *s, size_t n) {
    char *t = s ? realloc(s, n + 2) : NULL;
    if (t == NULL) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    return t;
}

/* dump returns compact JSON text + "\n" and releases doc. */
static char *
dump(json_t *doc) {
    if (doc == NULL) {
        return NULL;
    }
    char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    return s ? with_newline(s, strlen(s)) : NULL;
}

static char *
error_reply(const char *msg) {
    return dump(json_pack("{s:s}", "error", msg));
}

/* status_doc returns the status document, or NULL with *err set. */
static json_t *
status_doc(cr_rt *rt, const cra_monitor_opts *o, int *err) {
    cra_recv_status st;
    int rv = cra_flow_manager_status(rt, QUERY_MS, &st);
    if (rv != 0) {
        *err = rv;
        return NULL;
    }
    json_t *doc = json_pack(
        "{s:I, s:f, s:{s:I, s:I, s:I}, s:{s:b, s:b, s:b}, s:{s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:I, s:I}}",
        "version", (json_int_t)st.version, "uptime_s",
        (double)(cr_now_ms() - o->started_ms) / 1000.0, "counts", "workspaces",
        (json_int_t)st.workspaces, "flows", (json_int_t)st.flows, "actors",
        (json_int_t)cr_rt_actor_count(rt), "config_service", "notify_connected",
        st.stream_up, "synced", st.synced, "resyncing", st.resyncing,
        "counters", "notifies",
        (json_int_t)st.notifies, "notifies_applied",
        (json_int_t)st.notifies_applied, "notifies_ignored",
        (json_int_t)st.notifies_ignored, "fetches_ok",
        (json_int_t)st.fetches_ok, "fetches_failed",
        (json_int_t)st.fetches_failed, "fetches_pending",
        (json_int_t)st.fetches_pending, "resyncs", (json_int_t)st.resyncs,
        "events_dropped", (json_int_t)cra_events_dropped());
    if (doc == NULL) {
        *err = CR_ENOMEM;
        return NULL;
    }
    cra_fetcher_stats fs;
    if (cra_fetcher_stats_get(rt, QUERY_MS, &fs) == 0) { /* best effort */
        json_object_set_new(doc, "fetcher",
                            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
                                      "requested", (json_int_t)fs.requested,
                                      "coalesced", (json_int_t)fs.coalesced,
                                      "sent", (json_int_t)fs.sent, "inflight",
                                      (json_int_t)fs.inflight, "inflight_max",
                                      (json_int_t)fs.inflight_max, "queued",
                                      (json_int_t)fs.queued));
    }
    json_t *cs = json_object_get(doc, "config_service");
    json_object_set_new(cs, "request_url",
                        o->request_url ? json_string(o->request_url)
                                       : json_null());
    json_object_set_new(cs, "notify_url",
                        o->notify_url ? json_string(o->notify_url)
                                      : json_null());
    return doc;
}

static const char *
exit_kind_name(cr_exit_kind k) {
    switch (k) {
    case CR_EXIT_NORMAL:
        return "normal";
    case CR_EXIT_SHUTDOWN:
        return "shutdown";
    case CR_EXIT_ERROR:
        return "error";
    case CR_EXIT_NOPROC:
        return "noproc";
    }
    return "?";
}

static json_t *
flat_actor(const cr_actor_info *a) {
    return json_pack(
        "{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "id",
        (json_int_t)a->id, "name", a->name, "kind", a->kind, "state",
        cr_state_name(a->state), "msgs_in", (json_int_t)a->msgs_in, "msgs_out",
        (json_int_t)a->msgs_out, "depth", (json_int_t)a->depth, "high_water",
        (json_int_t)a->high_water, "capacity", (json_int_t)a->capacity);
}

/* tree_node describes actor id (0 = none) called name; ci is its entry in
 * its supervisor's answer (NULL for the root). */
static json_t *
tree_node(cr_rt *rt, const char *name, cr_id id, const cr_sup_child_info *ci,
          int depth) {
    cr_actor_info ai;
    bool have = id != CR_NOBODY && cr_actor_info_get(rt, id, &ai) == 0;
    const char *state;
    if (ci != NULL && (ci->state != CR_CHILD_RUNNING || !have)) {
        state = cr_child_state_name(ci->state);
    } else if (have) {
        state = cr_state_name(ai.state);
    } else {
        state = "exited";
    }
    json_t *n = json_pack(
        "{s:s, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", name,
        "id", (json_int_t)id, "kind", have ? ai.kind : "", "state", state,
        "restarts", (json_int_t)(ci ? ci->restarts : 0), "depth",
        (json_int_t)(have ? ai.depth : 0), "high_water",
        (json_int_t)(have ? ai.high_water : 0), "capacity",
        (json_int_t)(have ? ai.capacity : 0), "msgs_in",
        (json_int_t)(have ? ai.msgs_in : 0), "msgs_out",
        (json_int_t)(have ? ai.msgs_out : 0), "next_delay_ms",
        (json_int_t)(ci ? ci->next_delay_ms : 0));
    if (n == NULL) {
        return NULL;
    }
    if (ci != NULL && (ci->last_exit.kind != CR_EXIT_NORMAL ||
                       ci->last_exit.text[0] != '\0')) {
        json_t *e = json_pack("{s:s, s:i, s:s}", "kind",
                              exit_kind_name(ci->last_exit.kind), "code",
                              ci->last_exit.code, "text", ci->last_exit.text);
        json_object_set_new(n, "last_exit", e ? e : json_null());
    } else {
        json_object_set_new(n, "last_exit", json_null());
    }
    if (have && strcmp(ai.kind, "supervisor") == 0 && depth < MAX_DEPTH) {
        cr_sup_child_info *kids = NULL;
        size_t nk = 0;
        json_t *arr = json_array();
        if (cr_sup_which_children(rt, id, &kids, &nk) == 0) {
            for (size_t i = 0; i < nk; i++) {
                json_t *c = tree_node(rt, kids[i].name, kids[i].id, &kids[i],
                                      depth + 1);
                if (c != NULL) {
                    json_array_append_new(arr, c);
                }
            }
            free(kids);
        }
        json_object_set_new(n, "children", arr ? arr : json_array());
    }
    return n;
}

json_t *
cra_monitor_actors_doc(cr_rt *rt, const char *root_name) {
    cr_id root = cr_whereis(rt, root_name);
    json_t *tree =
        root != CR_NOBODY ? tree_node(rt, root_name, root, NULL, 0) : NULL;
    size_t n = cr_snapshot(rt, NULL, 0);
    cr_actor_info *v = calloc(n + 8, sizeof(*v));
    json_t *all = json_array();
    if (v != NULL && all != NULL) {
        size_t m = cr_snapshot(rt, v, n + 8);
        for (size_t i = 0; i < m && i < n + 8; i++) {
            json_t *a = flat_actor(&v[i]);
            if (a != NULL) {
                json_array_append_new(all, a);
            }
        }
    }
    free(v);
    return json_pack("{s:o, s:o}", "tree", tree ? tree : json_null(), "actors",
                     all ? all : json_array());
}

json_t *
cra_monitor_workspaces_doc(const json_t *states, const json_t *fmws) {
    json_t *out = json_object();
    json_t *doc = json_pack(
        "{s:I, s:o}", "version",
        (json_int_t)json_integer_value(json_object_get(states, "version")),
        "workspaces", out);
    if (doc == NULL) {
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fmws, k, v) {
        json_object_set_new(
            out, k,
            json_pack(
                "{s:I, s:I, s:b, s:{}}", "version",
                (json_int_t)json_integer_value(json_object_get(v, "version")),
                "flows",
                (json_int_t)json_integer_value(json_object_get(v, "flows")),
                "fetching", json_is_true(json_object_get(v, "fetching")),
                "states"));
    }
    json_object_foreach((json_t *)json_object_get(states, "workspaces"), k,
                        v) {
        json_t *e = json_object_get(out, k);
        if (e == NULL) {
            /* known to the handlers but not (yet) to the flow manager */
            json_int_t n = 0;
            const char *sk;
            json_t *sv;
            json_object_foreach(v, sk, sv) {
                n += json_integer_value(sv);
            }
            e = json_pack("{s:n, s:I, s:b, s:{}}", "version", "flows", n,
                          "fetching", 0, "states");
            if (e == NULL) {
                continue;
            }
            json_object_set_new(out, k, e);
        }
        json_object_update(json_object_get(e, "states"), v);
    }
    return doc;
}

static char *
error_code_reply(const char *what, int err) {
    char buf[160];
    snprintf(buf, sizeof(buf), "%s unavailable: %s", what, cr_strerror(err));
    return error_reply(buf);
}

/* flows_reply answers `flows` and `flows N`: the directory's text as
 * cra_receiver_flows_text writes it, no jansson document on the way. */
static char *
flows_reply(const cra_monitor_opts *o, size_t limit) {
    char *text = NULL;
    size_t len = 0;
    int rv = cra_receiver_flows_text(o->recv, QUERY_MS, limit, &text, &len);
    if (text == NULL) {
        return error_code_reply("flow directory", rv ? rv : CR_ENOMEM);
    }
    return with_newline(text, len);
}

static char *
workspaces_reply(cr_rt *rt, const cra_monitor_opts *o) {
    json_t *flows = NULL;
    int err = cra_receiver_workspace_states(o->recv, QUERY_MS, &flows);
    if (flows == NULL) {
        return error_code_reply("flow directory", err ? err : CR_ENOMEM);
    }
    char *text = NULL;
    json_t *fmws = NULL;
    int rv = cra_flow_manager_workspaces(rt, QUERY_MS, &text);
    if (rv == 0) {
        fmws = json_loads(text, 0, NULL);
        free(text);
    }
    if (fmws == NULL) {
        json_decref(flows);
        return error_code_reply("flow manager", rv ? rv : CR_ENOMEM);
    }
    json_t *doc = cra_monitor_workspaces_doc(flows, fmws);
    json_decref(flows);
    json_decref(fmws);
    return dump(doc);
}

/* metrics_text computes the Prometheus text; parts that cannot be had
 * (an actor restarting) are left out. */
static char *
metrics_text(cr_rt *rt, const cra_monitor_opts *o) {
    int err = 0;
    json_t *st = status_doc(rt, o, &err);
    json_t *fl = NULL; /* a directory of one flow: its counts are shown */
    cra_receiver_flows_doc(o->recv, QUERY_MS, 1, &fl);
    json_t *ac = cra_monitor_actors_doc(rt, "receiver");
    char *text = cra_metrics_text(st, ac, fl, cra_events_dropped());
    json_decref(st);
    json_decref(fl);
    json_decref(ac);
    return text;
}

static const char *const commands[] = {"status",     "actors",  "flows",
                                       "flows N",    "workspaces", "metrics",
                                       "help"};

char *
cra_monitor_answer(cr_rt *rt, const cra_monitor_opts *o, const char *cmd,
                   size_t len) {
    /* trim surrounding whitespace and NULs (nngcat --data sends no
     * newline, shells and some clients do) */
    while (len > 0 &&
           (isspace((unsigned char)cmd[len - 1]) || cmd[len - 1] == '\0')) {
        len--;
    }
    while (len > 0 && isspace((unsigned char)cmd[0])) {
        cmd++;
        len--;
    }
    if (len == 0) {
        return error_reply("empty command; try: help");
    }
    if (len > CRA_MONITOR_MAX_COMMAND) {
        CR_WARN(COMP, "oversized command (%zu bytes) refused", len);
        return error_reply("command too long; try: help");
    }
    char c[CRA_MONITOR_MAX_COMMAND + 1];
    memcpy(c, cmd, len);
    c[len] = '\0';
    if (strlen(c) != len) {
        return error_reply("unknown command; try: help");
    }
    int err = 0;
    if (strcmp(c, "status") == 0) {
        json_t *doc = status_doc(rt, o, &err);
        return doc ? dump(doc) : error_code_reply("flow manager", err);
    }
    if (strcmp(c, "flows") == 0) {
        return flows_reply(o, 0);
    }
    if (strncmp(c, "flows ", 6) == 0) {
        /* flows N: the N least advanced flows and the counts (top) */
        char *end;
        unsigned long lim = strtoul(c + 6, &end, 10);
        if (c[6] < '1' || c[6] > '9' || *end != '\0' || lim > 1000000) {
            return error_reply("flows N: N is a count from 1 to 1000000");
        }
        return flows_reply(o, (size_t)lim);
    }
    if (strcmp(c, "actors") == 0) {
        return dump(cra_monitor_actors_doc(rt, "receiver"));
    }
    if (strcmp(c, "workspaces") == 0) {
        return workspaces_reply(rt, o);
    }
    if (strcmp(c, "metrics") == 0) {
        return metrics_text(rt, o);
    }
    if (strcmp(c, "help") == 0) {
        json_t *arr = json_array();
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
            json_array_append_new(arr, json_string(commands[i]));
        }
        return dump(json_pack("{s:o}", "commands", arr));
    }
    CR_WARN(COMP, "unknown command (%zu bytes) refused", len);
    return error_reply("unknown command; try: help");
}

/* ---- the actor -------------------------------------------------------- */

enum { S_RECV = 0, S_SEND = 1, S_CLOSED = 2 };

typedef struct mon {
    const cra_monitor_opts *o;
    cr_rt *rt;
    cr_id self;
    bool ctx_open;
    nng_ctx nctx;
    nng_aio *aio;
    atomic_int state;
} mon;

static void
aio_cb(void *arg) {
    mon *m = arg;
    int rv = nng_aio_result(m->aio);
    int st = atomic_load(&m->state);
    if (st == S_CLOSED || rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
        if (st == S_SEND && rv != 0) {
            nng_msg_free(nng_aio_get_msg(m->aio));
        }
        return;
    }
    if (st == S_SEND) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(m->aio));
        }
        atomic_store(&m->state, S_RECV);
        nng_ctx_recv(m->nctx, m->aio);
        return;
    }
    if (rv != 0) {
        nng_ctx_recv(m->nctx, m->aio);
        return;
    }
    nng_msg *req = nng_aio_get_msg(m->aio);
    cr_msg *cm = cr_msg_new_bytes(MON_REQ, nng_msg_body(req), nng_msg_len(req));
    nng_msg_free(req);
    if (cm == NULL || cr_send(m->rt, CR_NOBODY, m->self, cm) != 0) {
        cr_msg_free(cm);
        nng_ctx_recv(m->nctx, m->aio); /* drop it; the requester retries */
    }
}

static void
refresh_metrics(mon *m) {
    uint64_t t0 = cr_now_ms();
    char *text = metrics_text(m->rt, m->o);
    if (text != NULL) {
        cra_metrics_http_set(m->o->ep->http, text);
        free(text);
    }
    uint64_t took = cr_now_ms() - t0;
    uint64_t next = took * 10 > 1000 ? took * 10 : 1000;
    if (cr_timer_after(m->rt, m->self, next, TAG_METRICS, NULL) != 0) {
        CR_WARN(COMP, "cannot arm the metrics timer; cache goes stale");
    }
}

static int
m_init(cr_ctx *ctx, void *arg, void **state) {
    const cra_monitor_opts *o = arg;
    mon *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return CR_ENOMEM;
    }
    *state = m;
    m->o = o;
    m->rt = cr_ctx_rt(ctx);
    m->self = cr_self(ctx);
    atomic_store(&m->state, S_CLOSED);
    if (cra_monitor_has_metrics(o->ep) &&
        cr_timer_after(m->rt, m->self, 0, TAG_METRICS, NULL) != 0) {
        return CR_ENOMEM;
    }
    if (!cra_monitor_has_query(o->ep)) {
        return 0;
    }
    int rv;
    if ((rv = nng_ctx_open(&m->nctx, o->ep->rep)) != 0) {
        (cr_fail)(ctx, CR_ENNG, "monitor context: %s", nng_strerror(rv));
        return CR_ENNG;
    }
    m->ctx_open = true;
    if ((rv = nng_aio_alloc(&m->aio, aio_cb, m)) != 0) {
        return CR_ENOMEM;
    }
    atomic_store(&m->state, S_RECV);
    nng_ctx_recv(m->nctx, m->aio);
    return 0;
}

static int
m_handle(cr_ctx *ctx, void *state, const cr_msg *cm) {
    mon *m = state;
    if (cr_msg_type(cm) == CR_MSG_TIMER) {
        uint64_t tid, tag;
        if (cr_timer_decode(cm, &tid, &tag) == 0 && tag == TAG_METRICS) {
            refresh_metrics(m);
        }
        return 0;
    }
    if (cr_msg_type(cm) != MON_REQ || m->aio == NULL) {
        return 0;
    }
    char *text =
        cra_monitor_answer(m->rt, m->o, cr_msg_data(cm), cr_msg_len(cm));
    nng_msg *rep = NULL;
    if (text == NULL) {
        text = strdup("{\"error\":\"out of memory\"}\n");
    }
    if (text == NULL || nng_msg_alloc(&rep, 0) != 0 ||
        nng_msg_append(rep, text, strlen(text)) != 0) {
        free(text);
        if (rep != NULL) {
            nng_msg_free(rep);
        }
        nng_ctx_recv(m->nctx, m->aio);
        return 0;
    }
    free(text);
    atomic_store(&m->state, S_SEND);
    nng_aio_set_msg(m->aio, rep);
    nng_ctx_send(m->nctx, m->aio);
    return 0;
}

static void
m_terminate(cr_ctx *ctx, void *state, const cr_exit *why) {
    mon *m = state;
    if (m == NULL) {
        return;
    }
    if (m->aio != NULL) {
        nng_aio_stop(m->aio);
    }
    atomic_store(&m->state, S_CLOSED);
    if (m->ctx_open) {
        nng_ctx_close(m->nctx);
    }
    if (m->aio != NULL) {
        nng_aio_free(m->aio);
    }
    free(m);
}

const cr_behaviour cra_monitor_behaviour = {
    .kind = "monitor",
    .init = m_init,
    .handle = m_handle,
    .terminate = m_terminate,
};
