/*
 * events.h - the daemon's event stream, fed by every actor.
 *
 * cra_emit sends one event to the "events" actor (registered only when
 * the daemon has an --events-url), which stamps it with `ts` (RFC 3339,
 * UTC, milliseconds) and publishes it as one JSON object and "\n".
 * When no events actor runs, cra_emit costs one registry lookup.
 *
 * Event names (field `event`) and their fields:
 *   actor.started / actor.exited / actor.restart_scheduled /
 *   actor.restarted / actor.gave_up   {supervisor, child, reason, delay_ms}
 *   flow.starting / flow.running / flow.updated / flow.stopped /
 *   flow.failed / flow.backoff        {handler, workspace, flow, error}
 *   notify.received / notify.applied / notify.ignored   {version}
 *   fetch.ok / fetch.failed           {workspace, version, error}
 *   config.connected / config.disconnected               {url}
 */
#ifndef CRA_EVENTS_H
#define CRA_EVENTS_H

#include <jansson.h>

#include "cfgrecv/actor.h"

#define CRA_EVENT_MSG (CR_MSG_USER + 400) /* payload: JSON text */

/* cra_emit publishes event `name` with the fields of `fields` (a JSON
 * object, stolen: cra_emit always releases it; NULL = no fields). Never
 * fails loudly: an event that cannot be delivered is dropped and counted. */
void cra_emit(cr_rt *rt, const char *name, json_t *fields);

/* cra_events_enabled reports whether an events actor is running, so that
 * callers can skip building fields nobody will read. */
int cra_events_enabled(cr_rt *rt);

#endif
