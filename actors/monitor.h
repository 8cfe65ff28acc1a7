/*
 * monitor.h - the daemon's read-only observation endpoints and the actor
 * that answers queries on them.
 *
 * Endpoints (cra_monitor_open; all optional, all read-only):
 *   query    REP. A request is a text command; the reply is one JSON
 *            document and "\n" (`metrics`: Prometheus text). Works with
 *            stock nngcat: `nngcat --req --dial URL --data status --raw`.
 *   events   PUB. One JSON object and "\n" per event (events.h), sent by
 *            the events actor (events_actor.h).
 *   metrics  HTTP GET /metrics (Prometheus text) through nng's HTTP
 *            server, served from a cache the monitor actor refreshes.
 * The endpoints are opened by the receiver before its tree starts and
 * closed after it stopped, so a bad URL fails start-up instead of
 * causing a restart loop, and a restarted monitor or events actor keeps
 * its clients connected.
 *
 * Safety defaults: ipc socket files are created with mode 0600 (ipc_mode),
 * tcp:// (and ws://, tls+tcp://) URLs and the HTTP listener must name a
 * loopback address unless allow_remote is set; nothing in the protocol
 * changes state.
 *
 * Commands: status, actors, flows, workspaces, metrics, help. An empty,
 * unknown or oversized (> CRA_MONITOR_MAX_COMMAND bytes) command gets
 * {"error": ...}; requests up to CRA_MONITOR_MAX_REQUEST bytes are
 * answered, larger ones make nng drop the connection. The endpoint keeps
 * serving either way. The actor is registered as "monitor".
 */
#ifndef CRA_MONITOR_H
#define CRA_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cfgrecv/actor.h"

#define CRA_MONITOR_MAX_COMMAND 256
#define CRA_MONITOR_MAX_REQUEST (1024 * 1024)

typedef struct cra_receiver cra_receiver;
typedef struct cra_monitor_endpoints cra_monitor_endpoints;

typedef struct cra_monitor_cfg {
    const char *url;            /* REP query endpoint; NULL = none */
    const char *events_url;     /* PUB event stream; NULL = none */
    const char *metrics_listen; /* "HOST:PORT" for HTTP /metrics; NULL */
    int ipc_mode;               /* ipc socket file mode; 0 = 0600 */
    bool allow_remote;          /* allow non-loopback tcp and HTTP */
    /* query_optional / events_optional: if that endpoint cannot be
     * listened on it is left out with a warning instead of failing (the
     * daemon's built-in default URLs, which another daemon on the host
     * may hold). A URL that is not loopback still fails. */
    bool query_optional;
    bool events_optional;
} cra_monitor_cfg;

/* cra_monitor_open checks and listens on every endpoint cfg names and
 * sets *out (never NULL on success, even with no endpoint). Returns 0,
 * CR_EINVAL (a URL is not loopback without allow_remote, or malformed;
 * logged), CR_ENNG (cannot listen; logged) or CR_ENOMEM; on error nothing
 * is left open. */
int cra_monitor_open(const cra_monitor_cfg *cfg, cra_monitor_endpoints **out);

/* cra_monitor_close closes every endpoint (ipc files are removed) and
 * frees ep. Call after the actors using it stopped. NULL is a no-op. */
void cra_monitor_close(cra_monitor_endpoints *ep);

/* cra_monitor_has_query / _events / _metrics report which endpoints are
 * open. */
bool cra_monitor_has_query(const cra_monitor_endpoints *ep);
bool cra_monitor_has_events(const cra_monitor_endpoints *ep);
bool cra_monitor_has_metrics(const cra_monitor_endpoints *ep);

/* cra_monitor_publish sends text[0..len) on the events PUB socket without
 * waiting; text is copied (the caller keeps it). Returns 0, CR_ENOENT (no events endpoint) or CR_ENNG (dropped;
 * counted by the caller). Thread-safe. */
int cra_monitor_publish(cra_monitor_endpoints *ep, const char *text,
                        size_t len);

/* cra_url_is_loopback reports whether a listen URL can only be reached
 * from this host: ipc://, abstract://, inproc://, or tcp/tcp4/tcp6/ws/
 * wss/tls+tcp with host 127.0.0.0/8, ::1 or localhost. A missing or
 * wildcard host (tcp://:5555, a "*" host, 0.0.0.0) is not. */
bool cra_url_is_loopback(const char *url);

/* cra_hostport_is_loopback is the same test for "HOST:PORT" ("[::1]:N"
 * for IPv6); false when the port is missing or not 1..65535. */
bool cra_hostport_is_loopback(const char *hostport);

typedef struct cra_monitor_opts {
    cra_monitor_endpoints *ep; /* owned by the receiver */
    cra_receiver *recv;        /* the receiver whose state is shown */
    uint64_t started_ms;       /* process start (cr_now_ms) for uptime */
    const char *request_url;   /* config service URLs, shown by status */
    const char *notify_url;
} cra_monitor_opts;

/* The behaviour; spawn argument: const cra_monitor_opts * that outlives
 * the actor. It serves the query endpoint (if open) and refreshes the
 * HTTP metrics cache every second, or less often when computing it is
 * slow (if open). init fails only without memory or when nng cannot open
 * a context on the query socket. */
extern const cr_behaviour cra_monitor_behaviour;

/* cra_monitor_answer computes the reply to one command (also used by
 * tests without a socket). Blocks on queries to other actors: call it on
 * an actor or plain thread, never from an nng callback. Returns a
 * malloc'd NUL-terminated text ending in "\n", or NULL on allocation
 * failure. */
char *cra_monitor_answer(cr_rt *rt, const cra_monitor_opts *o, const char *cmd,
                         size_t len);

/* cra_monitor_actors_doc builds the `actors` answer: {"tree": the
 * supervision tree from the supervisor registered as root_name,
 * "actors": every live actor}. Each tree node has name, id, kind, state,
 * restarts, depth, high_water, capacity, msgs_in, msgs_out, last_exit,
 * next_delay_ms, and children (supervisors only). Never NULL unless out
 * of memory; "tree" is null when the root is gone. */
json_t *cra_monitor_actors_doc(cr_rt *rt, const char *root_name);

/* cra_monitor_workspaces_doc builds the `workspaces` answer from the
 * flow states per workspace (cra_receiver_workspace_states) and the flow
 * manager's workspace table (cra_flow_manager_workspaces; may be NULL):
 * {"version": N, "workspaces": {WS: {"version", "flows", "fetching",
 * "states": {STATE: count}}}}. Borrows both; NULL without memory. */
json_t *cra_monitor_workspaces_doc(const json_t *states, const json_t *fmws);

#endif
