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

/* cr_tool_write_pidfile writes getpid() and "\n" to path (created 0644,
 * replaced atomically). 0, or -1 with errno set. */
int cr_tool_write_pidfile(const char *path);

#endif
