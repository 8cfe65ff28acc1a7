/*
 * events_actor.c - publishes events; follows the supervisors.
 *
 * Publishing is one non-blocking nng_send on the PUB socket the receiver
 * opened (PUB drops for a subscriber whose queue is full rather than
 * block, so a slow `nngcat --sub` never slows the daemon down). The
 * events of one received batch go out as one message, each on its own
 * line (at most PUB_BATCH_MAX bytes a message): under load one send and
 * one write per batch instead of per event, and an idle actor's batch is
 * a single event, sent at once (cr_behaviour.batch_end).
 *
 * Following: subscriptions are made from this actor's thread with
 * cr_sup_subscribe (a cr_call), first to the root once init has returned
 * (the root answers after its own init started every child), then to each
 * child supervisor when its start or restart is seen. A supervisor that
 * exits is forgotten; its replacement is followed when it starts.
 */
#include "events_actor.h"

#include <stdlib.h>
#include <string.h>

#include "cfgrecv/log.h"
#include "events.h"

#define COMP       "events"
#define EV_FOLLOW  (CR_MSG_USER + 401) /* payload: none; follow the root */
#define MAX_FOLLOW 64
#define PUB_BATCH_MAX (64 * 1024) /* bytes of events in one PUB message */

typedef struct evs {
    const cra_events_opts *o;
    cr_ctx *ctx;
    cr_rt *rt;
    cr_id followed[MAX_FOLLOW]; /* supervisors subscribed to */
    size_t nfollowed;
    char *out;      /* events of this batch, each + "\n", not yet sent */
    size_t out_len; /* bytes in out */
    size_t out_cap;
    uint64_t out_n; /* events in out */
} evs;

static json_t *
jstr(const char *s) {
    json_t *j = json_string(s);
    return j != NULL ? j : json_string("?");
}

json_t *
cra_sup_event_fields(const cr_sup_event *ev, const char **name) {
    switch (ev->kind) {
    case CR_SUP_EV_START:
        *name = "actor.started";
        break;
    case CR_SUP_EV_EXIT:
        *name = "actor.exited";
        break;
    case CR_SUP_EV_RESTART_SCHEDULED:
        *name = "actor.restart_scheduled";
        break;
    case CR_SUP_EV_RESTART:
        *name = "actor.restarted";
        break;
    case CR_SUP_EV_GIVEUP:
        *name = "actor.gave_up";
        break;
    case CR_SUP_EV_STOP_TIMEOUT:
        *name = "actor.stop_timeout";
        break;
    case CR_SUP_EV_REMOVED:
        *name = "actor.removed";
        break;
    default:
        return NULL;
    }
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    json_object_set_new(o, "supervisor", jstr(ev->sup_name));
    if (ev->kind != CR_SUP_EV_GIVEUP) {
        json_object_set_new(o, "child", jstr(ev->child));
        json_object_set_new(o, "restarts", json_integer(ev->restarts));
    }
    if (ev->id != CR_NOBODY) {
        json_object_set_new(o, "id", json_integer((json_int_t)ev->id));
    }
    if (ev->kind == CR_SUP_EV_EXIT || ev->kind == CR_SUP_EV_GIVEUP) {
        static const char *const kinds[] = {"normal", "shutdown", "error",
                                            "noproc"};
        unsigned k = (unsigned)ev->reason.kind;
        json_object_set_new(o, "exit", json_string(k < 4 ? kinds[k] : "?"));
        json_object_set_new(o, "code", json_integer(ev->reason.code));
        json_object_set_new(o, "reason", jstr(ev->reason.text));
    }
    if (ev->kind == CR_SUP_EV_RESTART_SCHEDULED) {
        json_object_set_new(o, "delay_ms",
                            json_integer((json_int_t)ev->delay_ms));
    }
    if (ev->kind == CR_SUP_EV_STOP_TIMEOUT) {
        json_object_set_new(o, "timeout_ms",
                            json_integer((json_int_t)ev->timeout_ms));
    }
    return o;
}

/* flush publishes what out holds as one message. */
static void
flush(evs *s) {
    if (s->out_len == 0) {
        return;
    }
    if (cra_monitor_publish(s->o->ep, s->out, s->out_len) != 0) {
        cra_events_count_drop(s->out_n);
    }
    s->out_len = 0;
    s->out_n = 0;
}

/* publish_text queues the events of one CRA_EVENT_MSG (one per line,
 * without the last newline). */
static void
publish_text(evs *s, const char *text, size_t len) {
    uint64_t n = 1;
    for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text)));
         p++) {
        n++;
    }
    if (s->out_len > 0 && s->out_len + len + 1 > PUB_BATCH_MAX) {
        flush(s);
    }
    if (s->out_len + len + 1 > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap : 4096;
        while (cap < s->out_len + len + 1) {
            cap *= 2;
        }
        char *grown = realloc(s->out, cap);
        if (grown == NULL) {
            cra_events_count_drop(n);
            return;
        }
        s->out = grown;
        s->out_cap = cap;
    }
    memcpy(s->out + s->out_len, text, len);
    s->out_len += len;
    s->out[s->out_len++] = '\n';
    s->out_n += n;
}

static void
publish(evs *s, const char *name, json_t *fields) {
    char *text = cra_event_text(name, cra_wall_ms(), fields);
    if (text == NULL) {
        cra_events_count_drop(1);
        return;
    }
    publish_text(s, text, strlen(text));
    free(text);
}

static bool
is_supervisor(cr_rt *rt, cr_id id) {
    cr_actor_info ai;
    return id != CR_NOBODY && cr_actor_info_get(rt, id, &ai) == 0 &&
           strcmp(ai.kind, "supervisor") == 0;
}

static void
follow(evs *s, cr_id sup) {
    for (size_t i = 0; i < s->nfollowed; i++) {
        if (s->followed[i] == sup) {
            return;
        }
    }
    if (s->nfollowed == MAX_FOLLOW) {
        CR_WARN(COMP, "too many supervisors to follow; %llu left out",
                (unsigned long long)sup);
        return;
    }
    int rv = cr_sup_subscribe(s->rt, sup, cr_self(s->ctx), CR_SUP_EV_ALL);
    if (rv != 0) {
        /* a supervisor on its way out (the daemon stopped during its
         * start-up: the root stops this actor, which ends the call) is
         * no news */
        if (cr_alive(s->rt, sup)) {
            CR_WARN(COMP, "cannot follow supervisor %llu: %s",
                    (unsigned long long)sup, cr_strerror(rv));
        }
        return;
    }
    s->followed[s->nfollowed++] = sup;
    cr_actor_info si;
    const char *sname = cr_actor_info_get(s->rt, sup, &si) == 0 ? si.name : "";
    cr_sup_child_info *kids = NULL;
    size_t n = 0;
    if (cr_sup_which_children(s->rt, sup, &kids, &n) != 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (kids[i].state != CR_CHILD_RUNNING || kids[i].id == CR_NOBODY) {
            continue;
        }
        json_t *f = json_object();
        if (f != NULL) {
            json_object_set_new(f, "supervisor", jstr(sname));
            json_object_set_new(f, "child", jstr(kids[i].name));
            json_object_set_new(f, "restarts", json_integer(kids[i].restarts));
            json_object_set_new(f, "id", json_integer((json_int_t)kids[i].id));
            json_object_set_new(f, "initial", json_true());
            publish(s, "actor.started", f);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (kids[i].state == CR_CHILD_RUNNING &&
            is_supervisor(s->rt, kids[i].id)) {
            follow(s, kids[i].id);
        }
    }
    free(kids);
}

static void
forget(evs *s, cr_id sup) {
    for (size_t i = 0; i < s->nfollowed; i++) {
        if (s->followed[i] == sup) {
            s->followed[i] = s->followed[--s->nfollowed];
            return;
        }
    }
}

static void
on_sup_event(evs *s, const cr_msg *m) {
    cr_sup_event ev;
    if (cr_sup_event_decode(m, &ev) != 0) {
        CR_WARN(COMP, "undecodable supervisor event dropped");
        cra_events_count_drop(1);
        return;
    }
    const char *name;
    json_t *f = cra_sup_event_fields(&ev, &name);
    if (f != NULL) {
        publish(s, name, f);
    }
    if ((ev.kind == CR_SUP_EV_START || ev.kind == CR_SUP_EV_RESTART) &&
        is_supervisor(s->rt, ev.id)) {
        follow(s, ev.id);
    } else if (ev.kind == CR_SUP_EV_EXIT && ev.id != CR_NOBODY) {
        forget(s, ev.id);
    } else if (ev.kind == CR_SUP_EV_GIVEUP) {
        forget(s, ev.sup);
    }
}

static int
e_init(cr_ctx *ctx, void *arg, void **state) {
    evs *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return CR_ENOMEM;
    }
    *state = s;
    s->o = arg;
    s->ctx = ctx;
    s->rt = cr_ctx_rt(ctx);
    /* follow the root once init returned: the root answers only after
     * its own init has started every child */
    cr_msg *m = cr_msg_new(EV_FOLLOW);
    if (m == NULL || cr_ctx_send(ctx, cr_self(ctx), m) != 0) {
        cr_msg_free(m);
        return CR_ENOMEM;
    }
    return 0;
}

static int
e_handle(cr_ctx *ctx, void *state, const cr_msg *m) {
    evs *s = state;
    switch (cr_msg_type(m)) {
    case CRA_EVENT_MSG:
        publish_text(s, cr_msg_data(m), cr_msg_len(m));
        break;
    case CR_MSG_SUP_EVENT:
        on_sup_event(s, m);
        break;
    case EV_FOLLOW: {
        cr_id root = cr_whereis(s->rt, s->o->root_name);
        if (root != CR_NOBODY) {
            follow(s, root);
        }
        break;
    }
    default:
        break;
    }
    return 0;
}

static int
e_batch_end(cr_ctx *ctx, void *state) {
    (void)ctx;
    flush(state);
    return 0;
}

static void
e_terminate(cr_ctx *ctx, void *state, const cr_exit *why) {
    evs *s = state;
    if (s != NULL) {
        flush(s);
        free(s->out);
    }
    free(s);
}

const cr_behaviour cra_events_behaviour = {
    .kind = "events",
    .init = e_init,
    .handle = e_handle,
    .terminate = e_terminate,
    /* the handlers stop just before it, each flow's stop an event */
    .drain_on_stop = true,
    .batch_end = e_batch_end,
};
