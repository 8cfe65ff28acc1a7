/*
 * cfgsvc_core.h - the config service's request semantics, free of any
 * thread or socket: request bytes in, response bytes (and maybe a push)
 * out. The store actor calls it; tests call it directly.
 *
 * Semantics (TrustGraph's trustgraph-flow config service, checked
 * against trustgraph/config/service/config.py):
 *  - get(workspace, keys)      values [{type,key,value}], value nil if the
 *                              key does not exist.
 *  - list(workspace, type)     directory: the keys, sorted.
 *  - getvalues(workspace, type) values [{type,key,value}] (workspace "").
 *  - getvalues-all-ws(type)    values of every workspace, each with its
 *                              workspace.
 *  - getkeys-all-ws(type)      cfgrecv extension: as getvalues-all-ws but
 *                              every value is nil (names only; a receiver
 *                              with thousands of workspaces needs no
 *                              values to discover them).
 *  - put(workspace, values)    upsert (ConfigValue.workspace is ignored),
 *                              version + 1, then a push.
 *  - delete(workspace, keys)   delete (missing keys ignored), version + 1,
 *                              then a push.
 *  - config(workspace)         config {type:{key:value}}.
 *  Every response carries the current version (TrustGraph leaves it
 *  unset on put/delete; here it is the version the change produced).
 *  Push after put/delete: {version, changes:{type:[workspace]} for each
 *  distinct type touched}; in workspace "__workspaces__", keys of type
 *  "workspace" also fill workspace_changes.created (put) or .deleted
 *  (delete). Unlike TrustGraph, workspaces starting with "_" are not
 *  filtered out of `changes` (TrustGraph's filter can leave `changes`
 *  empty, which receivers read as "everything changed").
 * Errors (the service keeps serving):
 *  - unknown operation             bad-operation "unknown operation 'x'"
 *  - undecodable / oversized body  bad-request with the decoder's text
 *  - missing workspace (every op but *-all-ws)
 *                                  bad-request "workspace is required"
 *  - put without values / delete without keys
 *                                  bad-request (an empty change would
 *                                  push empty `changes` = "everything")
 *  - store failure                 config-error with SQLite's text
 */
#ifndef CRA_CFGSVC_CORE_H
#define CRA_CFGSVC_CORE_H

#include <stddef.h>

#include "cfgsvc_store.h"
#include "proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cra_cfgsvc_result {
    void *resp; /* encoded ConfigResponse (malloc'd; free()) */
    size_t resp_len;
    void *push; /* encoded ConfigPush to publish, or NULL (malloc'd) */
    size_t push_len;
} cra_cfgsvc_result;

/* cra_cfgsvc_handle decodes req[0..len) under lim, runs it against st
 * and fills *out. Returns 0 (out->resp is set, also for error replies;
 * out->push is set when a put/delete committed), or CR_ENOMEM when not
 * even a reply could be encoded (*out is zeroed; if a write had
 * committed, its push is still returned in out->push). */
int cra_cfgsvc_handle(cra_store *st, const void *req, size_t len,
                      const crt_limits *lim, cra_cfgsvc_result *out);

/* cra_cfgsvc_result_free frees both buffers and zeroes *r. */
void cra_cfgsvc_result_free(cra_cfgsvc_result *r);

/* cra_cfgsvc_push_everything encodes {version, changes:{},
 * workspace_changes:nil}: the start-up push meaning "everything
 * changed". 0 or CR_ENOMEM. */
int cra_cfgsvc_push_everything(uint64_t version, void **buf, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* CRA_CFGSVC_CORE_H */
