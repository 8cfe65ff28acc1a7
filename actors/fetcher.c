/*
 * fetcher.c - coalescing, bounded-parallel fetches over one connection.
 *
 * Each workspace the manager asks for gets one entry here until its fetch
 * succeeds: QUEUED (in the FIFO), INFLIGHT (a request is out) or
 * RETRY_WAIT (a timer will queue it again). A request for a workspace
 * that already has an entry is absorbed, so 2,000 notifies over 100
 * workspaces cost at most one fetch per workspace per pending fetch (the
 * manager asks again only when a notify is newer than a fetch result).
 *
 * The client's completion callback runs on an nng thread: it only copies
 * the reply into an RM_FETCH_REPLY message to this actor. Decoding (with
 * the bounded codec) and building the RM_FETCHED message happen here.
 */
#include "fetcher.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/backoff.h"
#include "cfgrecv/log.h"
#include "client.h"
#include "mpread.h"
#include "proto.h"
#include "recv_msgs.h"
#include "strmap.h"

#define COMP "fetcher"

enum { KIND_FETCH = 0, KIND_DISCOVER = 1, KIND_DIRECT = 2 };
enum { E_QUEUED = 0, E_INFLIGHT = 1, E_RETRY = 2 };
#define TAG_DISCOVER 0 /* entry serials start at 1 */

typedef struct entry {
    char *ws;
    size_t len;
    int state;
    bool again; /* asked for again while in flight: fetch once more */
    uint64_t serial;
    uint64_t timer;
    cr_backoff bo;
    struct entry *next; /* FIFO link while QUEUED */
} entry;

typedef struct fetcher {
    const cra_fetcher_opts *o;
    cr_ctx *ctx;
    crt_client *client;
    cra_strmap *entries;   /* ws -> entry */
    cra_strmap *by_serial; /* serial -> entry */
    entry *head, *tail;
    cra_fetch_lane *lane; /* o->lane */
    uint64_t direct0;     /* lane->direct when this incarnation began */
    uint64_t direct_ok0;  /* lane->direct_ok likewise */
    unsigned conc;
    int timeout_ms;
    uint64_t next_serial;
    cr_rng rng;
    /* discovery */
    bool discovering;
    bool use_getvalues; /* service lacks getkeys-all-ws */
    cr_backoff disc_bo;
    cra_fetcher_stats stats; /* inflight/queued filled on demand */
} fetcher;

typedef struct req_ctx {
    cr_rt *rt;
    cra_fetch_lane *lane;
    cr_id to;
    int kind;
    size_t max_reply;
    size_t len;
    char ws[]; /* NUL-terminated copy, len bytes */
} req_ctx;

static int build_fetched(const char *ws, size_t wslen, const crt_response *r,
                         cr_msg **out);

static const cr_backoff_policy fetch_policy = {
    .min_ms = 200,
    .max_ms = 30000,
    .factor = 2.0,
    .jitter = CR_JITTER_FULL,
    .stable_ms = 0,
};

static void slot_put(cra_fetch_lane *l);

/* fast_path hands a successful `config` reply to the flow manager
 * straight from the client's callback (one mailbox hop fewer on every
 * change). A direct fetch is then over: its slot is freed here, and the
 * fetcher is woken only if it waits for a slot (lane->wake), so a change
 * wakes one actor, not two. A fetch of the fetcher's own is reported to
 * it (RM_FETCH_DONE: its entry may have been asked for again). Returns
 * false when the reply must take the slow path through the fetcher
 * instead (an error to retry, or the manager's mailbox is full: the
 * fetcher may wait). */
static bool
fast_path(req_ctx *rc, const void *reply, size_t len)
{
    crt_response r;
    crt_limits lim = {.max_size = rc->max_reply};
    if (crt_response_decode(reply, len, &lim, &r, NULL) != 0) {
        return false;
    }
    cr_msg *m = NULL;
    bool ok = r.error == NULL && build_fetched(rc->ws, rc->len, &r, &m) == 0;
    crt_response_free(&r);
    if (!ok) {
        return false;
    }
    cr_id fm = cr_whereis(rc->rt, "flow-manager");
    if (fm == CR_NOBODY || cr_send(rc->rt, rc->to, fm, m) != 0) {
        cr_msg_free(m);
        return false;
    }
    if (rc->kind == KIND_DIRECT) {
        atomic_fetch_add(&rc->lane->direct_ok, 1);
        slot_put(rc->lane);
        if (atomic_exchange(&rc->lane->wake, false)) {
            cr_msg *w = cr_msg_new(RM_SLOT_FREE);
            if (w == NULL || cr_send(rc->rt, CR_NOBODY, rc->to, w) != 0) {
                /* out of memory, or the fetcher is stopping (its
                 * successor starts with no slot taken): the next
                 * completion tries again */
                cr_msg_free(w);
                atomic_store(&rc->lane->wake, true);
            }
        }
        return true;
    }
    cr_msg *done = rm_text_new(RM_FETCH_DONE, rc->ws);
    int rv = done == NULL ? CR_ENOMEM : cr_send(rc->rt, CR_NOBODY, rc->to,
                                                done);
    if (rv != 0) {
        /* The result itself went through. A fetcher that is gone (the
         * daemon stopping, or a restart: its successor starts with no
         * slot taken) needs no telling. */
        cr_msg_free(done);
        if (rv == CR_ENOMEM) {
            CR_ERROR(COMP, "fetch of %s done but the fetcher was not told "
                           "(out of memory)",
                     rc->ws);
        }
    }
    return true;
}

/* on_reply runs on an nng thread: it never blocks. */
static void
on_reply(void *arg, int status, const void *reply, size_t len)
{
    req_ctx *rc = arg;
    if (rc->kind != KIND_DISCOVER && status == CR_OK &&
        fast_path(rc, reply, len)) {
        free(rc);
        return;
    }
    cr_msg *m = cr_msg_new(RM_FETCH_REPLY);
    if (m != NULL) {
        msgpack_packer *pk = cr_msg_packer(m);
        msgpack_pack_array(pk, 4);
        msgpack_pack_int(pk, rc->kind);
        msgpack_pack_str(pk, rc->len);
        msgpack_pack_str_body(pk, rc->ws, rc->len);
        msgpack_pack_int(pk, status);
        msgpack_pack_bin(pk, len);
        msgpack_pack_bin_body(pk, reply, len);
    }
    int rv = m == NULL || cr_msg_packer_failed(m)
                 ? CR_ENOMEM
                 : cr_send(rc->rt, CR_NOBODY, rc->to, m);
    if (rv != 0) {
        cr_msg_free(m);
        /* Only memory is an error here. A fetcher that is gone (the
         * daemon stopping: its closing client aborts what is in flight;
         * or a restart, after which the flow manager is restarted too
         * and resyncs in full) loses nothing. */
        if (rv == CR_ENOMEM) {
            CR_ERROR(COMP, "%s reply for %.*s lost: out of memory",
                     rc->kind == KIND_DISCOVER ? "discovery" : "fetch",
                     (int)rc->len, rc->ws);
        } else {
            CR_DEBUG(COMP, "reply for %.*s dropped: the fetcher is gone (%s)",
                     (int)rc->len, rc->ws, cr_strerror(rv));
        }
    }
    free(rc);
}

/* send_request encodes and sends one request on client; its answer goes
 * to on_reply with a req_ctx naming `to` (the fetcher). */
static int
send_request(crt_client *client, cr_rt *rt, cra_fetch_lane *lane, cr_id to,
             int kind, bool getvalues, size_t max_reply, int timeout_ms,
             const char *ws, size_t len)
{
    crt_request rq = {0};
    char *wsz = malloc(len + 1);
    if (wsz == NULL) {
        return CR_ENOMEM;
    }
    memcpy(wsz, ws, len);
    wsz[len] = '\0';
    if (kind != KIND_DISCOVER) {
        rq.operation = CRT_OP_CONFIG;
        rq.workspace = wsz;
    } else {
        rq.operation = getvalues ? CRT_OP_GETVALUES_ALL : CRT_OP_GETKEYS_ALL;
        rq.type = "flow";
    }
    void *buf = NULL;
    size_t blen = 0;
    int rv = crt_request_encode(&rq, &buf, &blen);
    free(wsz);
    if (rv != 0) {
        return rv;
    }
    req_ctx *rc = malloc(sizeof(*rc) + len + 1);
    if (rc == NULL) {
        free(buf);
        return CR_ENOMEM;
    }
    rc->rt = rt;
    rc->lane = lane;
    rc->to = to;
    rc->kind = kind;
    rc->max_reply = max_reply;
    rc->len = len;
    memcpy(rc->ws, ws, len);
    rc->ws[len] = '\0';
    rv = crt_client_request_async(client, buf, blen, timeout_ms, on_reply,
                                  rc);
    free(buf);
    if (rv != 0) {
        free(rc);
    }
    return rv;
}

static int
submit(fetcher *f, int kind, const char *ws, size_t len)
{
    return send_request(f->client, cr_ctx_rt(f->ctx), f->lane,
                        cr_self(f->ctx), kind,
                        f->use_getvalues, f->o->max_reply, f->timeout_ms, ws,
                        len);
}

/* ---- the lane ---------------------------------------------------------- */

void
cra_fetch_lane_init(cra_fetch_lane *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    l->fetcher = CR_NOBODY;
}

void
cra_fetch_lane_fini(cra_fetch_lane *l)
{
    pthread_mutex_destroy(&l->mu);
}

/* slot_take reserves one of the lane's conc request slots. */
static bool
slot_take(cra_fetch_lane *l, unsigned conc)
{
    unsigned v = atomic_load(&l->inflight);
    while (v < conc) {
        if (atomic_compare_exchange_weak(&l->inflight, &v, v + 1)) {
            return true;
        }
    }
    return false;
}

static void
slot_put(cra_fetch_lane *l)
{
    atomic_fetch_sub(&l->inflight, 1);
}

bool
cra_fetch_direct(cr_rt *rt, cra_fetch_lane *lane, const char *ws,
                 size_t len)
{
    bool sent = false;
    pthread_mutex_lock(&lane->mu);
    if (lane->client != NULL && slot_take(lane, lane->conc)) {
        if (send_request(lane->client, rt, lane, lane->fetcher, KIND_DIRECT,
                         false,
                         lane->max_reply, lane->timeout_ms, ws, len) == 0) {
            atomic_fetch_add(&lane->direct, 1);
            sent = true;
        } else {
            slot_put(lane);
        }
    }
    pthread_mutex_unlock(&lane->mu);
    return sent;
}

static cr_id
manager(fetcher *f)
{
    return cr_whereis(cr_ctx_rt(f->ctx), "flow-manager");
}

static void
to_manager(fetcher *f, cr_msg *m)
{
    cr_id to = manager(f);
    int rv = to == CR_NOBODY ? CR_ENOENT
                             : cr_ctx_send_wait(f->ctx, to, m, 10000);
    if (rv != 0) {
        CR_WARN(COMP, "cannot reach the flow manager: %s", cr_strerror(rv));
        cr_msg_free(m);
    }
}

static void
entry_free(entry *e)
{
    free(e->ws);
    free(e);
}

static void
drop_entry(fetcher *f, entry *e)
{
    cra_strmap_del(f->entries, e->ws, e->len);
    cra_strmap_del(f->by_serial, (const char *)&e->serial, sizeof(e->serial));
    entry_free(e);
}

static void
enqueue(fetcher *f, entry *e)
{
    e->state = E_QUEUED;
    e->next = NULL;
    if (f->tail != NULL) {
        f->tail->next = e;
    } else {
        f->head = e;
    }
    f->tail = e;
}

static void
retry_later(fetcher *f, entry *e, const char *why)
{
    uint32_t delay = cr_backoff_next(&e->bo, &fetch_policy, cr_rng_next,
                                     &f->rng);
    CR_WARN(COMP, "fetch of workspace %s failed: %s; retry in %u ms", e->ws,
            why, delay);
    f->stats.failed++;
    e->state = E_RETRY;
    if (cr_timer_after(cr_ctx_rt(f->ctx), cr_self(f->ctx), delay, e->serial,
                       &e->timer) != 0) {
        enqueue(f, e); /* cannot wait: try again at once */
    }
    cr_msg *m = rm_text_new(RM_FETCH_FAILED, e->ws);
    if (m != NULL) {
        to_manager(f, m);
    }
}

/* take_slot reserves a slot for the queue's head. When none is free it
 * asks, through lane->wake, to be told when a direct fetch frees one
 * (RM_SLOT_FREE; the fetcher's own replies come here anyway), then looks
 * once more: a slot freed before the flag was up is not missed, and a
 * wake-up that finds nothing to do is harmless. */
static bool
take_slot(fetcher *f)
{
    if (slot_take(f->lane, f->conc)) {
        return true;
    }
    atomic_store(&f->lane->wake, true);
    return slot_take(f->lane, f->conc);
}

static void
pump(fetcher *f)
{
    while (f->head != NULL && take_slot(f)) {
        entry *e = f->head;
        f->head = e->next;
        if (f->head == NULL) {
            f->tail = NULL;
        }
        e->next = NULL;
        int rv = submit(f, KIND_FETCH, e->ws, e->len);
        if (rv != 0) {
            slot_put(f->lane);
            retry_later(f, e, cr_strerror(rv));
            continue;
        }
        e->state = E_INFLIGHT;
        f->stats.sent++;
        unsigned now = atomic_load(&f->lane->inflight);
        if (now > f->stats.inflight_max) {
            f->stats.inflight_max = now;
        }
    }
}

/* new_entry makes ws's entry (in both maps, no state yet), or logs and
 * returns NULL when out of memory. */
static entry *
new_entry(fetcher *f, const char *ws, size_t len)
{
    entry *e = calloc(1, sizeof(*e));
    if (e == NULL || (e->ws = malloc(len + 1)) == NULL) {
        free(e);
        CR_ERROR(COMP, "out of memory queueing a fetch");
        return NULL;
    }
    memcpy(e->ws, ws, len);
    e->ws[len] = '\0';
    e->len = len;
    e->serial = ++f->next_serial;
    if (cra_strmap_put(f->entries, ws, len, e, NULL) != 0 ||
        cra_strmap_put(f->by_serial, (const char *)&e->serial,
                       sizeof(e->serial), e, NULL) != 0) {
        cra_strmap_del(f->entries, ws, len);
        entry_free(e);
        CR_ERROR(COMP, "out of memory queueing a fetch");
        return NULL;
    }
    return e;
}

static void
ask(void *arg, const char *ws, size_t len)
{
    fetcher *f = arg;
    f->stats.requested++;
    entry *known = cra_strmap_get(f->entries, ws, len);
    if (known != NULL) {
        /* Queued or waiting to retry: that fetch will do. In flight: its
         * result may already be on its way to the manager (fast path)
         * and this request came after it, so fetch once more. */
        if (known->state == E_INFLIGHT) {
            known->again = true;
        }
        f->stats.coalesced++;
        return;
    }
    entry *e = new_entry(f, ws, len);
    if (e != NULL) {
        enqueue(f, e);
    }
}

static void
discover(fetcher *f)
{
    f->stats.discoveries++;
    int rv = submit(f, KIND_DISCOVER, "", 0);
    if (rv != 0) {
        uint32_t d = cr_backoff_next(&f->disc_bo, &fetch_policy, cr_rng_next,
                                     &f->rng);
        CR_WARN(COMP, "discovery not sent: %s; retry in %u ms",
                cr_strerror(rv), d);
        cr_timer_after(cr_ctx_rt(f->ctx), cr_self(f->ctx), d, TAG_DISCOVER,
                       NULL);
        return;
    }
    f->discovering = true;
}

/* build_fetched turns a `config` reply into RM_FETCHED. Runs on the
 * fetcher's thread or in the client callback (it only allocates). */
static int
build_fetched(const char *ws, size_t wslen, const crt_response *r,
              cr_msg **out)
{
    rm_flows_builder b;
    if (rm_flows_begin(&b) != 0) {
        return CR_ENOMEM;
    }
    for (size_t i = 0; i < r->nconfig; i++) {
        const crt_cfgtype *t = &r->config[i];
        if (strcmp(t->type, "flow") != 0) {
            continue;
        }
        for (size_t j = 0; j < t->nentries; j++) {
            const crt_entry *en = &t->entries[j];
            const char *v = en->value ? en->value : "null";
            if (rm_flows_add(&b, RM_OP_START, en->key, strlen(en->key), v,
                             strlen(v)) != 0) {
                rm_flows_abort(&b);
                return CR_ENOMEM;
            }
        }
    }
    int rv = rm_flows_finish(&b, ws, wslen, r->version, true, out);
    if (rv == 0) {
        cr_msg_set_type(*out, RM_FETCHED);
    }
    return rv;
}

/* fetch_done closes a successful fetch: the entry goes, unless it was
 * asked for again meanwhile. */
static void
fetch_done(fetcher *f, entry *e)
{
    f->stats.ok++;
    cr_backoff_reset(&e->bo);
    if (e->again) {
        e->again = false;
        enqueue(f, e);
        return;
    }
    drop_entry(f, e); /* the next request for it is a new fetch */
}

static int
on_fetch_done(fetcher *f, const cr_msg *m)
{
    rm_str ws;
    if (rm_text_decode(m, &ws) != 0) {
        return 0;
    }
    entry *e = cra_strmap_get(f->entries, ws.p, ws.len);
    if (e == NULL || e->state != E_INFLIGHT) {
        CR_ERROR(COMP, "completion for a fetch not in flight dropped");
        return 0;
    }
    slot_put(f->lane);
    fetch_done(f, e);
    pump(f);
    return 0;
}


/* on_fetch_reply: the slot is already freed by the caller. */
static void
on_fetch_reply(fetcher *f, entry *e, int status, const void *body,
               size_t len)
{
    if (status != CR_OK) {
        retry_later(f, e, cr_strerror(status));
        return;
    }
    crt_response r;
    crt_decode_error err;
    crt_limits lim = {.max_size = f->o->max_reply};
    if (crt_response_decode(body, len, &lim, &r, &err) != 0) {
        retry_later(f, e, err.text);
        return;
    }
    if (r.error != NULL) {
        char why[256];
        snprintf(why, sizeof(why), "%s: %s", r.error->type,
                 r.error->message);
        crt_response_free(&r);
        retry_later(f, e, why);
        return;
    }
    cr_msg *m = NULL;
    int rv = build_fetched(e->ws, e->len, &r, &m);
    crt_response_free(&r);
    if (rv != 0) {
        retry_later(f, e, cr_strerror(rv));
        return;
    }
    to_manager(f, m);
    fetch_done(f, e);
}

static void
on_discover_reply(fetcher *f, int status, const void *body, size_t len)
{
    f->discovering = false;
    const char *why = NULL;
    char whybuf[256];
    crt_response r;
    crt_decode_error err;
    crt_limits lim = {.max_size = f->o->max_reply};
    if (status != CR_OK) {
        why = cr_strerror(status);
    } else if (crt_response_decode(body, len, &lim, &r, &err) != 0) {
        why = err.text;
    } else if (r.error != NULL) {
        if (!f->use_getvalues &&
            strcmp(r.error->type, CRT_ERR_BAD_OPERATION) == 0) {
            CR_INFO(COMP, "service lacks getkeys-all-ws; using "
                          "getvalues-all-ws");
            f->use_getvalues = true;
            crt_response_free(&r);
            discover(f);
            return;
        }
        snprintf(whybuf, sizeof(whybuf), "%s: %s", r.error->type,
                 r.error->message);
        why = whybuf;
        crt_response_free(&r);
    }
    if (why != NULL) {
        uint32_t d = cr_backoff_next(&f->disc_bo, &fetch_policy, cr_rng_next,
                                     &f->rng);
        CR_WARN(COMP, "discovery failed: %s; retry in %u ms", why, d);
        cr_timer_after(cr_ctx_rt(f->ctx), cr_self(f->ctx), d, TAG_DISCOVER,
                       NULL);
        return;
    }
    cr_backoff_reset(&f->disc_bo);
    /* unique workspace names, in reply order */
    cra_strmap *seen = cra_strmap_new();
    cr_msg *m = cr_msg_new(RM_DISCOVERED);
    const char **names = calloc(r.nvalues + 1, sizeof(*names));
    size_t n = 0;
    if (seen == NULL || m == NULL || names == NULL) {
        goto oom;
    }
    for (size_t i = 0; i < r.nvalues; i++) {
        const char *ws = r.values[i].workspace ? r.values[i].workspace : "";
        size_t wl = strlen(ws);
        if (wl == 0 || cra_strmap_get(seen, ws, wl) != NULL) {
            continue;
        }
        if (cra_strmap_put(seen, ws, wl, (void *)1, NULL) != 0) {
            goto oom;
        }
        names[n++] = ws;
    }
    msgpack_packer *pk = cr_msg_packer(m);
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, r.version);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        size_t wl = strlen(names[i]);
        msgpack_pack_str(pk, wl);
        msgpack_pack_str_body(pk, names[i], wl);
    }
    if (cr_msg_packer_failed(m)) {
        goto oom;
    }
    CR_DEBUG(COMP, "discovered %zu workspaces at version %llu", n,
             (unsigned long long)r.version);
    to_manager(f, m);
    m = NULL;
oom:
    if (m != NULL) {
        CR_ERROR(COMP, "out of memory building the discovery answer");
        cr_msg_free(m);
        cr_timer_after(cr_ctx_rt(f->ctx), cr_self(f->ctx), 1000, TAG_DISCOVER,
                       NULL);
    }
    free(names);
    cra_strmap_free(seen, NULL);
    crt_response_free(&r);
}

static int
on_internal_reply(fetcher *f, const cr_msg *m)
{
    crt_mpr r;
    uint32_t n;
    int64_t kind, status;
    const char *ws, *body;
    size_t wl, bl;
    crt_mpr_init(&r, cr_msg_data(m), cr_msg_len(m), 2);
    if (crt_mpr_array(&r, &n) != 0 || n != 4 || crt_mpr_int(&r, &kind) != 0 ||
        crt_mpr_str(&r, &ws, &wl) != 0 || crt_mpr_int(&r, &status) != 0 ||
        crt_mpr_str(&r, &body, &bl) != 0) {
        CR_ERROR(COMP, "malformed internal reply dropped");
        return 0;
    }
    if (kind == KIND_DISCOVER) {
        on_discover_reply(f, (int)status, body, bl);
    } else if (kind == KIND_DIRECT) {
        /* A fetch the manager sent itself failed (or its result could not
         * be handed over): from here on this actor owns the workspace. */
        slot_put(f->lane);
        entry *e = cra_strmap_get(f->entries, ws, wl);
        if (e != NULL) {
            /* A fetch of it is pending here: queued or waiting to retry,
             * it will answer the manager; in flight, it may have been
             * answered already (the manager's direct fetch came after
             * it), so it must run once more. */
            if (e->state == E_INFLIGHT) {
                e->again = true;
            }
            CR_DEBUG(COMP, "direct fetch of %.*s ended (%s); the pending "
                           "fetch of it answers instead",
                     (int)wl, ws, cr_strerror((int)status));
        } else if ((e = new_entry(f, ws, wl)) != NULL) {
            e->state = E_INFLIGHT;
            on_fetch_reply(f, e, (int)status, body, bl);
        }
    } else {
        entry *e = cra_strmap_get(f->entries, ws, wl);
        if (e == NULL || e->state != E_INFLIGHT) {
            CR_ERROR(COMP, "reply for a fetch not in flight dropped");
            return 0;
        }
        slot_put(f->lane);
        on_fetch_reply(f, e, (int)status, body, bl);
    }
    pump(f);
    return 0;
}

static int
on_timer(fetcher *f, const cr_msg *m)
{
    uint64_t tid, tag;
    if (cr_timer_decode(m, &tid, &tag) != 0) {
        return 0;
    }
    if (tag == TAG_DISCOVER) {
        if (!f->discovering) {
            discover(f);
        }
        return 0;
    }
    entry *e = cra_strmap_get(f->by_serial, (const char *)&tag, sizeof(tag));
    if (e != NULL && e->state == E_RETRY && e->timer == tid) {
        e->timer = 0;
        enqueue(f, e);
        pump(f);
    }
    return 0;
}

static int
f_init(cr_ctx *ctx, void *arg, void **state)
{
    const cra_fetcher_opts *o = arg;
    fetcher *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return CR_ENOMEM;
    }
    *state = f;
    f->o = o;
    f->ctx = ctx;
    if ((f->lane = o->lane) == NULL) {
        cr_fail(ctx, CR_EINVAL, "fetcher started without a fetch lane");
        return CR_EINVAL;
    }
    f->conc = o->concurrency ? o->concurrency : 8;
    f->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    cr_rng_seed(&f->rng, cr_now_ms() ^ cr_self(ctx));
    f->entries = cra_strmap_new();
    f->by_serial = cra_strmap_new();
    if (f->entries == NULL || f->by_serial == NULL) {
        return CR_ENOMEM;
    }
    crt_client_opts co = {.nctx = f->conc, .max_recv = o->max_reply};
    int rv = crt_client_open(o->request_url, &co, &f->client);
    if (rv != 0) {
        cr_fail(ctx, rv, "cannot open config client for %s: %s",
                o->request_url, cr_strerror(rv));
        return rv;
    }
    /* Publish the client to the flow manager. The previous incarnation's
     * requests all ended when it closed its client, so the slot count
     * starts again from zero. */
    pthread_mutex_lock(&f->lane->mu);
    atomic_store(&f->lane->inflight, 0);
    atomic_store(&f->lane->wake, false);
    f->direct0 = atomic_load(&f->lane->direct);
    f->direct_ok0 = atomic_load(&f->lane->direct_ok);
    f->lane->client = f->client;
    f->lane->fetcher = cr_self(ctx);
    f->lane->conc = f->conc;
    f->lane->timeout_ms = f->timeout_ms;
    f->lane->max_reply = o->max_reply;
    pthread_mutex_unlock(&f->lane->mu);
    CR_DEBUG(COMP, "config client for %s (concurrency %u, timeout %d ms)",
             o->request_url, f->conc, f->timeout_ms);
    return 0;
}

static int
f_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    fetcher *f = state;
    switch (cr_msg_type(m)) {
    case RM_FETCH:
        if (rm_strlist_decode(m, ask, f) != 0) {
            CR_ERROR(COMP, "malformed RM_FETCH dropped");
        }
        pump(f);
        return 0;
    case RM_DISCOVER:
        if (!f->discovering) {
            discover(f);
        }
        return 0;
    case RM_FETCH_REPLY:
        return on_internal_reply(f, m);
    case RM_FETCH_DONE:
        return on_fetch_done(f, m);
    case RM_SLOT_FREE:
        pump(f); /* a direct fetch freed a slot */
        return 0;
    case CR_MSG_TIMER:
        return on_timer(f, m);
    case RM_STATUS: {
        cra_fetcher_stats st = f->stats;
        st.inflight = atomic_load(&f->lane->inflight);
        st.direct = atomic_load(&f->lane->direct) - f->direct0;
        st.ok += atomic_load(&f->lane->direct_ok) - f->direct_ok0;
        st.sent += st.direct;
        st.queued = 0;
        for (entry *e = f->head; e != NULL; e = e->next) {
            st.queued++;
        }
        cr_msg *r = cr_msg_new_bytes(RM_STATUS, &st, sizeof(st));
        if (r != NULL) {
            cr_reply(ctx, m, r);
        }
        return 0;
    }
    default:
        CR_WARN(COMP, "unexpected message type %u dropped", cr_msg_type(m));
        return 0;
    }
}

static void
free_entry_cb(void *p)
{
    entry_free(p);
}

static void
f_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    fetcher *f = state;
    if (f == NULL) {
        return;
    }
    if (f->lane != NULL) { /* the client is withdrawn before it closes */
        pthread_mutex_lock(&f->lane->mu);
        if (f->lane->client == f->client) {
            f->lane->client = NULL;
            f->lane->fetcher = CR_NOBODY;
        }
        pthread_mutex_unlock(&f->lane->mu);
    }
    crt_client_close(f->client); /* callbacks run (ECLOSED) before return */
    cra_strmap_free(f->by_serial, NULL);
    cra_strmap_free(f->entries, free_entry_cb);
    free(f);
}

const cr_behaviour cra_fetcher_behaviour = {
    .kind = "fetcher",
    .init = f_init,
    .handle = f_handle,
    .terminate = f_terminate,
};

int
cra_fetcher_stats_get(cr_rt *rt, int timeout_ms, cra_fetcher_stats *out)
{
    return rm_query_struct(rt, "fetcher", RM_STATUS, timeout_ms, out,
                           sizeof(*out));
}
