/* events.c - cra_emit: stamp, serialise and post to the "events" actor. */
#include "events.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_uint_fast64_t dropped; /* events lost on the way (any rt) */
static atomic_int watchers;           /* pipes of event PUB sockets (any rt) */

void
cra_events_watchers_add(int delta) {
    atomic_fetch_add(&watchers, delta);
}

int
cra_events_watched(void) {
    return atomic_load(&watchers) > 0;
}

int
cra_events_enabled(cr_rt *rt) {
    return cra_events_watched() && cr_whereis(rt, "events") != CR_NOBODY;
}

uint64_t
cra_events_dropped(void) {
    return atomic_load(&dropped);
}

void
cra_events_count_drop(void) {
    atomic_fetch_add(&dropped, 1);
}

void
cra_rfc3339_ms(uint64_t ms, char *buf, size_t len) {
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char date[32];
    gmtime_r(&secs, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03uZ", date, (unsigned)(ms % 1000));
}

uint64_t
cra_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

char *
cra_event_text(const char *name, uint64_t wall_ms, json_t *fields) {
    char ts[40];
    cra_rfc3339_ms(wall_ms, ts, sizeof(ts));
    /* event and ts first: jansson keeps insertion order */
    json_t *ev = json_pack("{s:s, s:s}", "event", name, "ts", ts);
    if (ev == NULL) {
        json_decref(fields);
        return NULL;
    }
    if (fields != NULL) {
        json_object_del(fields, "event");
        json_object_del(fields, "ts");
        json_object_update(ev, fields);
        json_decref(fields);
    }
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return text;
}

void
cra_emit(cr_rt *rt, const char *name, json_t *fields) {
    cr_id to = cra_events_watched() ? cr_whereis(rt, "events") : CR_NOBODY;
    if (to == CR_NOBODY) {
        json_decref(fields);
        return;
    }
    char *text = cra_event_text(name, cra_wall_ms(), fields);
    if (text == NULL) {
        cra_events_count_drop();
        return;
    }
    cr_msg *m = cr_msg_new_bytes(CRA_EVENT_MSG, text, strlen(text));
    free(text);
    if (m == NULL || cr_send(rt, CR_NOBODY, to, m) != 0) {
        cr_msg_free(m); /* full or gone: events are best effort */
        cra_events_count_drop();
    }
}
