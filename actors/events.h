/*
 * events.h - the daemon's event stream, fed by every actor.
 *
 * cra_emit stamps one event with `ts` (RFC 3339, UTC, milliseconds, taken
 * when it is emitted) and sends it to the "events" actor (events_actor.h,
 * registered only when the daemon has an --events-url), which publishes
 * it as one JSON object and "\n". Nobody watching costs nothing: a PUB
 * socket with no pipe drops what it is given, so while no event socket
 * of the process has a subscriber connected (cra_events_watchers_add,
 * kept by the socket's pipe callback), events are neither built nor
 * sent; cra_emit then costs one atomic load. 20,000 events at a 10,000
 * flow start-up had cost ~0.2 s of CPU.
 *
 * Every event is {"event": NAME, "ts": "2024-05-01T12:00:00.123Z", ...}
 * with `event` and `ts` first. Names (field `event`) and their fields:
 *   actor.started / actor.restarted      {supervisor, child, id, restarts}
 *   actor.exited / actor.gave_up         {supervisor, child, id, restarts,
 *                                         exit, code, reason}
 *   actor.restart_scheduled              {supervisor, child, restarts,
 *                                         delay_ms}
 *   actor.stop_timeout / actor.removed   {supervisor, child, ...}
 *   flow.starting / flow.running / flow.updated / flow.stopped /
 *   flow.failed / flow.backoff           {handler, workspace, flow, error}
 *   notify.received / notify.applied / notify.ignored   {version}
 *   fetch.ok {workspace, version} / fetch.failed {workspace}
 *   config.connected / config.disconnected              {url, reconnect}
 * (actor.* come from the supervisors' events, see events_actor.h.)
 */
#ifndef CRA_EVENTS_H
#define CRA_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cfgrecv/actor.h"

#define CRA_EVENT_MSG (CR_MSG_USER + 400) /* payload: JSON text */

/* cra_emit publishes event `name` with the fields of `fields` (a JSON
 * object, stolen: cra_emit always releases it; NULL = no fields). Never
 * fails loudly: an event that cannot be delivered is dropped and counted
 * (cra_events_dropped). On an actor's thread the event is stamped now and
 * sent with that actor's other events once its current batch of messages
 * is handled (cr_defer); elsewhere it is sent at once. CRA_EVENT_MSG's
 * payload is therefore one or more events, one per line. */
void cra_emit(cr_rt *rt, const char *name, json_t *fields);

/* cra_events_enabled reports whether an events actor is running and some
 * event socket has a subscriber, so that callers can skip building fields
 * nobody will read. */
int cra_events_enabled(cr_rt *rt);

/* cra_events_watchers_add counts event-stream subscribers up or down; the
 * PUB socket's pipe callback calls it (atomics only: nng holds the socket
 * lock there). cra_events_watched reports whether any is connected, in
 * any runtime of the process (a false positive only costs the work). */
void cra_events_watchers_add(int delta);
int cra_events_watched(void);

/* cra_event_text returns the malloc'd compact JSON text of one event:
 * {"event": name, "ts": wall_ms as RFC 3339, ...fields} (fields stolen,
 * may be NULL). NULL on allocation failure or a name that is not UTF-8. */
char *cra_event_text(const char *name, uint64_t wall_ms, json_t *fields);

/* cra_events_dropped returns how many events were lost in this process
 * (mailbox full, events actor gone, out of memory). Never fails. */
uint64_t cra_events_dropped(void);

/* cra_events_count_drop adds n to that count. */
void cra_events_count_drop(uint64_t n);

/* cra_rfc3339_ms writes wall-clock ms as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void cra_rfc3339_ms(uint64_t ms, char *buf, size_t len);

/* cra_wall_ms returns CLOCK_REALTIME in milliseconds. */
uint64_t cra_wall_ms(void);

#endif
