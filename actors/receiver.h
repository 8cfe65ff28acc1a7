/*
 * receiver.h - the config receiver as a supervision tree (DESIGN.md):
 *
 *   root "receiver" (rest_for_one)
 *   ├── "monitor"     (with a monitor URL or a metrics listener)
 *   ├── "events"      (with an events URL; follows the supervisors)
 *   ├── "handlers" (one_for_one): "handler:flows" (the flow directory)
 *   │                             and one actor per registered handler
 *   ├── "fetcher"
 *   ├── "flow-manager"
 *   └── "notify"
 *
 * Handlers start first and are not restarted when a later child fails; a
 * restarted flow manager resyncs in full. cra_receiver_stop stops the
 * tree in reverse order, so the notify stream closes first and every
 * handler stops its flows last.
 */
#ifndef CRA_RECEIVER_H
#define CRA_RECEIVER_H

#include <stdbool.h>

#include <jansson.h>

#include "cfgrecv/actor.h"
#include "flow_handler.h"

typedef struct cra_receiver cra_receiver;

typedef struct cra_receiver_opts {
    const char *request_url; /* config service REQ/REP */
    const char *notify_url;  /* config service PUB/SUB */
    int fetch_timeout_ms;    /* default 10000 */
    unsigned fetch_concurrency; /* default 8 */
    uint64_t resync_interval_ms; /* 0 = off */
    size_t max_message;      /* largest reply/notify; 0 = 16 MiB */
    /* Extra handlers after the built-in flow directory; each table must
     * outlive the receiver. Names must be unique. */
    const cra_flow_handler *const *handlers;
    size_t nhandlers;
    const char *monitor_url; /* REP query endpoint; NULL = none */
    int monitor_ipc_mode;    /* ipc socket file mode; 0 = 0600 */
    /* monitoring (monitor.h): opened before the tree starts, closed after
     * it stopped; a bad or busy URL fails cra_receiver_start. */
    const char *events_url;     /* PUB event stream; NULL = none */
    const char *metrics_listen; /* HOST:PORT for HTTP /metrics; NULL */
    bool monitor_allow_remote;  /* allow non-loopback tcp / HTTP */
    bool monitor_optional;      /* monitor_url busy: warn, run without */
    bool events_optional;       /* events_url busy: warn, run without */
    /* Root supervisor: restarts allowed within a window before it gives
     * up (0 = supervisor defaults). */
    uint32_t max_restarts;
    uint32_t within_ms;
} cra_receiver_opts;

/* cra_receiver_start builds and starts the tree on rt. The options are
 * copied. Returns 0 and *out, or a CR_E* code with nothing left running. */
int cra_receiver_start(cr_rt *rt, const cra_receiver_opts *opts,
                       cra_receiver **out);

/* cra_receiver_root returns the root supervisor's id (for cr_sup_wait,
 * cr_sup_subscribe, cr_sup_which_children). */
cr_id cra_receiver_root(const cra_receiver *r);

/* cra_receiver_resync asks the flow manager for a full resync; `why` (for
 * its log line) is copied into the message. 0 or a CR_E* code (the
 * manager is restarting: it resyncs when it starts). */
int cra_receiver_resync(cra_receiver *r, const char *why);

/* cra_receiver_flows_text returns the merged flow directory as malloc'd
 * compact JSON with sorted keys (*out, the caller's; *len its length if
 * len is not NULL): {"version":N,"workspaces":{WS:{ID:{"blueprint",
 * "error","handlers":{NAME:STATE},"restarts","since","state"}}}}. A
 * flow's state is "running" only when every handler has it running,
 * otherwise the least advanced handler's state ("starting" for a handler
 * yet to hear of it). limit 0 lists every flow; otherwise at most limit
 * flows are listed, the least advanced first (failed, backoff, starting,
 * stopping, running), and the document also has "total" (flows),
 * "workspace_count", "states" {STATE: count} over every flow, and
 * "truncated". Merged and written in C (flow_dir.h): 100,000 flows cost
 * no jansson object each. 0 or a CR_E* code (a handler that did not
 * answer leaves its flows out; *out is still set unless out of memory). */
int cra_receiver_flows_text(cra_receiver *r, int timeout_ms, size_t limit,
                            char **out, size_t *len);

/* cra_receiver_flows_json is cra_receiver_flows_text with every flow. */
int cra_receiver_flows_json(cra_receiver *r, int timeout_ms, char **out);

/* cra_receiver_flows_doc is cra_receiver_flows_text parsed into a jansson
 * document (*out, the caller's): for small limits (metrics, tests). */
int cra_receiver_flows_doc(cra_receiver *r, int timeout_ms, size_t limit,
                           json_t **out);

/* cra_receiver_workspace_states returns {"version":N,"workspaces":{WS:
 * {STATE: count}}} over every flow (*out, the caller's). 0 or a CR_E*
 * code, as cra_receiver_flows_text. */
int cra_receiver_workspace_states(cra_receiver *r, int timeout_ms,
                                  json_t **out);

/* cra_receiver_stop stops the tree (reverse start order; every flow is
 * stopped by its handlers) and frees r. Returns 0, or CR_ETIMEDOUT if a
 * child did not stop within its shutdown timeout (reported in the log). */
int cra_receiver_stop(cra_receiver *r, int timeout_ms);

#endif
