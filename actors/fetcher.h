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
 *  CR_MSG_TIMER      a retry is due; RM_FETCH_REPLY, RM_FETCH_DONE,
 *                    RM_SLOT_FREE (internal: posted by the client's
 *                    callback).
 *  RM_STATUS         cr_call (cra_fetcher_stats_get): reply
 *                    cra_fetcher_stats.
 * Sent to "flow-manager": RM_FETCHED (the workspace's flows, RM_FLOWS
 * layout with full = true), RM_FETCH_FAILED (information only: the
 * fetcher keeps the workspace and retries it with backoff until it
 * succeeds), RM_DISCOVERED.
 */
#ifndef CRA_FETCHER_H
#define CRA_FETCHER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cfgrecv/actor.h"

/* A fetch lane: the fetcher's connection, shared with the flow manager so
 * that the fetch of a change can be sent from the manager's own thread
 * (cra_fetch_direct: one mailbox hop fewer on every change, measured at
 * ~60 us p50 here). It outlives every incarnation of both actors: the
 * receiver owns it. The fetcher publishes its client under mu after
 * opening it and withdraws it under mu before closing it, and a direct
 * send holds mu, so no send ever reaches a closed client. `inflight`
 * counts the fetcher's and the direct requests together: the concurrency
 * bound holds for both. */
typedef struct cra_fetch_lane {
    pthread_mutex_t mu;
    struct crt_client *client; /* (mu) NULL while no fetcher runs */
    cr_id fetcher;             /* (mu) */
    unsigned conc;             /* (mu) */
    int timeout_ms;            /* (mu) */
    size_t max_reply;          /* (mu) */
    atomic_uint inflight;      /* requests out, bounded by conc */
    atomic_ullong direct;      /* direct requests sent, ever */
    atomic_ullong direct_ok;   /* of those, succeeded (fast path), ever */
    atomic_bool wake;          /* the fetcher waits for a free slot */
} cra_fetch_lane;

void cra_fetch_lane_init(cra_fetch_lane *l);
void cra_fetch_lane_fini(cra_fetch_lane *l);

/* cra_fetch_direct sends the `config` request of workspace ws[0..len)
 * from the calling thread (the flow manager's) if a fetcher runs and the
 * lane has a free slot; false (nothing sent) otherwise, and the caller
 * asks the fetcher with RM_FETCH. A success takes the fast path to the
 * flow manager (RM_FETCHED) and frees its slot in the client's callback,
 * telling the fetcher (RM_SLOT_FREE) only if it waits for a slot; an
 * error goes to the fetcher (RM_FETCH_REPLY), which then owns the
 * workspace and retries it with backoff. The name is copied into the
 * request; the caller keeps ws. */
bool cra_fetch_direct(cr_rt *rt, cra_fetch_lane *lane, const char *ws,
                      size_t len);

typedef struct cra_fetcher_opts {
    const char *request_url;
    int timeout_ms;      /* per fetch; default 10000 */
    unsigned concurrency; /* in flight; default 8 */
    size_t max_reply;    /* largest reply accepted; 0 = 16 MiB */
    cra_fetch_lane *lane; /* required; shared with the flow manager */
} cra_fetcher_opts;

/* The behaviour; spawn argument: const cra_fetcher_opts * that outlives
 * the actor. init fails (CR_EINVAL) for an unusable URL or no lane. */
extern const cr_behaviour cra_fetcher_behaviour;

typedef struct cra_fetcher_stats {
    uint64_t requested;    /* workspaces asked for by RM_FETCH */
    uint64_t coalesced;    /* of those, absorbed by a pending fetch */
    uint64_t sent;         /* `config` requests sent (retries included) */
    uint64_t direct;       /* of those, sent by the flow manager itself */
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
