/*
 * monitor.c - REP endpoint driven by one nng context and one aio.
 *
 * The aio alternates between receiving a request and sending its reply;
 * only one operation is ever outstanding, so the callback and the actor
 * hand the aio back and forth without a lock (the state flag is atomic
 * for the reader's sake). The callback only posts the request bytes to
 * this actor; the answer is computed on the actor's thread, where
 * blocking calls to other actors (cr_call) are fine.
 */
#include "monitor.h"

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/transport/ipc/ipc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/log.h"
#include "flow_manager.h"
#include "receiver.h"

#define COMP        "monitor"
#define MON_REQ     (CR_MSG_USER + 300)
#define MAX_COMMAND 256

enum { S_RECV = 0, S_SEND = 1, S_CLOSED = 2 };

typedef struct mon {
    const cra_monitor_opts *o;
    cr_rt *rt;
    cr_id self;
    nng_socket sock;
    bool open;
    nng_ctx nctx;
    nng_aio *aio;
    atomic_int state;
} mon;

static void
aio_cb(void *arg)
{
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
    cr_msg *cm = cr_msg_new_bytes(MON_REQ, nng_msg_body(req),
                                  nng_msg_len(req));
    nng_msg_free(req);
    if (cm == NULL || cr_send(m->rt, CR_NOBODY, m->self, cm) != 0) {
        cr_msg_free(cm);
        nng_ctx_recv(m->nctx, m->aio); /* drop it; the requester retries */
    }
}

static char *
dump(json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (t == NULL) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    return t;
}

static char *
error_reply(const char *msg)
{
    return dump(json_pack("{s:s}", "error", msg));
}

static char *
status_reply(cr_rt *rt, const cra_monitor_opts *o)
{
    cra_recv_status st;
    int rv = cra_flow_manager_status(rt, 5000, &st);
    if (rv != 0) {
        char buf[128];
        snprintf(buf, sizeof(buf), "flow manager unavailable: %s",
                 cr_strerror(rv));
        return error_reply(buf);
    }
    json_t *doc = json_pack(
        "{s:I, s:f, s:{s:I, s:I, s:I}, s:{s:b, s:b}, s:{s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:I}}",
        "version", (json_int_t)st.version, "uptime_s",
        (double)(cr_now_ms() - o->started_ms) / 1000.0, "counts",
        "workspaces", (json_int_t)st.workspaces, "flows",
        (json_int_t)st.flows, "actors", (json_int_t)cr_rt_actor_count(rt),
        "config_service", "notify_connected", st.stream_up, "synced",
        st.synced, "counters", "notifies", (json_int_t)st.notifies,
        "notifies_applied", (json_int_t)st.notifies_applied,
        "notifies_ignored", (json_int_t)st.notifies_ignored, "fetches_ok",
        (json_int_t)st.fetches_ok, "fetches_failed",
        (json_int_t)st.fetches_failed, "fetches_pending",
        (json_int_t)st.fetches_pending, "resyncs", (json_int_t)st.resyncs);
    return doc ? dump(doc) : NULL;
}

static char *
actors_reply(cr_rt *rt)
{
    size_t n = cr_snapshot(rt, NULL, 0);
    cr_actor_info *v = calloc(n + 8, sizeof(*v));
    if (v == NULL) {
        return NULL;
    }
    n = cr_snapshot(rt, v, n + 8);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && i < n + 8; i++) {
        json_array_append_new(
            arr, json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "id",
                           (json_int_t)v[i].id, "name", v[i].name, "kind",
                           v[i].kind, "state", cr_state_name(v[i].state),
                           "msgs_in", (json_int_t)v[i].msgs_in, "msgs_out",
                           (json_int_t)v[i].msgs_out, "depth",
                           (json_int_t)v[i].depth, "high_water",
                           (json_int_t)v[i].high_water));
    }
    free(v);
    return dump(json_pack("{s:o}", "actors", arr));
}

char *
cra_monitor_answer(cr_rt *rt, const cra_monitor_opts *o, const char *cmd,
                   size_t len)
{
    /* trim trailing whitespace / NULs (nngcat --data sends no newline,
     * shells often do) */
    while (len > 0 && (cmd[len - 1] == '\n' || cmd[len - 1] == '\r' ||
                       cmd[len - 1] == ' ' || cmd[len - 1] == '\0')) {
        len--;
    }
    if (len == 0) {
        return error_reply("empty command; try: help");
    }
    if (len > MAX_COMMAND) {
        return error_reply("command too long");
    }
    char c[MAX_COMMAND + 1];
    memcpy(c, cmd, len);
    c[len] = '\0';
    if (strcmp(c, "status") == 0) {
        return status_reply(rt, o);
    }
    if (strcmp(c, "flows") == 0) {
        char *s = NULL;
        int rv = cra_receiver_flows_json(o->recv, 10000, &s);
        if (s == NULL) {
            return error_reply(cr_strerror(rv));
        }
        size_t n = strlen(s);
        char *t = realloc(s, n + 2);
        if (t == NULL) {
            free(s);
            return NULL;
        }
        t[n] = '\n';
        t[n + 1] = '\0';
        return t;
    }
    if (strcmp(c, "actors") == 0) {
        return actors_reply(rt);
    }
    if (strcmp(c, "help") == 0) {
        return dump(json_pack("{s:[s,s,s,s]}", "commands", "status", "flows",
                              "actors", "help"));
    }
    CR_WARN(COMP, "unknown command (%zu bytes) refused", len);
    return error_reply("unknown command; try: help");
}

static int
m_init(cr_ctx *ctx, void *arg, void **state)
{
    const cra_monitor_opts *o = arg;
    mon *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return CR_ENOMEM;
    }
    *state = m;
    m->o = o;
    m->rt = cr_ctx_rt(ctx);
    m->self = cr_self(ctx);
    nng_listener l;
    int rv;
    if ((rv = nng_rep0_open(&m->sock)) != 0) {
        goto fail;
    }
    m->open = true;
    if ((rv = nng_socket_set_size(m->sock, NNG_OPT_RECVMAXSZ, 65536)) != 0 ||
        (rv = nng_listener_create(&l, m->sock, o->url)) != 0) {
        goto fail;
    }
    if (strncmp(o->url, "ipc://", 6) == 0) {
        int mode = o->ipc_mode ? o->ipc_mode : 0600;
        nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, mode);
    }
    if ((rv = nng_listener_start(l, 0)) != 0 ||
        (rv = nng_ctx_open(&m->nctx, m->sock)) != 0 ||
        (rv = nng_aio_alloc(&m->aio, aio_cb, m)) != 0) {
        goto fail;
    }
    atomic_store(&m->state, S_RECV);
    nng_ctx_recv(m->nctx, m->aio);
    CR_INFO(COMP, "monitor listening on %s", o->url);
    return 0;
fail:
    cr_fail(ctx, CR_ENNG, "monitor %s: %s", o->url, nng_strerror(rv));
    return CR_ENNG;
}

static int
m_handle(cr_ctx *ctx, void *state, const cr_msg *cm)
{
    mon *m = state;
    if (cr_msg_type(cm) != MON_REQ) {
        return 0;
    }
    char *text = cra_monitor_answer(m->rt, m->o, cr_msg_data(cm),
                                    cr_msg_len(cm));
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
m_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    mon *m = state;
    if (m == NULL) {
        return;
    }
    if (m->aio != NULL) {
        nng_aio_stop(m->aio);
    }
    atomic_store(&m->state, S_CLOSED);
    if (m->open) {
        nng_close(m->sock);
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
