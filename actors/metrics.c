/*
 * metrics.c - Prometheus text from the monitor's JSON documents, and the
 * HTTP /metrics endpoint.
 *
 * The renderer reads the same documents the query endpoint answers with
 * (status, actors, flows), so the two views cannot disagree and the
 * renderer is a pure function the tests drive with hand-made JSON.
 *
 * The HTTP side: nng calls the handler on one of its own threads, where
 * nothing may block; the handler copies the cached text (a mutex held for
 * a memcpy) into the response and completes at once. The cache lives in
 * the handler's data and is freed by the handler's destructor, which nng
 * runs once no connection can call the handler any more.
 */
#include "metrics.h"

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/actor.h"
#include "cfgrecv/log.h"

#define COMP "metrics"

/* ---- a growing text buffer ------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->failed) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap - b->len <= (size_t)n) {
            ncap *= 2;
        }
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
}

/* sb_label appends a label value escaped as the exposition format wants
 * (backslash, double quote and newline). */
static void
sb_label(sbuf *b, const char *v) {
    for (const char *c = v; *c != '\0'; c++) {
        if (*c == '\\') {
            sb_printf(b, "\\\\");
        } else if (*c == '"') {
            sb_printf(b, "\\\"");
        } else if (*c == '\n') {
            sb_printf(b, "\\n");
        } else {
            sb_printf(b, "%c", *c);
        }
    }
}

static void
header(sbuf *b, const char *name, const char *type, const char *help) {
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static json_int_t
geti(const json_t *o, const char *k) {
    return json_integer_value(json_object_get(o, k));
}

/* ---- the renderer ---------------------------------------------------- */

static const char *const flow_states[] = {"starting", "running", "backoff",
                                          "failed", "stopping"};
#define NSTATES (sizeof(flow_states) / sizeof(flow_states[0]))

static void
render_flows(sbuf *b, const json_t *flows) {
    json_int_t counts[NSTATES] = {0};
    json_int_t other = 0;
    const json_t *states = json_object_get(flows, "states");
    if (states != NULL) { /* a bounded directory: the counts are given */
        for (size_t i = 0; i < NSTATES; i++) {
            counts[i] = json_integer_value(json_object_get(states,
                                                           flow_states[i]));
        }
    }
    const char *wk, *fk;
    json_t *wv, *fv;
    json_object_foreach((json_t *)json_object_get(flows, "workspaces"), wk,
                        wv) {
        if (states != NULL) {
            break;
        }
        json_object_foreach(wv, fk, fv) {
            const char *st = json_string_value(json_object_get(fv, "state"));
            size_t i = 0;
            while (i < NSTATES && (st == NULL || strcmp(st, flow_states[i]))) {
                i++;
            }
            if (i < NSTATES) {
                counts[i]++;
            } else {
                other++;
            }
        }
    }
    header(b, "tg_gateway_active_flow_count", "gauge",
           "Flows running in every flow handler.");
    sb_printf(b, "tg_gateway_active_flow_count %lld\n", (long long)counts[1]);
    header(b, "cfgrecv_flows", "gauge",
           "Flows by state (the least advanced handler's state).");
    for (size_t i = 0; i < NSTATES; i++) {
        sb_printf(b, "cfgrecv_flows{state=\"%s\"} %lld\n", flow_states[i],
                  (long long)counts[i]);
    }
    if (other > 0) {
        sb_printf(b, "cfgrecv_flows{state=\"other\"} %lld\n", (long long)other);
    }
}

static void
render_status(sbuf *b, const json_t *st) {
    const json_t *counts = json_object_get(st, "counts");
    const json_t *cs = json_object_get(st, "config_service");
    const json_t *c = json_object_get(st, "counters");
    header(b, "cfgrecv_config_version", "gauge",
           "Highest config version seen.");
    sb_printf(b, "cfgrecv_config_version %lld\n",
              (long long)geti(st, "version"));
    header(b, "cfgrecv_uptime_seconds", "gauge", "Seconds since start.");
    sb_printf(b, "cfgrecv_uptime_seconds %.3f\n",
              json_number_value(json_object_get(st, "uptime_s")));
    header(b, "cfgrecv_workspaces", "gauge", "Workspaces known.");
    sb_printf(b, "cfgrecv_workspaces %lld\n",
              (long long)geti(counts, "workspaces"));
    header(b, "cfgrecv_config_service_connected", "gauge",
           "1 while the notify stream of the config service is connected.");
    sb_printf(b, "cfgrecv_config_service_connected %d\n",
              json_is_true(json_object_get(cs, "notify_connected")) ? 1 : 0);
    header(b, "cfgrecv_synced", "gauge",
           "1 once the first full resync completed.");
    sb_printf(b, "cfgrecv_synced %d\n",
              json_is_true(json_object_get(cs, "synced")) ? 1 : 0);
    header(b, "cfgrecv_notifies_total", "counter",
           "Config notifies received, applied and ignored.");
    sb_printf(b, "cfgrecv_notifies_total{result=\"received\"} %lld\n",
              (long long)geti(c, "notifies"));
    sb_printf(b, "cfgrecv_notifies_total{result=\"applied\"} %lld\n",
              (long long)geti(c, "notifies_applied"));
    sb_printf(b, "cfgrecv_notifies_total{result=\"ignored\"} %lld\n",
              (long long)geti(c, "notifies_ignored"));
    header(b, "cfgrecv_fetches_total", "counter", "Workspace fetches.");
    sb_printf(b, "cfgrecv_fetches_total{result=\"ok\"} %lld\n",
              (long long)geti(c, "fetches_ok"));
    sb_printf(b, "cfgrecv_fetches_total{result=\"failed\"} %lld\n",
              (long long)geti(c, "fetches_failed"));
    header(b, "cfgrecv_fetches_pending", "gauge",
           "Workspaces queued or being fetched.");
    sb_printf(b, "cfgrecv_fetches_pending %lld\n",
              (long long)geti(c, "fetches_pending"));
    header(b, "cfgrecv_resyncs_total", "counter", "Full resyncs.");
    sb_printf(b, "cfgrecv_resyncs_total %lld\n", (long long)geti(c, "resyncs"));
}

/* walk emits one sample per supervised child (the root has no
 * supervisor: it is shown with supervisor=""). what: 0 restarts, 1 up. */
static void
walk(sbuf *b, const json_t *node, const char *sup, int what) {
    const char *name = json_string_value(json_object_get(node, "name"));
    if (name == NULL) {
        return;
    }
    sb_printf(b, "%s{supervisor=\"",
              what == 0 ? "cfgrecv_actor_restarts_total" : "cfgrecv_actor_up");
    sb_label(b, sup);
    sb_printf(b, "\",actor=\"");
    sb_label(b, name);
    if (what == 0) {
        sb_printf(b, "\"} %lld\n", (long long)geti(node, "restarts"));
    } else {
        const char *st = json_string_value(json_object_get(node, "state"));
        sb_printf(b, "\"} %d\n", st != NULL && strcmp(st, "running") == 0);
    }
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(node, "children"), i, ch) {
        walk(b, ch, name, what);
    }
}

static void
actor_label(sbuf *b, const json_t *a) {
    const char *name = json_string_value(json_object_get(a, "name"));
    sb_printf(b, "{actor=\"");
    if (name != NULL && name[0] != '\0') {
        sb_label(b, name);
    } else {
        sb_printf(b, "#%lld", (long long)geti(a, "id"));
    }
    sb_printf(b, "\"}");
}

static void
render_actors(sbuf *b, const json_t *doc) {
    const json_t *tree = json_object_get(doc, "tree");
    if (json_is_object(tree)) {
        header(b, "cfgrecv_actor_restarts_total", "counter",
               "Restarts of each supervised actor.");
        walk(b, tree, "", 0);
        header(b, "cfgrecv_actor_up", "gauge",
               "1 while a supervised actor is running.");
        walk(b, tree, "", 1);
    }
    static const struct {
        const char *metric, *key, *type, *help;
    } per[] = {
        {"cfgrecv_actor_mailbox_depth", "depth", "gauge",
         "Envelopes queued in an actor's mailbox."},
        {"cfgrecv_actor_mailbox_high_water", "high_water", "gauge",
         "Most envelopes ever queued in an actor's mailbox."},
        {"cfgrecv_actor_messages_in_total", "msgs_in", "counter",
         "Envelopes an actor handled."},
        {"cfgrecv_actor_messages_out_total", "msgs_out", "counter",
         "Envelopes an actor sent."},
    };
    const json_t *all = json_object_get(doc, "actors");
    for (size_t k = 0; k < sizeof(per) / sizeof(per[0]); k++) {
        header(b, per[k].metric, per[k].type, per[k].help);
        size_t i;
        json_t *a;
        json_array_foreach(all, i, a) {
            sb_printf(b, "%s", per[k].metric);
            actor_label(b, a);
            sb_printf(b, " %lld\n", (long long)geti(a, per[k].key));
        }
    }
}

char *
cra_metrics_text(const json_t *status, const json_t *actors,
                 const json_t *flows, uint64_t events_dropped) {
    sbuf b = {0};
    if (flows != NULL) {
        render_flows(&b, flows);
    }
    if (status != NULL) {
        render_status(&b, status);
    }
    if (actors != NULL) {
        render_actors(&b, actors);
    }
    header(&b, "cfgrecv_events_dropped_total", "counter",
           "Events that could not be delivered to the event stream.");
    sb_printf(&b, "cfgrecv_events_dropped_total %llu\n",
              (unsigned long long)events_dropped);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- HTTP ------------------------------------------------------------- */

typedef struct cache {
    pthread_mutex_t mu;
    char *text; /* protected by mu */
} cache;

struct cra_metrics_http {
    nng_http_server *srv;
    cache *c; /* freed by the handler's destructor (cache_free) */
};

static void
cache_free(void *p) {
    cache *c = p;
    pthread_mutex_destroy(&c->mu);
    free(c->text);
    free(c);
}

/* http_cb runs on an nng thread: copy the cached text, never block. */
static void
http_cb(nng_aio *aio) {
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    cache *c = nng_http_handler_get_data(h);
    nng_http_res *res;
    int rv;
    if ((rv = nng_http_res_alloc(&res)) != 0) {
        nng_aio_finish(aio, rv);
        return;
    }
    pthread_mutex_lock(&c->mu);
    rv = nng_http_res_copy_data(res, c->text, strlen(c->text));
    pthread_mutex_unlock(&c->mu);
    if (rv == 0) {
        rv = nng_http_res_set_header(res, "Content-Type",
                                     "text/plain; version=0.0.4; "
                                     "charset=utf-8");
    }
    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_http_res_set_status(res, NNG_HTTP_STATUS_OK);
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

int
cra_metrics_http_start(const char *hostport, cra_metrics_http **out) {
    char url[300];
    if (hostport == NULL || strlen(hostport) > 256 ||
        strchr(hostport, '/') != NULL) {
        return CR_EINVAL;
    }
    snprintf(url, sizeof(url), "http://%s/metrics", hostport);
    cra_metrics_http *m = calloc(1, sizeof(*m));
    cache *c = calloc(1, sizeof(*c));
    nng_url *u = NULL;
    nng_http_handler *h = NULL;
    int rv = CR_ENOMEM;
    if (m == NULL || c == NULL ||
        (c->text = strdup("# cfgrecv: metrics not computed yet\n")) == NULL) {
        goto fail;
    }
    pthread_mutex_init(&c->mu, NULL);
    if (nng_url_parse(&u, url) != 0 || u->u_port == NULL ||
        strcmp(u->u_port, "0") == 0) {
        rv = CR_EINVAL;
        goto fail_mu;
    }
    int nrv;
    if ((nrv = nng_http_server_hold(&m->srv, u)) != 0) {
        goto fail_nng;
    }
    if ((nrv = nng_http_handler_alloc(&h, "/metrics", http_cb)) != 0) {
        goto fail_nng;
    }
    nng_http_handler_collect_body(h, true, 0);
    if ((nrv = nng_http_handler_set_data(h, c, cache_free)) != 0) {
        goto fail_nng;
    }
    m->c = c; /* from here on the handler frees c */
    if ((nrv = nng_http_server_add_handler(m->srv, h)) != 0) {
        nng_http_handler_free(h); /* frees c */
        h = NULL;
        goto fail_nng;
    }
    h = NULL; /* the server owns it */
    if ((nrv = nng_http_server_start(m->srv)) != 0) {
        goto fail_nng;
    }
    nng_url_free(u);
    CR_INFO(COMP, "metrics served on http://%s/metrics", hostport);
    *out = m;
    return 0;
fail_nng:
    CR_ERROR(COMP, "cannot serve http://%s/metrics: %s", hostport,
             nng_strerror(nrv));
    if (h != NULL) {
        nng_http_handler_free(h); /* frees c once set_data succeeded */
    }
    if (m->c == NULL) {
        cache_free(c);
    }
    if (m->srv != NULL) {
        nng_http_server_release(m->srv);
    }
    nng_url_free(u);
    free(m);
    return CR_ENNG;
fail_mu:
    nng_url_free(u);
    cache_free(c);
    free(m);
    return rv;
fail:
    if (c != NULL) {
        free(c->text);
    }
    free(c);
    free(m);
    return rv;
}

void
cra_metrics_http_set(cra_metrics_http *h, const char *text) {
    char *copy = strdup(text);
    if (copy == NULL) {
        return;
    }
    pthread_mutex_lock(&h->c->mu);
    char *old = h->c->text;
    h->c->text = copy;
    pthread_mutex_unlock(&h->c->mu);
    free(old);
}

void
cra_metrics_http_stop(cra_metrics_http *h) {
    if (h == NULL) {
        return;
    }
    nng_http_server_stop(h->srv);
    nng_http_server_release(h->srv);
    free(h);
}
