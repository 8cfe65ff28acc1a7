/*
 * proto.h - the config service wire protocol: ConfigRequest,
 * ConfigResponse and ConfigPush as msgpack maps.
 *
 * Field names are exactly TrustGraph's
 * (trustgraph-base/trustgraph/schema/services/config.py):
 *   ConfigKey      {type, key}
 *   ConfigValue    {type, key, value, workspace}
 *   ConfigRequest  {operation, workspace, keys:[ConfigKey], type,
 *                   values:[ConfigValue]}
 *   ConfigResponse {version, values:[ConfigValue], directory:[str],
 *                   config:{type:{key:value}}, error: nil|{type,message}}
 *   ConfigPush     {version, changes:{type:[workspace]},
 *                   workspace_changes: nil|{created:[ws], deleted:[ws]}}
 *
 * Decoding rules (decisions):
 *  - A missing key, or a key whose value is nil, takes the schema default:
 *    "" for strings, 0 for version, empty lists/maps, and "no error" /
 *    "no workspace_changes". (TrustGraph itself sends version = None in
 *    put/delete replies; nil is therefore treated as the default.)
 *  - ConfigValue.value is the one string that keeps nil: `get` of a
 *    missing key answers value = nil, represented as value == NULL.
 *  - Unknown keys are skipped (bounded, depth-checked); non-string map
 *    keys are skipped as unknown.
 *  - A known key with the wrong type is a decode error.
 *  - Strings are text: an embedded NUL byte is a decode error.
 *  - A version (ConfigResponse, ConfigPush) above CRT_VERSION_MAX
 *    (2^63-1) is a decode error. TrustGraph's versions are Python ints
 *    counting changes, and the receiver's JSON consumers (the monitor,
 *    events, cfgrecv-monitor through jansson) cannot represent more: such
 *    a value is a broken or hostile peer, never a real version. Encoding
 *    does not check (a test can still send one).
 *  - Duplicate keys: the last one wins.
 *  - The body must be exactly one map: trailing bytes are an error.
 *  - Bounds: len > limits.max_size is rejected before parsing; counts are
 *    checked against the bytes left; nesting is limited by max_depth;
 *    all allocations of one decode are charged to a budget of
 *    8 * len + 1 MiB (see mpread.h).
 * Encoding always writes every field (values/directory/config as empty
 * containers, error/workspace_changes as nil when absent), and
 * ConfigValue.workspace as "" when empty, like TrustGraph's dataclasses.
 *
 * Memory: every string in a decoded struct is NUL-terminated and freed
 * by the struct's free function; "" may be the shared crt_empty_str.
 * Code that builds structs by hand must allocate strings with malloc /
 * crt_strdup (or use crt_empty_str) and arrays with malloc, so that the
 * same free functions apply. A free function leaves the struct zeroed.
 *
 * Error codes are the runtime's CR_E* (cfgrecv/actor.h): CR_EPROTO for a
 * malformed or over-limit message, CR_ENOMEM, CR_EINVAL.
 */
#ifndef CRT_PROTO_H
#define CRT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits -------------------------------------------------------- */

#define CRT_DEFAULT_MAX_SIZE  ((size_t)16 << 20) /* 16 MiB */
#define CRT_DEFAULT_MAX_DEPTH 16u

/* The largest config version decoded (INT64_MAX; see the rules above). */
#define CRT_VERSION_MAX ((uint64_t)INT64_MAX)

typedef struct crt_limits {
    size_t max_size;    /* largest message accepted; 0 = default */
    unsigned max_depth; /* deepest container nesting; 0 = default */
} crt_limits;

/* crt_limits_resolve returns *lim (or the defaults for NULL) with 0
 * fields replaced by the defaults. */
crt_limits crt_limits_resolve(const crt_limits *lim);

/* A decode failure's explanation, e.g. "at byte 12: array claims 67108864
 * elements, only 3 bytes left". */
typedef struct crt_decode_error {
    char text[192];
} crt_decode_error;

/* ---- operations ---------------------------------------------------- */

#define CRT_OP_GET            "get"
#define CRT_OP_LIST           "list"
#define CRT_OP_GETVALUES      "getvalues"
#define CRT_OP_GETVALUES_ALL  "getvalues-all-ws"
#define CRT_OP_GETKEYS_ALL    "getkeys-all-ws"
#define CRT_OP_PUT            "put"
#define CRT_OP_DELETE         "delete"
#define CRT_OP_CONFIG         "config"

/* TrustGraph's workspace registry: type "workspace" in the
 * "__workspaces__" namespace (puts/deletes there fill workspace_changes). */
#define CRT_WORKSPACES_NAMESPACE "__workspaces__"
#define CRT_WORKSPACE_TYPE       "workspace"

/* Error types used in ConfigResponse.error.type. */
#define CRT_ERR_BAD_OPERATION "bad-operation"
#define CRT_ERR_BAD_REQUEST   "bad-request"
#define CRT_ERR_CONFIG        "config-error"

/* ---- structs ------------------------------------------------------- */

typedef struct crt_key {
    char *type;
    char *key;
} crt_key;

typedef struct crt_value {
    char *type;
    char *key;
    char *value;     /* NULL = nil (e.g. `get` of a missing key) */
    char *workspace; /* set by getvalues-all-ws / getkeys-all-ws */
} crt_value;

typedef struct crt_request {
    char *operation;
    char *workspace;
    crt_key *keys; /* get, delete */
    size_t nkeys;
    char *type; /* list, getvalues, *-all-ws */
    crt_value *values; /* put */
    size_t nvalues;
} crt_request;

typedef struct crt_entry {
    char *key;
    char *value;
} crt_entry;

/* One type of a `config` reply: {type: {key: value, ...}}. */
typedef struct crt_cfgtype {
    char *type;
    crt_entry *entries;
    size_t nentries;
} crt_cfgtype;

typedef struct crt_error {
    char *type;
    char *message;
} crt_error;

typedef struct crt_response {
    uint64_t version;
    crt_value *values;
    size_t nvalues;
    char **directory;
    size_t ndirectory;
    crt_cfgtype *config;
    size_t nconfig;
    crt_error *error; /* NULL = nil (success) */
} crt_response;

typedef struct crt_change {
    char *type;
    char **workspaces;
    size_t nworkspaces;
} crt_change;

typedef struct crt_wschanges {
    char **created;
    size_t ncreated;
    char **deleted;
    size_t ndeleted;
} crt_wschanges;

typedef struct crt_push {
    uint64_t version;
    crt_change *changes; /* nchanges == 0 means "everything changed" */
    size_t nchanges;
    crt_wschanges *workspace_changes; /* NULL = nil */
} crt_push;

/* ---- decoding ------------------------------------------------------ */

/* crt_request_decode parses data[0..len) into *out (which it
 * initialises). Returns 0, CR_EPROTO (err says why) or CR_ENOMEM; on
 * failure *out holds nothing (zeroed). lim may be NULL (defaults); err
 * may be NULL. */
int crt_request_decode(const void *data, size_t len, const crt_limits *lim,
                       crt_request *out, crt_decode_error *err);

/* crt_response_decode is crt_request_decode for a ConfigResponse. */
int crt_response_decode(const void *data, size_t len, const crt_limits *lim,
                        crt_response *out, crt_decode_error *err);

/* crt_push_decode is crt_request_decode for a ConfigPush. */
int crt_push_decode(const void *data, size_t len, const crt_limits *lim,
                    crt_push *out, crt_decode_error *err);

/* ---- freeing (NULL-safe; leave the struct zeroed) ------------------- */

void crt_request_free(crt_request *r);
void crt_response_free(crt_response *r);
void crt_push_free(crt_push *p);
void crt_value_free(crt_value *v); /* the four strings only */
void crt_strv_free(char **v, size_t n); /* strings and the array */

/* ---- encoding ------------------------------------------------------ */
/* NULL strings are encoded as "" (except crt_value.value: nil). */

/* crt_request_pack appends r to the packer. Returns 0 or CR_ENOMEM (the
 * packer's output then holds a partial message). */
int crt_request_pack(msgpack_packer *pk, const crt_request *r);
int crt_response_pack(msgpack_packer *pk, const crt_response *r);
int crt_push_pack(msgpack_packer *pk, const crt_push *p);

/* crt_request_encode encodes r into a new malloc'd buffer (*buf, *len;
 * free with free()). Returns 0 or CR_ENOMEM (nothing to free). */
int crt_request_encode(const crt_request *r, void **buf, size_t *len);
int crt_response_encode(const crt_response *r, void **buf, size_t *len);
int crt_push_encode(const crt_push *p, void **buf, size_t *len);

/* crt_error_response_encode encodes a ConfigResponse carrying only
 * `version` and error {type, message}. 0 or CR_ENOMEM. */
int crt_error_response_encode(uint64_t version, const char *type,
                              const char *message, void **buf, size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* CRT_PROTO_H */
