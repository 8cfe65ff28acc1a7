/*
 * tool_util.h - small helpers shared by the programs' mains: option value
 * parsing, pidfiles, and the default endpoints every program agrees on.
 */
#ifndef CR_TOOL_UTIL_H
#define CR_TOOL_UTIL_H

#include <stdint.h>

#ifndef CFGRECV_VERSION
#define CFGRECV_VERSION "0.1.0"
#endif

/* Where a local config service listens unless told otherwise; cfgctl's
 * default --url and the daemon's embedded service agree on these. */
#define CFGRECV_DEFAULT_REQUEST_URL "ipc:///tmp/cfgsvc-request.ipc"
#define CFGRECV_DEFAULT_NOTIFY_URL  "ipc:///tmp/cfgsvc-notify.ipc"
#define CFGRECV_DEFAULT_DB          "cfgrecv.db"

/* Where cfgrecvd serves its monitor queries and events unless told
 * otherwise; cfgrecv-monitor's defaults. */
#define CFGRECV_DEFAULT_MONITOR_URL "ipc:///tmp/cfgrecv-monitor.ipc"
#define CFGRECV_DEFAULT_EVENTS_URL  "ipc:///tmp/cfgrecv-events.ipc"

/* cr_tool_parse_uint parses a decimal unsigned integer (no sign, no
 * junk). 0, or -1 with *out untouched. */
int cr_tool_parse_uint(const char *s, uint64_t *out);

/* cr_tool_parse_duration parses "N", "Nms", "Ns", "Nm", "Nh" (N decimal;
 * no unit = seconds) into milliseconds. 0, or -1 with *out untouched. */
int cr_tool_parse_duration(const char *s, uint64_t *ms);

/* cr_tool_version prints "PROG VERSION (nng X.Y.Z)" and a newline to
 * stdout: every program's --version. */
void cr_tool_version(const char *prog);

/* cr_tool_pidfile_lock opens path (created 0644) and takes an exclusive
 * flock on it, held while the returned descriptor (close-on-exec) stays
 * open here or in a forked child: a second daemon given the same path
 * fails, and a pidfile left by a daemon that died holds no lock. Returns
 * the descriptor, or -1 with errno set (EWOULDBLOCK: another process
 * holds it, *holder then the pid in the file, 0 if none); nothing is left
 * open on failure. */
int cr_tool_pidfile_lock(const char *path, long *holder);

/* cr_tool_pidfile_write makes getpid() and "\n" the content of the
 * pidfile locked as fd. 0, or -1 with errno set. */
int cr_tool_pidfile_write(int fd);

/*
 * The shutdown guard, for daemons that block SIGTERM and SIGINT in every
 * thread and take them with sigtimedwait. Once a stop has begun:
 *  - a second SIGTERM or SIGINT means "now": the guard logs a WARN and
 *    exits 1 at once (children die by PR_SET_PDEATHSIG, as when killed);
 *  - once the work that matters is done (cfgrecvd: every flow stopped),
 *    cr_tool_guard_teardown gives what is left (closing sockets, freeing)
 *    a deadline (15 s), then the guard logs an ERROR and exits
 *    with the status the program was going to return. nng 1.5.2 can hang
 *    for good in nng_close (a task prepared but never started: nng
 *    issues #1543 and #1813, fixed in nng 1.8).
 * The pidfile (may be NULL) is unlinked before a forced exit.
 */
#define CR_TOOL_GUARD_TEARDOWN_MS 15000

typedef struct cr_tool_guard cr_tool_guard;

/* cr_tool_guard_start starts the guard's thread: the program's, to end
 * with cr_tool_guard_stop. NULL if it cannot (logged): the stop then
 * goes on unguarded, and the other two calls take NULL. */
cr_tool_guard *cr_tool_guard_start(const char *pidfile);

/* cr_tool_guard_teardown starts the teardown deadline, ms from now
 * (CR_TOOL_GUARD_TEARDOWN_MS in the programs); status is what a teardown
 * cut short exits with. */
void cr_tool_guard_teardown(cr_tool_guard *g, int status, int ms);

/* cr_tool_guard_stop ends the guard (joins its thread) and frees it. */
void cr_tool_guard_stop(cr_tool_guard *g);

#endif
