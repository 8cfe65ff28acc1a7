/*
 * cfgsvc.h - the config service, embeddable in any process that has a
 * runtime (cfgsvcd runs it alone; cfgrecvd runs it when no external
 * config service is given).
 *
 * Two actors on the runtime (names are prefixed with opts->name,
 * default "cfgsvc"):
 *   <name>-notify  owns the PUB socket; publishes each ConfigPush.
 *   <name>-store   owns the SQLite handle (cfgsvc_store.h) and the REP
 *                  socket with its contexts (server.h). The REP callbacks
 *                  post each request to this actor's mailbox; it runs
 *                  every request in turn (cfgsvc_core.h), so requests are
 *                  serialised and each write is durable before it is
 *                  answered and published, and it sends each answer on
 *                  the request's context itself. At start it publishes one
 *                  push with empty `changes` ("everything changed").
 * (Until 2026-11 a third actor owned the REP socket and the store sent it
 * each answer as a message: one mailbox hop, two thread wake-ups, on the
 * critical path of every fetch, for no isolation gained.)
 * (The start-up push goes out ~300 ms after start, see
 * startup_push_delay_ms: PUB/SUB loses what is sent before a subscriber
 * is connected, and receivers also resync on every (re)connection.)
 * Data flow: REP ctx -> store -> REP ctx (answer) and -> notify (push).
 * The push of a change is published after the change is committed and
 * before or concurrently with its answer; a client that sees the answer
 * of a put can rely on the push having been handed to nng.
 *
 * Semantics, errors and limits: cfgsvc_core.h and proto.h.
 */
#ifndef CRA_CFGSVC_H
#define CRA_CFGSVC_H

#include <stddef.h>

#include <cfgrecv/actor.h>

#include "proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cra_cfgsvc cra_cfgsvc;

typedef struct cra_cfgsvc_opts {
    const char *request_url; /* REP listen URL (required) */
    const char *notify_url;  /* PUB listen URL (required) */
    const char *db_path;     /* SQLite file (required; ":memory:" ok) */
    unsigned server_ctx;     /* REP contexts; 0 = 8 */
    crt_limits limits;       /* request decoding; 0 fields = defaults */
    const char *name;        /* actor name prefix; NULL = "cfgsvc" */
    int startup_push_delay_ms; /* grace before the start-up push so that
                                  waiting subscribers are connected;
                                  0 = 300 ms, < 0 = none */
} cra_cfgsvc_opts;

/* cra_cfgsvc_start opens the store, binds both URLs and starts the two
 * actors; it returns once they are all running (or have failed). Returns
 * 0 and *out, or CR_EINVAL (missing option), CR_EFAIL (store cannot be
 * opened, URL cannot be bound; logged), CR_EEXIST (actor name taken),
 * CR_ENOMEM; on failure nothing is left running. */
int cra_cfgsvc_start(cr_rt *rt, const cra_cfgsvc_opts *opts,
                     cra_cfgsvc **out);

/* cra_cfgsvc_stop stops the store (closing the REP socket first), then
 * the notify actor (each waited for), and frees svc. Requests not yet
 * answered are dropped (clients time out). NULL is a no-op. */
void cra_cfgsvc_stop(cra_cfgsvc *svc);

/* cra_cfgsvc_alive reports whether both actors are still running. */
bool cra_cfgsvc_alive(cra_cfgsvc *svc);

#ifdef __cplusplus
}
#endif
#endif /* CRA_CFGSVC_H */
