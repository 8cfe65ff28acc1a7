/* events.c - cra_emit: stamp, serialise and post to the "events" actor. */
#include "events.h"

#include <stdatomic.h>
#include <stdbool.h>
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
cra_events_count_drop(uint64_t n) {
    atomic_fetch_add(&dropped, n);
}

void
cra_rfc3339_ms(uint64_t ms, char *buf, size_t len) {
    /* gmtime_r and strftime cost more than the rest of an event: the
     * seconds part is kept per thread and reused within the second */
    static _Thread_local time_t cached_secs = -1;
    static _Thread_local char cached[32];
    time_t secs = (time_t)(ms / 1000);
    if (secs != cached_secs) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
        cached_secs = secs;
    }
    snprintf(buf, len, "%s.%03uZ", cached, (unsigned)(ms % 1000));
}

uint64_t
cra_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* plain_name: an event name made only of [a-z0-9._-] needs no escaping */
static bool
plain_name(const char *name) {
    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-')) {
            return false;
        }
    }
    return name[0] != '\0';
}

/* event_text_json builds the event as one jansson object: for names that
 * need escaping (or checking: not UTF-8 gives NULL). */
static char *
event_text_json(const char *name, const char *ts, json_t *fields) {
    /* event and ts first: jansson keeps insertion order */
    json_t *ev = json_pack("{s:s, s:s}", "event", name, "ts", ts);
    if (ev == NULL) {
        json_decref(fields);
        return NULL;
    }
    if (fields != NULL) {
        json_object_update(ev, fields);
        json_decref(fields);
    }
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return text;
}

char *
cra_event_text(const char *name, uint64_t wall_ms, json_t *fields) {
    char ts[40];
    cra_rfc3339_ms(wall_ms, ts, sizeof(ts));
    if (fields != NULL) {
        json_object_del(fields, "event");
        json_object_del(fields, "ts");
    }
    if (!plain_name(name)) {
        return event_text_json(name, ts, fields);
    }
    /* the usual case, written directly: {"event":"NAME","ts":"TS" and
     * then the fields' own compact dump without its opening brace (the
     * same text jansson writes for the merged object, at a fraction of
     * the cost: one object dumped instead of two built and one dumped) */
    char *body = NULL;
    if (fields != NULL && json_object_size(fields) > 0) {
        body = json_dumps(fields, JSON_COMPACT);
        if (body == NULL) {
            json_decref(fields);
            return NULL;
        }
    }
    json_decref(fields);
    size_t blen = body != NULL ? strlen(body) : 0;
    size_t cap = strlen(name) + strlen(ts) + blen + 32;
    char *text = malloc(cap);
    if (text != NULL) {
        snprintf(text, cap, "{\"event\":\"%s\",\"ts\":\"%s\"%s%s", name, ts,
                 body != NULL ? "," : "}", body != NULL ? body + 1 : "");
    }
    free(body);
    return text;
}

/* An actor's events wait in its thread's `pending` until the batch of
 * messages it is handling is done (cr_defer), then go to the events actor
 * as one message, one event per line: waking the events actor costs far
 * more than formatting an event (measured: 14-16 us an event when each
 * was its own message, 40,000 events at a 10,000-flow start-up). Other
 * threads (nng callbacks) send each event at once. */
#define PENDING_MAX (32 * 1024)

typedef struct pending {
    cr_rt *rt;
    char *buf; /* events, "\n" between them; freed by send_pending */
    size_t len, cap;
    uint64_t n;
} pending;

static _Thread_local pending tl;

static void
send_pending(void *arg) {
    (void)arg;
    if (tl.n > 0) {
        cr_id to = cr_whereis(tl.rt, "events");
        cr_msg *m = to != CR_NOBODY
                        ? cr_msg_new_bytes(CRA_EVENT_MSG, tl.buf, tl.len)
                        : NULL;
        if (m == NULL || cr_send(tl.rt, CR_NOBODY, to, m) != 0) {
            cr_msg_free(m); /* full or gone: events are best effort */
            cra_events_count_drop(tl.n);
        }
    }
    free(tl.buf);
    tl = (pending){0};
}

/* add_pending appends one event's text; false without memory. */
static bool
add_pending(cr_rt *rt, const char *text, size_t len) {
    if (tl.n > 0 && (tl.rt != rt || tl.len + 1 + len > PENDING_MAX)) {
        send_pending(NULL);
    }
    size_t need = tl.len + (tl.n > 0) + len;
    if (need > tl.cap) {
        size_t cap = tl.cap ? tl.cap : 1024;
        while (cap < need) {
            cap *= 2;
        }
        char *b = realloc(tl.buf, cap);
        if (b == NULL) {
            return false;
        }
        tl.buf = b;
        tl.cap = cap;
    }
    if (tl.n > 0) {
        tl.buf[tl.len++] = '\n';
    }
    memcpy(tl.buf + tl.len, text, len);
    tl.len += len;
    tl.rt = rt;
    tl.n++;
    return true;
}

void
cra_emit(cr_rt *rt, const char *name, json_t *fields) {
    if (!cra_events_enabled(rt)) {
        json_decref(fields);
        return;
    }
    char *text = cra_event_text(name, cra_wall_ms(), fields);
    if (text == NULL || !add_pending(rt, text, strlen(text))) {
        free(text);
        cra_events_count_drop(1);
        return;
    }
    free(text);
    if (cr_defer(send_pending, NULL) != 0) {
        send_pending(NULL); /* not an actor thread: now */
    }
}
