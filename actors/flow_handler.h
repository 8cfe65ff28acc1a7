/*
 * flow_handler.h - flow handlers: components told of every flow's start,
 * update and stop (the reference receiver's `add_handler` list).
 *
 * A handler is a table of function pointers run inside an actor of its
 * own (the "handler actor", see handler_actor.c). The handler actor owns
 * what the handler has actually started and reconciles it against the
 * wanted set that the flow manager sends it, one workspace at a time:
 *
 *   per-flow state  starting -> running
 *                   starting -> backoff -> starting ... (start failed)
 *                   starting -> failed  (value is not a JSON object)
 *                   running  -> stopping -> (gone)
 *
 * A start or update that fails puts that flow alone into `backoff`; it is
 * retried on a runtime timer with cr_backoff. Other flows go on. A
 * handler whose callbacks fail for one flow never affects another
 * handler: each is its own actor under the handler supervisor.
 *
 * Callbacks run on the handler actor's thread, one at a time; they may
 * block briefly but long work belongs in the handler's own workers (the
 * hook runner returns CRA_PENDING and completes with cra_handler_done).
 */
#ifndef CRA_FLOW_HANDLER_H
#define CRA_FLOW_HANDLER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfgrecv/actor.h"
#include "cfgrecv/backoff.h"

/* Return values of start / update / stop. */
#define CRA_OK      0
#define CRA_FAILED  1  /* failed: err holds the reason */
#define CRA_PENDING 2  /* in progress: finish with cra_handler_done() */
/* CRA_REFUSED: start only, returned at once (not through
 * cra_handler_done): this flow cannot run as defined (e.g. an id the
 * handler does not accept). The flow becomes `failed` with err and is not
 * retried until its definition changes, like a value that is not a JSON
 * object. Elsewhere it counts as CRA_FAILED. */
#define CRA_REFUSED 3

/* What a handler callback is told about one flow. All pointers are
 * borrowed for the duration of the call. */
typedef struct cra_flow_ref {
    const char *workspace;
    const char *id;
    const json_t *flow;    /* the parsed flow object (NULL for stop) */
    const char *text;      /* its JSON text as stored (NULL for stop) */
    size_t text_len;
    uint64_t version;      /* config version the change came with */
    uint64_t op_seq;       /* identifies this call for cra_handler_done */
    bool sync;             /* shutdown: the call must finish before it
                              returns (CRA_PENDING is not allowed) */
    const char *blueprint; /* the flow's "blueprint-name", "" if none
                              (NULL for stop) */
} cra_flow_ref;

typedef struct cra_flow_handler {
    const char *name; /* short, unique: the handler actor is "handler:NAME" */
    /* init: optional; called when the handler actor starts (and at each
     * restart) with the registration argument; sets *state. Non-zero
     * fails the actor (its supervisor restarts it with backoff). */
    int (*init)(cr_ctx *ctx, void *arg, void **state);
    /* terminate: optional; called after every flow was stopped. */
    void (*terminate)(void *state);
    /* start / update / stop: CRA_OK, CRA_FAILED (write a reason into
     * err[0..errlen)), or CRA_PENDING. update may be NULL: then a changed
     * definition is applied as stop followed by start. */
    int (*start)(void *state, const cra_flow_ref *f, char *err,
                 size_t errlen);
    int (*update)(void *state, const cra_flow_ref *f, char *err,
                  size_t errlen);
    int (*stop)(void *state, const cra_flow_ref *f, char *err,
                size_t errlen);
    /* handle: optional; messages of types the handler actor does not know
     * (e.g. a child-exit notice of the handler's own) go here. Borrowed. */
    int (*handle)(void *state, cr_ctx *ctx, const cr_msg *m);
    void *arg; /* passed to init */
    /* keep_definitions: keep each running flow's JSON text, so a flow that
     * goes down on its own (cra_handler_flow_down) can be started again
     * without a resync. Costs the text's size per flow. */
    bool keep_definitions;
    /* retry: optional backoff policy of this handler's flow retries; NULL
     * = 100 ms .. 30 s, full jitter, reset after 10 s up. Must pass
     * cr_backoff_policy_check (else the handler actor fails at init). */
    const cr_backoff_policy *retry;
    /* no_json_tree: the callbacks get `flow` = NULL (text and blueprint
     * only). The definition is still checked to be a JSON object, by a
     * scanner that builds nothing (json_scan.h): ~20x cheaper than a
     * jansson tree, which matters at 100,000 flows. */
    bool no_json_tree;
} cra_flow_handler;

/* Per-flow state names, as the monitor shows them. */
typedef enum {
    CRA_FLOW_STARTING = 0,
    CRA_FLOW_BACKOFF = 1,
    CRA_FLOW_FAILED = 2,
    CRA_FLOW_STOPPING = 3,
    CRA_FLOW_RUNNING = 4,
} cra_flow_state;

/* cra_flow_state_name returns "starting", "running", ... */
const char *cra_flow_state_name(cra_flow_state s);

/* cra_handler_done completes a CRA_PENDING call: rc is CRA_OK or
 * CRA_FAILED with err (may be NULL). Safe from any thread: it posts a
 * message to the handler actor `handler`, which copies the strings (the
 * caller keeps them). Returns 0 or a CR_E* code (the actor is gone: the
 * result is dropped). */
int cra_handler_done(cr_rt *rt, cr_id handler, const char *workspace,
                     const char *id, uint64_t op_seq, int rc,
                     const char *err);

/* cra_handler_flow_down reports that a running flow failed on its own
 * (e.g. its worker process exited): the handler actor marks it `backoff`
 * and starts it again after the flow's backoff delay (which resets once a
 * flow has stayed up for 10 s). Safe from any thread; the strings are
 * copied into the message (the caller keeps them). 0 or a CR_E* code. */
int cra_handler_flow_down(cr_rt *rt, cr_id handler, const char *workspace,
                          const char *id, const char *err);

/* ---- plugins ----------------------------------------------------------
 *
 * cfgrecvd loads handlers from shared objects (`--plugin PATH`, actors/
 * plugin.h). A plugin is built against this header (installed as
 * <cfgrecv/flow_handler.h>, with `pkg-config --cflags cfgrecv-runtime
 * jansson`) and exports one symbol:
 *
 *   const cra_plugin cfgrecv_plugin = {
 *       .abi = CRA_PLUGIN_ABI,
 *       .size = sizeof(cra_flow_handler),
 *       .handler = {.name = "mine", .start = ..., .stop = ...},
 *   };
 *
 * Its handler runs in a handler actor like the built-in ones; `arg` is
 * replaced by the `--plugin-arg` string (NULL without one). Inside the
 * daemon a plugin may call cra_handler_done, cra_handler_flow_down and the
 * runtime's cr_* functions (cr_fail from a callback fails its actor, which
 * its supervisor restarts and the flow manager sends every wanted flow
 * again). A plugin starts its threads in `init`, not when it is loaded:
 * `cfgrecvd --daemon` forks after loading, and threads do not survive a
 * fork. CRA_PLUGIN_ABI changes whenever cra_flow_handler or these
 * calls change incompatibly; a plugin built for another ABI is refused. */
#define CRA_PLUGIN_ABI 1
#define CRA_PLUGIN_SYMBOL "cfgrecv_plugin"

typedef struct cra_plugin {
    uint32_t abi;  /* CRA_PLUGIN_ABI the plugin was built with */
    uint32_t size; /* sizeof(cra_flow_handler) it was built with */
    cra_flow_handler handler;
} cra_plugin;

#endif
