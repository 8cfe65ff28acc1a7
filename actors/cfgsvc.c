/*
 * cfgsvc.c - the config service as two actors (see cfgsvc.h).
 *
 * Start-up is a handshake: each actor's init signals a `boot` record
 * (success or its error) before returning, and cra_cfgsvc_start waits on
 * it before spawning the next actor, so a bind or open failure is
 * reported to the caller and nothing is left half-started.
 *
 * Envelopes (payloads are raw bytes, not msgpack, for zero re-encoding):
 *   MSG_REQUEST  REP callback -> store  token (8 bytes, host order) + body
 *   MSG_PUBLISH  store -> notify        encoded ConfigPush
 * The store answers a request itself with crt_server_reply(token), from
 * its own thread.
 */
#include "cfgsvc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cfgrecv/log.h>

#include "cfgsvc_core.h"
#include "cfgsvc_store.h"
#include "notify.h"
#include "server.h"

#define COMP "cfgsvc"

enum {
    MSG_REQUEST = CR_MSG_USER + 0x5100,
    MSG_PUBLISH = CR_MSG_USER + 0x5102,
};

typedef struct boot {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rv;
} boot;

static void
boot_init(boot *b)
{
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->done = false;
    b->rv = 0;
}

static void
boot_signal(boot *b, int rv)
{
    pthread_mutex_lock(&b->mu);
    b->done = true;
    b->rv = rv;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Waits for init's verdict (30 s at most: a stuck init is a failure). */
static int
boot_wait(boot *b)
{
    struct timespec ts;
    int rv;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&b->mu);
    while (!b->done) {
        if (pthread_cond_timedwait(&b->cv, &b->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    rv = b->done ? b->rv : CR_ETIMEDOUT;
    pthread_mutex_unlock(&b->mu);
    return rv;
}

static void
boot_destroy(boot *b)
{
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
}

/* Builds a message: 8-byte token then body. NULL on ENOMEM. */
static cr_msg *
token_msg(uint32_t type, uint64_t token, const void *body, size_t len)
{
    cr_msg *m = cr_msg_new_bytes(type, &token, sizeof(token));
    if (m != NULL && len > 0 && cr_msg_append(m, body, len) != 0) {
        cr_msg_free(m);
        return NULL;
    }
    return m;
}

static bool
token_split(const cr_msg *m, uint64_t *token, const void **body,
            size_t *len)
{
    if (cr_msg_len(m) < sizeof(*token)) {
        return false;
    }
    memcpy(token, cr_msg_data(m), sizeof(*token));
    *body = (const char *)cr_msg_data(m) + sizeof(*token);
    *len = cr_msg_len(m) - sizeof(*token);
    return true;
}

/* ---- notify actor ------------------------------------------------------- */

typedef struct notify_arg {
    boot b;
    const char *url;
} notify_arg;

static int
notify_init(cr_ctx *ctx, void *arg, void **state)
{
    notify_arg *a = arg;
    crt_pub *p;
    int rv = crt_pub_open(a->url, &p);
    if (rv != 0) {
        CR_ERROR(COMP, "cannot listen on notify URL %s: %s", a->url,
                 cr_strerror(rv));
        boot_signal(&a->b, CR_EFAIL);
        return CR_EFAIL;
    }
    *state = p;
    CR_INFO(COMP, "notify: publishing on %s", a->url);
    boot_signal(&a->b, 0);
    return 0;
}

static int
notify_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    if (cr_msg_type(m) == MSG_PUBLISH) {
        crt_pub_send(state, cr_msg_data(m), cr_msg_len(m));
    }
    return 0;
}

static void
notify_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    crt_pub_close(state);
}

static const cr_behaviour notify_behaviour = {
    .kind = "cfgsvc-notify",
    .init = notify_init,
    .handle = notify_handle,
    .terminate = notify_terminate,
};

/* ---- store actor -------------------------------------------------------- */

typedef struct store_arg {
    boot b;
    const char *path;
    crt_limits limits;
    cr_id notify;
    uint64_t startup_delay_ms;
    const char *url; /* REP listen URL */
    unsigned nctx;
    size_t max_recv;
} store_arg;

typedef struct store_state {
    cra_store *st;
    crt_server *srv;
    crt_limits limits;
    cr_id notify;
    cr_rt *rt;
    cr_id self;
} store_state;

static void
publish(cr_ctx *ctx, cr_id notify, const void *push, size_t len)
{
    cr_msg *m = cr_msg_new_bytes(MSG_PUBLISH, push, len);
    if (m == NULL || cr_ctx_send(ctx, notify, m) != 0) {
        CR_ERROR(COMP, "cannot hand a push to the notify actor");
        cr_msg_free(m);
    }
}

/* server_cb runs on an nng thread: it posts the request to the store's
 * own mailbox and never blocks. A full mailbox is answered "busy" at once
 * rather than left to time out. */
static void
server_cb(void *arg, uint64_t token, const void *data, size_t len)
{
    store_state *s = arg;
    cr_msg *m = token_msg(MSG_REQUEST, token, data, len);
    int rv = m ? cr_send(s->rt, s->self, s->self, m) : CR_ENOMEM;
    if (rv != 0) {
        void *buf;
        size_t blen;
        cr_msg_free(m);
        CR_WARN(COMP, "request refused: store %s", cr_strerror(rv));
        if (crt_error_response_encode(0, CRT_ERR_CONFIG,
                                      "config service busy or stopping",
                                      &buf, &blen) == 0) {
            crt_server_reply(s->srv, token, buf, blen);
            free(buf);
        } else {
            crt_server_drop(s->srv, token);
        }
    }
}

static void
store_free(store_state *s)
{
    crt_server_close(s->srv); /* first: no callback runs after this */
    cra_store_close(s->st);
    free(s);
}

static int
store_init(cr_ctx *ctx, void *arg, void **state)
{
    store_arg *a = arg;
    store_state *s = calloc(1, sizeof(*s));
    crt_server_opts so = {.nctx = a->nctx, .max_recv = a->max_recv};
    void *push;
    size_t plen;
    int rv;
    if (s == NULL) {
        boot_signal(&a->b, CR_ENOMEM);
        return CR_ENOMEM;
    }
    s->rt = cr_ctx_rt(ctx);
    s->self = cr_self(ctx);
    s->limits = a->limits;
    s->notify = a->notify;
    if ((rv = cra_store_open(a->path, &s->st)) != 0) {
        CR_ERROR(COMP, "cannot open the store %s", a->path);
        free(s);
        boot_signal(&a->b, CR_EFAIL);
        return CR_EFAIL;
    }
    CR_INFO(COMP, "store: %s at version %llu", a->path,
            (unsigned long long)cra_store_version(s->st));
    if ((rv = crt_server_open(a->url, &so, server_cb, s, &s->srv)) != 0) {
        CR_ERROR(COMP, "cannot listen on request URL %s: %s", a->url,
                 cr_strerror(rv));
        store_free(s);
        boot_signal(&a->b, CR_EFAIL);
        return CR_EFAIL;
    }
    *state = s;
    CR_INFO(COMP, "server: answering on %s (%u contexts)", a->url,
            a->nctx ? a->nctx : CRT_SERVER_DEFAULT_NCTX);
    /* Start-up push: empty changes = "everything changed". Published
     * after a short grace period so that subscribers already dialing
     * (nng retries every 50-100 ms) are connected to see it; PUB/SUB
     * drops messages sent while nobody is connected. */
    if (cra_cfgsvc_push_everything(cra_store_version(s->st), &push, &plen) ==
        0) {
        cr_msg *m = cr_msg_new_bytes(MSG_PUBLISH, push, plen);
        if (m == NULL || cr_send_after(cr_ctx_rt(ctx), s->notify, m,
                                       a->startup_delay_ms, NULL) != 0) {
            cr_msg_free(m);
            CR_ERROR(COMP, "cannot schedule the start-up push");
        }
        free(push);
    }
    boot_signal(&a->b, 0);
    return 0;
}

/* store_handle runs one request and answers it on its REP context from
 * this thread (no hop back through another actor: the answer is on every
 * change's critical path). A write's push is handed to the notify actor
 * before the answer is sent. */
static int
store_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    store_state *s = state;
    uint64_t token;
    const void *body;
    size_t len;
    cra_cfgsvc_result res;

    if (cr_msg_type(m) != MSG_REQUEST || !token_split(m, &token, &body,
                                                      &len)) {
        return 0;
    }
    if (cra_cfgsvc_handle(s->st, body, len, &s->limits, &res) != 0) {
        CR_ERROR(COMP, "out of memory answering a request");
    }
    if (res.push != NULL) {
        publish(ctx, s->notify, res.push, res.push_len);
    }
    int rv = res.resp != NULL
                 ? crt_server_reply(s->srv, token, res.resp, res.resp_len)
                 : CR_ENOMEM;
    if (rv != 0 && rv != CR_ENOENT) {
        CR_WARN(COMP, "cannot send an answer: %s", cr_strerror(rv));
        crt_server_drop(s->srv, token); /* the client times out */
    }
    cra_cfgsvc_result_free(&res);
    return 0;
}

static void
store_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    if (state != NULL) {
        store_free(state);
    }
}

static const cr_behaviour store_behaviour = {
    .kind = "cfgsvc-store",
    .init = store_init,
    .handle = store_handle,
    .terminate = store_terminate,
};

/* ---- the service ------------------------------------------------------ */

struct cra_cfgsvc {
    cr_rt *rt;
    cr_id notify, store;
    char *request_url, *notify_url, *db_path; /* copies: args point here */
    notify_arg na;
    store_arg sa;
};

static void
stop_one(cr_rt *rt, cr_id id)
{
    if (id != CR_NOBODY && cr_stop_wait(rt, id, 30000) == CR_ETIMEDOUT) {
        CR_WARN(COMP, "actor %llu did not stop within 30 s",
                (unsigned long long)id);
    }
}

static void
svc_free(cra_cfgsvc *svc)
{
    boot_destroy(&svc->na.b);
    boot_destroy(&svc->sa.b);
    free(svc->request_url);
    free(svc->notify_url);
    free(svc->db_path);
    free(svc);
}

/* Spawns one actor and waits for its init's verdict. */
static int
spawn_wait(cr_rt *rt, const cr_behaviour *b, void *arg, boot *bt,
           const char *prefix, const char *suffix, cr_id *id)
{
    char name[64];
    cr_spawn_opts so;
    int rv;
    memset(&so, 0, sizeof(so));
    snprintf(name, sizeof(name), "%s-%s", prefix, suffix);
    so.name = name;
    if ((rv = cr_spawn(rt, b, arg, &so, id)) != 0) {
        CR_ERROR(COMP, "cannot spawn %s: %s", name, cr_strerror(rv));
        *id = CR_NOBODY;
        return rv;
    }
    if ((rv = boot_wait(bt)) != 0) {
        stop_one(rt, *id); /* already exiting after a failed init */
        *id = CR_NOBODY;
    }
    return rv;
}

int
cra_cfgsvc_start(cr_rt *rt, const cra_cfgsvc_opts *opts, cra_cfgsvc **out)
{
    cra_cfgsvc *svc;
    const char *prefix;
    crt_limits lim;
    int rv;

    if (rt == NULL || opts == NULL || out == NULL ||
        opts->request_url == NULL || opts->notify_url == NULL ||
        opts->db_path == NULL) {
        return CR_EINVAL;
    }
    prefix = opts->name ? opts->name : "cfgsvc";
    lim = crt_limits_resolve(&opts->limits);
    if ((svc = calloc(1, sizeof(*svc))) == NULL) {
        return CR_ENOMEM;
    }
    boot_init(&svc->na.b);
    boot_init(&svc->sa.b);
    svc->rt = rt;
    if ((svc->request_url = strdup(opts->request_url)) == NULL ||
        (svc->notify_url = strdup(opts->notify_url)) == NULL ||
        (svc->db_path = strdup(opts->db_path)) == NULL) {
        svc_free(svc);
        return CR_ENOMEM;
    }
    svc->na.url = svc->notify_url;
    if ((rv = spawn_wait(rt, &notify_behaviour, &svc->na, &svc->na.b, prefix,
                         "notify", &svc->notify)) != 0) {
        goto fail;
    }
    svc->sa.path = svc->db_path;
    svc->sa.limits = lim;
    svc->sa.notify = svc->notify;
    svc->sa.startup_delay_ms =
        opts->startup_push_delay_ms < 0
            ? 0
            : opts->startup_push_delay_ms == 0
                  ? 300
                  : (uint64_t)opts->startup_push_delay_ms;
    svc->sa.url = svc->request_url;
    svc->sa.nctx = opts->server_ctx;
    /* receive a bit more than the limit so an oversized request is
     * answered "bad-request" instead of being dropped by nng */
    svc->sa.max_recv =
        lim.max_size > SIZE_MAX / 2 ? SIZE_MAX : lim.max_size * 2;
    if ((rv = spawn_wait(rt, &store_behaviour, &svc->sa, &svc->sa.b, prefix,
                         "store", &svc->store)) != 0) {
        goto fail;
    }
    *out = svc;
    return 0;
fail:
    stop_one(rt, svc->store);
    stop_one(rt, svc->notify);
    svc_free(svc);
    return rv;
}

void
cra_cfgsvc_stop(cra_cfgsvc *svc)
{
    if (svc == NULL) {
        return;
    }
    stop_one(svc->rt, svc->store);
    stop_one(svc->rt, svc->notify);
    svc_free(svc);
}

bool
cra_cfgsvc_alive(cra_cfgsvc *svc)
{
    return svc != NULL && cr_alive(svc->rt, svc->store) &&
           cr_alive(svc->rt, svc->notify);
}
