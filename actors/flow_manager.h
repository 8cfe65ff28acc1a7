/*
 * flow_manager.h - the receiver's state: the applied config version and
 * the wanted flow set (as content hashes) per workspace. It turns
 * notifies into fetch requests, fetch results into per-workspace diffs,
 * and sends each handler actor one RM_FLOWS message per workspace.
 *
 * Registered as "flow-manager". Messages taken: RM_PUSH, RM_STREAM,
 * RM_RESYNC, RM_HANDLER_UP, RM_DISCOVERED, RM_FETCHED, RM_FETCH_FAILED,
 * CR_MSG_TIMER (periodic resync, start-up fallback, the probe of a
 * service behind a notify), RM_STATUS (cr_call).
 *
 * Version rules (DESIGN.md "Where the reference falls short"):
 *  - a notify naming workspace W under `flow` with version V fetches W
 *    only if V > applied(W); otherwise it is ignored;
 *  - a notify naming only other types advances the seen version only;
 *  - empty `changes` (service start-up) means a full resync;
 *  - a fetch result with version F applies if F >= applied(W); if a
 *    notify newer than F arrived while the fetch was out, W is fetched
 *    again at once, so a change made during start-up or during a fetch
 *    is never lost;
 *  - an answer below what W's notifies had announced when its fetch was
 *    asked means the service is behind them: such workspaces wait
 *    together for the service, which is probed by fetching one of them
 *    after 50 ms, doubling up to 1.6 s; any answer at or above a waiting
 *    workspace's version fetches it, and after 7 probes answered at one
 *    version they stay at what the service has (one WARN) until the next
 *    notify or resync names them;
 *  - a discovery (periodic check or full resync) answering a version
 *    below what was seen before it was asked (a notify ahead of the
 *    service, a store that was reset) takes the service as the truth:
 *    WARN, every version held above the service's (seen, applied,
 *    notified, tombstones) is lowered to it, and a full resync follows;
 *  - a workspace name the config service cannot serve (the empty name:
 *    "workspace is required") is ignored, with one WARN per notify;
 *  - a workspace is fetched at most once at a time: notifies for a
 *    workspace whose fetch is queued or in flight coalesce into it;
 *  - workspace_changes.deleted stops every flow of the workspace, and
 *    the workspace stays deleted (also across a restart of this actor:
 *    opts->tombstones) until `created` or a newer flow change names it.
 * A full resync rediscovers workspaces, refetches every known one and
 * then tells handlers (RM_SYNC_END) which workspaces exist, so flows of
 * vanished workspaces stop even after a restart of this actor; then it
 * forgets the idle workspaces it did not list and that have no flows.
 */
#ifndef CRA_FLOW_MANAGER_H
#define CRA_FLOW_MANAGER_H

#include <pthread.h>

#include "cfgrecv/actor.h"

/* Workspace deletions, kept outside the flow manager so that a restarted
 * manager still knows them: workspace -> version of the deletion. The
 * receiver owns it; a restart of the whole daemon forgets it (README,
 * known issues). */
typedef struct cra_fm_tombstones {
    pthread_mutex_t mu;
    struct cra_strmap *deleted; /* (mu) ws -> (void *)(uintptr_t)version */
} cra_fm_tombstones;

/* 0 or CR_ENOMEM. */
int cra_fm_tombstones_init(cra_fm_tombstones *t);
void cra_fm_tombstones_fini(cra_fm_tombstones *t);

typedef struct cra_flow_manager_opts {
    const char *const *handlers; /* handler names, in the order each diff
                                    is sent to them ("hook", "flows") */
    size_t nhandlers;
    uint64_t resync_interval_ms; /* 0 = no periodic resync */
    uint64_t startup_wait_ms;    /* wait for the notify stream before the
                                    first discovery anyway (default 2000) */
    cra_fm_tombstones *tombstones; /* required; survive restarts */
    struct cra_fetch_lane *lane; /* required: the fetcher's, to send
                                    fetches from this actor while a slot
                                    is free (fetcher.h) */
} cra_flow_manager_opts;

/* The behaviour; spawn argument: const cra_flow_manager_opts * that
 * outlives the actor. init fails (CR_EINVAL) without tombstones or
 * lane (the receiver owns both). */
extern const cr_behaviour cra_flow_manager_behaviour;

/* What RM_STATUS answers (cra_flow_manager_status). */
typedef struct cra_recv_status {
    uint64_t version;       /* highest config version seen */
    uint64_t workspaces;    /* workspaces known */
    uint64_t flows;         /* wanted flows */
    uint64_t notifies;      /* notifies received */
    uint64_t notifies_applied;
    uint64_t notifies_ignored;
    uint64_t fetches_ok;
    uint64_t fetches_failed;
    uint64_t resyncs;
    uint64_t fetches_pending; /* workspaces queued, in flight or waiting
                                 to be fetched again (service behind) */
    bool stream_up;           /* notify stream connected */
    bool synced;              /* first full resync completed */
    bool resyncing;           /* a full resync is being discovered or
                                 fetched */
} cra_recv_status;

/* cra_flow_manager_status asks the flow manager for its counters. 0 or a
 * CR_E* code. */
int cra_flow_manager_status(cr_rt *rt, int timeout_ms, cra_recv_status *out);

/* cra_flow_manager_workspaces asks the flow manager for every workspace
 * it knows (deleted ones stay as tombstones) and sets *out to malloc'd
 * JSON text {WS: {"version": applied, "notified": highest notified,
 * "flows": wanted flows, "fetching": bool}}. WS is the name as the flow
 * directory shows it (flow_dir.h): a byte that is not UTF-8 becomes
 * U+FFFD, and names that show alike are one entry (the least advanced
 * version, the highest notified, flows summed, fetching if any is). 0 or
 * a CR_E* code with *out NULL. */
int cra_flow_manager_workspaces(cr_rt *rt, int timeout_ms, char **out);

#endif
