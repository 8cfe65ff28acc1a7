/*
 * receiver.c - assembles the receiver's supervision tree and answers the
 * library-level queries (status, the merged flow directory).
 */
#include "receiver.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/log.h"
#include "cfgrecv/supervisor.h"
#include "fetcher.h"
#include "flow_dir.h"
#include "flow_manager.h"
#include "handler_actor.h"
#include "events_actor.h"
#include "monitor.h"
#include "notify_consumer.h"
#include "recv_msgs.h"

#define COMP "receiver"
#define MAX_HANDLERS CRA_FLOW_DIR_MAX_HANDLERS

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

typedef struct dir_query {
    cra_flow_info *v[MAX_HANDLERS];
    size_t n[MAX_HANDLERS];
    uint64_t version;
    cra_flow_dir *dir; /* NULL without memory */
} dir_query;

/* dir_ask asks every handler for its flows and merges them (flow_dir.h).
 * Returns 0, or the error of a handler that did not answer (its flows are
 * left out); free q with dir_done either way. */
static int
dir_ask(cra_receiver *r, int timeout_ms, dir_query *q)
{
    memset(q, 0, sizeof(*q));
    cra_recv_status st = {0};
    cra_flow_manager_status(r->rt, timeout_ms, &st); /* version: best effort */
    q->version = st.version;
    int rv = 0;
    for (size_t i = 0; i < r->nhandlers; i++) {
        char name[96];
        cra_handler_actor_name(r->handlers[i], name, sizeof(name));
        cr_id h = cr_whereis(r->rt, name);
        int e = h == CR_NOBODY ? CR_ENOENT
                               : cra_handler_query(r->rt, h, timeout_ms,
                                                   &q->v[i], &q->n[i]);
        if (e != 0) {
            CR_WARN(COMP, "handler %s did not answer: %s",
                    r->handlers[i]->name, cr_strerror(e));
            rv = e;
        }
    }
    q->dir = cra_flow_dir_merge(r->handler_names, q->v, q->n, r->nhandlers);
    return rv;
}

static void
dir_done(cra_receiver *r, dir_query *q)
{
    cra_flow_dir_free(q->dir);
    for (size_t i = 0; i < r->nhandlers; i++) {
        cra_flow_info_free(q->v[i], q->n[i]);
    }
}

int
cra_receiver_flows_text(cra_receiver *r, int timeout_ms, size_t limit,
                        char **out, size_t *len)
{
    dir_query q;
    int rv = dir_ask(r, timeout_ms, &q);
    *out = q.dir ? cra_flow_dir_text(q.dir, q.version, limit, len) : NULL;
    dir_done(r, &q);
    return *out == NULL ? CR_ENOMEM : rv;
}

int
cra_receiver_flows_json(cra_receiver *r, int timeout_ms, char **out)
{
    return cra_receiver_flows_text(r, timeout_ms, 0, out, NULL);
}

int
cra_receiver_flows_doc(cra_receiver *r, int timeout_ms, size_t limit,
                       json_t **out)
{
    char *text = NULL;
    size_t len = 0;
    int rv = cra_receiver_flows_text(r, timeout_ms, limit, &text, &len);
    *out = text ? json_loadb(text, len, 0, NULL) : NULL;
    free(text);
    return *out == NULL && rv == 0 ? CR_ENOMEM : rv;
}

int
cra_receiver_workspace_states(cra_receiver *r, int timeout_ms, json_t **out)
{
    dir_query q;
    int rv = dir_ask(r, timeout_ms, &q);
    json_t *ws = q.dir ? cra_flow_dir_workspaces(q.dir) : NULL;
    *out = ws ? json_pack("{s:I, s:o}", "version", (json_int_t)q.version,
                          "workspaces", ws)
              : NULL;
    dir_done(r, &q);
    return *out == NULL ? CR_ENOMEM : rv;
}
