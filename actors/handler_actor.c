/*
 * handler_actor.c - one flow handler in an actor of its own.
 *
 * Design notes. The actor keeps, per workspace, a map id -> flow. A flow
 * holds what is *wanted* (a definition, or nothing) and what is *actual*
 * (the hash of the definition the handler last applied successfully).
 * reconcile() moves one flow one step towards wanted, issuing at most one
 * handler call at a time per flow; the result (immediate, or later by
 * RM_DONE for CRA_PENDING) is applied and the flow reconciled again. So
 * transitions of one flow run in order, a burst of changes coalesces into
 * the last one, and a failing flow never holds up another.
 *
 * Memory: a wanted definition's text is kept only until it has been
 * applied (a retry or a stop-then-start needs it); a running flow costs
 * its names, a hash, its state and its blueprint name. 100,000 flows cost
 * a few tens of MB here, and no threads or sockets.
 */
#include "handler_actor.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfgrecv/backoff.h"
#include "cfgrecv/utf8.h"
#include "cfgrecv/log.h"
#include "events.h"
#include "json_scan.h"
#include "mpread.h"
#include "recv_msgs.h"
#include "strmap.h"

typedef struct flow {
    char *ws;
    char *id;
    uint64_t serial; /* timer tag, key of st->by_serial */
    cra_flow_state state;
    uint64_t gen; /* last full-sync generation that listed it */

    bool want;       /* a definition is wanted */
    char *want_text; /* kept until applied */
    size_t want_len;
    uint64_t want_hash;
    uint64_t want_version;
    bool bad_def; /* wanted text is not a JSON object: failed */

    bool running; /* the handler has a definition applied */
    uint64_t run_hash;

    bool busy; /* a CRA_PENDING call is in flight */
    int busy_op;
    uint64_t busy_seq;
    uint64_t busy_hash;

    uint64_t timer; /* retry timer id, 0 = none */
    cr_backoff bo;
    uint32_t restarts;
    uint64_t up_since; /* monotonic ms of the last successful start */
    uint64_t since_ms;
    char *err;
    char *blueprint;
} flow;

typedef struct hstate {
    const cra_flow_handler *h;
    void *hs;
    cr_ctx *ctx;
    cra_strmap *ws;        /* ws -> cra_strmap(id -> flow) */
    cra_strmap *by_serial; /* 8-byte serial -> flow */
    uint64_t next_serial;
    uint64_t next_seq;
    uint64_t gen;
    uint64_t rng;
    char **empties; /* workspaces whose last flow was removed: their maps
                       are freed by drop_empty_ws, outside iterations */
    size_t nempties, capempties;
    char name[80];
} hstate;

static const cr_backoff_policy retry_policy = {
    .min_ms = 100,
    .max_ms = 30000,
    .factor = 2.0,
    .jitter = CR_JITTER_FULL,
    .stable_ms = 10000,
};

static const char *const state_names[] = {"starting", "backoff", "failed",
                                          "stopping", "running"};

const char *
cra_flow_state_name(cra_flow_state s)
{
    return (unsigned)s < 5 ? state_names[s] : "unknown";
}

void
cra_handler_actor_name(const cra_flow_handler *h, char *buf, size_t len)
{
    snprintf(buf, len, "handler:%s", h->name);
}

static uint64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *
dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* flow_event publishes a flow transition (a no-op without --events-url) */
static void
flow_event(hstate *st, const flow *f, const char *name)
{
    cr_rt *rt = cr_ctx_rt(st->ctx);
    if (!cra_events_enabled(rt)) {
        return;
    }
    json_t *o = json_pack("{s:s, s:s, s:s}", "handler", st->h->name,
                          "workspace", f->ws, "flow", f->id);
    if (o != NULL && f->err != NULL &&
        (strcmp(name, "flow.failed") == 0 ||
         strcmp(name, "flow.backoff") == 0)) {
        json_object_set_new(o, "error", json_string(f->err));
    }
    cra_emit(rt, name, o);
}

static void
set_state(flow *f, cra_flow_state s)
{
    if (f->state != s) {
        f->state = s;
        f->since_ms = wall_ms();
    }
}

static void
set_err(flow *f, const char *err)
{
    free(f->err);
    f->err = (err != NULL && err[0] != '\0') ? strdup(err) : NULL;
}

static void
flow_free(void *p)
{
    flow *f = p;
    free(f->ws);
    free(f->id);
    free(f->want_text);
    free(f->err);
    free(f->blueprint);
    free(f);
}

static void
cancel_timer(hstate *st, flow *f)
{
    if (f->timer != 0) {
        cr_timer_cancel(cr_ctx_rt(st->ctx), f->timer);
        f->timer = 0;
    }
}

static void
remove_flow(hstate *st, flow *f)
{
    cancel_timer(st, f);
    size_t wl = strlen(f->ws);
    cra_strmap *ids = cra_strmap_get(st->ws, f->ws, wl);
    if (ids != NULL) {
        cra_strmap_del(ids, f->id, strlen(f->id));
        if (cra_strmap_count(ids) == 0) {
            /* the map may be under iteration: note it for drop_empty_ws */
            if (st->nempties == st->capempties) {
                size_t nc = st->capempties ? st->capempties * 2 : 8;
                char **ne = realloc(st->empties, nc * sizeof(*ne));
                if (ne != NULL) {
                    st->empties = ne;
                    st->capempties = nc;
                }
            }
            char *copy = st->nempties < st->capempties ? dupn(f->ws, wl)
                                                       : NULL;
            if (copy != NULL) {
                st->empties[st->nempties++] = copy;
            }
        }
    }
    cra_strmap_del(st->by_serial, (const char *)&f->serial,
                   sizeof(f->serial));
    CR_DEBUG(st->name, "flow %s/%s stopped", f->ws, f->id);
    if (f->running || f->state != CRA_FLOW_FAILED) {
        flow_event(st, f, "flow.stopped");
    }
    flow_free(f);
}

static uint64_t
rng_next(void *arg)
{
    uint64_t *s = arg; /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void reconcile(hstate *st, flow *f);

/* schedule_retry puts f in backoff: the retry timer re-runs reconcile. The
 * backoff resets only when the flow had been up for the stable period, so
 * a flow that starts and dies at once backs off further each time. */
static void
schedule_retry(hstate *st, flow *f, const char *what, const char *err)
{
    const cr_backoff_policy *pol = st->h->retry ? st->h->retry
                                                : &retry_policy;
    uint64_t up = f->up_since ? cr_now_ms() - f->up_since : 0;
    cr_backoff_stable(&f->bo, pol, up);
    f->up_since = 0;
    uint64_t delay = cr_backoff_next(&f->bo, pol, rng_next, &st->rng);
    f->restarts++;
    set_err(f, err && err[0] ? err : "handler failed");
    set_state(f, CRA_FLOW_BACKOFF);
    CR_WARN(st->name, "flow %s/%s: %s failed (%s); retry in %llu ms", f->ws,
            f->id, what, f->err, (unsigned long long)delay);
    flow_event(st, f, "flow.backoff");
    if (cr_timer_after(cr_ctx_rt(st->ctx), cr_self(st->ctx), delay,
                       f->serial, &f->timer) != 0) {
        f->timer = 0;
        CR_ERROR(st->name, "flow %s/%s: cannot arm retry timer", f->ws,
                 f->id);
    }
}

/* apply_result records the outcome of a handler call and reconciles. */
static void
apply_result(hstate *st, flow *f, int op, int rc, const char *err)
{
    f->busy = false;
    if (op == RM_OP_STOP) {
        if (rc != CRA_OK) {
            CR_WARN(st->name, "flow %s/%s: stop failed: %s", f->ws, f->id,
                    err && err[0] ? err : "(no reason)");
        }
        f->running = false;
        f->run_hash = 0;
    } else if (rc == CRA_OK) {
        f->running = true;
        f->run_hash = f->busy_hash;
        f->up_since = cr_now_ms();
        set_err(f, NULL);
        set_state(f, CRA_FLOW_RUNNING);
        CR_DEBUG(st->name, "flow %s/%s %s", f->ws, f->id,
                 op == RM_OP_START ? "running" : "updated");
        flow_event(st, f, op == RM_OP_START ? "flow.running"
                                            : "flow.updated");
    } else {
        schedule_retry(st, f, op == RM_OP_START ? "start" : "update", err);
    }
    reconcile(st, f);
}

/* call issues one handler call for f. */
static void
call(hstate *st, flow *f, int op, const json_t *def)
{
    const cra_flow_handler *h = st->h;
    char err[512] = "";
    cra_flow_ref ref = {
        .workspace = f->ws,
        .id = f->id,
        .flow = def,
        .text = op == RM_OP_STOP ? NULL : f->want_text,
        .text_len = op == RM_OP_STOP ? 0 : f->want_len,
        .version = f->want_version,
        .op_seq = ++st->next_seq,
        .blueprint = op == RM_OP_STOP ? NULL
                                      : (f->blueprint ? f->blueprint : ""),
    };
    int rc;
    f->busy_op = op;
    f->busy_seq = ref.op_seq;
    f->busy_hash = f->want_hash;
    if (op == RM_OP_STOP) {
        set_state(f, CRA_FLOW_STOPPING);
        rc = h->stop ? h->stop(st->hs, &ref, err, sizeof(err)) : CRA_OK;
    } else {
        if (!f->running) {
            set_state(f, CRA_FLOW_STARTING);
            flow_event(st, f, "flow.starting");
        }
        if (op == RM_OP_START) {
            rc = h->start ? h->start(st->hs, &ref, err, sizeof(err)) : CRA_OK;
        } else {
            rc = h->update(st->hs, &ref, err, sizeof(err));
        }
    }
    if (rc == CRA_PENDING) {
        f->busy = true;
        return;
    }
    if (rc == CRA_REFUSED && op == RM_OP_START) {
        /* like a bad definition: failed, no retry until it changes */
        f->bad_def = true;
        set_err(f, err[0] ? err : "refused by the handler");
        set_state(f, CRA_FLOW_FAILED);
        CR_WARN(st->name, "flow %s/%s refused: %s", f->ws, f->id, f->err);
        flow_event(st, f, "flow.failed");
        return;
    }
    apply_result(st, f, op, rc == CRA_OK ? CRA_OK : CRA_FAILED, err);
}

static json_t *
parse_def(flow *f, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loadb(f->want_text, f->want_len, 0, &je);
    if (j == NULL) {
        snprintf(err, errlen, "flow value is not valid JSON: %s (line %d)",
                 je.text, je.line);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(err, errlen, "flow value is not a JSON object");
        json_decref(j);
        return NULL;
    }
    return j;
}

static void
reconcile(hstate *st, flow *f)
{
    if (f->busy) {
        return;
    }
    if (!f->want) {
        if (f->running) {
            call(st, f, RM_OP_STOP, NULL);
        } else {
            remove_flow(st, f);
        }
        return;
    }
    if (f->running && f->run_hash == f->want_hash) {
        set_state(f, CRA_FLOW_RUNNING);
        if (!st->h->keep_definitions) {
            free(f->want_text);
            f->want_text = NULL;
        }
        return;
    }
    if (f->timer != 0 || f->bad_def) {
        return; /* waiting for the retry timer, or for a new definition */
    }
    char err[512];
    char bp[256] = "";
    json_t *def = NULL;
    bool valid;
    if (st->h->no_json_tree) {
        valid = cra_json_scan_object(f->want_text, f->want_len, bp,
                                     sizeof(bp), err, sizeof(err)) == 0;
    } else {
        def = parse_def(f, err, sizeof(err));
        valid = def != NULL;
        json_t *b = valid ? json_object_get(def, "blueprint-name") : NULL;
        if (json_is_string(b)) { /* whole characters, as json_scan cuts */
            const unsigned char *v =
                (const unsigned char *)json_string_value(b);
            size_t len = json_string_length(b), n = 0;
            int k;
            while (n < len && (k = cr_utf8_seq(v + n, len - n)) > 0 &&
                   n + (size_t)k < sizeof(bp)) {
                n += (size_t)k;
            }
            memcpy(bp, v, n);
            bp[n] = '\0';
        }
    }
    if (!valid) {
        if (f->running) {
            call(st, f, RM_OP_STOP, NULL); /* comes back here, not running */
            return;
        }
        f->bad_def = true;
        set_err(f, err);
        set_state(f, CRA_FLOW_FAILED);
        CR_WARN(st->name, "flow %s/%s failed: %s", f->ws, f->id, err);
        flow_event(st, f, "flow.failed");
        return;
    }
    free(f->blueprint);
    f->blueprint = bp[0] != '\0' ? strdup(bp) : NULL;
    if (!f->running) {
        call(st, f, RM_OP_START, def);
    } else if (st->h->update != NULL) {
        call(st, f, RM_OP_UPDATE, def);
    } else {
        call(st, f, RM_OP_STOP, NULL); /* then started with the new def */
    }
    json_decref(def);
}

static cra_strmap *
ws_ids(hstate *st, const char *ws, size_t len, bool create)
{
    cra_strmap *ids = cra_strmap_get(st->ws, ws, len);
    if (ids == NULL && create) {
        ids = cra_strmap_new();
        if (ids != NULL && cra_strmap_put(st->ws, ws, len, ids, NULL) != 0) {
            cra_strmap_free(ids, NULL);
            ids = NULL;
        }
    }
    return ids;
}

static flow *
flow_new(hstate *st, cra_strmap *ids, rm_str ws, rm_str id)
{
    flow *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    f->ws = dupn(ws.p, ws.len);
    f->id = dupn(id.p, id.len);
    f->serial = ++st->next_serial;
    f->state = CRA_FLOW_STARTING;
    f->since_ms = wall_ms();
    if (f->ws == NULL || f->id == NULL ||
        cra_strmap_put(ids, id.p, id.len, f, NULL) != 0) {
        flow_free(f);
        return NULL;
    }
    if (cra_strmap_put(st->by_serial, (const char *)&f->serial,
                       sizeof(f->serial), f, NULL) != 0) {
        cra_strmap_del(ids, id.p, id.len);
        flow_free(f);
        return NULL;
    }
    return f;
}

static void
want(hstate *st, flow *f, rm_str text, uint64_t version)
{
    uint64_t h = cra_hash64(text.p, text.len);
    f->gen = st->gen;
    if (f->want && f->want_hash == h) {
        return; /* no change */
    }
    char *copy = dupn(text.p, text.len);
    if (copy == NULL) {
        CR_ERROR(st->name, "flow %s/%s: out of memory", f->ws, f->id);
        return;
    }
    free(f->want_text);
    f->want = true;
    f->want_text = copy;
    f->want_len = text.len;
    f->want_hash = h;
    f->want_version = version;
    f->bad_def = false;
    if (f->timer != 0) { /* a new definition is tried at once */
        cancel_timer(st, f);
        cr_backoff_reset(&f->bo);
    }
    reconcile(st, f);
}

static void
unwant(hstate *st, flow *f)
{
    f->want = false;
    free(f->want_text);
    f->want_text = NULL;
    f->bad_def = false;
    cancel_timer(st, f);
    reconcile(st, f); /* may free f */
}

/* drop_empty_ws frees the maps of workspaces left without flows (only
 * those remove_flow noted: never a scan of every workspace). */
static void
drop_empty_ws(hstate *st)
{
    for (size_t i = 0; i < st->nempties; i++) {
        char *w = st->empties[i];
        size_t wl = strlen(w);
        cra_strmap *ids = cra_strmap_get(st->ws, w, wl);
        if (ids != NULL && cra_strmap_count(ids) == 0) {
            cra_strmap_del(st->ws, w, wl);
            cra_strmap_free(ids, NULL);
        }
        free(w);
    }
    st->nempties = 0;
}

static int
on_flows(hstate *st, const cr_msg *m)
{
    rm_flows fl;
    if (rm_flows_decode(m, &fl) != 0) {
        CR_ERROR(st->name, "malformed RM_FLOWS message dropped");
        return 0;
    }
    cra_strmap *ids = ws_ids(st, fl.ws.p, fl.ws.len, true);
    if (ids == NULL) {
        CR_ERROR(st->name, "out of memory for a workspace");
        return 0;
    }
    st->gen++;
    rm_flow_op op;
    int rc;
    while ((rc = rm_flows_next(&fl, &op)) == 1) {
        flow *f = cra_strmap_get(ids, op.id.p, op.id.len);
        if (op.op == RM_OP_STOP) {
            if (f != NULL) {
                unwant(st, f);
            }
            continue;
        }
        if (op.text.p == NULL) {
            continue;
        }
        if (f == NULL && (f = flow_new(st, ids, fl.ws, op.id)) == NULL) {
            CR_ERROR(st->name, "out of memory for a flow");
            continue;
        }
        want(st, f, op.text, fl.version);
    }
    if (rc < 0) {
        CR_ERROR(st->name, "malformed op in RM_FLOWS; rest dropped");
    }
    if (fl.full && rc == 0) {
        const char *k;
        size_t kl;
        void *v;
        for (size_t it = 0; cra_strmap_next(ids, &it, &k, &kl, &v);) {
            flow *f = v;
            if (f->gen != st->gen && f->want) {
                unwant(st, f);
            }
        }
    }
    drop_empty_ws(st); /* may have freed ids */
    ids = cra_strmap_get(st->ws, fl.ws.p, fl.ws.len);
    if (ids != NULL && cra_strmap_count(ids) == 0) {
        /* e.g. only stops of flows it never had */
        cra_strmap_del(st->ws, fl.ws.p, fl.ws.len);
        cra_strmap_free(ids, NULL);
    }
    return 0;
}

static void
keep_ws(void *arg, const char *s, size_t len)
{
    cra_strmap_put(arg, s, len, (void *)1, NULL);
}

static int
on_sync_end(hstate *st, const cr_msg *m)
{
    cra_strmap *keep = cra_strmap_new();
    if (keep == NULL) {
        return 0;
    }
    if (rm_strlist_decode(m, keep_ws, keep) != 0) {
        CR_ERROR(st->name, "malformed RM_SYNC_END dropped");
        cra_strmap_free(keep, NULL);
        return 0;
    }
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; cra_strmap_next(st->ws, &it, &k, &kl, &v);) {
        if (cra_strmap_get(keep, k, kl) != NULL) {
            continue;
        }
        const char *fk;
        size_t fkl;
        void *fv;
        for (size_t jt = 0; cra_strmap_next(v, &jt, &fk, &fkl, &fv);) {
            flow *f = fv;
            if (f->want) {
                unwant(st, f);
            }
        }
    }
    cra_strmap_free(keep, NULL);
    drop_empty_ws(st);
    return 0;
}

/* done_target decodes an RM_DONE-layout message (RM_DONE, RM_FLOW_DOWN)
 * and finds its flow. Returns the flow (NULL if malformed, logged, or
 * gone) with *seq and *rc set and the error text copied into err. */
static flow *
done_target(hstate *st, const cr_msg *m, uint64_t *seq, int *rc, char *err,
            size_t errlen)
{
    rm_str ws, id, e;
    if (rm_done_decode(m, &ws, &id, seq, rc, &e) != 0) {
        CR_ERROR(st->name, "malformed completion (type %u) dropped",
                 cr_msg_type(m));
        return NULL;
    }
    snprintf(err, errlen, "%.*s", (int)e.len, e.p);
    cra_strmap *ids = ws_ids(st, ws.p, ws.len, false);
    return ids ? cra_strmap_get(ids, id.p, id.len) : NULL;
}

static int
on_done(hstate *st, const cr_msg *m)
{
    uint64_t seq;
    int rc;
    char err[1024];
    flow *f = done_target(st, m, &seq, &rc, err, sizeof(err));
    if (f == NULL || !f->busy || f->busy_seq != seq) {
        CR_DEBUG(st->name, "stale completion dropped");
        return 0;
    }
    apply_result(st, f, f->busy_op, rc == CRA_OK ? CRA_OK : CRA_FAILED, err);
    drop_empty_ws(st);
    return 0;
}

static int
on_flow_down(hstate *st, const cr_msg *m)
{
    uint64_t seq;
    int rc;
    char err[1024];
    flow *f = done_target(st, m, &seq, &rc, err, sizeof(err));
    if (f == NULL || !f->running || f->busy) {
        return 0; /* stopped or being changed meanwhile */
    }
    f->running = false;
    f->run_hash = 0;
    if (!f->want) {
        reconcile(st, f); /* it was going anyway */
        drop_empty_ws(st);
        return 0;
    }
    if (f->want_text == NULL) {
        /* a handler without keep_definitions: mark it failed until the
         * next definition arrives */
        CR_ERROR(st->name, "flow %s/%s down; its definition is not kept, "
                           "so it waits for the next change",
                 f->ws, f->id);
        f->want = false;
        f->bad_def = false;
        set_err(f, "down; definition not kept");
        reconcile(st, f);
        drop_empty_ws(st);
        return 0;
    }
    schedule_retry(st, f, "run", err);
    return 0;
}

static int
on_timer(hstate *st, const cr_msg *m)
{
    uint64_t tid, tag;
    if (cr_timer_decode(m, &tid, &tag) != 0) {
        return 0;
    }
    flow *f = cra_strmap_get(st->by_serial, (const char *)&tag, sizeof(tag));
    if (f == NULL || f->timer != tid) {
        return 0; /* cancelled meanwhile */
    }
    f->timer = 0;
    reconcile(st, f);
    drop_empty_ws(st);
    return 0;
}

static void
pack_cstr(msgpack_packer *pk, const char *s)
{
    s = s ? s : "";
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static int
on_query(hstate *st, const cr_msg *m)
{
    cr_msg *r = cr_msg_new(RM_QUERY_FLOWS);
    if (r == NULL) {
        return 0;
    }
    msgpack_packer *pk = cr_msg_packer(r);
    size_t n = 0;
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; cra_strmap_next(st->ws, &it, &k, &kl, &v);) {
        n += cra_strmap_count(v);
    }
    msgpack_pack_array(pk, n);
    for (size_t it = 0; cra_strmap_next(st->ws, &it, &k, &kl, &v);) {
        const char *fk;
        size_t fkl;
        void *fv;
        for (size_t jt = 0; cra_strmap_next(v, &jt, &fk, &fkl, &fv);) {
            flow *f = fv;
            msgpack_pack_array(pk, 7);
            pack_cstr(pk, f->ws);
            pack_cstr(pk, f->id);
            pack_cstr(pk, cra_flow_state_name(f->state));
            pack_cstr(pk, f->err);
            msgpack_pack_uint32(pk, f->restarts);
            msgpack_pack_uint64(pk, f->since_ms);
            pack_cstr(pk, f->blueprint);
        }
    }
    if (cr_msg_packer_failed(r)) {
        cr_msg_free(r);
        return 0;
    }
    cr_reply(st->ctx, m, r);
    return 0;
}

static int
h_init(cr_ctx *ctx, void *arg, void **state)
{
    const cra_flow_handler *h = arg;
    hstate *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return CR_ENOMEM;
    }
    st->h = h;
    st->ctx = ctx;
    st->rng = cr_now_ms() ^ (cr_self(ctx) * 0x9e3779b97f4a7c15ULL);
    cra_handler_actor_name(h, st->name, sizeof(st->name));
    st->ws = cra_strmap_new();
    st->by_serial = cra_strmap_new();
    *state = st;
    if (st->ws == NULL || st->by_serial == NULL) {
        return CR_ENOMEM;
    }
    if (h->retry != NULL && cr_backoff_policy_check(h->retry) != 0) {
        cr_fail(ctx, CR_EINVAL, "handler %s: bad retry policy", h->name);
        return CR_EINVAL;
    }
    if (h->init != NULL) {
        int rv = h->init(ctx, h->arg, &st->hs);
        if (rv != 0) {
            cr_fail(ctx, rv, "handler %s: init failed (%d)", h->name, rv);
            return rv;
        }
    }
    /* A restarted handler asks for the whole wanted set again. At first
     * start the flow manager does not exist yet and syncs everyone. */
    cr_id fm = cr_whereis(cr_ctx_rt(ctx), "flow-manager");
    if (fm != CR_NOBODY) {
        cr_msg *up = rm_text_new(RM_HANDLER_UP, h->name);
        if (up != NULL && cr_ctx_send(ctx, fm, up) != 0) {
            cr_msg_free(up);
        }
    }
    CR_DEBUG(st->name, "handler started");
    return 0;
}

static int
h_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    hstate *st = state;
    switch (cr_msg_type(m)) {
    case RM_FLOWS:
        return on_flows(st, m);
    case RM_SYNC_END:
        return on_sync_end(st, m);
    case RM_DONE:
        return on_done(st, m);
    case RM_FLOW_DOWN:
        return on_flow_down(st, m);
    case CR_MSG_TIMER:
        return on_timer(st, m);
    case RM_QUERY_FLOWS:
        return on_query(st, m);
    default:
        if (st->h->handle != NULL) {
            return st->h->handle(st->hs, ctx, m);
        }
        CR_WARN(st->name, "unexpected message type %u dropped",
                cr_msg_type(m));
        return 0;
    }
}

static void
h_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    hstate *st = state;
    if (st == NULL) {
        return;
    }
    /* Stop every running flow, then let the handler clean up. */
    if (st->ws != NULL) {
        size_t stopped = 0;
        const char *k;
        size_t kl;
        void *v;
        for (size_t it = 0; cra_strmap_next(st->ws, &it, &k, &kl, &v);) {
            const char *fk;
            size_t fkl;
            void *fv;
            for (size_t jt = 0; cra_strmap_next(v, &jt, &fk, &fkl, &fv);) {
                flow *f = fv;
                if (f->running && !f->busy) { /* stop NULL: succeeds */
                    char err[256] = "";
                    cra_flow_ref ref = {.workspace = f->ws,
                                        .id = f->id,
                                        .sync = true};
                    if (st->h->stop != NULL &&
                        st->h->stop(st->hs, &ref, err, sizeof(err)) ==
                            CRA_FAILED) {
                        CR_WARN(st->name, "flow %s/%s: stop failed: %s",
                                f->ws, f->id, err);
                    }
                    /* the events actor stops after the handlers: a
                     * watcher sees the shutdown's stops too */
                    flow_event(st, f, "flow.stopped");
                    stopped++;
                }
                cancel_timer(st, f);
                flow_free(f);
            }
            cra_strmap_free(v, NULL);
        }
        cra_strmap_free(st->ws, NULL);
        if (stopped > 0) {
            CR_INFO(st->name, "stopped %zu flows", stopped);
        }
    }
    cra_strmap_free(st->by_serial, NULL);
    for (size_t i = 0; i < st->nempties; i++) {
        free(st->empties[i]);
    }
    free(st->empties);
    if (st->h->terminate != NULL && st->hs != NULL) {
        st->h->terminate(st->hs);
    }
    free(st);
}

const cr_behaviour cra_handler_behaviour = {
    .kind = "flow-handler",
    .init = h_init,
    .handle = h_handle,
    .terminate = h_terminate,
};

/* ---- the flow directory: the default handler ------------------------ */

const cra_flow_handler cra_flowdir_handler = {
    .name = "flows",
    .no_json_tree = true,
    /* start/update/stop NULL: always succeed; the handler actor's own
     * table (state, blueprint, since) is the directory. */
    .update = NULL,
};

/* ---- query client ---------------------------------------------------- */

void
cra_flow_info_free(cra_flow_info *v, size_t n)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i].workspace);
        free(v[i].id);
        free(v[i].error);
        free(v[i].blueprint);
    }
    free(v);
}

static const char *
intern_state(const char *s, size_t n)
{
    for (int i = 0; i < 5; i++) {
        if (strlen(state_names[i]) == n && memcmp(state_names[i], s, n) == 0) {
            return state_names[i];
        }
    }
    return "unknown";
}

int
cra_handler_query(cr_rt *rt, cr_id id, int timeout_ms, cra_flow_info **out,
                  size_t *n)
{
    *out = NULL;
    *n = 0;
    cr_msg *r;
    int rv = rm_call(rt, id, RM_QUERY_FLOWS, NULL, 0, timeout_ms, &r);
    if (rv != 0) {
        return rv;
    }
    crt_mpr rd;
    uint32_t cnt;
    crt_mpr_init(&rd, cr_msg_data(r), cr_msg_len(r), 3);
    rv = crt_mpr_array(&rd, &cnt);
    cra_flow_info *v = rv == 0 && cnt > 0 ? calloc(cnt, sizeof(*v)) : NULL;
    if (rv == 0 && cnt > 0 && v == NULL) {
        rv = CR_ENOMEM;
    }
    size_t got = 0;
    for (uint32_t i = 0; rv == 0 && i < cnt; i++) {
        uint32_t fields;
        const char *s[5];
        size_t sl[5];
        uint64_t restarts, since;
        if (crt_mpr_array(&rd, &fields) != 0 || fields != 7 ||
            crt_mpr_str(&rd, &s[0], &sl[0]) != 0 ||
            crt_mpr_str(&rd, &s[1], &sl[1]) != 0 ||
            crt_mpr_str(&rd, &s[2], &sl[2]) != 0 ||
            crt_mpr_str(&rd, &s[3], &sl[3]) != 0 ||
            crt_mpr_uint(&rd, &restarts) != 0 ||
            crt_mpr_uint(&rd, &since) != 0 ||
            crt_mpr_str(&rd, &s[4], &sl[4]) != 0) {
            rv = CR_EPROTO;
            break;
        }
        crt_mpr_leave(&rd);
        cra_flow_info *e = &v[got++];
        e->workspace = dupn(s[0], sl[0]);
        e->id = dupn(s[1], sl[1]);
        e->state = intern_state(s[2], sl[2]);
        e->error = dupn(s[3], sl[3]);
        e->blueprint = dupn(s[4], sl[4]);
        e->restarts = (uint32_t)restarts;
        e->since_ms = since;
        if (!e->workspace || !e->id || !e->error || !e->blueprint) {
            rv = CR_ENOMEM;
        }
    }
    cr_msg_free(r);
    if (rv != 0) {
        cra_flow_info_free(v, got);
        return rv;
    }
    *out = v;
    *n = got;
    return 0;
}

int
cra_handler_flow_down(cr_rt *rt, cr_id handler, const char *workspace,
                      const char *id, const char *err)
{
    cr_msg *m = rm_done_new(workspace, id, 0, CRA_FAILED, err);
    if (m == NULL) {
        return CR_ENOMEM;
    }
    cr_msg_set_type(m, RM_FLOW_DOWN);
    int rv = cr_send(rt, CR_NOBODY, handler, m);
    if (rv != 0) {
        cr_msg_free(m);
    }
    return rv;
}

int
cra_handler_done(cr_rt *rt, cr_id handler, const char *workspace,
                 const char *id, uint64_t op_seq, int rc, const char *err)
{
    cr_msg *m = rm_done_new(workspace, id, op_seq, rc, err);
    if (m == NULL) {
        return CR_ENOMEM;
    }
    int rv = cr_send(rt, CR_NOBODY, handler, m);
    if (rv != 0) {
        cr_msg_free(m);
    }
    return rv;
}
