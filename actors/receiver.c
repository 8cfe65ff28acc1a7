/*
 * receiver.c - assembles the receiver's supervision tree and answers the
 * library-level queries (status, the merged flow directory).
 */
#include "receiver.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfgrecv/log.h"
#include "cfgrecv/supervisor.h"
#include "fetcher.h"
#include "flow_manager.h"
#include "handler_actor.h"
#include "events.h"
#include "events_actor.h"
#include "monitor.h"
#include "notify_consumer.h"
#include "recv_msgs.h"
#include "strmap.h"

#define COMP "receiver"
#define MAX_HANDLERS 16

struct cra_receiver {
    cr_rt *rt;
    cr_id root;
    char *request_url;
    char *notify_url;
    cra_fetcher_opts fetch;
    cra_fetch_lane lane; /* fetcher <-> flow manager; outlives both */
    cra_fm_tombstones tombstones; /* outlive flow-manager restarts */
    cra_notify_opts notify;
    cra_flow_manager_opts fm;
    cra_monitor_opts mon;
    cra_events_opts events;
    cra_monitor_endpoints *ep; /* monitoring sockets; NULL = none */
    const cra_flow_handler *handlers[MAX_HANDLERS];
    const char *handler_names[MAX_HANDLERS];
    const char *fm_order[MAX_HANDLERS]; /* the same, directory last */
    size_t nhandlers;
};

/* receiver_free releases what the receiver owns, after every actor using
 * it has stopped; r may be partly set up (calloc'd, lane and tombstones
 * initialised). */
static void
receiver_free(cra_receiver *r)
{
    cra_monitor_close(r->ep);
    cra_fetch_lane_fini(&r->lane);
    cra_fm_tombstones_fini(&r->tombstones);
    free(r->request_url);
    free(r->notify_url);
    free(r);
}

/* A permanent, registered child (of the root or the handler supervisor). */
static cr_child_spec
permanent(const char *name, const cr_behaviour *b, void *arg,
          uint32_t shutdown_timeout_ms)
{
    return (cr_child_spec){
        .name = name,
        .behaviour = b,
        .arg = arg,
        .restart = CR_RESTART_PERMANENT,
        .shutdown_timeout_ms = shutdown_timeout_ms,
        .register_name = true,
    };
}

int
cra_receiver_start(cr_rt *rt, const cra_receiver_opts *o, cra_receiver **out)
{
    if (o->request_url == NULL || o->notify_url == NULL ||
        o->nhandlers + 1 > MAX_HANDLERS) {
        return CR_EINVAL;
    }
    int rv;
    cra_receiver *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return CR_ENOMEM;
    }
    r->rt = rt;
    cra_fetch_lane_init(&r->lane);
    r->request_url = strdup(o->request_url);
    r->notify_url = strdup(o->notify_url);
    if (cra_fm_tombstones_init(&r->tombstones) != 0 ||
        r->request_url == NULL || r->notify_url == NULL) {
        goto nomem;
    }
    if (o->monitor_url != NULL || o->events_url != NULL ||
        o->metrics_listen != NULL) {
        cra_monitor_cfg mc = {
            .url = o->monitor_url,
            .events_url = o->events_url,
            .metrics_listen = o->metrics_listen,
            .ipc_mode = o->monitor_ipc_mode,
            .allow_remote = o->monitor_allow_remote,
            .query_optional = o->monitor_optional,
            .events_optional = o->events_optional,
        };
        if ((rv = cra_monitor_open(&mc, &r->ep)) != 0) {
            goto fail;
        }
    }
    r->mon = (cra_monitor_opts){
        .ep = r->ep,
        .recv = r,
        .started_ms = cr_now_ms(),
        .request_url = r->request_url,
        .notify_url = r->notify_url,
    };
    r->events = (cra_events_opts){.ep = r->ep, .root_name = "receiver"};
    r->handlers[r->nhandlers++] = &cra_flowdir_handler;
    for (size_t i = 0; i < o->nhandlers; i++) {
        r->handlers[r->nhandlers++] = o->handlers[i];
    }
    for (size_t i = 0; i < r->nhandlers; i++) {
        r->handler_names[i] = r->handlers[i]->name;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(r->handler_names[i], r->handler_names[j]) == 0) {
                CR_ERROR(COMP, "duplicate handler name %s",
                         r->handler_names[i]);
                rv = CR_EINVAL;
                goto fail;
            }
        }
    }
    r->fetch = (cra_fetcher_opts){
        .request_url = r->request_url,
        .timeout_ms = o->fetch_timeout_ms,
        .concurrency = o->fetch_concurrency,
        .max_reply = o->max_message,
        .lane = &r->lane,
    };
    r->notify = (cra_notify_opts){
        .notify_url = r->notify_url,
        .max_size = o->max_message,
    };
    /* The flow manager tells the handlers in this order: those that run
     * flows first, the flow directory (the monitor's bookkeeping) last,
     * so a change wakes the handler doing the work first (~20 us p50 on
     * a change measured in cfgrecv-bench). The supervisor still starts
     * the directory first and stops it last. */
    for (size_t i = 1; i < r->nhandlers; i++) {
        r->fm_order[i - 1] = r->handler_names[i];
    }
    r->fm_order[r->nhandlers - 1] = r->handler_names[0];
    r->fm = (cra_flow_manager_opts){
        .handlers = r->fm_order,
        .nhandlers = r->nhandlers,
        .resync_interval_ms = o->resync_interval_ms,
        .tombstones = &r->tombstones,
        .lane = &r->lane,
    };

    /* handlers supervisor */
    cr_child_spec hspecs[MAX_HANDLERS];
    char hnames[MAX_HANDLERS][CR_SUP_NAME_MAX + 1];
    for (size_t i = 0; i < r->nhandlers; i++) {
        cra_handler_actor_name(r->handlers[i], hnames[i], sizeof(hnames[i]));
        /* shutdown 60 s: it stops every flow it runs */
        hspecs[i] = permanent(hnames[i], &cra_handler_behaviour,
                              (void *)r->handlers[i], 60000);
    }
    cr_sup_opts hopts = {.name = "handlers",
                         .strategy = CR_SUP_ONE_FOR_ONE};
    cr_sup_args *hargs = NULL;
    rv = cr_sup_args_new(&hopts, hspecs, r->nhandlers, &hargs);
    if (rv != 0) {
        goto fail;
    }
    cr_child_spec specs[6];
    size_t ns = 0;
    /* shutdown 15 s: a query in progress (cr_call, 10 s at most) ends */
    if (cra_monitor_has_query(r->ep) || cra_monitor_has_metrics(r->ep)) {
        specs[ns++] = permanent("monitor", &cra_monitor_behaviour, &r->mon,
                                15000);
    }
    if (cra_monitor_has_events(r->ep)) {
        specs[ns++] = permanent("events", &cra_events_behaviour, &r->events,
                                15000);
    }
    cr_sup_child_spec(&specs[ns++], "handlers", hargs);
    specs[ns++] = permanent("fetcher", &cra_fetcher_behaviour, &r->fetch, 0);
    specs[ns++] = permanent("flow-manager", &cra_flow_manager_behaviour,
                            &r->fm, 0);
    specs[ns++] = permanent("notify", &cra_notify_behaviour, &r->notify, 0);
    cr_sup_opts ropts = {
        .name = "receiver",
        .strategy = CR_SUP_REST_FOR_ONE,
        .max_restarts = o->max_restarts,
        .within_ms = o->within_ms,
    };
    rv = cr_sup_start(rt, &ropts, specs, ns, &r->root);
    if (rv != 0) {
        cr_sup_args_free(hargs);
        goto fail;
    }
    CR_INFO(COMP, "receiver started: requests %s, notifies %s, %zu handlers",
            r->request_url, r->notify_url, r->nhandlers);
    *out = r;
    return 0;
nomem:
    rv = CR_ENOMEM;
fail:
    receiver_free(r); /* no actor of it runs */
    return rv;
}

cr_id
cra_receiver_root(const cra_receiver *r)
{
    return r->root;
}

int
cra_receiver_resync(cra_receiver *r, const char *why)
{
    cr_id fm = cr_whereis(r->rt, "flow-manager");
    if (fm == CR_NOBODY) {
        return CR_ENOENT;
    }
    cr_msg *m = rm_text_new(RM_RESYNC, why ? why : "requested");
    if (m == NULL) {
        return CR_ENOMEM;
    }
    int rv = cr_send(r->rt, CR_NOBODY, fm, m);
    if (rv != 0) {
        cr_msg_free(m);
    }
    return rv;
}

int
cra_receiver_stop(cra_receiver *r, int timeout_ms)
{
    if (r == NULL) {
        return 0;
    }
    int rv = cr_sup_stop(r->rt, r->root, timeout_ms);
    if (rv == CR_ENOENT) {
        rv = 0; /* already gone (gave up) */
    }
    receiver_free(r); /* after every actor using it stopped */
    return rv;
}

/* ---- the merged flow directory --------------------------------------- */

/* Flow states, least advanced first: a flow's merged state is the lowest
 * rank any handler reports. */
static const char *const rank_names[] = {"failed", "backoff", "starting",
                                         "stopping", "running"};

static int
state_rank(const char *s)
{
    for (int i = 0; i < 5; i++) {
        if (strcmp(s, rank_names[i]) == 0) {
            return i;
        }
    }
    return 0;
}

static void
merge_flow(json_t *wss, const char *handler, const cra_flow_info *f,
           uint64_t *since_out)
{
    json_t *ws = json_object_get(wss, f->workspace);
    if (ws == NULL) {
        ws = json_object();
        json_object_set_new(wss, f->workspace, ws);
    }
    json_t *e = json_object_get(ws, f->id);
    if (e == NULL) {
        /* "state" is replaced by the merged one (cra_receiver_flows_doc) */
        e = json_pack("{s:s, s:s, s:i, s:s, s:n, s:{}}", "state", f->state,
                      "blueprint", f->blueprint, "restarts", 0, "since", "",
                      "error", "handlers");
        json_object_set_new(ws, f->id, e);
    }
    if (f->blueprint[0] != '\0' &&
        json_string_length(json_object_get(e, "blueprint")) == 0) {
        json_object_set_new(e, "blueprint", json_string(f->blueprint));
    }
    json_int_t restarts = json_integer_value(json_object_get(e, "restarts"));
    json_object_set_new(e, "restarts", json_integer(restarts + f->restarts));
    if (f->error[0] != '\0' && json_is_null(json_object_get(e, "error"))) {
        char buf[600];
        snprintf(buf, sizeof(buf), "%s: %s", handler, f->error);
        json_object_set_new(e, "error", json_string(buf));
    }
    json_object_set_new(json_object_get(e, "handlers"), handler,
                        json_string(f->state));
    (void)since_out;
    char when[64];
    cra_rfc3339_ms(f->since_ms, when, sizeof(when));
    const char *cur = json_string_value(json_object_get(e, "since"));
    if (cur == NULL || strcmp(when, cur) > 0) {
        json_object_set_new(e, "since", json_string(when));
    }
}

/* One flow of the directory while it is merged: its least advanced state
 * over the handlers that reported it, and how many did. */
typedef struct agg {
    const char *workspace; /* the first report's, borrowed */
    int rank;
    unsigned handlers;
    bool listed;
} agg;

/* flow_key writes "WS\0ID" into buf; returns its length, 0 if too long. */
static size_t
flow_key(const char *ws, const char *id, char *buf, size_t cap)
{
    size_t wl = strlen(ws), il = strlen(id);
    if (wl + 1 + il > cap) {
        return 0;
    }
    memcpy(buf, ws, wl);
    buf[wl] = '\0';
    memcpy(buf + wl + 1, id, il);
    return wl + 1 + il;
}

int
cra_receiver_flows_doc(cra_receiver *r, int timeout_ms, size_t limit,
                       json_t **out)
{
    *out = NULL;
    cra_recv_status st = {0};
    cra_flow_manager_status(r->rt, timeout_ms, &st); /* version: best effort */
    cra_flow_info *v[MAX_HANDLERS] = {0};
    size_t n[MAX_HANDLERS] = {0}, total_infos = 0;
    int rv = 0;
    for (size_t i = 0; i < r->nhandlers; i++) {
        char name[96];
        cra_handler_actor_name(r->handlers[i], name, sizeof(name));
        cr_id h = cr_whereis(r->rt, name);
        int q = h == CR_NOBODY ? CR_ENOENT
                               : cra_handler_query(r->rt, h, timeout_ms, &v[i],
                                                   &n[i]);
        if (q != 0) {
            CR_WARN(COMP, "handler %s did not answer: %s",
                    r->handlers[i]->name, cr_strerror(q));
            rv = q;
        }
        total_infos += n[i];
    }
    /* 1. merge the states in C: a jansson object per flow costs ~10 us,
     * too much to build for 100,000 flows when a few are to be shown */
    cra_strmap *idx = cra_strmap_new();
    agg *aggs = calloc(total_infos ? total_infos : 1, sizeof(*aggs));
    size_t nflows = 0;
    char key[1024];
    if (idx == NULL || aggs == NULL) {
        rv = CR_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < r->nhandlers; i++) {
        for (size_t j = 0; j < n[i]; j++) {
            size_t kl =
                flow_key(v[i][j].workspace, v[i][j].id, key, sizeof(key));
            if (kl == 0) {
                continue;
            }
            agg *a = cra_strmap_get(idx, key, kl);
            if (a == NULL) {
                a = &aggs[nflows];
                a->workspace = v[i][j].workspace;
                a->rank = state_rank(v[i][j].state);
                if (cra_strmap_put(idx, key, kl, a, NULL) != 0) {
                    rv = CR_ENOMEM;
                    goto out;
                }
                nflows++;
            } else if (state_rank(v[i][j].state) < a->rank) {
                a->rank = state_rank(v[i][j].state);
            }
            a->handlers++;
        }
    }
    /* a flow some handler has not heard of yet is "starting" for it */
    json_int_t counts[5] = {0};
    for (size_t k = 0; k < nflows; k++) {
        if (aggs[k].handlers < r->nhandlers && state_rank("starting") <
                                                    aggs[k].rank) {
            aggs[k].rank = state_rank("starting");
        }
        counts[aggs[k].rank]++;
    }
    /* 2. the flows to list: all, or the `limit` least advanced */
    size_t listed = 0;
    for (int rank = 0; rank < 5; rank++) {
        for (size_t k = 0; k < nflows; k++) {
            if (aggs[k].rank == rank && (limit == 0 || listed < limit)) {
                aggs[k].listed = true;
                listed++;
            }
        }
    }
    /* 3. their JSON entries, merged over the handlers as before */
    json_t *doc = json_object();
    json_t *wss = json_object();
    json_object_set_new(doc, "version", json_integer((json_int_t)st.version));
    json_object_set_new(doc, "workspaces", wss);
    for (size_t i = 0; i < r->nhandlers; i++) {
        for (size_t j = 0; j < n[i]; j++) {
            size_t kl =
                flow_key(v[i][j].workspace, v[i][j].id, key, sizeof(key));
            agg *a = kl ? cra_strmap_get(idx, key, kl) : NULL;
            if (a != NULL && a->listed) {
                merge_flow(wss, r->handlers[i]->name, &v[i][j], NULL);
            }
        }
    }
    const char *wk;
    json_t *wv;
    json_object_foreach(wss, wk, wv) {
        const char *fk;
        json_t *fv;
        json_object_foreach(wv, fk, fv) {
            json_t *hs = json_object_get(fv, "handlers");
            for (size_t i = 0; i < r->nhandlers; i++) {
                if (json_object_get(hs, r->handlers[i]->name) == NULL) {
                    json_object_set_new(hs, r->handlers[i]->name,
                                        json_string("starting"));
                }
            }
            /* the merged state, "starting" for a handler yet to hear */
            const agg *a =
                cra_strmap_get(idx, key, flow_key(wk, fk, key, sizeof(key)));
            if (a != NULL) {
                json_object_set_new(fv, "state",
                                    json_string(rank_names[a->rank]));
            }
        }
    }
    if (limit != 0) {
        cra_strmap *wsn = cra_strmap_new();
        for (size_t k = 0; wsn != NULL && k < nflows; k++) {
            cra_strmap_put(wsn, aggs[k].workspace, strlen(aggs[k].workspace),
                           &aggs[k], NULL);
        }
        json_t *states = json_object();
        for (int i = 0; i < 5; i++) {
            json_object_set_new(states, rank_names[i], json_integer(counts[i]));
        }
        json_object_set_new(doc, "total", json_integer((json_int_t)nflows));
        json_object_set_new(doc, "workspace_count",
                            json_integer(wsn ? (json_int_t)cra_strmap_count(wsn)
                                             : 0));
        json_object_set_new(doc, "states", states);
        json_object_set_new(doc, "truncated", json_boolean(listed < nflows));
        cra_strmap_free(wsn, NULL);
    }
    *out = doc;
out:
    cra_strmap_free(idx, NULL);
    free(aggs);
    for (size_t i = 0; i < r->nhandlers; i++) {
        cra_flow_info_free(v[i], n[i]);
    }
    if (*out == NULL && rv == 0) {
        rv = CR_ENOMEM;
    }
    return rv;
}

int
cra_receiver_flows_json(cra_receiver *r, int timeout_ms, char **out)
{
    json_t *doc;
    *out = NULL;
    int rv = cra_receiver_flows_doc(r, timeout_ms, 0, &doc);
    if (doc == NULL) {
        return rv;
    }
    *out = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    return *out == NULL ? CR_ENOMEM : rv;
}
