/*
 * flow_manager.c - versions, wanted sets, diffs. See flow_manager.h for
 * the rules; this note is about the shape.
 *
 * The manager never blocks on the network: it asks the fetcher (RM_FETCH,
 * RM_DISCOVER) and reacts to the answers; while the fetch lane has a free
 * slot it sends a `config` request itself instead (cra_fetch_direct: an
 * nng send that does not wait), whose errors the fetcher takes over.
 * Each workspace has one record (applied version, highest notified
 * version, fetch-in-progress flag, and the wanted flows as id -> content
 * hash). A deleted workspace keeps its record (its applied version is
 * a tombstone) so that an older fetch result cannot resurrect its flows.
 * A record is freed only at the end of a full resync that did not list
 * it, when it has no flows and nothing refers to it (prune_round).
 *
 * Fetch requests are collected while one message is handled and sent as
 * one RM_FETCH, so a notify naming 1,000 workspaces costs one message.
 * Diffs are streamed into an RM_FLOWS builder; the same message is
 * duplicated for each handler. After a handler restarts (RM_HANDLER_UP)
 * or this actor starts, every workspace is marked needs_full: its next
 * applied fetch goes out as the whole wanted set, which handlers
 * reconcile (a no-op where nothing changed).
 */
#include "flow_manager.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/log.h"
#include "events.h"
#include "fetcher.h"
#include "flow_dir.h"
#include "mpread.h"
#include "proto.h"
#include "recv_msgs.h"
#include "strmap.h"

#define COMP "flow-manager"

enum { TAG_STARTUP = 1, TAG_PERIODIC = 2, TAG_LAG = 3 };

/* A service behind a notify (see lag_add): the first probe's delay, the
 * longest delay between probes, and how many probe answers in a row at
 * one version are waited for (50, 100, ... 1600, 1600 ms: ~4.8 s). */
#define LAG_FIRST_MS 50
#define LAG_MAX_MS 1600
#define LAG_TRIES 7

typedef struct wsst {
    uint64_t applied; /* version of the last applied fetch (or deletion) */
    uint64_t wanted;  /* highest notify version naming it for `flow` */
    bool fetching;    /* requested from the fetcher, not answered yet */
    bool needs_full;  /* next applied result goes out as the full set */
    bool deleted;     /* workspace_changes.deleted named it: its fetches
                         are not applied until it is created again or a
                         newer flow change names it */
    bool lag_wait;    /* in fm.lag: the service answered below wanted */
    uint64_t asked;   /* wanted when its fetch was requested: an answer
                         below it is a service behind a notify already
                         heard (lag_add), at or above it a change that
                         raced the fetch (fetched again at once) */
    uint64_t listed;   /* the full resync round that last listed it */
    cra_strmap *flows; /* id -> (void *)(hash | 1) */
    char *name;
} wsst;

typedef struct fm {
    const cra_flow_manager_opts *o;
    cr_ctx *ctx;
    cr_id *handler_ids; /* per o->handlers: the instance this actor's
                           messages reach (RM_HANDLER_UP from it is no
                           news), CR_NOBODY before the first */
    bool *handler_missed; /* per o->handlers: a message did not reach the
                             instance now running (it was absent, died or
                             restarted): its RM_HANDLER_UP needs it all */
    cra_strmap *ws; /* name -> wsst */
    uint64_t round_no; /* full resync rounds begun (wsst.listed) */
    uint64_t seen_version;
    uint64_t nflows;

    const char **batch; /* workspace names (keys of ws) to fetch */
    size_t nbatch, capbatch;

    bool discovering;     /* RM_DISCOVER in flight */
    bool discover_full;   /* the answer starts a full round */
    bool discover_again;  /* another full resync asked meanwhile */
    uint64_t discover_seen; /* seen_version when it was sent: an answer
                               below it is a service behind what was seen
                               before asking (behind_service) */
    cra_strmap *round;    /* ws awaiting their fetch in a full round */
    bool synced;
    bool stream_up;
    bool stream_seen;
    bool resync_deferred; /* asked for before the stream came up */
    uint64_t startup_timer;

    /* Workspaces a notify announced at a version the service has not
     * reached (lag_add). They wait together for the service, which is
     * probed by fetching one of them; one list for all of them, since a
     * config version is global. */
    const char **lag;    /* names, keys of ws, each with lag_wait set;
                            one applied meanwhile (no longer waiting)
                            is dropped lazily by lag_release */
    size_t nlag, caplag;
    uint64_t lag_min;    /* lowest wanted among them */
    uint64_t lag_seen;   /* highest version answered since they lag */
    unsigned lag_tries;  /* probes answered in a row at lag_seen */
    unsigned lag_step;   /* probes sent: the next delay */
    const char *lag_probe; /* the workspace whose fetch is the probe in
                              flight, NULL when none */
    uint64_t lag_timer;  /* the next probe, 0 = none armed */

    cra_recv_status st;
} fm;

static inline void *
hash_val(uint64_t h)
{
    return (void *)(uintptr_t)(h | 1u);
}

static wsst *
get_ws(fm *s, const char *name, size_t len, const char **key)
{
    wsst *w = cra_strmap_get(s->ws, name, len);
    if (w == NULL) {
        w = calloc(1, sizeof(*w));
        if (w == NULL || (w->flows = cra_strmap_new()) == NULL ||
            (w->name = malloc(len + 1)) == NULL) {
            goto fail;
        }
        memcpy(w->name, name, len);
        w->name[len] = '\0';
        if (cra_strmap_put(s->ws, name, len, w, NULL) != 0) {
            goto fail;
        }
        w->needs_full = true;
    }
    if (key != NULL) {
        *key = w->name; /* stable: a record is freed only while nothing
                           refers to it (prune_round) */
    }
    return w;
fail:
    if (w != NULL) {
        cra_strmap_free(w->flows, NULL);
        free(w->name);
    }
    free(w);
    CR_ERROR(COMP, "out of memory for a workspace");
    return NULL;
}

static void
ws_free(void *p)
{
    wsst *w = p;
    cra_strmap_free(w->flows, NULL);
    free(w->name);
    free(w);
}

static void
version_event(fm *s, const char *name, uint64_t v, json_t *extra)
{
    cr_rt *rt = cr_ctx_rt(s->ctx);
    if (!cra_events_enabled(rt)) {
        json_decref(extra);
        return;
    }
    json_t *o = extra != NULL ? extra : json_object();
    json_object_set_new(o, "version", json_integer((json_int_t)v));
    cra_emit(rt, name, o);
}

/* ---- talking to the fetcher and the handlers ------------------------ */

static cr_id
fetcher_id(fm *s)
{
    return cr_whereis(cr_ctx_rt(s->ctx), "fetcher");
}

/* send_or_wait sends m (owned from here on) to `to`, waiting up to 10 s
 * for room; 0 or the error (logged, m freed). */
static int
send_or_wait(fm *s, cr_id to, cr_msg *m, const char *what)
{
    int rv = cr_ctx_send_wait(s->ctx, to, m, 10000);
    if (rv != 0) {
        CR_WARN(COMP, "cannot send %s: %s", what, cr_strerror(rv));
        cr_msg_free(m);
    }
    return rv;
}

/* push_name appends a workspace name (a record's key: stable while the
 * record is fetching or waiting, which prune_round respects) to a
 * growable list. False when out of memory. */
static bool
push_name(const char ***list, size_t *n, size_t *cap, const char *name)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        const char **nl = realloc(*list, ncap * sizeof(*nl));
        if (nl == NULL) {
            return false;
        }
        *list = nl;
        *cap = ncap;
    }
    (*list)[(*n)++] = name;
    return true;
}

/* want_fetch queues ws for the next RM_FETCH unless already fetching. */
static void
want_fetch(fm *s, wsst *w, const char *name)
{
    if (w->fetching) {
        return;
    }
    if (!push_name(&s->batch, &s->nbatch, &s->capbatch, name)) {
        CR_ERROR(COMP, "out of memory queueing a fetch of %s", name);
        return;
    }
    w->fetching = true;
    w->asked = w->wanted;
}

static void
flush_fetches(fm *s)
{
    if (s->nbatch == 0) {
        return;
    }
    /* While the lane has free slots, send from here: one mailbox hop
     * fewer on a change's path. The rest goes to the fetcher. */
    size_t keep = 0;
    cr_rt *rt = cr_ctx_rt(s->ctx);
    for (size_t i = 0; i < s->nbatch; i++) {
        const char *n = s->batch[i];
        if (keep > 0 || !cra_fetch_direct(rt, s->o->lane, n, strlen(n))) {
            s->batch[keep++] = n;
        }
    }
    s->nbatch = keep;
    if (keep == 0) {
        return;
    }
    cr_id f = fetcher_id(s);
    cr_msg *m = rm_strlist_new(RM_FETCH, s->batch, s->nbatch);
    if (f == CR_NOBODY || m == NULL) {
        /* The fetcher is restarting: the flow manager is restarted after
         * it (rest_for_one) and resyncs in full, so nothing is lost. */
        CR_WARN(COMP, "fetcher unavailable; %zu fetches deferred", s->nbatch);
        cr_msg_free(m);
        for (size_t i = 0; i < s->nbatch; i++) {
            wsst *w = cra_strmap_get(s->ws, s->batch[i], strlen(s->batch[i]));
            if (w != NULL) {
                w->fetching = false;
            }
        }
    } else {
        send_or_wait(s, f, m, "fetch request");
    }
    s->nbatch = 0;
}

/* handler_id finds handler i's actor, and writes its registered name. */
static cr_id
handler_id(fm *s, size_t i, char name[96])
{
    snprintf(name, 96, "handler:%s", s->o->handlers[i]);
    return cr_whereis(cr_ctx_rt(s->ctx), name);
}

static void
to_handlers(fm *s, cr_msg *m)
{
    char name[96];
    for (size_t i = 0; i < s->o->nhandlers; i++) {
        cr_id h = handler_id(s, i, name);
        if (h == CR_NOBODY) {
            /* not up yet, or restarting: it asks for everything when up */
            s->handler_missed[i] = true;
            continue;
        }
        if (s->handler_ids[i] != CR_NOBODY && s->handler_ids[i] != h) {
            s->handler_missed[i] = true; /* a new instance: the old one's
                                            queue is gone */
        }
        s->handler_ids[i] = h;
        cr_msg *c = cr_msg_dup(m);
        if (c == NULL) {
            CR_ERROR(COMP, "out of memory sending to %s", name);
            s->handler_missed[i] = true;
            continue;
        }
        if (send_or_wait(s, h, c, name) != 0) {
            s->handler_missed[i] = true;
        }
    }
    cr_msg_free(m);
}

/* ---- resync --------------------------------------------------------- */

static void
full_resync(fm *s, const char *why)
{
    if (!s->stream_seen && s->startup_timer != 0) {
        /* subscribe first: until the notify stream is up (or the start-up
         * wait ran out) a resync waits, and then happens once */
        CR_DEBUG(COMP, "resync (%s) deferred until the notify stream is up",
                 why);
        s->resync_deferred = true;
        return;
    }
    s->resync_deferred = false;
    s->st.resyncs++;
    CR_INFO(COMP, "full resync: %s", why);
    if (s->discovering) {
        s->discover_again = true;
        s->discover_full = true;
        return;
    }
    cr_id f = fetcher_id(s);
    cr_msg *m = cr_msg_new(RM_DISCOVER);
    if (f == CR_NOBODY || m == NULL) {
        cr_msg_free(m);
        CR_WARN(COMP, "fetcher unavailable; resync deferred");
        return;
    }
    s->discovering = true;
    s->discover_full = true;
    s->discover_seen = s->seen_version;
    send_or_wait(s, f, m, "discovery request");
}

static void
periodic_check(fm *s)
{
    if (s->discovering) {
        return;
    }
    cr_id f = fetcher_id(s);
    cr_msg *m = cr_msg_new(RM_DISCOVER);
    if (f == CR_NOBODY || m == NULL) {
        cr_msg_free(m);
        return;
    }
    s->discovering = true;
    s->discover_full = false;
    s->discover_seen = s->seen_version;
    send_or_wait(s, f, m, "discovery request");
}

static void
round_add(fm *s, const char *name, size_t len)
{
    const char *key;
    wsst *w = get_ws(s, name, len, &key);
    if (w == NULL || key == NULL) {
        return;
    }
    cra_strmap_put(s->round, key, len, w, NULL);
    w->listed = s->round_no;
    want_fetch(s, w, key);
}

static void tombstone_set(fm *s, const char *name, uint64_t version,
                          bool deleted);
static void lag_end(fm *s);

/* servable tells whether the config service can answer a `config`
 * request for the workspace name p[0..len): it refuses an empty one
 * ("workspace is required", cfgsvc_core.c, as TrustGraph does), and the
 * codecs refuse a NUL byte. Fetching an unservable name would be retried
 * for good, so notifies and discovery naming one are not followed. */
static bool
servable(const char *p, size_t len)
{
    return len > 0 && memchr(p, '\0', len) == NULL;
}

/* counted_servable is servable() for a notify's NUL-terminated names,
 * counting the names refused in *refused (one WARN per notify). */
static bool
counted_servable(const char *name, size_t *refused)
{
    if (servable(name, strlen(name))) {
        return true;
    }
    (*refused)++;
    return false;
}

/* behind_service is called when a discovery answers `version`, below what
 * this actor had seen before it asked (discover_seen): a notify announced
 * a version the service does not have (a bad publisher, a lagging
 * replica), or the service's store was reset and its versions restarted
 * low. Either way the service is the truth. Every version this actor
 * holds above the service's is lowered to it (applied, notified,
 * tombstones): otherwise the full resync that follows would drop every
 * fetch as stale, notifies would be ignored until the service caught up,
 * and the periodic check (version > seen) would never fire again. The
 * flows are then what the service has, even if that is older than what
 * a notify had announced. The wait for the service (lag_add) ends here:
 * the versions it waited for are lowered too. */
static void
behind_service(fm *s, uint64_t version)
{
    CR_WARN(COMP, "config service at version %llu, below the %llu seen "
                  "here (a notify ahead of the service, or a store that "
                  "was reset): resyncing in full and taking %llu as the "
                  "version",
            (unsigned long long)version,
            (unsigned long long)s->discover_seen,
            (unsigned long long)version);
    const char *k;
    size_t kl;
    void *v;
    size_t lowered = 0;
    for (size_t it = 0; cra_strmap_next(s->ws, &it, &k, &kl, &v);) {
        wsst *w = v;
        bool was = w->applied > version || w->wanted > version;
        if (w->applied > version) {
            w->applied = version;
            if (w->deleted) {
                tombstone_set(s, w->name, version, true);
            }
        }
        if (w->wanted > version) {
            w->wanted = version;
        }
        if (w->asked > version) {
            w->asked = version;
        }
        lowered += was ? 1 : 0;
    }
    lag_end(s);
    if (lowered > 0) {
        CR_INFO(COMP, "%zu workspace(s) held a version above %llu: "
                      "lowered to it",
                lowered, (unsigned long long)version);
    }
    /* a notify that came while the answer was on its way stays seen; the
     * next check compares against it */
    if (s->seen_version <= s->discover_seen) {
        s->seen_version = version;
    }
}

/* prune_round forgets, at the end of a full resync, the workspaces that
 * are neither in the service (the round listed every one discovered, and
 * every one with flows: wsst.listed) nor doing anything here: no flows,
 * no fetch, no delayed refetch. Without it every name a notify ever gave (a hostile
 * publisher's random ones, workspaces created and deleted over months)
 * would stay in memory for good. A deleted one goes with its tombstone:
 * the service holds no flow of it any more. Its version is forgotten
 * too, which costs at most one fetch if an old notify names it again. */
static void
prune_round(fm *s)
{
    const char *k;
    size_t kl;
    void *v;
    size_t pruned = 0;
    for (size_t it = 0; cra_strmap_next(s->ws, &it, &k, &kl, &v);) {
        wsst *w = v;
        if (w->listed == s->round_no || cra_strmap_count(w->flows) > 0 ||
            w->fetching || w->lag_wait ||
            (kl == 7 && memcmp(k, "default", 7) == 0)) {
            continue;
        }
        if (w->deleted) {
            tombstone_set(s, w->name, 0, false);
        }
        ws_free(cra_strmap_del(s->ws, k, kl));
        pruned++;
    }
    if (pruned > 0) {
        CR_INFO(COMP, "resync: forgot %zu workspaces with no flows that "
                      "the service does not list",
                pruned);
    }
}

static void
finish_round(fm *s)
{
    prune_round(s);
    const char **names = NULL;
    size_t n = 0;
    const char *k;
    size_t kl;
    void *v;
    names = malloc((cra_strmap_count(s->ws) + 1) * sizeof(*names));
    if (names == NULL) {
        return;
    }
    for (size_t it = 0; cra_strmap_next(s->ws, &it, &k, &kl, &v);) {
        wsst *w = v;
        if (cra_strmap_count(w->flows) > 0) {
            names[n++] = k;
        }
    }
    cr_msg *m = rm_strlist_new(RM_SYNC_END, names, n);
    free(names);
    if (m != NULL) {
        to_handlers(s, m);
    }
    cra_strmap_free(s->round, NULL);
    s->round = NULL;
    if (!s->synced) {
        CR_INFO(COMP, "initial sync complete: version %llu, %zu workspaces, "
                      "%llu flows",
                (unsigned long long)s->seen_version, cra_strmap_count(s->ws),
                (unsigned long long)s->nflows);
    } else {
        CR_INFO(COMP, "resync complete: version %llu, %llu flows",
                (unsigned long long)s->seen_version,
                (unsigned long long)s->nflows);
    }
    s->synced = true;
}

static int
on_discovered(fm *s, const cr_msg *m)
{
    crt_mpr r;
    uint32_t n, nws;
    uint64_t version;
    s->discovering = false;
    crt_mpr_init(&r, cr_msg_data(m), cr_msg_len(m), 3);
    if (crt_mpr_array(&r, &n) != 0 || n != 2 ||
        crt_mpr_uint(&r, &version) != 0 || crt_mpr_array(&r, &nws) != 0) {
        CR_ERROR(COMP, "malformed RM_DISCOVERED dropped");
        return 0;
    }
    bool behind = version < s->discover_seen;
    bool full = s->discover_full || s->discover_again || behind ||
                version > s->seen_version;
    if (behind) {
        behind_service(s, version);
        if (!s->discover_full) {
            s->st.resyncs++;
        }
    } else if (!s->discover_full && full) {
        CR_INFO(COMP, "periodic check: service at version %llu, seen %llu; "
                      "resyncing",
                (unsigned long long)version,
                (unsigned long long)s->seen_version);
        s->st.resyncs++;
    }
    s->discover_again = false;
    if (version > s->seen_version) {
        s->seen_version = version;
    }
    if (!full) {
        return 0;
    }
    if (s->round == NULL) {
        if ((s->round = cra_strmap_new()) == NULL) {
            return 0;
        }
        s->round_no++; /* a new round; one still running goes on */
    }
    round_add(s, "default", 7);
    size_t unservable = 0;
    for (uint32_t i = 0; i < nws; i++) {
        const char *p;
        size_t len;
        if (crt_mpr_str(&r, &p, &len) != 0) {
            CR_ERROR(COMP, "malformed workspace name in discovery");
            break;
        }
        if (!servable(p, len)) {
            unservable++; /* the fetcher leaves them out already */
            continue;
        }
        round_add(s, p, len);
    }
    if (unservable > 0) {
        CR_WARN(COMP, "discovery: %zu workspace name(s) the config "
                      "service cannot serve (empty) ignored",
                unservable);
    }
    /* Workspaces we know with flows are refetched too: one that vanished
     * comes back empty and its flows stop. */
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; cra_strmap_next(s->ws, &it, &k, &kl, &v);) {
        wsst *w = v;
        if (cra_strmap_count(w->flows) > 0) {
            round_add(s, k, kl);
        }
    }
    CR_DEBUG(COMP, "resync round: %zu workspaces",
             cra_strmap_count(s->round));
    flush_fetches(s);
    return 0;
}

/* ---- fetch results -------------------------------------------------- */

static void
apply_fetched(fm *s, wsst *w, const char *name, const cr_msg *m,
              const rm_flows *hdr)
{
    rm_flows fl = *hdr;
    cra_strmap *next = cra_strmap_new();
    rm_flows_builder b;
    if (next == NULL || rm_flows_begin(&b) != 0) {
        cra_strmap_free(next, NULL);
        CR_ERROR(COMP, "out of memory applying %s", name);
        w->fetching = false;
        want_fetch(s, w, name);
        return;
    }
    rm_flow_op op;
    int rc;
    size_t changes = 0;
    while ((rc = rm_flows_next(&fl, &op)) == 1) {
        if (op.text.p == NULL) {
            continue;
        }
        uint64_t h = cra_hash64(op.text.p, op.text.len);
        void *old = cra_strmap_get(w->flows, op.id.p, op.id.len);
        if (cra_strmap_put(next, op.id.p, op.id.len, hash_val(h), NULL) != 0) {
            rc = -2;
            break;
        }
        if (old == NULL) {
            rm_flows_add(&b, RM_OP_START, op.id.p, op.id.len, op.text.p,
                         op.text.len);
            changes++;
        } else if (old != hash_val(h)) {
            rm_flows_add(&b, RM_OP_UPDATE, op.id.p, op.id.len, op.text.p,
                         op.text.len);
            changes++;
        }
    }
    if (rc != 0) {
        CR_ERROR(COMP, "fetch result for %s unusable (%s); refetching", name,
                 rc == -2 ? "out of memory" : "malformed");
        rm_flows_abort(&b);
        cra_strmap_free(next, NULL);
        want_fetch(s, w, name);
        return;
    }
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; cra_strmap_next(w->flows, &it, &k, &kl, &v);) {
        if (cra_strmap_get(next, k, kl) == NULL) {
            rm_flows_add(&b, RM_OP_STOP, k, kl, NULL, 0);
            changes++;
        }
    }
    s->nflows -= cra_strmap_count(w->flows);
    s->nflows += cra_strmap_count(next);
    cra_strmap_free(w->flows, NULL);
    w->flows = next;
    w->applied = hdr->version;

    cr_msg *out = NULL;
    if (w->needs_full) {
        rm_flows_abort(&b);
        out = cr_msg_dup(m);
        if (out != NULL) {
            cr_msg_set_type(out, RM_FLOWS);
        }
        w->needs_full = false;
    } else if (changes > 0) {
        if (rm_flows_finish(&b, name, strlen(name), hdr->version, false,
                            &out) != 0) {
            out = NULL;
        }
    } else {
        rm_flows_abort(&b);
    }
    if (out != NULL) {
        to_handlers(s, out);
    } else if (changes > 0) {
        CR_ERROR(COMP, "out of memory sending the diff of %s", name);
    }
    CR_DEBUG(COMP, "workspace %s at version %llu: %zu changes", name,
             (unsigned long long)hdr->version, changes);
}

/* ---- a service behind a notify -------------------------------------- */

/* A fetch answered below a version a notify announced before the fetch
 * was asked for (wsst.asked): the service has not reached that version -
 * a lagging replica, or a publisher announcing a version that does not
 * exist. Asking again at once would hammer the service for as long as
 * that lasts, once per workspace the notify named. Since a config
 * version is global, such workspaces wait together: every
 * LAG_FIRST_MS, doubling up to LAG_MAX_MS, one of them is fetched again
 * (the probe), and any fetch answer at or above a waiting workspace's
 * version fetches that workspace. After LAG_TRIES probes answered in a
 * row at one version, the receiver keeps what the service has (one WARN)
 * until the next notify or resync names them; a service version that
 * moves starts the count again. A notify naming 100,000 workspaces at a
 * version the service does not have thus costs 100,000 fetches and 7
 * probes, not 9 fetches a workspace. */

static void
lag_arm(fm *s, uint64_t delay_ms)
{
    if (s->lag_timer != 0 || s->lag_probe != NULL) {
        return; /* the timer, or the probe's answer, arms the next */
    }
    if (cr_timer_after(cr_ctx_rt(s->ctx), cr_self(s->ctx), delay_ms, TAG_LAG,
                       &s->lag_timer) != 0) {
        s->lag_timer = 0;
        CR_ERROR(COMP, "cannot arm the refetch timer: the next notify or "
                       "resync fetches the lagging workspaces");
    }
}

/* lag_end empties the list of waiting workspaces and starts the probe
 * schedule over. A probe in flight lands as an ordinary fetch. */
static void
lag_end(fm *s)
{
    for (size_t i = 0; i < s->nlag; i++) {
        wsst *w = cra_strmap_get(s->ws, s->lag[i], strlen(s->lag[i]));
        if (w != NULL) {
            w->lag_wait = false;
        }
    }
    s->nlag = 0;
    s->lag_tries = 0;
    s->lag_step = 0;
    s->lag_probe = NULL;
    if (s->lag_timer != 0) {
        cr_timer_cancel(cr_ctx_rt(s->ctx), s->lag_timer);
        s->lag_timer = 0;
    }
}

/* lag_release drops from the list the workspaces that no longer wait
 * (applied at or above their version meanwhile), fetches those whose
 * version the service has reached (`version`, from any fetch answer),
 * and recomputes lag_min. Its cost is one pass over the list, paid only
 * when an answer reaches lag_min or a probe goes out. */
static void
lag_release(fm *s, uint64_t version)
{
    size_t keep = 0;
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < s->nlag; i++) {
        const char *name = s->lag[i];
        wsst *w = cra_strmap_get(s->ws, name, strlen(name));
        if (w == NULL) {
            continue; /* cannot happen: a waiting record is never pruned */
        }
        if (w->wanted > w->applied && w->wanted > version) {
            s->lag[keep++] = name;
            min = w->wanted < min ? w->wanted : min;
            continue;
        }
        w->lag_wait = false;
        if (w->wanted > w->applied) {
            want_fetch(s, w, name); /* no-op if a notify already did */
        }
    }
    s->nlag = keep;
    s->lag_min = min;
    if (keep == 0) {
        lag_end(s);
    }
}

/* lag_add puts w, whose fetch answered `got` below the version a notify
 * announced before it was asked, on the list of waiting workspaces. */
static void
lag_add(fm *s, wsst *w, const char *name, uint64_t got)
{
    if (w->lag_wait) {
        return;
    }
    if (!push_name(&s->lag, &s->nlag, &s->caplag, name)) {
        CR_ERROR(COMP, "out of memory delaying a fetch of %s", name);
        return;
    }
    w->lag_wait = true;
    if (s->nlag == 1) {
        s->lag_min = w->wanted;
        s->lag_seen = got;
        s->lag_tries = 0;
        s->lag_step = 0;
        CR_DEBUG(COMP, "workspace %s: a notify said version %llu, the "
                       "service answers %llu; probing it from %u ms",
                 name, (unsigned long long)w->wanted,
                 (unsigned long long)got, LAG_FIRST_MS);
        lag_arm(s, LAG_FIRST_MS);
    } else if (w->wanted < s->lag_min) {
        s->lag_min = w->wanted;
    }
}

/* lag_heard takes in a fetch answer of w at `version` while workspaces
 * wait: a version above lag_seen starts the give-up count again, one at
 * or above lag_min releases who waited for it. True when the answer was
 * the probe's. */
static bool
lag_heard(fm *s, wsst *w, uint64_t version)
{
    bool probe = s->lag_probe == w->name;
    if (probe) {
        s->lag_probe = NULL;
    }
    if (version > s->lag_seen) {
        s->lag_seen = version;
        s->lag_tries = 0;
    } else if (probe) {
        s->lag_tries++;
    }
    if (version >= s->lag_min) {
        lag_release(s, version);
    }
    return probe;
}

/* lag_give_up keeps, for every waiting workspace, what the service has. */
static void
lag_give_up(fm *s)
{
    uint64_t top = 0;
    size_t n = 0;
    for (size_t i = 0; i < s->nlag; i++) {
        wsst *w = cra_strmap_get(s->ws, s->lag[i], strlen(s->lag[i]));
        if (w != NULL && w->wanted > w->applied) {
            top = w->wanted > top ? w->wanted : top;
            w->wanted = w->applied;
            n++;
        }
    }
    if (n > 0) {
        CR_WARN(COMP, "%zu workspace(s) (%s%s): notifies announced versions "
                      "up to %llu but the config service answers %llu "
                      "(%u probes); keeping what it has until the next "
                      "notify or resync",
                n, s->lag[0], n > 1 ? ", ..." : "", (unsigned long long)top,
                (unsigned long long)s->lag_seen, s->lag_tries);
    }
    lag_end(s);
}

/* lag_probe_answered follows a probe's answer: give up, or arm the next. */
static void
lag_probe_answered(fm *s)
{
    if (s->nlag == 0) {
        return;
    }
    if (s->lag_tries >= LAG_TRIES) {
        lag_give_up(s);
        return;
    }
    unsigned shift = s->lag_step < 16 ? s->lag_step : 16;
    uint64_t delay = (uint64_t)LAG_FIRST_MS << shift;
    lag_arm(s, delay < LAG_MAX_MS ? delay : LAG_MAX_MS);
}

/* on_lag_timer sends the next probe: a fetch of the first workspace
 * still waiting. */
static void
on_lag_timer(fm *s)
{
    s->lag_timer = 0;
    lag_release(s, 0); /* drops who no longer waits */
    if (s->nlag == 0 || s->lag_probe != NULL) {
        return;
    }
    const char *name = s->lag[0];
    wsst *w = cra_strmap_get(s->ws, name, strlen(name));
    if (w == NULL) {
        return;
    }
    want_fetch(s, w, name); /* a fetch already out is the probe */
    s->lag_probe = w->name;
    s->lag_step++;
    CR_DEBUG(COMP, "%zu workspace(s) wait for the service (at %llu, needed "
                   "%llu): probing with a fetch of %s",
             s->nlag, (unsigned long long)s->lag_seen,
             (unsigned long long)s->lag_min, name);
    flush_fetches(s);
}

static int
on_fetched(fm *s, const cr_msg *m)
{
    rm_flows hdr;
    if (rm_flows_decode(m, &hdr) != 0) {
        CR_ERROR(COMP, "malformed RM_FETCHED dropped");
        return 0;
    }
    const char *name;
    wsst *w = get_ws(s, hdr.ws.p, hdr.ws.len, &name);
    if (w == NULL || name == NULL) {
        return 0;
    }
    s->st.fetches_ok++;
    w->fetching = false;
    version_event(s, "fetch.ok", hdr.version,
                  json_pack("{s:s}", "workspace", name));
    if (hdr.version > s->seen_version) {
        s->seen_version = hdr.version;
    }
    if (hdr.version < w->applied) {
        CR_DEBUG(COMP, "stale fetch of %s (version %llu < %llu) ignored",
                 name, (unsigned long long)hdr.version,
                 (unsigned long long)w->applied);
    } else if (w->deleted) {
        CR_DEBUG(COMP, "workspace %s is deleted: its flows stay stopped",
                 name);
        w->applied = hdr.version;
    } else {
        apply_fetched(s, w, name, m, &hdr);
    }
    bool probe = s->nlag > 0 && lag_heard(s, w, hdr.version);
    if (w->wanted > w->applied) {
        if (hdr.version >= w->asked) {
            want_fetch(s, w, name); /* a newer notify came meanwhile */
        } else {
            lag_add(s, w, name, hdr.version);
        }
    }
    if (probe) {
        lag_probe_answered(s);
    }
    flush_fetches(s);
    if (s->round != NULL) {
        cra_strmap_del(s->round, hdr.ws.p, hdr.ws.len);
        if (cra_strmap_count(s->round) == 0) {
            finish_round(s);
        }
    }
    return 0;
}

static int
on_fetch_failed(fm *s, const cr_msg *m)
{
    rm_str ws;
    s->st.fetches_failed++;
    if (rm_text_decode(m, &ws) == 0) {
        CR_DEBUG(COMP, "fetch of %.*s failed; the fetcher retries",
                 (int)ws.len, ws.p);
        if (cra_events_enabled(cr_ctx_rt(s->ctx))) {
            cra_emit(cr_ctx_rt(s->ctx), "fetch.failed",
                     json_pack("{s:s%}", "workspace", ws.p, ws.len));
        }
    }
    return 0;
}

/* ---- tombstones (deletions that outlive this actor) ------------------- */

int
cra_fm_tombstones_init(cra_fm_tombstones *t)
{
    pthread_mutex_init(&t->mu, NULL);
    t->deleted = cra_strmap_new();
    return t->deleted != NULL ? 0 : CR_ENOMEM;
}

void
cra_fm_tombstones_fini(cra_fm_tombstones *t)
{
    cra_strmap_free(t->deleted, NULL);
    pthread_mutex_destroy(&t->mu);
}

static void
tombstone_set(fm *s, const char *name, uint64_t version, bool deleted)
{
    cra_fm_tombstones *t = s->o->tombstones;
    pthread_mutex_lock(&t->mu);
    if (!deleted) {
        cra_strmap_del(t->deleted, name, strlen(name));
    } else if (cra_strmap_put(t->deleted, name, strlen(name),
                              (void *)(uintptr_t)version, NULL) != 0) {
        CR_ERROR(COMP, "out of memory remembering that %s is deleted", name);
    }
    pthread_mutex_unlock(&t->mu);
}

/* tombstones_load marks the workspaces deleted before this actor started
 * (a restart): their flows stay stopped across its full resync. Their
 * versions were seen: a first discovery below them is a service behind
 * (behind_service), which lowers them. */
static void
tombstones_load(fm *s)
{
    cra_fm_tombstones *t = s->o->tombstones;
    pthread_mutex_lock(&t->mu);
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; cra_strmap_next(t->deleted, &it, &k, &kl, &v);) {
        wsst *w = get_ws(s, k, kl, NULL);
        uint64_t version = (uint64_t)(uintptr_t)v;
        if (w != NULL) {
            w->deleted = true;
            w->applied = version > w->applied ? version : w->applied;
            w->wanted = version > w->wanted ? version : w->wanted;
        }
        if (version > s->seen_version) {
            s->seen_version = version;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

/* ---- notifies ------------------------------------------------------- */

static void
stop_workspace(fm *s, wsst *w, const char *name, uint64_t version)
{
    if (version > w->applied) {
        w->applied = version;
    }
    if (version > w->wanted) {
        w->wanted = version;
    }
    if (cra_strmap_count(w->flows) == 0) {
        return;
    }
    rm_flows_builder b;
    if (rm_flows_begin(&b) != 0) {
        return;
    }
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; cra_strmap_next(w->flows, &it, &k, &kl, &v);) {
        rm_flows_add(&b, RM_OP_STOP, k, kl, NULL, 0);
    }
    cr_msg *out;
    if (rm_flows_finish(&b, name, strlen(name), version, false, &out) == 0) {
        to_handlers(s, out);
    }
    CR_INFO(COMP, "workspace %s deleted: stopping %zu flows", name,
            cra_strmap_count(w->flows));
    s->nflows -= cra_strmap_count(w->flows);
    cra_strmap_free(w->flows, NULL);
    w->flows = cra_strmap_new();
}

static int
on_push(fm *s, const cr_msg *m)
{
    crt_push p;
    crt_decode_error err;
    s->st.notifies++;
    if (crt_push_decode(cr_msg_data(m), cr_msg_len(m), NULL, &p, &err) != 0) {
        CR_WARN(COMP, "malformed notify ignored: %s", err.text);
        s->st.notifies_ignored++;
        return 0;
    }
    uint64_t v = p.version;
    version_event(s, "notify.received", v, NULL);
    if (v > s->seen_version) {
        s->seen_version = v;
    }
    if (p.nchanges == 0 && p.workspace_changes == NULL) {
        s->st.notifies_applied++;
        version_event(s, "notify.applied", v, NULL);
        full_resync(s, "notify with empty changes (everything changed)");
        crt_push_free(&p);
        return 0;
    }
    size_t fetches = 0, unservable = 0;
    if (p.workspace_changes != NULL) {
        for (size_t i = 0; i < p.workspace_changes->ndeleted; i++) {
            const char *n = p.workspace_changes->deleted[i];
            const char *key;
            if (!counted_servable(n, &unservable)) {
                continue;
            }
            wsst *w = get_ws(s, n, strlen(n), &key);
            if (w != NULL && key != NULL) {
                stop_workspace(s, w, key, v);
                w->deleted = true;
                tombstone_set(s, key, v, true);
            }
        }
        for (size_t i = 0; i < p.workspace_changes->ncreated; i++) {
            const char *n = p.workspace_changes->created[i];
            if (!counted_servable(n, &unservable)) {
                continue;
            }
            wsst *w = cra_strmap_get(s->ws, n, strlen(n));
            if (w != NULL) {
                w->deleted = false;
            }
            tombstone_set(s, n, 0, false);
        }
    }
    for (size_t i = 0; i < p.nchanges; i++) {
        if (strcmp(p.changes[i].type, "flow") != 0) {
            continue;
        }
        for (size_t j = 0; j < p.changes[i].nworkspaces; j++) {
            const char *n = p.changes[i].workspaces[j];
            const char *key;
            if (!counted_servable(n, &unservable)) {
                continue;
            }
            wsst *w = get_ws(s, n, strlen(n), &key);
            if (w == NULL || key == NULL || v <= w->applied) {
                continue;
            }
            if (w->deleted) { /* flows changed after the deletion */
                w->deleted = false;
                tombstone_set(s, key, 0, false);
            }
            if (v > w->wanted) {
                w->wanted = v;
            }
            want_fetch(s, w, key);
            fetches++;
        }
    }
    if (unservable > 0) {
        CR_WARN(COMP, "notify version %llu: %zu workspace name(s) the "
                      "config service cannot serve (empty) ignored",
                (unsigned long long)v, unservable);
    }
    if (fetches > 0) {
        s->st.notifies_applied++;
        version_event(s, "notify.applied", v, NULL);
        CR_DEBUG(COMP, "notify version %llu: %zu workspaces to fetch",
                 (unsigned long long)v, fetches);
    } else {
        s->st.notifies_ignored++;
        version_event(s, "notify.ignored", v, NULL);
        CR_DEBUG(COMP, "notify version %llu: nothing to fetch",
                 (unsigned long long)v);
    }
    flush_fetches(s);
    crt_push_free(&p);
    return 0;
}

static int
on_stream(fm *s, const cr_msg *m)
{
    bool up, reconnect;
    if (rm_stream_decode(m, &up, &reconnect) != 0) {
        return 0;
    }
    s->stream_up = up;
    if (!up) {
        CR_WARN(COMP, "notify stream disconnected");
        return 0;
    }
    bool first = !s->stream_seen;
    s->stream_seen = true;
    if (s->startup_timer != 0) {
        cr_timer_cancel(cr_ctx_rt(s->ctx), s->startup_timer);
        s->startup_timer = 0;
    }
    full_resync(s, first ? "notify stream connected"
                         : "notify stream reconnected");
    return 0;
}

static int
on_timer(fm *s, const cr_msg *m)
{
    uint64_t tid, tag;
    if (cr_timer_decode(m, &tid, &tag) != 0) {
        return 0;
    }
    if (tag == TAG_STARTUP && tid == s->startup_timer) {
        s->startup_timer = 0;
        if (!s->stream_seen) {
            full_resync(s, "notify stream not connected yet; syncing anyway");
        }
    } else if (tag == TAG_PERIODIC) {
        periodic_check(s);
    } else if (tag == TAG_LAG && tid == s->lag_timer) {
        on_lag_timer(s);
    }
    return 0;
}

static int
on_handler_up(fm *s, const cr_msg *m)
{
    rm_str name = {"?", 1};
    rm_text_decode(m, &name);
    /* A handler's init runs on its own thread, before or after this
     * actor started: an instance that every message of this actor has
     * reached (or that none was sent to yet) is in sync. Only an instance
     * that missed one (a restart, or not up when a sync went out) needs
     * the whole set again. */
    cr_id from = cr_msg_from(m);
    size_t i = 0;
    while (i < s->o->nhandlers &&
           !(strlen(s->o->handlers[i]) == name.len &&
             memcmp(s->o->handlers[i], name.p, name.len) == 0)) {
        i++;
    }
    if (i == s->o->nhandlers) {
        CR_WARN(COMP, "RM_HANDLER_UP from unknown handler %.*s ignored",
                (int)name.len, name.p);
        return 0;
    }
    bool in_sync = !s->handler_missed[i] &&
                   (s->handler_ids[i] == from ||
                    s->handler_ids[i] == CR_NOBODY);
    s->handler_ids[i] = from;
    s->handler_missed[i] = false;
    if (in_sync) {
        CR_DEBUG(COMP, "handler %.*s up: already in sync", (int)name.len,
                 name.p);
        return 0;
    }
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; cra_strmap_next(s->ws, &it, &k, &kl, &v);) {
        ((wsst *)v)->needs_full = true;
    }
    char why[128];
    snprintf(why, sizeof(why), "handler %.*s (re)started", (int)name.len,
             name.p);
    full_resync(s, why);
    return 0;
}

/* ws_entry adds workspace w to doc under its shown name; a second
 * workspace that shows alike is merged into the same entry, the least
 * advanced version, the highest notified one, flows summed, fetching if
 * either is. False without memory. */
static bool
ws_entry(json_t *doc, const wsst *w)
{
    bool owned;
    const char *name = cra_flow_dir_shown(w->name, &owned);
    if (name == NULL) {
        return false;
    }
    json_int_t version = (json_int_t)w->applied;
    json_int_t notified = (json_int_t)w->wanted;
    json_int_t flows = (json_int_t)cra_strmap_count(w->flows);
    bool fetching = w->fetching;
    json_t *old = json_object_get(doc, name);
    if (old != NULL) {
        json_int_t ov = json_integer_value(json_object_get(old, "version"));
        json_int_t on = json_integer_value(json_object_get(old, "notified"));
        version = ov < version ? ov : version;
        notified = on > notified ? on : notified;
        flows += json_integer_value(json_object_get(old, "flows"));
        fetching = fetching || json_is_true(json_object_get(old, "fetching"));
    }
    json_t *e = json_pack("{s:I, s:I, s:I, s:b}", "version", version,
                          "notified", notified, "flows", flows, "fetching",
                          fetching);
    bool ok = e != NULL && json_object_set_new(doc, name, e) == 0;
    if (owned) {
        free((char *)name);
    }
    return ok;
}

/* on_workspaces answers an RM_STATUS whose payload is "workspaces" (the
 * monitor's per-workspace query; cra_flow_manager_workspaces) with JSON
 * text {WS: {"version", "notified", "flows", "fetching"}}: every
 * workspace, under its name as the flow directory shows it. */
static int
on_workspaces(fm *s, const cr_msg *m)
{
    json_t *doc = json_object();
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; doc != NULL && cra_strmap_next(s->ws, &it, &k, &kl,
                                                       &v);) {
        if (!ws_entry(doc, v)) {
            json_decref(doc);
            doc = NULL; /* out of memory: no answer, the caller's times out */
        }
    }
    char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    cr_msg *r = text != NULL ? cr_msg_new_bytes(RM_STATUS, text, strlen(text))
                             : NULL;
    free(text);
    if (r != NULL) {
        cr_reply(s->ctx, m, r);
    }
    return 0;
}

static int
on_status(fm *s, const cr_msg *m)
{
    if (cr_msg_len(m) > 0) {
        return on_workspaces(s, m);
    }
    cr_msg *r = cr_msg_new(RM_STATUS);
    if (r == NULL) {
        return 0;
    }
    cra_recv_status st = s->st;
    st.version = s->seen_version;
    st.workspaces = cra_strmap_count(s->ws);
    st.flows = s->nflows;
    st.stream_up = s->stream_up;
    st.synced = s->synced;
    st.resyncing = s->discovering || s->round != NULL || s->resync_deferred;
    st.fetches_pending = 0;
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; cra_strmap_next(s->ws, &it, &k, &kl, &v);) {
        const wsst *w = v;
        st.fetches_pending +=
            w->fetching || (w->lag_wait && w->wanted > w->applied) ? 1 : 0;
    }
    cr_msg_append(r, &st, sizeof(st)); /* same process, same struct */
    cr_reply(s->ctx, m, r);
    return 0;
}

/* ---- behaviour ------------------------------------------------------ */

static int
fm_init(cr_ctx *ctx, void *arg, void **state)
{
    fm *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return CR_ENOMEM;
    }
    *state = s;
    s->o = arg;
    s->ctx = ctx;
    if (s->o->tombstones == NULL || s->o->lane == NULL) {
        return CR_EINVAL; /* both required: the receiver owns them */
    }
    s->handler_ids = calloc(s->o->nhandlers + 1, sizeof(cr_id));
    s->handler_missed = calloc(s->o->nhandlers + 1, sizeof(bool));
    if (s->handler_ids == NULL || s->handler_missed == NULL) {
        return CR_ENOMEM;
    }
    if ((s->ws = cra_strmap_new()) == NULL) {
        return CR_ENOMEM;
    }
    get_ws(s, "default", 7, NULL);
    tombstones_load(s);
    uint64_t wait = s->o->startup_wait_ms ? s->o->startup_wait_ms : 2000;
    cr_rt *rt = cr_ctx_rt(ctx);
    if (cr_timer_after(rt, cr_self(ctx), wait, TAG_STARTUP,
                       &s->startup_timer) != 0) {
        return CR_ENOMEM;
    }
    if (s->o->resync_interval_ms > 0 &&
        cr_tick_every(rt, cr_self(ctx), s->o->resync_interval_ms,
                      TAG_PERIODIC, NULL) != 0) {
        return CR_ENOMEM;
    }
    return 0;
}

static int
fm_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    fm *s = state;
    switch (cr_msg_type(m)) {
    case RM_PUSH:
        return on_push(s, m);
    case RM_STREAM:
        return on_stream(s, m);
    case RM_FETCHED:
        return on_fetched(s, m);
    case RM_FETCH_FAILED:
        return on_fetch_failed(s, m);
    case RM_DISCOVERED:
        return on_discovered(s, m);
    case RM_RESYNC: {
        rm_str why = {"requested", 9};
        rm_text_decode(m, &why);
        char buf[128];
        snprintf(buf, sizeof(buf), "%.*s", (int)why.len, why.p);
        full_resync(s, buf);
        return 0;
    }
    case RM_HANDLER_UP:
        return on_handler_up(s, m);
    case CR_MSG_TIMER:
        return on_timer(s, m);
    case RM_STATUS:
        return on_status(s, m);
    default:
        CR_WARN(COMP, "unexpected message type %u dropped", cr_msg_type(m));
        return 0;
    }
}

static void
fm_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    fm *s = state;
    if (s == NULL) {
        return;
    }
    free(s->handler_ids);
    free(s->handler_missed);
    cra_strmap_free(s->ws, ws_free);
    cra_strmap_free(s->round, NULL);
    free(s->batch);
    free(s->lag);
    free(s);
}

const cr_behaviour cra_flow_manager_behaviour = {
    .kind = "flow-manager",
    .init = fm_init,
    .handle = fm_handle,
    .terminate = fm_terminate,
};

int
cra_flow_manager_status(cr_rt *rt, int timeout_ms, cra_recv_status *out)
{
    return rm_query_struct(rt, "flow-manager", RM_STATUS, timeout_ms, out,
                           sizeof(*out));
}

int
cra_flow_manager_workspaces(cr_rt *rt, int timeout_ms, char **out)
{
    *out = NULL;
    cr_msg *r;
    int rv = rm_call(rt, cr_whereis(rt, "flow-manager"), RM_STATUS,
                     "workspaces", 10, timeout_ms, &r);
    if (rv != 0) {
        return rv;
    }
    size_t n = cr_msg_len(r);
    if ((*out = malloc(n + 1)) == NULL) {
        cr_msg_free(r);
        return CR_ENOMEM;
    }
    memcpy(*out, cr_msg_data(r), n);
    (*out)[n] = '\0';
    cr_msg_free(r);
    return 0;
}
