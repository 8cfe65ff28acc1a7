/*
 * fetcher.h - the receiver's client of the config service.
 *
 * One long-lived REQ connection (transport/client.h) with up to
 * `concurrency` requests in flight. Registered as "fetcher".
 *
 * Messages taken:
 *  RM_FETCH [ws...]  fetch `config` of each workspace. A workspace already
 *                    queued, in flight or waiting to retry is not fetched
 *                    twice (notify storms coalesce here).
 *  RM_DISCOVER       list workspaces with flows: `getkeys-all-ws` for type
 *                    `flow`, falling back to `getvalues-all-ws` when the
 *                    service answers bad-operation. Answer: RM_DISCOVERED.
 *  CR_MSG_TIMER      a retry is due; RM_FETCH_REPLY (internal).
 * Sent to "flow-manager": RM_FETCHED (the workspace's flows, RM_FLOWS
 * layout with full = true), RM_FETCH_FAILED (information only: the
 * fetcher keeps the workspace and retries it with backoff until it
 * succeeds), RM_DISCOVERED.
 */
#ifndef CRA_FETCHER_H
#define CRA_FETCHER_H

#include "cfgrecv/actor.h"

typedef struct cra_fetcher_opts {
    const char *request_url;
    int timeout_ms;      /* per fetch; default 10000 */
    unsigned concurrency; /* in flight; default 8 */
    size_t max_reply;    /* largest reply accepted; 0 = 16 MiB */
} cra_fetcher_opts;

/* The behaviour; spawn argument: const cra_fetcher_opts * that outlives
 * the actor. init fails (CR_EINVAL) for an unusable URL. */
extern const cr_behaviour cra_fetcher_behaviour;

typedef struct cra_fetcher_stats {
    uint64_t requested;    /* workspaces asked for by RM_FETCH */
    uint64_t coalesced;    /* of those, absorbed by a pending fetch */
    uint64_t sent;         /* `config` requests sent (retries included) */
    uint64_t ok;           /* fetches that succeeded */
    uint64_t failed;       /* fetches that failed (and were retried) */
    uint64_t discoveries;  /* discovery requests sent */
    uint32_t inflight;     /* fetches in flight now */
    uint32_t inflight_max; /* most fetches in flight at once */
    uint32_t queued;       /* workspaces waiting for a slot */
} cra_fetcher_stats;

/* cra_fetcher_stats_get asks the fetcher for its counters (cr_call).
 * 0 or a CR_E* code. */
int cra_fetcher_stats_get(cr_rt *rt, int timeout_ms, cra_fetcher_stats *out);

#endif
