/*
 * metrics.h - Prometheus text exposition of the monitor's state, and the
 * optional HTTP /metrics endpoint that serves it.
 *
 * Metrics (all prefixed cfgrecv_ except TrustGraph's own gauge):
 *   tg_gateway_active_flow_count            gauge: flows in state running
 *   cfgrecv_flows{state}                    gauge: flows per merged state
 *   cfgrecv_workspaces, cfgrecv_config_version, cfgrecv_uptime_seconds,
 *   cfgrecv_config_service_connected, cfgrecv_synced,
 *   cfgrecv_fetches_pending                 gauges
 *   cfgrecv_notifies_total{result}          received|applied|ignored
 *   cfgrecv_fetches_total{result}           ok|failed
 *   cfgrecv_resyncs_total, cfgrecv_events_dropped_total     counters
 *   cfgrecv_actor_restarts_total{supervisor,actor}  per supervised child
 *   cfgrecv_actor_up{supervisor,actor}      1 while its state is running
 *   cfgrecv_actor_mailbox_depth{actor}, cfgrecv_actor_mailbox_high_water,
 *   cfgrecv_actor_messages_in_total, cfgrecv_actor_messages_out_total
 * A restart counter starts again from 0 when its supervisor is itself
 * restarted (Prometheus treats that as a counter reset).
 *
 * The HTTP handler runs on an nng thread and must not block, so it only
 * copies the cached text under a mutex; the monitor actor recomputes the
 * text (which needs blocking queries) on a timer. Bind it to loopback:
 * nng 1.5.2's HTTP server has known bugs (NOTES.md).
 */
#ifndef CRA_METRICS_H
#define CRA_METRICS_H

#include <jansson.h>
#include <stdint.h>

/* cra_metrics_text renders the Prometheus text format (version 0.0.4)
 * from the monitor's documents: status (the `status` answer), actors
 * (cra_monitor_actors_doc) and flows (cra_receiver_flows_doc: its
 * "states" counts when given, else the listed flows).
 * Each may be NULL: its metrics are left out. Label values are escaped.
 * Returns malloc'd text, or NULL on allocation failure. */
char *cra_metrics_text(const json_t *status, const json_t *actors,
                       const json_t *flows, uint64_t events_dropped);

typedef struct cra_metrics_http cra_metrics_http;

/* cra_metrics_http_start listens for HTTP on hostport ("HOST:PORT",
 * "[::1]:PORT") and serves GET /metrics from a cache (initially a comment
 * saying it is not ready yet). Returns 0 and *out, CR_EINVAL (malformed
 * address), CR_ENNG (cannot listen; logged) or CR_ENOMEM; nothing is left
 * running on error. Does not check that the address is loopback. */
int cra_metrics_http_start(const char *hostport, cra_metrics_http **out);

/* cra_metrics_http_set replaces the cached text with a copy of text (kept
 * as is when out of memory). Thread-safe. */
void cra_metrics_http_set(cra_metrics_http *h, const char *text);

/* cra_metrics_http_stop stops the server and frees h. NULL is a no-op. */
void cra_metrics_http_stop(cra_metrics_http *h);

#endif
