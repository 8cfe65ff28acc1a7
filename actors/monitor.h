/*
 * monitor.h - the daemon's read-only query endpoint (REP).
 *
 * A request is a text command; the reply is one JSON document and "\n"
 * (works with stock nngcat: `nngcat --req --dial URL --data status
 * --raw`). Commands: `status`, `flows`, `actors`, `help`. An unknown,
 * empty or oversized command gets {"error": ...} and the endpoint keeps
 * serving. Registered as "monitor".
 */
#ifndef CRA_MONITOR_H
#define CRA_MONITOR_H

#include "cfgrecv/actor.h"

typedef struct cra_receiver cra_receiver;

typedef struct cra_monitor_opts {
    const char *url;     /* REP listen URL */
    int ipc_mode;        /* permissions of an ipc socket file; 0 = 0600 */
    cra_receiver *recv;  /* the receiver whose state is shown */
    uint64_t started_ms; /* process start (cr_now_ms) for uptime */
} cra_monitor_opts;

/* The behaviour; spawn argument: const cra_monitor_opts * that outlives
 * the actor. init fails when the URL cannot be listened on. */
extern const cr_behaviour cra_monitor_behaviour;

/* cra_monitor_answer computes the reply to one command (also used by
 * tests without a socket). Returns a malloc'd NUL-terminated JSON text
 * ending in "\n", or NULL on allocation failure. */
char *cra_monitor_answer(cr_rt *rt, const cra_monitor_opts *o,
                         const char *cmd, size_t len);

#endif
