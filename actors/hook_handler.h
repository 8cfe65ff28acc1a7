/*
 * hook_handler.h - the hook runner: a flow handler ("hook") that runs the
 * user's program PATH on every transition of every flow.
 *
 *   argv  [PATH, "start"|"update"|"stop", WORKSPACE, FLOW_ID]
 *   stdin the flow's JSON (for stop: the definition last started)
 *   env   CFGRECV_WORKSPACE, CFGRECV_FLOW, CFGRECV_BLUEPRINT,
 *         CFGRECV_VERSION (+ PATH and a few locale/home variables, see
 *         proc_flow.h); never a shell.
 *
 * Hooks of different flows run concurrently, at most `concurrency` at a
 * time (others queue in order); the handler actor already applies one
 * flow's transitions one at a time and in order. The actor never waits
 * for a child: start/update/stop spawn (or queue) and return CRA_PENDING;
 * the process watcher (proc_watch.h) posts an exit message and the call
 * completes with cra_handler_done. Exit 0 is success; a non-zero exit, a
 * signal or the timeout (the hook's process group is killed) fails it
 * with "exit status N; stderr: <last lines>", and the handler actor puts
 * a failed start or update into `backoff` and retries it. A failing stop
 * hook is retried (stop_attempts in all, 0.2 s, 0.4 s, ... apart), then
 * reported (error log, event "flow.stop_failed") and the flow is gone.
 * Ids outside proc_flow.h's rule are refused (CRA_REFUSED): the flow is
 * `failed` with a clear error and no hook runs for it.
 *
 * Shutdown (the handler actor's sync stops, or its terminate): the runner
 * first waits for hooks in flight (each bounded by the timeout; a start
 * that succeeded then counts as started), drops queued starts, then runs
 * the stop hook of every started flow, `concurrency` at a time, with the
 * same bounded retries, and returns when all are done.
 */
#ifndef CRA_HOOK_HANDLER_H
#define CRA_HOOK_HANDLER_H

#include <stdint.h>

#include "flow_handler.h"

typedef struct cra_hook_opts {
    const char *path;       /* the program; must exist and be executable */
    unsigned concurrency;   /* hooks running at once; 0 = 4 */
    uint64_t timeout_ms;    /* per hook; 0 = 30000 */
    unsigned stop_attempts; /* a failing stop hook runs this often; 0 = 3 */
    const cr_backoff_policy *retry; /* flows' retries; NULL = default */
} cra_hook_opts;

/* cra_hook_handler fills *h with the hook runner's table (name "hook")
 * bound to *o; both must outlive every handler actor that runs it. */
void cra_hook_handler(cra_flow_handler *h, const cra_hook_opts *o);

#endif
