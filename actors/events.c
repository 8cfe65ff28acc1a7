/* events.c - cra_emit: serialise and post to the "events" actor. */
#include "events.h"

#include <stdlib.h>
#include <string.h>

int
cra_events_enabled(cr_rt *rt)
{
    return cr_whereis(rt, "events") != CR_NOBODY;
}

void
cra_emit(cr_rt *rt, const char *name, json_t *fields)
{
    cr_id to = cr_whereis(rt, "events");
    if (to == CR_NOBODY) {
        json_decref(fields);
        return;
    }
    json_t *ev = fields != NULL ? fields : json_object();
    json_object_set_new(ev, "event", json_string(name));
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    if (text == NULL) {
        return;
    }
    cr_msg *m = cr_msg_new_bytes(CRA_EVENT_MSG, text, strlen(text));
    free(text);
    if (m != NULL && cr_send(rt, CR_NOBODY, to, m) != 0) {
        cr_msg_free(m); /* full or gone: events are best effort */
    }
}
