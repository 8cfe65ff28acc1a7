/*
 * cfgsvc_core.c - request semantics of the config service (see
 * cfgsvc_core.h for the rules and the TrustGraph reference).
 */
#include "cfgsvc_core.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cfgrecv/actor.h>
#include <cfgrecv/log.h>

#include "mpread.h"

void
cra_cfgsvc_result_free(cra_cfgsvc_result *r)
{
    if (r == NULL) {
        return;
    }
    free(r->resp);
    free(r->push);
    memset(r, 0, sizeof(*r));
}

int
cra_cfgsvc_push_everything(uint64_t version, void **buf, size_t *len)
{
    crt_push p;
    memset(&p, 0, sizeof(p));
    p.version = version;
    return crt_push_encode(&p, buf, len);
}

/* error_vreply encodes an error answer and logs it: at info (a client's
 * mistake, or a missing key), or at warn when the operator should act. */
static int
error_vreply(cra_store *st, cra_cfgsvc_result *out, bool warn,
             const char *type, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (warn) {
        CR_WARN("cfgsvc", "answered %s: %s", type, msg);
    } else {
        CR_INFO("cfgsvc", "answered %s: %s", type, msg);
    }
    return crt_error_response_encode(cra_store_version(st), type, msg,
                                     &out->resp, &out->resp_len);
}

static int
error_reply(cra_store *st, cra_cfgsvc_result *out, const char *type,
            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
error_reply(cra_store *st, cra_cfgsvc_result *out, const char *type,
            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rv = error_vreply(st, out, false, type, fmt, ap);
    va_end(ap);
    return rv;
}

static int
error_warn(cra_store *st, cra_cfgsvc_result *out, const char *type,
           const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
error_warn(cra_store *st, cra_cfgsvc_result *out, const char *type,
           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rv = error_vreply(st, out, true, type, fmt, ap);
    va_end(ap);
    return rv;
}

/* Is (type, key) in workspace ws the registration of a workspace named
 * ""? No operation can name such a workspace ("workspace is required"). */
static bool
empty_registration(const char *ws, const char *type, const char *key)
{
    return strcmp(ws, CRT_WORKSPACES_NAMESPACE) == 0 &&
           strcmp(type, CRT_WORKSPACE_TYPE) == 0 && key[0] == '\0';
}

/* Does the list of distinct types already hold t? */
static bool
has_type(char **types, size_t n, const char *t)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(types[i], t) == 0) {
            return true;
        }
    }
    return false;
}

/* Builds and encodes the push for a put (created) or delete (deleted)
 * whose touched (type, key) pairs are given by get_type/get_key. */
static int
make_push(uint64_t version, const char *ws, size_t n,
          const char *(*get_type)(const void *, size_t),
          const char *(*get_key)(const void *, size_t), const void *items,
          bool is_put, void **buf, size_t *len)
{
    crt_push p;
    crt_wschanges wc;
    char **types = calloc(n ? n : 1, sizeof(char *));
    char **wsnames = calloc(n ? n : 1, sizeof(char *));
    char *wsarr[1] = {(char *)ws};
    crt_change *ch = calloc(n ? n : 1, sizeof(crt_change));
    size_t nt = 0, nw = 0;
    int rv = CR_ENOMEM;

    if (types == NULL || wsnames == NULL || ch == NULL) {
        goto out;
    }
    memset(&p, 0, sizeof(p));
    memset(&wc, 0, sizeof(wc));
    for (size_t i = 0; i < n; i++) {
        const char *t = get_type(items, i);
        if (!has_type(types, nt, t)) {
            types[nt] = (char *)t;
            ch[nt].type = (char *)t;
            ch[nt].workspaces = wsarr;
            ch[nt].nworkspaces = 1;
            nt++;
        }
        if (strcmp(ws, CRT_WORKSPACES_NAMESPACE) == 0 &&
            strcmp(t, CRT_WORKSPACE_TYPE) == 0) {
            wsnames[nw++] = (char *)get_key(items, i);
        }
    }
    p.version = version;
    p.changes = ch;
    p.nchanges = nt;
    if (nw > 0) {
        if (is_put) {
            wc.created = wsnames;
            wc.ncreated = nw;
        } else {
            wc.deleted = wsnames;
            wc.ndeleted = nw;
        }
        p.workspace_changes = &wc;
    }
    rv = crt_push_encode(&p, buf, len);
out:
    free(types);
    free(wsnames);
    free(ch);
    return rv;
}

static const char *
value_type(const void *items, size_t i)
{
    return ((const crt_value *)items)[i].type;
}

static const char *
value_key(const void *items, size_t i)
{
    return ((const crt_value *)items)[i].key;
}

static const char *
key_type(const void *items, size_t i)
{
    return ((const crt_key *)items)[i].type;
}

static const char *
key_key(const void *items, size_t i)
{
    return ((const crt_key *)items)[i].key;
}

static int
store_error(cra_store *st, cra_cfgsvc_result *out, int rv)
{
    if (rv == CR_ENOMEM) {
        return error_reply(st, out, CRT_ERR_CONFIG, "out of memory");
    }
    return error_reply(st, out, CRT_ERR_CONFIG, "store: %s",
                       cra_store_errmsg(st));
}

int
cra_cfgsvc_handle(cra_store *st, const void *req, size_t len,
                  const crt_limits *lim, cra_cfgsvc_result *out)
{
    crt_request r;
    crt_response resp;
    crt_decode_error derr;
    const char *op;
    int rv;

    memset(out, 0, sizeof(*out));
    memset(&resp, 0, sizeof(resp));
    if ((rv = crt_request_decode(req, len, lim, &r, &derr)) != 0) {
        if (rv == CR_ENOMEM) {
            return error_reply(st, out, CRT_ERR_CONFIG, "out of memory");
        }
        return error_reply(st, out, CRT_ERR_BAD_REQUEST, "%s", derr.text);
    }
    op = r.operation;
    bool all_ws = strcmp(op, CRT_OP_GETVALUES_ALL) == 0 ||
                  strcmp(op, CRT_OP_GETKEYS_ALL) == 0;
    bool known = all_ws || strcmp(op, CRT_OP_GET) == 0 ||
                 strcmp(op, CRT_OP_LIST) == 0 ||
                 strcmp(op, CRT_OP_GETVALUES) == 0 ||
                 strcmp(op, CRT_OP_PUT) == 0 ||
                 strcmp(op, CRT_OP_DELETE) == 0 ||
                 strcmp(op, CRT_OP_CONFIG) == 0;
    if (!known) {
        rv = error_reply(st, out, CRT_ERR_BAD_OPERATION,
                         "unknown operation '%.64s'", op);
        goto done;
    }
    if (!all_ws && r.workspace[0] == '\0') {
        rv = error_reply(st, out, CRT_ERR_BAD_REQUEST,
                         "workspace is required for '%s'", op);
        goto done;
    }

    if (strcmp(op, CRT_OP_GET) == 0) {
        if (r.nkeys > 0 &&
            (resp.values = calloc(r.nkeys, sizeof(crt_value))) == NULL) {
            rv = store_error(st, out, CR_ENOMEM);
            goto done;
        }
        for (size_t i = 0; i < r.nkeys; i++) {
            crt_value *v = &resp.values[i];
            resp.nvalues = i + 1;
            v->type = crt_strdup(r.keys[i].type);
            v->key = crt_strdup(r.keys[i].key);
            v->workspace = (char *)crt_empty_str;
            if (v->type == NULL || v->key == NULL) {
                rv = store_error(st, out, CR_ENOMEM);
                goto done;
            }
            if ((rv = cra_store_get(st, r.workspace, r.keys[i].type,
                                    r.keys[i].key, &v->value)) != 0) {
                rv = store_error(st, out, rv);
                goto done;
            }
        }
    } else if (strcmp(op, CRT_OP_LIST) == 0) {
        rv = cra_store_list(st, r.workspace, r.type, &resp.directory,
                            &resp.ndirectory);
    } else if (strcmp(op, CRT_OP_GETVALUES) == 0) {
        rv = cra_store_getvalues(st, r.workspace, r.type, &resp.values,
                                 &resp.nvalues);
    } else if (all_ws) {
        rv = cra_store_getvalues_all(st, r.type,
                                     strcmp(op, CRT_OP_GETVALUES_ALL) == 0,
                                     &resp.values, &resp.nvalues);
    } else if (strcmp(op, CRT_OP_CONFIG) == 0) {
        rv = cra_store_config(st, r.workspace, &resp.config, &resp.nconfig);
    } else if (strcmp(op, CRT_OP_PUT) == 0) {
        uint64_t v;
        if (r.nvalues == 0) {
            rv = error_reply(st, out, CRT_ERR_BAD_REQUEST,
                             "put needs at least one value");
            goto done;
        }
        for (size_t i = 0; i < r.nvalues; i++) {
            if (empty_registration(r.workspace, r.values[i].type,
                                   r.values[i].key)) {
                rv = error_reply(st, out, CRT_ERR_BAD_REQUEST,
                                 "a workspace name cannot be empty");
                goto done;
            }
        }
        if ((rv = cra_store_put(st, r.workspace, r.values, r.nvalues,
                                &v)) == 0) {
            rv = make_push(v, r.workspace, r.nvalues, value_type, value_key,
                           r.values, true, &out->push, &out->push_len);
            if (rv != 0) {
                out->push = NULL;
                cra_cfgsvc_push_everything(v, &out->push, &out->push_len);
                rv = 0;
            }
        }
    } else { /* delete */
        uint64_t v;
        if (r.nkeys == 0) {
            rv = error_reply(st, out, CRT_ERR_BAD_REQUEST,
                             "delete needs at least one key");
            goto done;
        }
        if ((rv = cra_store_delete(st, r.workspace, r.keys, r.nkeys, &v)) ==
            0) {
            rv = make_push(v, r.workspace, r.nkeys, key_type, key_key,
                           r.keys, false, &out->push, &out->push_len);
            if (rv != 0) {
                out->push = NULL;
                cra_cfgsvc_push_everything(v, &out->push, &out->push_len);
                rv = 0;
            }
        }
    }
    if (rv != 0) {
        rv = store_error(st, out, rv);
        goto done;
    }
    resp.version = cra_store_version(st);
    rv = crt_response_encode(&resp, &out->resp, &out->resp_len);
    size_t max = crt_limits_resolve(lim).max_size;
    if (rv == 0 && out->resp_len > max) {
        /* every value fits, the whole answer does not (a workspace of
         * many large values): a clear error instead of a message the
         * client's nng would drop with its connection */
        size_t big = out->resp_len;
        free(out->resp);
        out->resp = NULL;
        rv = error_warn(st, out, CRT_ERR_CONFIG,
                        "'%s' of workspace %.64s: the answer (%zu bytes) "
                        "exceeds the %zu-byte message limit (--max-message)",
                        op, r.workspace, big, max);
    }
done:
    crt_response_free(&resp);
    crt_request_free(&r);
    if (rv != 0) {
        void *push = out->push;
        size_t plen = out->push_len;
        free(out->resp);
        memset(out, 0, sizeof(*out));
        out->push = push;
        out->push_len = plen;
    }
    return rv;
}
