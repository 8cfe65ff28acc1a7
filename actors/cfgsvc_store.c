/*
 * cfgsvc_store.c - SQLite store of the config service.
 *
 * Schema (created if missing):
 *   config(workspace, type, key, value) PRIMARY KEY(workspace,type,key)
 *   meta(name PRIMARY KEY, value INTEGER)   -- row 'version'
 * Writes run in BEGIN IMMEDIATE ... COMMIT with the version bump inside
 * the same transaction. The version is cached in memory after each
 * committed write (this handle is the only writer).
 *
 * Speed (the `config` read is on every change's critical path and is
 * run once per workspace at every receiver's start-up): statements are
 * prepared once and kept (prep/release: release resets the statement, so
 * no read transaction outlives its call), and the file is read through
 * mmap instead of pread into the 2 MiB page cache (SQLite's documented
 * trade-off: an I/O error on a mapped page is a SIGBUS, not an error
 * code; the store is a local file that this process alone writes).
 */
#include "cfgsvc_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include <cfgrecv/actor.h>
#include <cfgrecv/log.h>

#include "mpread.h"

#define STMT_CACHE 12

struct cra_store {
    sqlite3 *db;
    struct {
        const char *sql; /* a string literal: compared by address */
        sqlite3_stmt *s;
    } stmts[STMT_CACHE];
    uint64_t version;
    char err[256];
};

static int
fail(cra_store *st, const char *what)
{
    snprintf(st->err, sizeof(st->err), "%s: %s", what,
             st->db ? sqlite3_errmsg(st->db) : "no database");
    CR_ERROR("store", "%s", st->err);
    return CR_EFAIL;
}

static int
exec(cra_store *st, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(st->err, sizeof(st->err), "%s: %s", sql,
                 msg ? msg : "error");
        CR_ERROR("store", "%s", st->err);
        sqlite3_free(msg);
        return CR_EFAIL;
    }
    return 0;
}

/* prep gives the prepared statement for sql (a string literal), from
 * the cache when it was prepared before. Pair with release(). */
static int
prep(cra_store *st, const char *sql, sqlite3_stmt **s)
{
    size_t i;
    for (i = 0; i < STMT_CACHE && st->stmts[i].sql != NULL; i++) {
        if (st->stmts[i].sql == sql) {
            *s = st->stmts[i].s;
            return 0;
        }
    }
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s,
                           NULL) != SQLITE_OK) {
        return fail(st, "prepare");
    }
    if (i < STMT_CACHE) { /* else used once and finalized by release() */
        st->stmts[i].sql = sql;
        st->stmts[i].s = *s;
    }
    return 0;
}

/* release ends a statement's run: reset (ending its read transaction)
 * and unbound if cached, finalized if not. NULL is ignored. */
static void
release(cra_store *st, sqlite3_stmt *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < STMT_CACHE && st->stmts[i].sql != NULL; i++) {
        if (st->stmts[i].s == s) {
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            return;
        }
    }
    sqlite3_finalize(s);
}

static char *
col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    int n = sqlite3_column_bytes(s, i);
    char *c;
    if (t == NULL || n == 0) {
        return (char *)crt_empty_str;
    }
    if ((c = malloc((size_t)n + 1)) == NULL) {
        return NULL;
    }
    memcpy(c, t, (size_t)n);
    c[n] = '\0';
    return c;
}

int
cra_store_open(const char *path, cra_store **out)
{
    cra_store *st;
    sqlite3_stmt *s = NULL;
    int rv;
    if ((st = calloc(1, sizeof(*st))) == NULL) {
        return CR_ENOMEM;
    }
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rv = fail(st, path);
        goto fail;
    }
    sqlite3_busy_timeout(st->db, 5000);
    /* page_size only takes effect on a new file (before WAL is set): 16
     * KiB pages keep a ~2 KB flow definition inside its b-tree cell (with
     * 4 KiB pages, cells of this WITHOUT ROWID table spill past ~1 KB
     * into overflow pages): ~35% off a `config` read. */
    if ((rv = exec(st, "PRAGMA page_size=16384")) != 0 ||
        (rv = exec(st, "PRAGMA journal_mode=WAL")) != 0 ||
        (rv = exec(st, "PRAGMA synchronous=FULL")) != 0 ||
        (rv = exec(st, "PRAGMA mmap_size=1073741824")) != 0 ||
        (rv = exec(st, "CREATE TABLE IF NOT EXISTS config ("
                       " workspace TEXT NOT NULL, type TEXT NOT NULL,"
                       " key TEXT NOT NULL, value TEXT NOT NULL,"
                       " PRIMARY KEY (workspace, type, key)"
                       ") WITHOUT ROWID")) != 0 ||
        (rv = exec(st, "CREATE INDEX IF NOT EXISTS config_by_type"
                       " ON config (type, workspace, key)")) != 0 ||
        (rv = exec(st, "CREATE TABLE IF NOT EXISTS meta ("
                       " name TEXT PRIMARY KEY, value INTEGER NOT NULL)")) !=
            0 ||
        (rv = exec(st, "INSERT OR IGNORE INTO meta VALUES ('version', 0)")) !=
            0) {
        goto fail;
    }
    /* Run once: prepared outside the statement cache. */
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE"
                                   " name='version'",
                           -1, &s, NULL) != SQLITE_OK) {
        rv = fail(st, "prepare");
        goto fail;
    }
    if (sqlite3_step(s) != SQLITE_ROW) {
        rv = fail(st, "read version");
        goto fail;
    }
    st->version = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    *out = st;
    return 0;
fail:
    sqlite3_finalize(s);
    sqlite3_close(st->db);
    free(st);
    return rv;
}

void
cra_store_close(cra_store *st)
{
    if (st == NULL) {
        return;
    }
    for (size_t i = 0; i < STMT_CACHE && st->stmts[i].sql != NULL; i++) {
        sqlite3_finalize(st->stmts[i].s);
    }
    sqlite3_close(st->db);
    free(st);
}

const char *
cra_store_errmsg(cra_store *st)
{
    return st->err;
}

uint64_t
cra_store_version(cra_store *st)
{
    return st->version;
}

static void
bind_text(sqlite3_stmt *s, int i, const char *t)
{
    sqlite3_bind_text(s, i, t ? t : "", -1, SQLITE_STATIC);
}

int
cra_store_get(cra_store *st, const char *ws, const char *type,
              const char *key, char **value)
{
    sqlite3_stmt *s;
    int rv;
    if ((rv = prep(st,
                   "SELECT value FROM config WHERE workspace=?1 AND type=?2"
                   " AND key=?3",
                   &s)) != 0) {
        return rv;
    }
    bind_text(s, 1, ws);
    bind_text(s, 2, type);
    bind_text(s, 3, key);
    switch (sqlite3_step(s)) {
    case SQLITE_ROW:
        if ((*value = col_dup(s, 0)) == NULL) {
            rv = CR_ENOMEM;
        }
        break;
    case SQLITE_DONE:
        *value = NULL;
        break;
    default:
        rv = fail(st, "get");
    }
    release(st, s);
    return rv;
}

/* Growable array helper. */
static int
grow(void **arr, size_t *cap, size_t n, size_t elsize)
{
    void *p;
    size_t nc;
    if (n < *cap) {
        return 0;
    }
    nc = *cap ? *cap * 2 : 16;
    if ((p = realloc(*arr, nc * elsize)) == NULL) {
        return CR_ENOMEM;
    }
    memset((char *)p + *cap * elsize, 0, (nc - *cap) * elsize);
    *arr = p;
    *cap = nc;
    return 0;
}

int
cra_store_list(cra_store *st, const char *ws, const char *type, char ***keys,
               size_t *n)
{
    sqlite3_stmt *s;
    char **a = NULL;
    size_t cnt = 0, cap = 0;
    int rv, sr;
    if ((rv = prep(st,
                   "SELECT key FROM config WHERE workspace=?1 AND type=?2"
                   " ORDER BY key",
                   &s)) != 0) {
        return rv;
    }
    bind_text(s, 1, ws);
    bind_text(s, 2, type);
    while ((sr = sqlite3_step(s)) == SQLITE_ROW) {
        if ((rv = grow((void **)&a, &cap, cnt, sizeof(*a))) != 0 ||
            (a[cnt] = col_dup(s, 0)) == NULL) {
            rv = CR_ENOMEM;
            break;
        }
        cnt++;
    }
    if (rv == 0 && sr != SQLITE_DONE) {
        rv = fail(st, "list");
    }
    release(st, s);
    if (rv != 0) {
        crt_strv_free(a, cnt);
        return rv;
    }
    *keys = a;
    *n = cnt;
    return 0;
}

static void
values_drop(crt_value *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        crt_value_free(&v[i]);
    }
    free(v);
}

/* Runs s and collects rows (workspace?, key, value?) into values. */
static int
collect_values(cra_store *st, sqlite3_stmt *s, const char *type,
               bool has_ws, bool with_values, crt_value **vals, size_t *n)
{
    crt_value *a = NULL;
    size_t cnt = 0, cap = 0;
    int rv = 0, sr;
    while ((sr = sqlite3_step(s)) == SQLITE_ROW) {
        crt_value *v;
        int c = 0;
        if ((rv = grow((void **)&a, &cap, cnt, sizeof(*a))) != 0) {
            break;
        }
        v = &a[cnt++];
        v->workspace = has_ws ? col_dup(s, c++) : crt_strdup("");
        v->type = crt_strdup(type);
        v->key = col_dup(s, c++);
        v->value = with_values ? col_dup(s, c++) : NULL;
        if (v->workspace == NULL || v->type == NULL || v->key == NULL ||
            (with_values && v->value == NULL)) {
            rv = CR_ENOMEM;
            break;
        }
    }
    if (rv == 0 && sr != SQLITE_DONE) {
        rv = fail(st, "getvalues");
    }
    release(st, s);
    if (rv != 0) {
        values_drop(a, cnt);
        return rv;
    }
    *vals = a;
    *n = cnt;
    return 0;
}

int
cra_store_getvalues(cra_store *st, const char *ws, const char *type,
                    crt_value **vals, size_t *n)
{
    sqlite3_stmt *s;
    int rv;
    if ((rv = prep(st,
                   "SELECT key, value FROM config WHERE workspace=?1 AND"
                   " type=?2 ORDER BY key",
                   &s)) != 0) {
        return rv;
    }
    bind_text(s, 1, ws);
    bind_text(s, 2, type);
    return collect_values(st, s, type, false, true, vals, n);
}

int
cra_store_getvalues_all(cra_store *st, const char *type, bool with_values,
                        crt_value **vals, size_t *n)
{
    sqlite3_stmt *s;
    int rv;
    if ((rv = prep(st,
                   with_values
                       ? "SELECT workspace, key, value FROM config WHERE"
                         " type=?1 ORDER BY workspace, key"
                       : "SELECT workspace, key FROM config WHERE type=?1"
                         " ORDER BY workspace, key",
                   &s)) != 0) {
        return rv;
    }
    bind_text(s, 1, type);
    return collect_values(st, s, type, true, with_values, vals, n);
}

int
cra_store_config(cra_store *st, const char *ws, crt_cfgtype **cfg,
                 size_t *n)
{
    sqlite3_stmt *s;
    crt_cfgtype *a = NULL;
    size_t cnt = 0, cap = 0, ecap = 0;
    int rv, sr;
    crt_response tmp;
    if ((rv = prep(st,
                   "SELECT type, key, value FROM config WHERE workspace=?1"
                   " ORDER BY type, key",
                   &s)) != 0) {
        return rv;
    }
    bind_text(s, 1, ws);
    while ((sr = sqlite3_step(s)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s, 0);
        crt_cfgtype *ct;
        crt_entry *e;
        if (t == NULL) {
            t = "";
        }
        if (cnt == 0 || strcmp(a[cnt - 1].type, t) != 0) {
            if ((rv = grow((void **)&a, &cap, cnt, sizeof(*a))) != 0) {
                break;
            }
            if ((a[cnt].type = col_dup(s, 0)) == NULL) {
                rv = CR_ENOMEM;
                break;
            }
            cnt++;
            ecap = 0;
        }
        ct = &a[cnt - 1];
        if ((rv = grow((void **)&ct->entries, &ecap, ct->nentries,
                       sizeof(crt_entry))) != 0) {
            break;
        }
        e = &ct->entries[ct->nentries++];
        if ((e->key = col_dup(s, 1)) == NULL ||
            (e->value = col_dup(s, 2)) == NULL) {
            rv = CR_ENOMEM;
            break;
        }
    }
    if (rv == 0 && sr != SQLITE_DONE) {
        rv = fail(st, "config");
    }
    release(st, s);
    if (rv != 0) {
        memset(&tmp, 0, sizeof(tmp));
        tmp.config = a;
        tmp.nconfig = cnt;
        crt_response_free(&tmp);
        return rv;
    }
    *cfg = a;
    *n = cnt;
    return 0;
}

/* Bumps the version inside the open transaction and commits. */
static int
bump_commit(cra_store *st, uint64_t *version)
{
    int rv;
    if ((rv = exec(st, "UPDATE meta SET value = value + 1"
                       " WHERE name='version'")) != 0 ||
        (rv = exec(st, "COMMIT")) != 0) {
        exec(st, "ROLLBACK");
        return rv;
    }
    st->version++;
    *version = st->version;
    return 0;
}

/* A row of a write: its column values after the workspace (?2, ?3, ...). */
typedef const char *(*row_col_fn)(const void *rows, size_t i, int col);

static const char *
put_col(const void *rows, size_t i, int col)
{
    const crt_value *v = &((const crt_value *)rows)[i];
    return col == 0 ? v->type : col == 1 ? v->key : v->value;
}

static const char *
delete_col(const void *rows, size_t i, int col)
{
    const crt_key *k = &((const crt_key *)rows)[i];
    return col == 0 ? k->type : k->key;
}

/* write_rows runs sql once per row (?1 = ws, then ncols columns) in one
 * transaction that also bumps the version; all or nothing. */
static int
write_rows(cra_store *st, const char *sql, const char *what, const char *ws,
           const void *rows, size_t n, int ncols, row_col_fn col,
           uint64_t *version)
{
    sqlite3_stmt *s = NULL;
    int rv;
    if ((rv = exec(st, "BEGIN IMMEDIATE")) != 0) {
        return rv;
    }
    if ((rv = prep(st, sql, &s)) != 0) {
        goto rollback;
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(s);
        bind_text(s, 1, ws);
        for (int c = 0; c < ncols; c++) {
            bind_text(s, 2 + c, col(rows, i, c));
        }
        if (sqlite3_step(s) != SQLITE_DONE) {
            rv = fail(st, what);
            goto rollback;
        }
    }
    release(st, s);
    return bump_commit(st, version);
rollback:
    release(st, s);
    exec(st, "ROLLBACK");
    return rv;
}

int
cra_store_put(cra_store *st, const char *ws, const crt_value *vals, size_t n,
              uint64_t *version)
{
    return write_rows(st,
                      "INSERT INTO config (workspace, type, key, value)"
                      " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (workspace, type,"
                      " key) DO UPDATE SET value = excluded.value",
                      "put", ws, vals, n, 3, put_col, version);
}

int
cra_store_delete(cra_store *st, const char *ws, const crt_key *keys,
                 size_t n, uint64_t *version)
{
    return write_rows(st,
                      "DELETE FROM config WHERE workspace=?1 AND type=?2 AND"
                      " key=?3",
                      "delete", ws, keys, n, 2, delete_col, version);
}

int
cra_store_set_durable(cra_store *st, bool durable)
{
    return exec(st, durable ? "PRAGMA synchronous=FULL"
                            : "PRAGMA synchronous=OFF");
}
