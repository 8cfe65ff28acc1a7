/*
 * worker_handler.h - the worker supervisor: a flow handler ("worker")
 * that keeps one long-running process per flow.
 *
 *   argv  [PATH, ARG..., WORKSPACE, FLOW_ID]   (ARG: each --worker-arg)
 *   stdin the flow's JSON, then EOF
 *   env   as for hooks (proc_flow.h); never a shell.
 *
 * start spawns the worker and succeeds once it has exec'd (an exec
 * failure fails the start, retried with backoff). A worker that exits on
 * its own is reported with cra_handler_flow_down: the handler actor puts
 * the flow in `backoff` (error: its exit status and last stderr lines)
 * and starts it again after a delay that grows with each failure and
 * resets only once a worker stayed up for the policy's stable period
 * (10 s by default). stop sends SIGTERM to the worker's process group and
 * SIGKILL after the grace period, and completes (CRA_PENDING) when it was
 * reaped. update is left NULL: a changed definition is stop, then start.
 * Workers' stdout and stderr go to the log, each line prefixed
 * "WORKSPACE/FLOW". One watcher thread serves all workers (proc_watch.h).
 *
 * Shutdown (the handler actor's sync stops, or its terminate): the first
 * sync stop sends SIGTERM to every worker at once, then each stop waits
 * for its own worker, so the whole shutdown takes at most one grace
 * period (plus reaping), not one per worker. Workers also die with the
 * daemon: PR_SET_PDEATHSIG(SIGKILL) if it is killed outright.
 */
#ifndef CRA_WORKER_HANDLER_H
#define CRA_WORKER_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "flow_handler.h"

typedef struct cra_worker_opts {
    const char *path;        /* the program; must be executable */
    const char *const *args; /* extra arguments before WORKSPACE FLOW */
    size_t nargs;
    uint64_t grace_ms;              /* SIGTERM -> SIGKILL; 0 = 10000 */
    const cr_backoff_policy *retry; /* restarts; NULL = default */
} cra_worker_opts;

/* cra_worker_handler fills *h with the worker supervisor's table (name
 * "worker", keep_definitions set) bound to *o; both must outlive every
 * handler actor that runs it. */
void cra_worker_handler(cra_flow_handler *h, const cra_worker_opts *o);

#endif
