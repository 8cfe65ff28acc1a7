/*
 * cfgsvc_store.h - the config service's durable store (SQLite).
 *
 * Rows (workspace, type, key, value) and a persisted version counter,
 * in one SQLite file opened with journal_mode=WAL and synchronous=FULL:
 * a put or delete returns only after its transaction (rows *and* the
 * version bump, atomically) is on disk, so an acknowledged change
 * survives kill -9 of the process, and the version never goes back.
 *
 * A store handle is used by one thread at a time (the store actor owns
 * it); it is not internally locked.
 *
 * Results are built with the codec's structs (transport/proto.h) so the
 * caller can put them straight into a ConfigResponse; strings are
 * malloc'd and freed by the crt_*_free functions. Every function returns
 * 0, CR_ENOMEM, or CR_EFAIL for an SQLite failure (the text is logged and
 * kept for cra_store_errmsg); on failure out-parameters are untouched
 * and a write leaves the store unchanged (rolled back).
 */
#ifndef CRA_CFGSVC_STORE_H
#define CRA_CFGSVC_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cra_store cra_store;

/* cra_store_open opens (creating if needed) the database at path
 * (":memory:" for a throw-away store). Returns 0 and *out, or CR_EFAIL
 * (cannot open / not a database / schema error; logged) or CR_ENOMEM. */
int cra_store_open(const char *path, cra_store **out);

/* cra_store_close closes the database. NULL is a no-op. */
void cra_store_close(cra_store *st);

/* cra_store_errmsg returns the last SQLite error text ("" if none). */
const char *cra_store_errmsg(cra_store *st);

/* cra_store_version returns the current version (0 for a new store). */
uint64_t cra_store_version(cra_store *st);

/* cra_store_get sets *value to a copy of the value, or NULL if the key
 * does not exist. */
int cra_store_get(cra_store *st, const char *ws, const char *type,
                  const char *key, char **value);

/* cra_store_list returns the keys of (ws, type), sorted. */
int cra_store_list(cra_store *st, const char *ws, const char *type,
                   char ***keys, size_t *n);

/* cra_store_getvalues returns {type, key, value} of (ws, type), sorted by
 * key, with workspace "" (as TrustGraph's getvalues). */
int cra_store_getvalues(cra_store *st, const char *ws, const char *type,
                        crt_value **vals, size_t *n);

/* cra_store_getvalues_all returns every (workspace, key, value) of type
 * across workspaces, sorted by workspace then key; with_values false
 * leaves value NULL (nil) for getkeys-all-ws. */
int cra_store_getvalues_all(cra_store *st, const char *type,
                            bool with_values, crt_value **vals, size_t *n);

/* cra_store_config returns ws's whole config grouped by type (types and
 * keys sorted). */
int cra_store_config(cra_store *st, const char *ws, crt_cfgtype **cfg,
                     size_t *n);

/* cra_store_set_durable turns fsync-per-commit (synchronous=FULL, the
 * default) off or back on. Off is only for bulk loading a store that
 * nobody serves yet (benchmarks, test fixtures): a crash may lose what was
 * written meanwhile. 0 or CR_EFAIL (see cra_store_errmsg). */
int cra_store_set_durable(cra_store *st, bool durable);

/* cra_store_put upserts vals[i].{type,key,value} into ws (vals[i].
 * workspace is ignored; a NULL value is stored as "") and increments the
 * version by one, in one durable transaction. *version gets the new
 * version. */
int cra_store_put(cra_store *st, const char *ws, const crt_value *vals,
                  size_t n, uint64_t *version);

/* cra_store_delete deletes keys (missing ones are ignored) from ws and
 * increments the version by one, in one durable transaction. */
int cra_store_delete(cra_store *st, const char *ws, const crt_key *keys,
                     size_t n, uint64_t *version);

#ifdef __cplusplus
}
#endif
#endif /* CRA_CFGSVC_STORE_H */
