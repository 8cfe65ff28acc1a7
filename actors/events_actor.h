/*
 * events_actor.h - the actor behind the daemon's event stream (PUB).
 *
 * Registered as "events" (cra_emit finds it by that name). It publishes
 * every CRA_EVENT_MSG it is sent (JSON text, already stamped by cra_emit)
 * as one line: the JSON object and "\n". The lines of the events it
 * handled in one mailbox batch go out as one PUB message (at most 64 KiB;
 * one line when idle), so a subscriber splits messages on "\n" and sees
 * one event per line, as `nngcat --sub --raw` prints them. It also follows the
 * supervision tree: it subscribes to the supervisor registered as
 * root_name and, recursively, to every child supervisor it sees start,
 * and turns their events into actor.* events (events.h). Events that
 * happened before it subscribed to a supervisor are summarised by one
 * actor.started {"initial": true} per child running at that moment.
 *
 * It never fails on bad input or a lost event (dropped and counted,
 * cra_events_dropped): it sits before the handlers in a rest_for_one
 * tree, where its restart would restart them too.
 */
#ifndef CRA_EVENTS_ACTOR_H
#define CRA_EVENTS_ACTOR_H

#include <jansson.h>

#include "cfgrecv/actor.h"
#include "cfgrecv/supervisor.h"
#include "monitor.h"

typedef struct cra_events_opts {
    cra_monitor_endpoints *ep; /* its PUB socket; owned by the receiver */
    const char *root_name;     /* supervisor to follow, e.g. "receiver" */
} cra_events_opts;

/* The behaviour; spawn argument: const cra_events_opts * that outlives
 * the actor. init fails only without memory. */
extern const cr_behaviour cra_events_behaviour;

/* cra_sup_event_fields converts one supervisor event into an event name
 * (*name, static) and its fields (a new JSON object the caller owns).
 * Returns NULL for an unknown kind or without memory. */
json_t *cra_sup_event_fields(const cr_sup_event *ev, const char **name);

#endif
