/*
 * handler_actor.h - the actor that runs one flow handler (flow_handler.h)
 * and reconciles the flows it has actually started against the wanted
 * set the flow manager sends it.
 *
 * Messages taken (recv_msgs.h): RM_FLOWS (one workspace's diff, or its
 * whole wanted set when `full`), RM_SYNC_END (flows of workspaces not
 * listed must stop), RM_DONE (completion of a CRA_PENDING call),
 * CR_MSG_TIMER (a flow's retry is due), RM_QUERY_FLOWS (cr_call: reply
 * lists every flow with its state). Anything else goes to the handler's
 * own `handle` callback, or is logged and dropped.
 *
 * Model: each flow has a *desired* definition (or none: it must stop) and
 * an *actual* one (what the handler last started successfully). One call
 * at a time per flow; when a call completes, the flow is reconciled again,
 * so transitions of one flow apply in order and intermediate changes
 * coalesce. A failed start or update sets `backoff` and arms a timer
 * (cr_backoff, per flow); a definition that is not a JSON object sets
 * `failed` (no retry until the definition changes). On exit (shutdown or
 * failure) every running flow is stopped, then the handler's terminate
 * runs.
 */
#ifndef CRA_HANDLER_ACTOR_H
#define CRA_HANDLER_ACTOR_H

#include "cfgrecv/actor.h"
#include "flow_handler.h"

/* The behaviour; its spawn argument is a `const cra_flow_handler *` that
 * must outlive the actor (restarts reuse it). */
extern const cr_behaviour cra_handler_behaviour;

/* cra_handler_actor_name writes "handler:NAME" into buf. */
void cra_handler_actor_name(const cra_flow_handler *h, char *buf,
                            size_t len);

/* The built-in default handler: the flow directory. It starts and stops
 * nothing outside itself; its handler actor's table is the directory the
 * monitor shows (workspace, id, blueprint, state, since). */
extern const cra_flow_handler cra_flowdir_handler;

/* One flow as a handler actor reports it (cra_handler_query). */
typedef struct cra_flow_info {
    char *workspace;
    char *id;
    const char *state; /* static name */
    char *error;       /* "" if none */
    char *blueprint;   /* "" if none */
    uint32_t restarts;
    uint64_t since_ms; /* wall-clock ms of the last state change */
} cra_flow_info;

/* cra_handler_query asks handler actor `id` for its flows (cr_call).
 * Returns 0 and an array *out of *n entries (free with
 * cra_flow_info_free), or a CR_E* code with *out = NULL. */
int cra_handler_query(cr_rt *rt, cr_id id, int timeout_ms,
                      cra_flow_info **out, size_t *n);

/* cra_flow_info_free frees what cra_handler_query returned. */
void cra_flow_info_free(cra_flow_info *v, size_t n);

#endif
