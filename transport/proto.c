/*
 * proto.c - codecs of ConfigRequest / ConfigResponse / ConfigPush.
 *
 * Decoders walk the bounded reader (mpread.h) field by field: each map
 * is read by a table of its known keys (dec_fields: a typed reader per
 * key, unknown keys skipped), and nil takes the default. Every
 * allocation goes through the reader's budget. On any failure the partly
 * built struct is freed with the public free function, so there is
 * exactly one freeing path.
 */
#include "proto.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cfgrecv/actor.h>

#include "mpread.h"

crt_limits
crt_limits_resolve(const crt_limits *lim)
{
    crt_limits l = {0, 0};
    if (lim != NULL) {
        l = *lim;
    }
    if (l.max_size == 0) {
        l.max_size = CRT_DEFAULT_MAX_SIZE;
    }
    if (l.max_depth == 0) {
        l.max_depth = CRT_DEFAULT_MAX_DEPTH;
    }
    return l;
}

/* ---- freeing -------------------------------------------------------- */

void
crt_strv_free(char **v, size_t n)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        crt_str_free(v[i]);
    }
    free(v);
}

void
crt_value_free(crt_value *v)
{
    if (v == NULL) {
        return;
    }
    crt_str_free(v->type);
    crt_str_free(v->key);
    crt_str_free(v->value);
    crt_str_free(v->workspace);
    memset(v, 0, sizeof(*v));
}

static void
values_free(crt_value *v, size_t n)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        crt_value_free(&v[i]);
    }
    free(v);
}

void
crt_request_free(crt_request *r)
{
    if (r == NULL) {
        return;
    }
    crt_str_free(r->operation);
    crt_str_free(r->workspace);
    crt_str_free(r->type);
    if (r->keys != NULL) {
        for (size_t i = 0; i < r->nkeys; i++) {
            crt_str_free(r->keys[i].type);
            crt_str_free(r->keys[i].key);
        }
        free(r->keys);
    }
    values_free(r->values, r->nvalues);
    memset(r, 0, sizeof(*r));
}

static void
config_free(crt_cfgtype *c, size_t n)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        crt_str_free(c[i].type);
        if (c[i].entries != NULL) {
            for (size_t j = 0; j < c[i].nentries; j++) {
                crt_str_free(c[i].entries[j].key);
                crt_str_free(c[i].entries[j].value);
            }
            free(c[i].entries);
        }
    }
    free(c);
}

void
crt_response_free(crt_response *r)
{
    if (r == NULL) {
        return;
    }
    values_free(r->values, r->nvalues);
    crt_strv_free(r->directory, r->ndirectory);
    config_free(r->config, r->nconfig);
    if (r->error != NULL) {
        crt_str_free(r->error->type);
        crt_str_free(r->error->message);
        free(r->error);
    }
    memset(r, 0, sizeof(*r));
}

static void
wschanges_free(crt_wschanges *w)
{
    if (w == NULL) {
        return;
    }
    crt_strv_free(w->created, w->ncreated);
    crt_strv_free(w->deleted, w->ndeleted);
    free(w);
}

void
crt_push_free(crt_push *p)
{
    if (p == NULL) {
        return;
    }
    if (p->changes != NULL) {
        for (size_t i = 0; i < p->nchanges; i++) {
            crt_str_free(p->changes[i].type);
            crt_strv_free(p->changes[i].workspaces,
                          p->changes[i].nworkspaces);
        }
        free(p->changes);
    }
    wschanges_free(p->workspace_changes);
    memset(p, 0, sizeof(*p));
}

/* ---- decoding helpers ----------------------------------------------- */

static bool
key_is(const char *k, size_t klen, const char *name)
{
    return strlen(name) == klen && memcmp(k, name, klen) == 0;
}

/* A string field: nil -> "" (or NULL when keep_nil); replaces *f. */
static int
dec_str(crt_mpr *r, char **f, bool keep_nil)
{
    char *s;
    int rv;
    if (crt_mpr_nil(r)) {
        s = keep_nil ? NULL : (char *)crt_empty_str;
    } else if ((rv = crt_mpr_strdup(r, &s)) != 0) {
        return rv;
    }
    crt_str_free(*f);
    *f = s;
    return 0;
}

/* Fills NULL string fields with "" so users never see NULL. */
static void
fill(char **f)
{
    if (*f == NULL) {
        *f = (char *)crt_empty_str;
    }
}

/* A list of strings; nil -> empty. Replaces (*v, *n). */
static int
dec_strv(crt_mpr *r, char ***v, size_t *n)
{
    uint32_t c;
    char **a = NULL;
    size_t got = 0;
    int rv;
    crt_strv_free(*v, *n);
    *v = NULL;
    *n = 0;
    if (crt_mpr_nil(r)) {
        return 0;
    }
    if ((rv = crt_mpr_array(r, &c)) != 0) {
        return rv;
    }
    if (c > 0 && (a = crt_mpr_alloc_array(r, c, sizeof(*a))) == NULL) {
        return r->rv;
    }
    for (; got < c; got++) {
        if ((rv = dec_str(r, &a[got], false)) != 0) {
            crt_strv_free(a, got);
            return rv;
        }
    }
    crt_mpr_leave(r);
    *v = a;
    *n = got;
    return 0;
}

/* A version: nil -> 0. One above CRT_VERSION_MAX is malformed (proto.h):
 * the error names it, at the value's own byte offset. */
static int
dec_version(crt_mpr *r, uint64_t *v)
{
    const uint8_t *at = r->p;
    int rv;
    *v = 0;
    if (crt_mpr_nil(r)) {
        return 0;
    }
    if ((rv = crt_mpr_uint(r, v)) != 0) {
        return rv;
    }
    if (*v > CRT_VERSION_MAX) {
        unsigned long long big = (unsigned long long)*v;
        *v = 0;
        r->p = at;
        return crt_mpr_fail(r, "version %llu is above 2^63-1, the largest "
                               "a config version can be",
                            big);
    }
    return 0;
}

/* Where one known key of a msgpack map goes in the struct being read: a
 * string (nil -> "", or NULL for F_STR_NIL), a string list with its
 * count, a version, or a reader of its own (F_CALL, given the struct). */
typedef enum { F_STR, F_STR_NIL, F_STRV, F_VERSION, F_CALL } fkind;

typedef struct field {
    const char *key;
    fkind kind;
    size_t off;                         /* of the member */
    size_t noff;                        /* F_STRV: of its size_t count */
    int (*call)(crt_mpr *r, void *obj); /* F_CALL */
} field;

#define F_(T, k, kind, m) {k, kind, offsetof(T, m), 0, NULL}
#define FV_(T, k, m, n) {k, F_STRV, offsetof(T, m), offsetof(T, n), NULL}
#define FC_(k, fn) {k, F_CALL, 0, 0, fn}
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/* dec_fields reads a map into obj by its field table; unknown keys are
 * skipped. A repeated key replaces the earlier value (every reader frees
 * what it replaces), so nothing leaks on hostile input. */
static int
dec_fields(crt_mpr *r, const field *f, size_t nf, void *obj)
{
    char *base = obj;
    uint32_t n;
    int rv;
    if ((rv = crt_mpr_map(r, &n)) != 0) {
        return rv;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        size_t kl, j;
        if ((rv = crt_mpr_key(r, &k, &kl)) != 0) {
            return rv;
        }
        for (j = 0; j < nf && !key_is(k, kl, f[j].key); j++) {
        }
        if (j == nf) {
            rv = crt_mpr_skip(r);
        } else if (f[j].kind == F_STR || f[j].kind == F_STR_NIL) {
            rv = dec_str(r, (char **)(void *)(base + f[j].off),
                         f[j].kind == F_STR_NIL);
        } else if (f[j].kind == F_STRV) {
            rv = dec_strv(r, (char ***)(void *)(base + f[j].off),
                          (size_t *)(void *)(base + f[j].noff));
        } else if (f[j].kind == F_VERSION) {
            rv = dec_version(r, (uint64_t *)(void *)(base + f[j].off));
        } else {
            rv = f[j].call(r, obj);
        }
        if (rv != 0) {
            return rv;
        }
    }
    crt_mpr_leave(r);
    return 0;
}

static const field key_fields[] = {
    F_(crt_key, "type", F_STR, type),
    F_(crt_key, "key", F_STR, key),
};

static int
dec_key(crt_mpr *r, crt_key *k)
{
    int rv = dec_fields(r, key_fields, NFIELDS(key_fields), k);
    if (rv == 0) {
        fill(&k->type);
        fill(&k->key);
    }
    return rv;
}

static const field value_fields[] = {
    F_(crt_value, "type", F_STR, type),
    F_(crt_value, "key", F_STR, key),
    F_(crt_value, "value", F_STR_NIL, value),
    F_(crt_value, "workspace", F_STR, workspace),
};

static int
dec_value(crt_mpr *r, crt_value *v)
{
    v->value = (char *)crt_empty_str; /* absent: the schema default "";
                                         nil: NULL */
    int rv = dec_fields(r, value_fields, NFIELDS(value_fields), v);
    if (rv == 0) {
        fill(&v->type);
        fill(&v->key);
        fill(&v->workspace);
    }
    return rv;
}

/* An array of structs decoded one by one with `one`; nil -> empty. */
static int
dec_list(crt_mpr *r, void **arr, size_t *n, size_t elsize,
         int (*one)(crt_mpr *, void *), void (*drop)(void *, size_t))
{
    uint32_t c;
    char *a = NULL;
    size_t got;
    int rv;
    drop(*arr, *n);
    *arr = NULL;
    *n = 0;
    if (crt_mpr_nil(r)) {
        return 0;
    }
    if ((rv = crt_mpr_array(r, &c)) != 0) {
        return rv;
    }
    if (c > 0 && (a = crt_mpr_alloc_array(r, c, elsize)) == NULL) {
        return r->rv;
    }
    for (got = 0; got < c; got++) {
        if ((rv = one(r, a + got * elsize)) != 0) {
            drop(a, got + 1); /* the failed element may hold strings */
            return rv;
        }
    }
    crt_mpr_leave(r);
    *arr = a;
    *n = got;
    return 0;
}

static int
one_key(crt_mpr *r, void *p)
{
    return dec_key(r, p);
}

static void
drop_keys(void *p, size_t n)
{
    crt_key *k = p;
    if (k == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        crt_str_free(k[i].type);
        crt_str_free(k[i].key);
    }
    free(k);
}

static int
one_value(crt_mpr *r, void *p)
{
    return dec_value(r, p);
}

static void
drop_values(void *p, size_t n)
{
    values_free(p, n);
}

static int
start(crt_mpr *r, const void *data, size_t len, const crt_limits *lim,
      const char *what)
{
    crt_limits l = crt_limits_resolve(lim);
    crt_mpr_init(r, data, len, l.max_depth);
    if (data == NULL && len > 0) {
        return crt_mpr_fail(r, "no data");
    }
    if (len > l.max_size) {
        return crt_mpr_fail(r, "%s of %zu bytes exceeds the %zu-byte limit",
                            what, len, l.max_size);
    }
    if (len == 0) {
        return crt_mpr_fail(r, "empty %s", what);
    }
    return 0;
}

static int
finish(crt_mpr *r, crt_decode_error *err)
{
    int rv = crt_mpr_finish(r);
    if (err != NULL) {
        snprintf(err->text, sizeof(err->text), "%s", rv ? r->err : "");
    }
    return rv;
}

/* dec_top decodes a whole message under the limits: one map, read by
 * its field table, and nothing after it. */
static int
dec_top(const void *data, size_t len, const crt_limits *lim,
        const char *what, const field *f, size_t nf, void *obj,
        crt_decode_error *err)
{
    crt_mpr r;
    if (start(&r, data, len, lim, what) == 0 &&
        dec_fields(&r, f, nf, obj) != 0 && r.rv == 0) {
        crt_mpr_fail(&r, "malformed %s", what); /* never unreported */
    }
    return finish(&r, err);
}

/* ---- decoders -------------------------------------------------------- */

static int
request_keys(crt_mpr *r, void *obj)
{
    crt_request *q = obj;
    return dec_list(r, (void **)&q->keys, &q->nkeys, sizeof(crt_key),
                    one_key, drop_keys);
}

static int
request_values(crt_mpr *r, void *obj)
{
    crt_request *q = obj;
    return dec_list(r, (void **)&q->values, &q->nvalues, sizeof(crt_value),
                    one_value, drop_values);
}

static const field request_fields[] = {
    F_(crt_request, "operation", F_STR, operation),
    F_(crt_request, "workspace", F_STR, workspace),
    F_(crt_request, "type", F_STR, type),
    FC_("keys", request_keys),
    FC_("values", request_values),
};

int
crt_request_decode(const void *data, size_t len, const crt_limits *lim,
                   crt_request *out, crt_decode_error *err)
{
    memset(out, 0, sizeof(*out));
    int rv = dec_top(data, len, lim, "request", request_fields,
                     NFIELDS(request_fields), out, err);
    if (rv != 0) {
        crt_request_free(out);
        return rv;
    }
    fill(&out->operation);
    fill(&out->workspace);
    fill(&out->type);
    return 0;
}

static const field error_fields[] = {
    F_(crt_error, "type", F_STR, type),
    F_(crt_error, "message", F_STR, message),
};

static int
dec_error(crt_mpr *r, crt_error **ep)
{
    crt_error *e;
    if (*ep != NULL) {
        crt_str_free((*ep)->type);
        crt_str_free((*ep)->message);
        free(*ep);
        *ep = NULL;
    }
    if (crt_mpr_nil(r)) {
        return 0;
    }
    if ((e = crt_mpr_alloc(r, sizeof(*e))) == NULL) {
        return r->rv;
    }
    *ep = e;
    int rv = dec_fields(r, error_fields, NFIELDS(error_fields), e);
    fill(&e->type);
    fill(&e->message);
    return rv;
}

/* {key: value} of one config type. */
static int
dec_entries(crt_mpr *r, crt_cfgtype *t)
{
    uint32_t n;
    int rv;
    if (crt_mpr_nil(r)) {
        return 0;
    }
    if ((rv = crt_mpr_map(r, &n)) != 0) {
        return rv;
    }
    if (n > 0 &&
        (t->entries = crt_mpr_alloc_array(r, n, sizeof(crt_entry))) == NULL) {
        return r->rv;
    }
    for (uint32_t i = 0; i < n; i++) {
        t->nentries = i + 1; /* so a failure frees what was read */
        if ((rv = dec_str(r, &t->entries[i].key, false)) != 0 ||
            (rv = dec_str(r, &t->entries[i].value, false)) != 0) {
            return rv;
        }
    }
    crt_mpr_leave(r);
    return 0;
}

static int
dec_config(crt_mpr *r, crt_response *out)
{
    uint32_t n;
    int rv;
    config_free(out->config, out->nconfig);
    out->config = NULL;
    out->nconfig = 0;
    if (crt_mpr_nil(r)) {
        return 0;
    }
    if ((rv = crt_mpr_map(r, &n)) != 0) {
        return rv;
    }
    if (n > 0 && (out->config = crt_mpr_alloc_array(
                      r, n, sizeof(crt_cfgtype))) == NULL) {
        return r->rv;
    }
    for (uint32_t i = 0; i < n; i++) {
        out->nconfig = i + 1;
        if ((rv = dec_str(r, &out->config[i].type, false)) != 0 ||
            (rv = dec_entries(r, &out->config[i])) != 0) {
            return rv;
        }
    }
    crt_mpr_leave(r);
    return 0;
}

static int
response_values(crt_mpr *r, void *obj)
{
    crt_response *o = obj;
    return dec_list(r, (void **)&o->values, &o->nvalues, sizeof(crt_value),
                    one_value, drop_values);
}

static int
response_config(crt_mpr *r, void *obj)
{
    return dec_config(r, obj);
}

static int
response_error(crt_mpr *r, void *obj)
{
    return dec_error(r, &((crt_response *)obj)->error);
}

static const field response_fields[] = {
    F_(crt_response, "version", F_VERSION, version),
    FC_("values", response_values),
    FV_(crt_response, "directory", directory, ndirectory),
    FC_("config", response_config),
    FC_("error", response_error),
};

int
crt_response_decode(const void *data, size_t len, const crt_limits *lim,
                    crt_response *out, crt_decode_error *err)
{
    memset(out, 0, sizeof(*out));
    int rv = dec_top(data, len, lim, "response", response_fields,
                     NFIELDS(response_fields), out, err);
    if (rv != 0) {
        crt_response_free(out);
    }
    return rv;
}

static int
dec_changes(crt_mpr *r, crt_push *out)
{
    uint32_t n;
    int rv;
    if (out->changes != NULL) {
        for (size_t i = 0; i < out->nchanges; i++) {
            crt_str_free(out->changes[i].type);
            crt_strv_free(out->changes[i].workspaces,
                          out->changes[i].nworkspaces);
        }
        free(out->changes);
    }
    out->changes = NULL;
    out->nchanges = 0;
    if (crt_mpr_nil(r)) {
        return 0;
    }
    if ((rv = crt_mpr_map(r, &n)) != 0) {
        return rv;
    }
    if (n > 0 && (out->changes = crt_mpr_alloc_array(
                      r, n, sizeof(crt_change))) == NULL) {
        return r->rv;
    }
    for (uint32_t i = 0; i < n; i++) {
        crt_change *c = &out->changes[i];
        out->nchanges = i + 1;
        if ((rv = dec_str(r, &c->type, false)) != 0 ||
            (rv = dec_strv(r, &c->workspaces, &c->nworkspaces)) != 0) {
            return rv;
        }
    }
    crt_mpr_leave(r);
    return 0;
}

static const field wschanges_fields[] = {
    FV_(crt_wschanges, "created", created, ncreated),
    FV_(crt_wschanges, "deleted", deleted, ndeleted),
};

static int
dec_wschanges(crt_mpr *r, void *obj)
{
    crt_push *out = obj;
    crt_wschanges *w;
    wschanges_free(out->workspace_changes);
    out->workspace_changes = NULL;
    if (crt_mpr_nil(r)) {
        return 0;
    }
    if ((w = crt_mpr_alloc(r, sizeof(*w))) == NULL) {
        return r->rv;
    }
    out->workspace_changes = w;
    return dec_fields(r, wschanges_fields, NFIELDS(wschanges_fields), w);
}

static int
push_changes(crt_mpr *r, void *obj)
{
    return dec_changes(r, obj);
}

static const field push_fields[] = {
    F_(crt_push, "version", F_VERSION, version),
    FC_("changes", push_changes),
    FC_("workspace_changes", dec_wschanges),
};

int
crt_push_decode(const void *data, size_t len, const crt_limits *lim,
                crt_push *out, crt_decode_error *err)
{
    memset(out, 0, sizeof(*out));
    int rv = dec_top(data, len, lim, "push", push_fields,
                     NFIELDS(push_fields), out, err);
    if (rv != 0) {
        crt_push_free(out);
    }
    return rv;
}

/* ---- encoding -------------------------------------------------------- */

static int
pk_str(msgpack_packer *pk, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (msgpack_pack_str(pk, n) != 0) {
        return -1;
    }
    return n ? msgpack_pack_str_body(pk, s, n) : 0;
}

static int
pk_kstr(msgpack_packer *pk, const char *k, const char *v)
{
    return (pk_str(pk, k) | pk_str(pk, v)) ? -1 : 0;
}

static int
pk_strv(msgpack_packer *pk, char *const *v, size_t n)
{
    int bad = msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        bad |= pk_str(pk, v[i]);
    }
    return bad;
}

static int
pk_value(msgpack_packer *pk, const crt_value *v)
{
    int bad = msgpack_pack_map(pk, 4);
    bad |= pk_kstr(pk, "type", v->type);
    bad |= pk_kstr(pk, "key", v->key);
    bad |= pk_str(pk, "value");
    bad |= v->value ? pk_str(pk, v->value) : msgpack_pack_nil(pk);
    bad |= pk_kstr(pk, "workspace", v->workspace);
    return bad;
}

static int
pk_values(msgpack_packer *pk, const crt_value *v, size_t n)
{
    int bad = msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        bad |= pk_value(pk, &v[i]);
    }
    return bad;
}

int
crt_request_pack(msgpack_packer *pk, const crt_request *r)
{
    int bad = msgpack_pack_map(pk, 5);
    bad |= pk_kstr(pk, "operation", r->operation);
    bad |= pk_kstr(pk, "workspace", r->workspace);
    bad |= pk_str(pk, "keys");
    bad |= msgpack_pack_array(pk, r->nkeys);
    for (size_t i = 0; i < r->nkeys; i++) {
        bad |= msgpack_pack_map(pk, 2);
        bad |= pk_kstr(pk, "type", r->keys[i].type);
        bad |= pk_kstr(pk, "key", r->keys[i].key);
    }
    bad |= pk_kstr(pk, "type", r->type);
    bad |= pk_str(pk, "values");
    bad |= pk_values(pk, r->values, r->nvalues);
    return bad ? CR_ENOMEM : 0;
}

static int
pk_error(msgpack_packer *pk, const char *type, const char *message)
{
    int bad = msgpack_pack_map(pk, 2);
    bad |= pk_kstr(pk, "type", type);
    bad |= pk_kstr(pk, "message", message);
    return bad;
}

int
crt_response_pack(msgpack_packer *pk, const crt_response *r)
{
    int bad = msgpack_pack_map(pk, 5);
    bad |= pk_str(pk, "version");
    bad |= msgpack_pack_uint64(pk, r->version);
    bad |= pk_str(pk, "values");
    bad |= pk_values(pk, r->values, r->nvalues);
    bad |= pk_str(pk, "directory");
    bad |= pk_strv(pk, r->directory, r->ndirectory);
    bad |= pk_str(pk, "config");
    bad |= msgpack_pack_map(pk, r->nconfig);
    for (size_t i = 0; i < r->nconfig; i++) {
        const crt_cfgtype *t = &r->config[i];
        bad |= pk_str(pk, t->type);
        bad |= msgpack_pack_map(pk, t->nentries);
        for (size_t j = 0; j < t->nentries; j++) {
            bad |= pk_kstr(pk, t->entries[j].key, t->entries[j].value);
        }
    }
    bad |= pk_str(pk, "error");
    if (r->error != NULL) {
        bad |= pk_error(pk, r->error->type, r->error->message);
    } else {
        bad |= msgpack_pack_nil(pk);
    }
    return bad ? CR_ENOMEM : 0;
}

int
crt_push_pack(msgpack_packer *pk, const crt_push *p)
{
    int bad = msgpack_pack_map(pk, 3);
    bad |= pk_str(pk, "version");
    bad |= msgpack_pack_uint64(pk, p->version);
    bad |= pk_str(pk, "changes");
    bad |= msgpack_pack_map(pk, p->nchanges);
    for (size_t i = 0; i < p->nchanges; i++) {
        bad |= pk_str(pk, p->changes[i].type);
        bad |= pk_strv(pk, p->changes[i].workspaces,
                       p->changes[i].nworkspaces);
    }
    bad |= pk_str(pk, "workspace_changes");
    if (p->workspace_changes != NULL) {
        const crt_wschanges *w = p->workspace_changes;
        bad |= msgpack_pack_map(pk, 2);
        bad |= pk_str(pk, "created");
        bad |= pk_strv(pk, w->created, w->ncreated);
        bad |= pk_str(pk, "deleted");
        bad |= pk_strv(pk, w->deleted, w->ndeleted);
    } else {
        bad |= msgpack_pack_nil(pk);
    }
    return bad ? CR_ENOMEM : 0;
}

/* Runs pack(pk, obj) into a fresh sbuffer and hands its data over. */
static int
encode(int (*pack)(msgpack_packer *, const void *), const void *obj,
       void **buf, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rv;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if ((rv = pack(&pk, obj)) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return rv;
    }
    *len = sb.size;
    *buf = msgpack_sbuffer_release(&sb);
    return 0;
}

static int
pack_req(msgpack_packer *pk, const void *o)
{
    return crt_request_pack(pk, o);
}

static int
pack_resp(msgpack_packer *pk, const void *o)
{
    return crt_response_pack(pk, o);
}

static int
pack_push(msgpack_packer *pk, const void *o)
{
    return crt_push_pack(pk, o);
}

int
crt_request_encode(const crt_request *r, void **buf, size_t *len)
{
    return encode(pack_req, r, buf, len);
}

int
crt_response_encode(const crt_response *r, void **buf, size_t *len)
{
    return encode(pack_resp, r, buf, len);
}

int
crt_push_encode(const crt_push *p, void **buf, size_t *len)
{
    return encode(pack_push, p, buf, len);
}

int
crt_error_response_encode(uint64_t version, const char *type,
                          const char *message, void **buf, size_t *len)
{
    crt_error e = {(char *)type, (char *)message};
    crt_response r;
    memset(&r, 0, sizeof(r));
    r.version = version;
    r.error = &e;
    return crt_response_encode(&r, buf, len);
}
