/*
 * flow_dir.h - the merged flow directory: every handler's report of its
 * flows (cra_handler_query) merged into one entry per flow, written out
 * as the monitor's `flows` document or counted per workspace.
 *
 * Plain data, no actors: receiver.c queries the handlers and hands the
 * reports over. Merging and writing are done in C, not through jansson:
 * at 100,000 flows a jansson object per flow made `flows` take seconds,
 * most of it in malloc (docs/ARCHITECTURE.md, "The flow directory").
 *
 * Not thread-safe; one caller owns a cra_flow_dir from merge to free.
 */
#ifndef CFGRECV_FLOW_DIR_H
#define CFGRECV_FLOW_DIR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handler_actor.h"

#define CRA_FLOW_DIR_MAX_HANDLERS 16

typedef struct cra_flow_dir cra_flow_dir;

/* cra_flow_dir_merge merges nh handlers' reports: names[i] is handler i's
 * name, v[i] its n[i] flows (a handler that did not answer has n[i] = 0).
 * Borrows v: it must outlive the directory. A flow's merged
 * state is the least advanced any handler reports (failed, backoff,
 * starting, stopping, running), "starting" while some handler has not
 * reported it yet. NULL without memory or with nh over the maximum. */
cra_flow_dir *cra_flow_dir_merge(const char *const *names,
                                 cra_flow_info *const *v, const size_t *n,
                                 size_t nh);

/* cra_flow_dir_shown returns a name as the directory shows it: name
 * itself when it is UTF-8, else a malloc'd copy (*owned set; free it) with
 * U+FFFD for each byte that is not part of a valid sequence. NULL without
 * memory. The flow manager's workspace table shows names the same way, so
 * the monitor can match the two. */
const char *cra_flow_dir_shown(const char *name, bool *owned);

/* cra_flow_dir_flows returns the number of distinct flows merged. */
size_t cra_flow_dir_flows(const cra_flow_dir *d);

/* cra_flow_dir_text writes the directory as compact JSON with sorted keys
 * (byte for byte what jansson's JSON_COMPACT | JSON_SORT_KEYS writes for
 * the same document). Bytes that are not UTF-8 are shown as U+FFFD, and
 * a workspace or flow id is merged, sorted and counted as shown: two ids
 * that show alike are one flow, as they would be in a jansson document:
 *   {"version":V,"workspaces":{WS:{ID:{"blueprint","error","handlers":
 *    {NAME:STATE},"restarts","since","state"}}}}
 * limit 0 lists every flow; otherwise at most limit flows, the least
 * advanced first, and the document also has "states" {STATE: count} over
 * every flow, "total", "truncated" and "workspace_count". Returns the
 * malloc'd NUL-terminated text (the caller's; *len its length if len is
 * not NULL), or NULL without memory. */
char *cra_flow_dir_text(const cra_flow_dir *d, uint64_t version,
                        size_t limit, size_t *len);

/* cra_flow_dir_workspaces returns {WS: {STATE: count}} over every flow
 * (states with no flow left out; a workspace name that is not UTF-8 has
 * U+FFFD for its bad bytes), the caller's; NULL without memory. */
json_t *cra_flow_dir_workspaces(const cra_flow_dir *d);

void cra_flow_dir_free(cra_flow_dir *d);

#endif
