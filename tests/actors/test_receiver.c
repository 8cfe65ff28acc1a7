/*
 * test_receiver.c - the whole receiver in one process, against a real
 * config service (the embedded cfgsvc, over ipc:// in a temp dir), with a
 * probe handler that records every call. Where a scenario needs notifies
 * the real service cannot produce (an old version, a storm at one
 * version, a stream that drops), the receiver listens to a publisher of
 * the test's own instead, while its fetches still go to the service.
 *
 * These are DESIGN.md's reference behaviours and "must not" cases;
 * tests/e2e/receiver_e2e.py repeats them with the real programs (cfgsvcd,
 * cfgctl, cfgrecvd, stock nngcat), all but the crashed handler actor,
 * which only a handler inside the process can provoke.
 */
/* cfgrecv headers first: criterion defines a cr_fail() macro (call ours
 * as (cr_fail)(...)), and its logging.h clashes with cfgrecv/log.h, which
 * is therefore not included here. */
#include "cfgrecv/actor.h"
#include "cfgsvc.h"
#include "cfgsvc_store.h"
#include "client.h"
#include "fetcher.h"
#include "flow_manager.h"
#include "monitor.h"
#include "notify.h"
#include "proto.h"
#include "receiver.h"
#include "server.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the probe handler ---------------------------------------------- */

#define MAXF 4096

typedef struct pflow {
    char key[160]; /* ws/id */
    int starts, updates, stops;
    int running;
    char def[256];
} pflow;

static struct {
    pthread_mutex_t mu;
    pflow f[MAXF];
    int n;
    int fail_starts; /* fail this many starts of flows named "flaky*" */
    int inits;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define MSG_CRASH (CR_MSG_USER + 900)

static pflow *
pget(const char *ws, const char *id)
{
    char key[160];
    snprintf(key, sizeof(key), "%s/%s", ws, id);
    for (int i = 0; i < P.n; i++) {
        if (strcmp(P.f[i].key, key) == 0) {
            return &P.f[i];
        }
    }
    if (P.n == MAXF) {
        return NULL;
    }
    pflow *f = &P.f[P.n++];
    snprintf(f->key, sizeof(f->key), "%s", key);
    return f;
}

static int
p_init(cr_ctx *ctx, void *arg, void **st)
{
    pthread_mutex_lock(&P.mu);
    P.inits++;
    for (int i = 0; i < P.n; i++) {
        P.f[i].running = 0; /* a restarted handler starts from nothing */
    }
    pthread_mutex_unlock(&P.mu);
    return 0;
}

static int
p_start(void *st, const cra_flow_ref *r, char *err, size_t len)
{
    int rc = CRA_OK;
    pthread_mutex_lock(&P.mu);
    pflow *f = pget(r->workspace, r->id);
    if (strncmp(r->id, "flaky", 5) == 0 && P.fail_starts > 0) {
        P.fail_starts--;
        snprintf(err, len, "probe: induced failure");
        rc = CRA_FAILED;
    } else if (f != NULL) {
        f->starts++;
        f->running = 1;
        snprintf(f->def, sizeof(f->def), "%.*s", (int)r->text_len, r->text);
    }
    pthread_mutex_unlock(&P.mu);
    return rc;
}

static int
p_update(void *st, const cra_flow_ref *r, char *err, size_t len)
{
    pthread_mutex_lock(&P.mu);
    pflow *f = pget(r->workspace, r->id);
    if (f != NULL) {
        f->updates++;
        snprintf(f->def, sizeof(f->def), "%.*s", (int)r->text_len, r->text);
    }
    pthread_mutex_unlock(&P.mu);
    return CRA_OK;
}

static int
p_stop(void *st, const cra_flow_ref *r, char *err, size_t len)
{
    pthread_mutex_lock(&P.mu);
    pflow *f = pget(r->workspace, r->id);
    if (f != NULL) {
        f->stops++;
        f->running = 0;
    }
    pthread_mutex_unlock(&P.mu);
    return CRA_OK;
}

static int
p_handle(void *st, cr_ctx *ctx, const cr_msg *m)
{
    if (cr_msg_type(m) == MSG_CRASH) {
        (cr_fail)(ctx, CR_EFAIL, "probe: asked to crash");
        return CR_EFAIL;
    }
    return 0;
}

static const cra_flow_handler probe = {
    .name = "probe",
    .init = p_init,
    .start = p_start,
    .update = p_update,
    .stop = p_stop,
    .handle = p_handle,
};

/* probe_get copies the record of ws/id (zeroed if none) */
static pflow
probe_get(const char *ws, const char *id)
{
    pflow out = {0};
    char key[160];
    snprintf(key, sizeof(key), "%s/%s", ws, id);
    pthread_mutex_lock(&P.mu);
    for (int i = 0; i < P.n; i++) {
        if (strcmp(P.f[i].key, key) == 0) {
            out = P.f[i];
        }
    }
    pthread_mutex_unlock(&P.mu);
    return out;
}

static int
probe_running(void)
{
    int n = 0;
    pthread_mutex_lock(&P.mu);
    for (int i = 0; i < P.n; i++) {
        n += P.f[i].running;
    }
    pthread_mutex_unlock(&P.mu);
    return n;
}

/* ---- fixture ---------------------------------------------------------- */

static char dir[256];
static char req_url[300], svc_notify_url[300], fake_notify_url[300];
static char db_path[300];
static cr_rt *rt;
static cra_cfgsvc *svc;
static cra_receiver *recv_;
static crt_client *cli;
static crt_pub *fake;

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cfgrecv-test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(req_url, sizeof(req_url), "ipc://%s/req.ipc", dir);
    snprintf(svc_notify_url, sizeof(svc_notify_url), "ipc://%s/not.ipc", dir);
    snprintf(fake_notify_url, sizeof(fake_notify_url), "ipc://%s/fake.ipc",
             dir);
    snprintf(db_path, sizeof(db_path), "%s/db.sqlite", dir);
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    cr_assert_eq(crt_client_open(req_url, NULL, &cli), 0);
}

/* The service's start-up push goes out at once (delay -1), before any
 * receiver listens: a late one would start a full resync in the middle of
 * a test that counts fetches. Receivers resync when they connect anyway. */
static void
start_svc(const char *req, const char *notify)
{
    cra_cfgsvc_opts so = {.request_url = req,
                          .notify_url = notify,
                          .db_path = db_path,
                          .startup_push_delay_ms = -1};
    cr_assert_eq(cra_cfgsvc_start(rt, &so, &svc), 0);
}

static void
start_receiver_every(const char *notify, uint64_t resync_ms)
{
    static const cra_flow_handler *const hs[] = {&probe};
    cra_receiver_opts ro = {
        .request_url = req_url,
        .notify_url = notify,
        .fetch_timeout_ms = 500,
        .fetch_concurrency = 8,
        .resync_interval_ms = resync_ms,
        .handlers = hs,
        .nhandlers = 1,
    };
    cr_assert_eq(cra_receiver_start(rt, &ro, &recv_), 0);
}

static void
start_receiver(const char *notify)
{
    start_receiver_every(notify, 0);
}

static void
teardown(void)
{
    if (recv_ != NULL) {
        cra_receiver_stop(recv_, 30000);
        recv_ = NULL;
    }
    if (svc != NULL) {
        cra_cfgsvc_stop(svc);
        svc = NULL;
    }
    crt_pub_close(fake);
    fake = NULL;
    crt_client_close(cli);
    cli = NULL;
    cr_rt_destroy(rt);
    rt = NULL;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(receiver, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---------------------------------------------------------- */

static uint64_t
request(const char *op, const char *ws, const char *type, const char *key,
        const char *value)
{
    crt_value v = {.type = (char *)type, .key = (char *)key,
                   .value = (char *)value};
    crt_key k = {.type = (char *)type, .key = (char *)key};
    crt_request rq = {.operation = (char *)op, .workspace = (char *)ws};
    if (strcmp(op, "put") == 0) {
        rq.values = &v;
        rq.nvalues = 1;
    } else {
        rq.keys = &k;
        rq.nkeys = 1;
    }
    void *buf, *rep;
    size_t len, rlen;
    cr_assert_eq(crt_request_encode(&rq, &buf, &len), 0);
    cr_assert_eq(crt_client_request(cli, buf, len, 5000, &rep, &rlen), 0);
    free(buf);
    crt_response r;
    cr_assert_eq(crt_response_decode(rep, rlen, NULL, &r, NULL), 0);
    free(rep);
    cr_assert_null(r.error);
    uint64_t version = r.version;
    crt_response_free(&r);
    return version;
}

static uint64_t
put(const char *ws, const char *id, const char *def)
{
    return request("put", ws, "flow", id, def);
}

static void
fake_push(uint64_t version, const char *type, const char **ws, size_t n)
{
    crt_change ch = {.type = (char *)type, .workspaces = (char **)ws,
                     .nworkspaces = n};
    crt_push p = {.version = version, .changes = &ch, .nchanges = 1};
    void *buf;
    size_t len;
    cr_assert_eq(crt_push_encode(&p, &buf, &len), 0);
    cr_assert_eq(crt_pub_send(fake, buf, len), 0);
    free(buf);
}

static void
open_fake(void)
{
    cr_assert_eq(crt_pub_open(fake_notify_url, &fake), 0);
}

static bool
stream_up(void)
{
    cra_recv_status st;
    return cra_flow_manager_status(rt, 5000, &st) == 0 && st.stream_up;
}

static cra_recv_status
status(void)
{
    cra_recv_status st;
    cr_assert_eq(cra_flow_manager_status(rt, 5000, &st), 0);
    return st;
}

static cra_fetcher_stats
fstats(void)
{
    cra_fetcher_stats st;
    cr_assert_eq(cra_fetcher_stats_get(rt, 5000, &st), 0);
    return st;
}

/* WAIT_UNTIL polls cond every 10 ms for up to ms, and asserts on the last
 * evaluation (evaluating it once more could see a later state). */
#define WAIT_UNTIL(cond, ms)                                                   \
    do {                                                                       \
        int waited_ = 0;                                                       \
        bool met_;                                                             \
        while (!(met_ = (cond)) && waited_ < (ms)) {                           \
            usleep(10000);                                                     \
            waited_ += 10;                                                     \
        }                                                                      \
        cr_assert(met_, "timed out waiting for: %s", #cond);                   \
    } while (0)

/* handlers_caught_up returns once every handler has handled what the
 * flow manager sent it before this call: the flow directory query is a
 * call to each handler, queued behind those messages. */
static void
handlers_caught_up(void)
{
    char *json = NULL;
    cr_assert_eq(cra_receiver_flows_json(recv_, 5000, &json), 0);
    free(json);
}

/* synced: the first resync is complete and nothing is being fetched */
static bool
settled(void)
{
    cra_recv_status st;
    cra_fetcher_stats fs;
    return cra_flow_manager_status(rt, 5000, &st) == 0 && st.synced &&
           st.fetches_pending == 0 &&
           cra_fetcher_stats_get(rt, 5000, &fs) == 0 && fs.inflight == 0 &&
           fs.queued == 0;
}

/* start_with_flow starts the service with the one flow ws/id ("{}") in
 * it and a receiver listening on notify (open_fake first for the fake
 * one), and waits until the flow runs and the receiver has settled.
 * Returns the version of the flow's put. */
static uint64_t
start_with_flow(const char *notify, const char *ws, const char *id)
{
    start_svc(req_url, svc_notify_url);
    uint64_t v = put(ws, id, "{}");
    start_receiver(notify);
    WAIT_UNTIL(probe_get(ws, id).running, 10000);
    WAIT_UNTIL(settled(), 10000);
    return v;
}

/* ---- tests -------------------------------------------------------------- */

Test(receiver, start_update_stop_through_real_notifies)
{
    start_svc(req_url, svc_notify_url);
    put("ws1", "a", "{\"blueprint-name\":\"x\"}");
    put("ws1", "b", "{\"name\":\"test_flow_1\"}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_get("ws1", "b").running, 10000);
    WAIT_UNTIL(settled(), 10000);
    /* a changed definition is an update, not a restart */
    put("ws1", "a", "{\"blueprint-name\":\"y\"}");
    WAIT_UNTIL(probe_get("ws1", "a").updates == 1, 5000);
    cr_assert_eq(probe_get("ws1", "a").starts, 1);
    cr_assert(strstr(probe_get("ws1", "a").def, "\"y\"") != NULL);
    /* a removed flow stops */
    request("delete", "ws1", "flow", "b", NULL);
    WAIT_UNTIL(probe_get("ws1", "b").stops == 1, 5000);
    /* a workspace with no flows at all is fine; default always exists */
    cr_assert_eq(probe_get("ws1", "a").stops, 0);
}

Test(receiver, newer_notify_fetches_exactly_named_workspaces)
{
    start_svc(req_url, svc_notify_url);
    put("ws1", "a", "{}");
    put("ws2", "a", "{}");
    put("ws3", "a", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_running() == 3, 10000);
    WAIT_UNTIL(settled(), 10000);
    cra_fetcher_stats before = fstats();
    put("ws2", "b", "{}");
    WAIT_UNTIL(probe_get("ws2", "b").running, 5000);
    WAIT_UNTIL(settled(), 5000);
    cra_fetcher_stats after = fstats();
    cr_assert_eq(after.sent - before.sent, 1, "one fetch, of ws2 only");
    cr_assert_eq(after.direct - before.direct, 1,
                 "sent by the flow manager itself (fetch lane)");
    cr_assert_eq(probe_get("ws1", "a").starts, 1);
    cr_assert_eq(probe_get("ws3", "a").starts, 1);
}

Test(receiver, other_types_only_advance_the_version)
{
    start_with_flow(svc_notify_url, "ws1", "a");
    cra_fetcher_stats before = fstats();
    cra_recv_status s0 = status();
    uint64_t v = request("put", "ws1", "prompt", "p", "hello");
    WAIT_UNTIL(status().version == v, 5000);
    cra_recv_status s1 = status();
    cr_assert_eq(s1.notifies_ignored, s0.notifies_ignored + 1);
    cr_assert_eq(fstats().sent, before.sent, "no fetch for other types");
}

Test(receiver, old_notify_ignored_and_storm_coalesced)
{
    start_svc(req_url, svc_notify_url);
    const char *names[100];
    char buf[100][16];
    uint64_t v = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(buf[i], sizeof(buf[i]), "ws%03d", i);
        names[i] = buf[i];
        v = put(buf[i], "f", "{}");
    }
    open_fake();
    start_receiver(fake_notify_url);
    WAIT_UNTIL(probe_running() == 100, 20000);
    WAIT_UNTIL(settled(), 10000);
    cra_fetcher_stats f0 = fstats();

    /* older than what was applied: ignored, nothing fetched */
    fake_push(v - 1, "flow", names, 1);
    WAIT_UNTIL(status().notifies_ignored >= 1, 5000);
    cr_assert_eq(fstats().sent, f0.sent);

    /* a change made behind the stream's back, then a storm: 2,000
     * notifies over the 100 workspaces, all at the new version */
    uint64_t v2 = put("ws000", "g", "{}");
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 100; i++) {
            fake_push(v2, "flow", &names[i], 1);
        }
    }
    WAIT_UNTIL(probe_get("ws000", "g").running, 10000);
    /* PUB/SUB may drop part of a storm (nng drops when a subscriber's
     * queue is full); wait until the count stops moving */
    uint64_t seen = 0;
    WAIT_UNTIL((seen == status().notifies && settled()) ||
                   ((seen = status().notifies), usleep(200000), false),
               10000);
    cr_assert_gt(seen, 100, "most of the storm arrived (%llu)",
                 (unsigned long long)seen);
    cra_fetcher_stats f1 = fstats();
    cr_assert_leq(f1.sent - f0.sent, 100,
                  "2,000 notifies over 100 workspaces: at most one fetch "
                  "each, got %llu",
                  (unsigned long long)(f1.sent - f0.sent));
    cr_assert_eq(probe_get("ws000", "f").starts, 1);
}

Test(receiver, start_and_stop_in_one_diff)
{
    open_fake();
    start_with_flow(fake_notify_url, "ws", "a");
    /* two changes the receiver does not hear about, then one notify */
    put("ws", "b", "{}");
    uint64_t v = request("delete", "ws", "flow", "a", NULL);
    const char *ws[] = {"ws"};
    fake_push(v, "flow", ws, 1);
    WAIT_UNTIL(probe_get("ws", "b").running && !probe_get("ws", "a").running,
               5000);
    cr_assert_eq(probe_get("ws", "a").stops, 1);
}

Test(receiver, failing_handler_retried_others_untouched)
{
    pthread_mutex_lock(&P.mu);
    P.fail_starts = 2;
    pthread_mutex_unlock(&P.mu);
    start_svc(req_url, svc_notify_url);
    put("ws", "flaky1", "{}");
    put("ws", "steady", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_get("ws", "steady").running, 10000);
    WAIT_UNTIL(probe_get("ws", "flaky1").running, 15000);
    cr_assert_eq(probe_get("ws", "steady").starts, 1);
    char *json = NULL;
    cr_assert_eq(cra_receiver_flows_json(recv_, 5000, &json), 0);
    cr_assert(strstr(json, "\"restarts\":2") != NULL, "%s", json);
    free(json);
}

Test(receiver, crashed_handler_restarted_and_resent_every_flow)
{
    start_svc(req_url, svc_notify_url);
    put("ws1", "a", "{}");
    put("ws2", "b", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_running() == 2, 10000);
    cr_id h = cr_whereis(rt, "handler:probe");
    cr_assert_neq(h, CR_NOBODY);
    cr_assert_eq(cr_send(rt, CR_NOBODY, h, cr_msg_new(MSG_CRASH)), 0);
    WAIT_UNTIL(cr_whereis(rt, "handler:probe") != h &&
                   cr_whereis(rt, "handler:probe") != CR_NOBODY,
               10000);
    WAIT_UNTIL(probe_get("ws1", "a").starts == 2 &&
                   probe_get("ws2", "b").starts == 2,
               10000);
    cr_assert_eq(probe_running(), 2);
    /* and the flow directory, another handler, was not touched */
    char *json = NULL;
    cr_assert_eq(cra_receiver_flows_json(recv_, 5000, &json), 0);
    cr_assert(strstr(json, "\"flows\":\"running\"") != NULL, "%s", json);
    free(json);
}

/* ---- an older config service: no getkeys-all-ws -------------------- */

/* A REP server in front of the real service that answers getkeys-all-ws
 * with bad-operation, as a service predating it would, and forwards every
 * other request (asynchronously: its callback runs on an nng thread). */
static struct {
    crt_server *srv;
    crt_client *up;
    atomic_int getkeys, getvalues_all;
} OLD;

typedef struct fwd {
    uint64_t token;
} fwd;

static void
old_answered(void *arg, int status, const void *reply, size_t len)
{
    fwd *f = arg;
    if (status == 0) {
        crt_server_reply(OLD.srv, f->token, reply, len);
    } else {
        crt_server_drop(OLD.srv, f->token);
    }
    free(f);
}

static void
old_request(void *arg, uint64_t token, const void *data, size_t len)
{
    crt_request rq;
    bool getkeys = false;
    if (crt_request_decode(data, len, NULL, &rq, NULL) == 0) {
        getkeys = strcmp(rq.operation, CRT_OP_GETKEYS_ALL) == 0;
        if (strcmp(rq.operation, CRT_OP_GETVALUES_ALL) == 0) {
            atomic_fetch_add(&OLD.getvalues_all, 1);
        }
        crt_request_free(&rq);
    }
    if (getkeys) {
        void *buf;
        size_t blen;
        atomic_fetch_add(&OLD.getkeys, 1);
        if (crt_error_response_encode(0, CRT_ERR_BAD_OPERATION,
                                      "unknown operation", &buf,
                                      &blen) == 0) {
            crt_server_reply(OLD.srv, token, buf, blen);
            free(buf);
        }
        return;
    }
    fwd *f = malloc(sizeof(*f));
    f->token = token;
    if (crt_client_request_async(OLD.up, data, len, 5000, old_answered, f) !=
        0) {
        free(f);
        crt_server_drop(OLD.srv, token);
    }
}

/* Discovery falls back to getvalues-all-ws when the service does not
 * know getkeys-all-ws, and the flows it finds start. */
Test(receiver, discovery_falls_back_to_getvalues_all_ws)
{
    char real[300];
    snprintf(real, sizeof(real), "ipc://%s/real.ipc", dir);
    start_svc(real, svc_notify_url);
    cr_assert_eq(crt_client_open(real, NULL, &OLD.up), 0);
    atomic_store(&OLD.getkeys, 0);
    atomic_store(&OLD.getvalues_all, 0);
    cr_assert_eq(crt_server_open(req_url, NULL, old_request, NULL, &OLD.srv),
                 0);
    put("ws1", "a", "{}");
    put("ws2", "b", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_get("ws1", "a").running && probe_get("ws2", "b").running,
               10000);
    cr_assert_geq(atomic_load(&OLD.getkeys), 1);
    cr_assert_geq(atomic_load(&OLD.getvalues_all), 1, "fell back");
    cra_receiver_stop(recv_, 30000);
    recv_ = NULL;
    crt_server_close(OLD.srv);
    crt_client_close(OLD.up);
}

/* The fetch lane refuses a direct send while no fetcher has published
 * its client, and never lets more than `conc` requests out. */
Test(receiver, fetch_lane_bounds_direct_sends)
{
    cra_fetch_lane lane;
    cra_fetch_lane_init(&lane);
    cr_assert_not(cra_fetch_direct(rt, &lane, "ws", 2), "no fetcher yet");
    crt_client *c; /* nobody answers on req_url: requests stay out */
    cr_assert_eq(crt_client_open(req_url, NULL, &c), 0);
    pthread_mutex_lock(&lane.mu);
    lane.client = c;
    lane.conc = 2;
    lane.timeout_ms = 60000;
    pthread_mutex_unlock(&lane.mu);
    cr_assert(cra_fetch_direct(rt, &lane, "a", 1));
    cr_assert(cra_fetch_direct(rt, &lane, "b", 1));
    cr_assert_not(cra_fetch_direct(rt, &lane, "c", 1), "both slots taken");
    cr_assert_eq(atomic_load(&lane.inflight), 2);
    cr_assert_eq(atomic_load(&lane.direct), 2);
    pthread_mutex_lock(&lane.mu);
    lane.client = NULL;
    pthread_mutex_unlock(&lane.mu);
    crt_client_close(c); /* the two end (closed); nobody to tell */
    cra_fetch_lane_fini(&lane);
}

Test(receiver, thousand_workspaces_fetched_in_parallel)
{
    /* fill the store directly, in one transaction */
    cra_store *st;
    cr_assert_eq(cra_store_open(db_path, &st), 0);
    for (int i = 0; i < 1000; i++) {
        char ws[32];
        snprintf(ws, sizeof(ws), "w%04d", i);
        crt_value v = {.type = "flow", .key = "f", .value = "{}"};
        uint64_t ver;
        cr_assert_eq(cra_store_put(st, ws, &v, 1, &ver), 0);
    }
    cra_store_close(st);
    start_svc(req_url, svc_notify_url);
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_running() == 1000, 60000);
    WAIT_UNTIL(settled(), 10000);
    cra_fetcher_stats fs = fstats();
    cr_assert_gt(fs.inflight_max, 1, "fetches ran in parallel");
    cr_assert_leq(fs.inflight_max, 8, "bounded by the concurrency");
    cr_assert_geq(fs.ok, 1001); /* every workspace and default */
}

Test(receiver, change_during_startup_not_lost)
{
    start_svc(req_url, svc_notify_url);
    for (int i = 0; i < 50; i++) {
        char ws[16];
        snprintf(ws, sizeof(ws), "s%02d", i);
        put(ws, "old", "{}");
    }
    start_receiver(svc_notify_url);
    /* changes while the receiver discovers and fetches */
    for (int i = 0; i < 50; i++) {
        char ws[16];
        snprintf(ws, sizeof(ws), "s%02d", i);
        put(ws, "new", "{}");
    }
    WAIT_UNTIL(probe_running() == 100, 20000);
}

/* fake_push_heard sends one fake push again and again until the flow
 * manager has counted a notify more (PUB drops what it sends before its
 * side of a new pipe is added). */
#define FAKE_PUSH_HEARD(version, type, ws, n)                                  \
    do {                                                                       \
        uint64_t n0_ = status().notifies;                                      \
        WAIT_UNTIL((fake_push((version), (type), (ws), (n)),                   \
                    status().notifies > n0_),                                  \
                   5000);                                                      \
    } while (0)

/* A notify announcing a version the service does not have (a lagging
 * replica, or a bad publisher): the workspace is fetched again with a
 * growing delay - not in a loop as fast as the service answers - and
 * after 7 such probes answered at the same version (50 ms doubling up to
 * 1.6 s, ~4.8 s) the receiver gives up on that version; a later real
 * change still lands. */
Test(receiver, notify_ahead_of_the_service_backs_off_then_gives_up)
{
    open_fake();
    uint64_t v = start_with_flow(fake_notify_url, "ws1", "a");
    cra_fetcher_stats f0 = fstats();
    const char *ws[] = {"ws1"};
    fake_push(v + 1000, "flow", ws, 1);
    /* 1 at once, then probes after 50, 100, 200, 400 ms: 5 in the first
     * second (fewer on a slow machine, never more); a loop as fast as
     * the service answers makes hundreds */
    usleep(1000000);
    cr_assert_leq(fstats().sent - f0.sent, 5, "not a tight loop (%llu)",
                  (unsigned long long)(fstats().sent - f0.sent));
    WAIT_UNTIL(fstats().sent - f0.sent == 8 && settled(), 15000);
    usleep(2500000); /* past when a 9th would go (1.6 s after the 8th) */
    cr_assert_eq(fstats().sent - f0.sent, 8, "gave up after 7 probes");
    cr_assert_eq(probe_get("ws1", "a").starts, 1, "flows untouched");
    /* a real change afterwards is fetched and applied */
    uint64_t v2 = put("ws1", "b", "{}");
    fake_push(v2, "flow", ws, 1);
    WAIT_UNTIL(probe_get("ws1", "b").running, 5000);
}

/* numbered fills names[i] with prefix and i, and ws[i] with names[i]. */
static void
numbered(const char *prefix, char (*names)[16], const char **ws, int n)
{
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof(names[i]), "%s%03d", prefix, i);
        ws[i] = names[i];
    }
}

/* A notify naming many workspaces at a version the service does not
 * have: each is fetched once, then they wait for the service together -
 * one probe at a time, not a delayed refetch each (a hostile notify
 * naming 100,000 workspaces used to cost 9 fetches of each). */
Test(receiver, workspaces_behind_the_service_wait_together)
{
    open_fake();
    uint64_t v = start_with_flow(fake_notify_url, "ws0", "a");
    enum { N = 200 };
    static char names[N][16];
    const char *ws[N];
    numbered("w", names, ws, N);
    cra_fetcher_stats f0 = fstats();
    FAKE_PUSH_HEARD(v + 1000, "flow", ws, N);
    WAIT_UNTIL(fstats().sent - f0.sent >= N + 7 && settled(), 15000);
    usleep(2500000); /* past when another probe would go */
    uint64_t sent = fstats().sent - f0.sent;
    /* FAKE_PUSH_HEARD may repeat the notify; repeats coalesce into the
     * pending fetches, or come after the first answers: at most 2N */
    cr_assert_geq(sent, N + 7, "each fetched, then 7 probes (%llu)",
                  (unsigned long long)sent);
    cr_assert_leq(sent, 2 * N + 7, "no refetch of each (%llu; 9 each "
                                   "before)",
                  (unsigned long long)sent);
    cr_assert_eq(status().fetches_pending, 0, "nobody waits after giving up");
}

/* A service behind a notify that catches up: every workspace that waited
 * for it is fetched once it has the version, and lands. */
Test(receiver, workspaces_behind_the_service_land_when_it_catches_up)
{
    open_fake();
    uint64_t v = start_with_flow(fake_notify_url, "ws0", "a");
    enum { N = 20 };
    static char names[N][16];
    const char *ws[N];
    numbered("c", names, ws, N);
    cra_fetcher_stats f0 = fstats();
    /* announced before the service has it: N puts will reach v + N */
    FAKE_PUSH_HEARD(v + N, "flow", ws, N);
    WAIT_UNTIL(fstats().sent - f0.sent >= N + 1, 10000); /* a probe went */
    for (int i = 0; i < N; i++) {
        put(ws[i], "f", "{}"); /* nobody tells the receiver */
    }
    for (int i = 0; i < N; i++) {
        WAIT_UNTIL(probe_get(ws[i], "f").running, 10000);
    }
    WAIT_UNTIL(settled(), 10000);
    cr_assert_leq(fstats().sent - f0.sent, 3 * N + 8,
                  "each fetched about twice, plus the probes (%llu)",
                  (unsigned long long)(fstats().sent - f0.sent));
}

Test(receiver, fetch_failure_retried_until_it_lands)
{
    /* the service is not there yet: the fetch times out and is retried */
    open_fake();
    start_receiver(fake_notify_url);
    WAIT_UNTIL(stream_up(), 5000);
    const char *ws[] = {"late"};
    /* the SUB side sees its pipe before the PUB side has added it, and
     * PUB drops what it sends meanwhile: push until a fetch has failed
     * (the repeats coalesce into the pending fetch) */
    WAIT_UNTIL((fake_push(1, "flow", ws, 1), fstats().failed >= 1), 10000);
    start_svc(req_url, svc_notify_url);
    put("late", "f", "{}");
    WAIT_UNTIL(probe_get("late", "f").running, 30000);
}

Test(receiver, stream_cut_and_restored_resyncs)
{
    open_fake();
    start_with_flow(fake_notify_url, "ws", "a");
    uint64_t resyncs = status().resyncs;
    crt_pub_close(fake);
    fake = NULL;
    WAIT_UNTIL(!stream_up(), 5000);
    put("ws", "b", "{}"); /* nobody tells the receiver */
    open_fake();
    WAIT_UNTIL(status().resyncs > resyncs, 10000);
    WAIT_UNTIL(probe_get("ws", "b").running, 10000);
}

Test(receiver, service_down_change_made_then_back)
{
    start_svc(req_url, svc_notify_url);
    put("ws", "a", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_get("ws", "a").running, 10000);
    cra_cfgsvc_stop(svc);
    svc = NULL;
    /* the change is made through another instance on other URLs */
    char r2[320], n2[320];
    snprintf(r2, sizeof(r2), "ipc://%s/req2.ipc", dir);
    snprintf(n2, sizeof(n2), "ipc://%s/not2.ipc", dir);
    cra_cfgsvc_opts so = {.request_url = r2, .notify_url = n2,
                          .db_path = db_path, .name = "other"};
    cra_cfgsvc *other;
    cr_assert_eq(cra_cfgsvc_start(rt, &so, &other), 0);
    crt_client *c2;
    cr_assert_eq(crt_client_open(r2, NULL, &c2), 0);
    crt_client *saved = cli;
    cli = c2;
    put("ws", "b", "{}");
    cli = saved;
    crt_client_close(c2);
    cra_cfgsvc_stop(other);
    /* back on its own URLs: its start-up push and the reconnect resync */
    start_svc(req_url, svc_notify_url);
    WAIT_UNTIL(probe_get("ws", "b").running, 20000);
}

Test(receiver, deleted_workspace_stops_its_flows)
{
    start_svc(req_url, svc_notify_url);
    request("put", "__workspaces__", "workspace", "gone", "{}");
    put("gone", "a", "{}");
    put("gone", "b", "{}");
    put("kept", "c", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_running() == 3, 10000);
    request("delete", "__workspaces__", "workspace", "gone", NULL);
    WAIT_UNTIL(probe_get("gone", "a").stops == 1 &&
                   probe_get("gone", "b").stops == 1,
               5000);
    cr_assert(probe_get("kept", "c").running);
}

/* A restarted flow manager still knows the deletion (the tombstones live
 * in the receiver): its full resync finds the workspace's flow rows in
 * the service but does not start them again. */
Test(receiver, deleted_workspace_stays_stopped_after_a_manager_restart)
{
    start_svc(req_url, svc_notify_url);
    request("put", "__workspaces__", "workspace", "gone", "{}");
    put("gone", "a", "{}");
    put("kept", "c", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_running() == 2, 10000);
    request("delete", "__workspaces__", "workspace", "gone", NULL);
    WAIT_UNTIL(probe_get("gone", "a").stops == 1, 5000);
    cr_id old = cr_whereis(rt, "flow-manager");
    cr_assert_eq(cr_stop(rt, old), 0); /* its supervisor restarts it */
    WAIT_UNTIL(cr_whereis(rt, "flow-manager") != CR_NOBODY &&
                   cr_whereis(rt, "flow-manager") != old,
               10000);
    WAIT_UNTIL(status().synced && settled(), 10000);
    handlers_caught_up(); /* with what the resync sent them */
    cr_assert_eq(probe_get("gone", "a").starts, 1, "not started again");
    cr_assert(!probe_get("gone", "a").running);
    cr_assert(probe_get("kept", "c").running);
    /* a newer flow change to it brings it back */
    put("gone", "a", "{\"v\":2}");
    WAIT_UNTIL(probe_get("gone", "a").running, 5000);
}

/* A full resync forgets the workspaces that have no flows and that the
 * service does not list (memory must not grow with every name a notify
 * ever gave), but keeps a deleted workspace whose rows remain, so its
 * flows stay stopped; a forgotten workspace comes back with a change. */
Test(receiver, full_resync_forgets_empty_unlisted_workspaces)
{
    start_svc(req_url, svc_notify_url);
    put("keep", "k", "{}");
    request("put", "__workspaces__", "workspace", "gone", "{}");
    put("gone", "a", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_running() == 2, 10000);
    for (int i = 0; i < 50; i++) {
        char ws[16];
        snprintf(ws, sizeof(ws), "tmp%02d", i);
        put(ws, "f", "{}");
        request("delete", ws, "flow", "f", NULL);
    }
    request("delete", "__workspaces__", "workspace", "gone", NULL);
    WAIT_UNTIL(probe_get("gone", "a").stops == 1, 5000);
    /* each tmp workspace was named by a notify: the manager knows it */
    WAIT_UNTIL(status().workspaces >= 53 && settled() &&
                   probe_running() == 1,
               10000);
    uint64_t resyncs = status().resyncs;
    cr_assert_eq(cra_receiver_resync(recv_, "test"), 0);
    WAIT_UNTIL(status().resyncs > resyncs && !status().resyncing &&
                   settled(),
               10000);
    uint64_t known = status().workspaces;
    cr_expect_eq(known, 3, "default, keep and gone remain, not %llu",
                 (unsigned long long)known);
    handlers_caught_up(); /* with what the resync sent them */
    cr_expect_eq(probe_get("gone", "a").starts, 1, "not started again");
    cr_expect(probe_get("keep", "k").running);
    put("tmp07", "again", "{}");
    WAIT_UNTIL(probe_get("tmp07", "again").running, 5000);
}

Test(receiver, non_json_value_fails_that_flow_only)
{
    start_svc(req_url, svc_notify_url);
    put("ws", "good", "{}");
    put("ws", "bad", "not json at all");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_get("ws", "good").running, 10000);
    char *json = NULL;
    WAIT_UNTIL((free(json), json = NULL,
                cra_receiver_flows_json(recv_, 5000, &json) == 0 &&
                    strstr(json, "\"failed\"") != NULL),
               5000);
    cr_assert(strstr(json, "not valid JSON") != NULL, "%s", json);
    free(json);
    cr_assert_eq(probe_get("ws", "bad").starts, 0);
}

/* A bounded directory lists the least advanced flows first and counts
 * them all; the full one lists every flow and no counts. */
Test(receiver, bounded_directory_lists_the_worst_first)
{
    start_svc(req_url, svc_notify_url);
    put("ws1", "a", "{}");
    put("ws2", "bad", "not json at all");
    put("ws2", "c", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_running() == 2, 10000);
    json_t *doc = NULL;
    WAIT_UNTIL((json_decref(doc), doc = NULL,
                cra_receiver_flows_doc(recv_, 5000, 1, &doc) == 0 &&
                    json_integer_value(json_object_get(
                        json_object_get(doc, "states"), "failed")) == 1),
               5000);
    cr_expect_eq(json_integer_value(json_object_get(doc, "total")), 3);
    cr_expect_eq(json_integer_value(json_object_get(doc, "workspace_count")),
                 2);
    const json_t *st = json_object_get(doc, "states");
    cr_expect_eq(json_integer_value(json_object_get(st, "running")), 2);
    cr_expect_eq(json_integer_value(json_object_get(st, "starting")), 0);
    cr_expect(json_is_true(json_object_get(doc, "truncated")));
    const json_t *wss = json_object_get(doc, "workspaces");
    cr_assert_eq(json_object_size(wss), 1, "one flow listed");
    const json_t *bad = json_object_get(json_object_get(wss, "ws2"), "bad");
    cr_assert_not_null(bad, "the failed flow first");
    cr_expect_str_eq(json_string_value(json_object_get(bad, "state")),
                     "failed");
    json_decref(doc);

    cr_assert_eq(cra_receiver_flows_doc(recv_, 5000, 0, &doc), 0);
    cr_expect_null(json_object_get(doc, "total"), "no counts when full");
    wss = json_object_get(doc, "workspaces");
    cr_expect_eq(json_object_size(json_object_get(wss, "ws1")) +
                     json_object_size(json_object_get(wss, "ws2")),
                 3);
    json_decref(doc);
}

/* Handlers that come up after the flow manager, before or after its
 * first sync went out, are synced once: the start-up makes one full
 * resync (the notify stream connecting), not one more per handler. */
Test(receiver, start_up_resyncs_once)
{
    start_with_flow(svc_notify_url, "ws", "a");
    for (int round = 0; round < 5; round++) {
        if (round > 0) { /* a new receiver on the same service */
            cr_assert_eq(cra_receiver_stop(recv_, 30000), 0);
            recv_ = NULL;
            start_receiver(svc_notify_url);
            WAIT_UNTIL(probe_get("ws", "a").running && settled(), 10000);
        }
        usleep(200000); /* a late RM_HANDLER_UP would resync by now */
        cr_expect_eq(status().resyncs, 1, "round %d", round);
    }
}

Test(receiver, stop_stops_every_flow_in_order)
{
    start_svc(req_url, svc_notify_url);
    put("ws", "a", "{}");
    put("ws", "b", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_running() == 2, 10000);
    cr_assert_eq(cra_receiver_stop(recv_, 30000), 0);
    recv_ = NULL;
    cr_assert_eq(probe_get("ws", "a").stops, 1);
    cr_assert_eq(probe_get("ws", "b").stops, 1);
    cr_assert_eq(cr_whereis(rt, "flow-manager"), CR_NOBODY);
}

Test(receiver, periodic_check_finds_a_missed_change)
{
    start_svc(req_url, svc_notify_url);
    put("ws", "a", "{}");
    open_fake(); /* a stream that never tells of the next change */
    start_receiver_every(fake_notify_url, 300);
    WAIT_UNTIL(probe_get("ws", "a").running, 10000);
    WAIT_UNTIL(settled(), 10000);
    uint64_t resyncs = status().resyncs;
    put("ws", "b", "{}");
    WAIT_UNTIL(probe_get("ws", "b").running, 10000);
    cr_assert_gt(status().resyncs, resyncs);
    /* nothing new: the check does not resync again and again */
    WAIT_UNTIL(settled(), 10000);
    uint64_t after = status().resyncs;
    usleep(1000000);
    cr_assert_eq(status().resyncs, after, "no change, no resync");
}

/* ---- a service behind what the receiver has seen --------------------- */

/* A notify far ahead of the service (a bad publisher) raised the seen
 * version for good, so the periodic check (service version > seen) never
 * fired again: a change made without a notify was never picked up. The
 * check now finds the service below what was seen, takes the service's
 * version and resyncs; later checks work again. */
Test(receiver, periodic_check_recovers_from_a_notify_ahead_of_the_service)
{
    start_svc(req_url, svc_notify_url);
    uint64_t v = put("ws", "a", "{}");
    open_fake(); /* a stream that tells only what the test sends */
    start_receiver_every(fake_notify_url, 300);
    WAIT_UNTIL(probe_get("ws", "a").running, 10000);
    WAIT_UNTIL(settled(), 10000);
    const char *ws[] = {"ws"};
    FAKE_PUSH_HEARD(v + 1000000, "flow", ws, 1);
    WAIT_UNTIL(settled(), 10000); /* the refetches behind it are over */
    uint64_t resyncs = status().resyncs;
    uint64_t v2 = put("ws", "b", "{}"); /* nobody tells the receiver */
    WAIT_UNTIL(probe_get("ws", "b").running, 10000);
    /* the check took the service's version, then found v2 above it */
    WAIT_UNTIL(status().version == v2, 5000);
    cr_assert_gt(status().resyncs, resyncs);
    cr_assert_eq(probe_get("ws", "a").starts, 1, "a untouched");
    /* and the service's version is kept: no resync again and again */
    WAIT_UNTIL(settled(), 10000);
    uint64_t after = status().resyncs;
    usleep(1000000);
    cr_assert_eq(status().resyncs, after, "no change, no resync");
    cr_assert_eq(status().version, v2);
}

/* A config service whose store was reset: its versions restart low,
 * below what the receiver applied. The service is the truth: its answers
 * are applied (not dropped as stale) and its notifies followed. */
Test(receiver, service_with_a_reset_store_is_taken_as_the_truth)
{
    start_svc(req_url, svc_notify_url);
    put("ws", "a", "{}");
    put("ws", "x", "{}");
    uint64_t v = put("ws", "y", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_running() == 3, 10000);
    WAIT_UNTIL(settled(), 10000);
    cr_assert_eq(status().version, v);
    cra_cfgsvc_stop(svc);
    svc = NULL;
    WAIT_UNTIL(!stream_up(), 5000);
    char path[320];
    const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", db_path, sfx[i]);
        unlink(path);
    }
    start_svc(req_url, svc_notify_url); /* an empty store */
    uint64_t v1 = put("ws", "b", "{}");
    cr_assert_lt(v1, v, "the new store's versions restart low");
    WAIT_UNTIL(probe_get("ws", "b").running && probe_running() == 1, 10000);
    WAIT_UNTIL(settled() && status().version == v1, 10000);
    /* its next change lands through its notify */
    put("ws", "c", "{}");
    WAIT_UNTIL(probe_get("ws", "c").running, 5000);
}

/* ---- workspace names the service cannot serve ----------------------- */

/* A notify naming the workspace "" (the service refuses `config` for it:
 * "workspace is required") was fetched again and again for good and kept
 * a fetch pending. It is ignored now; the other names of the same notify
 * are followed. */
Test(receiver, notify_naming_the_empty_workspace_is_ignored)
{
    open_fake();
    start_with_flow(fake_notify_url, "ws", "a");
    cra_fetcher_stats f0 = fstats();
    uint64_t v2 = put("ws", "b", "{}");
    const char *ws[] = {"", "ws"};
    FAKE_PUSH_HEARD(v2, "flow", ws, 2);
    WAIT_UNTIL(probe_get("ws", "b").running, 5000);
    WAIT_UNTIL(settled(), 5000);
    cr_assert_eq(fstats().sent - f0.sent, 1, "ws fetched, \"\" not");
    cr_assert_eq(fstats().failed, f0.failed);
    usleep(500000); /* a retried fetch of "" would be pending by now */
    cr_assert_eq(status().fetches_pending, 0);
    cr_assert_eq(fstats().failed, f0.failed);
    /* nor is "" a workspace known to the manager */
    char *text = NULL;
    cr_assert_eq(cra_flow_manager_workspaces(rt, 5000, &text), 0);
    json_t *doc = json_loads(text, 0, NULL);
    cr_assert_not_null(doc, "%s", text);
    cr_assert_null(json_object_get(doc, ""), "%s", text);
    cr_assert_eq(json_object_size(doc), status().workspaces, "%s", text);
    json_decref(doc);
    free(text);
    /* also in workspace_changes: no record, no tombstone */
    char *empty[] = {""};
    crt_wschanges wc = {empty, 1, empty, 1};
    crt_push p = {.version = v2 + 1, .workspace_changes = &wc};
    void *buf;
    size_t len;
    cr_assert_eq(crt_push_encode(&p, &buf, &len), 0);
    uint64_t n0 = status().notifies;
    cr_assert_eq(crt_pub_send(fake, buf, len), 0);
    free(buf);
    WAIT_UNTIL(status().notifies > n0, 5000);
    cr_assert_eq(cra_flow_manager_workspaces(rt, 5000, &text), 0);
    cr_assert(strstr(text, "\"\":") == NULL, "%s", text);
    free(text);
    cr_assert(probe_get("ws", "a").running && probe_get("ws", "b").running);
}

/* ---- workspace names that are not UTF-8 ------------------------------- */

/* The flow manager's workspace table used to leave out a workspace whose
 * name is not UTF-8 (jansson refuses such a key), so `workspaces` showed
 * it with "version": null or not at all. It lists every workspace now,
 * under its name as the flow directory shows it (U+FFFD for a bad byte),
 * so the monitor's merge of the two matches; names that show alike are
 * one entry, as in the directory. */
Test(receiver, workspaces_not_utf8_listed_as_the_directory_shows_them)
{
    start_svc(req_url, svc_notify_url);
    put("ok", "f", "{}");
    put("bad\xffws", "f", "{}");
    put("x\xfe", "f", "{}");
    put("x\xfd", "g", "{}");
    start_receiver(svc_notify_url);
    WAIT_UNTIL(probe_running() == 4, 10000);
    WAIT_UNTIL(settled(), 10000);
    uint64_t v0 = status().version; /* what the first sync fetched at */
    uint64_t vx = put("x\xfd", "h", "{}");
    WAIT_UNTIL(probe_running() == 5 && settled(), 10000);
    handlers_caught_up();
    cr_assert_eq(status().workspaces, 5); /* and default */
    uint64_t vok = v0, vbad = v0;

    char *text = NULL;
    cr_assert_eq(cra_flow_manager_workspaces(rt, 5000, &text), 0);
    json_t *fmws = json_loads(text, 0, NULL);
    cr_assert_not_null(fmws, "%s", text);
    free(text);
    cr_assert_eq(json_object_size(fmws), 4, "default, ok, bad?ws, x?");
    const json_t *bad = json_object_get(fmws, "bad\xEF\xBF\xBDws");
    cr_assert_not_null(bad);
    cr_assert_eq(json_integer_value(json_object_get(bad, "version")), vbad);
    cr_assert_eq(json_integer_value(json_object_get(bad, "flows")), 1);
    const json_t *x = json_object_get(fmws, "x\xEF\xBF\xBD");
    cr_assert_not_null(x);
    cr_assert_eq(json_integer_value(json_object_get(x, "flows")), 3,
                 "x\\xfe and x\\xfd merged");
    cr_assert_eq(json_integer_value(json_object_get(x, "version")), v0,
                 "the least advanced of the two");
    cr_assert_eq(json_integer_value(json_object_get(x, "notified")), vx,
                 "the highest notified");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(fmws, "ok"), "version")),
                 vok);

    /* the monitor's `workspaces` merge matches them with the directory */
    json_t *states = NULL;
    cr_assert_eq(cra_receiver_workspace_states(recv_, 5000, &states), 0);
    json_t *doc = cra_monitor_workspaces_doc(states, fmws);
    cr_assert_not_null(doc);
    const json_t *wss = json_object_get(doc, "workspaces");
    cr_assert_eq(json_object_size(wss), 4);
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)wss, k, e) {
        cr_assert(json_is_integer(json_object_get(e, "version")),
                  "%s has a version", k);
    }
    const json_t *be = json_object_get(wss, "bad\xEF\xBF\xBDws");
    cr_assert_eq(json_integer_value(json_object_get(be, "version")), vbad);
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(be, "states"), "running")),
                 1);
    const json_t *xe = json_object_get(wss, "x\xEF\xBF\xBD");
    cr_assert_eq(json_integer_value(json_object_get(
                     json_object_get(xe, "states"), "running")),
                 3);
    json_decref(doc);
    json_decref(states);
    json_decref(fmws);
}
