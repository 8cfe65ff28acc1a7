/*
 * cfgctl - command-line client of the config service.
 *
 * A thin main: parse the command, build one ConfigRequest, send it with
 * the blocking REQ client (transport/client.h), print the answer as JSON
 * on stdout. Exit status: 0 success, 1 the service answered an error
 * (its type and message on stderr) or an undecodable reply, 2 usage or
 * local input error, 3 the service could not be reached within
 * --timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cfgrecv/actor.h>
#include <cfgrecv/log.h>

#include "client.h"
#include "mpread.h"
#include "proto.h"
#include "tool_util.h"

#define DEF_URL CFGRECV_DEFAULT_REQUEST_URL

enum { EX_OK = 0, EX_SERVICE = 1, EX_USAGE = 2, EX_UNREACHABLE = 3 };

static void
usage(FILE *f)
{
    fprintf(f,
        "Usage: cfgctl [--url URL] [--timeout SECONDS] COMMAND ARGS...\n"
        "Talk to a config service (cfgsvcd, or cfgrecvd's embedded one).\n"
        "\n"
        "Commands (output is JSON on stdout):\n"
        "  put WS TYPE KEY VALUE     store VALUE; @FILE reads a file, -\n"
        "                            reads stdin        -> {version}\n"
        "  get WS TYPE KEY           -> {version, value} (null if absent)\n"
        "  list WS TYPE              -> {version, keys:[...]}\n"
        "  getvalues WS TYPE         -> {version, values:{key: value}}\n"
        "  getvalues-all-ws TYPE     -> {version, values:[{workspace,key,\n"
        "                               value}]}\n"
        "  getkeys-all-ws TYPE       -> {version, keys:[{workspace,key}]}\n"
        "  delete WS TYPE KEY...     -> {version}\n"
        "  config WS                 -> {version, config:{type:{key:value}}}\n"
        "  version                   -> {version}\n"
        "  put-flow WS ID FILE.json  store a flow; FILE must hold valid JSON\n"
        "                            (stored compact)   -> {version}\n"
        "  delete-flow WS ID         -> {version}\n"
        "  export WS                 the config as {type:{key:value}}\n"
        "  import WS FILE            put every {type:{key:value}} of FILE\n"
        "                            (- = stdin) as one change; non-string\n"
        "                            values are stored as compact JSON; keys\n"
        "                            not in FILE are kept\n"
        "                            -> {version, imported}\n"
        "  create-workspace WS       register WS (TrustGraph's workspace\n"
        "                            registry: workspace_changes.created)\n"
        "                            -> {version}\n"
        "  delete-workspace WS       delete every row of WS, then its\n"
        "                            registration (workspace_changes.\n"
        "                            deleted)  -> {version, deleted}\n"
        "\n"
        "Options:\n"
        "  --url URL          service request URL [%s]\n"
        "  --timeout SECONDS  give up after this long [10]\n"
        "  -h, --help         show this help\n"
        "  --version          print the version and exit\n"
        "\n"
        "Exit status: 0 ok, 1 the service returned an error (message on\n"
        "stderr), 2 usage error, 3 service unreachable within --timeout.\n",
        DEF_URL);
}

static int
usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "cfgctl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'cfgctl --help'.\n");
    return EX_USAGE;
}

/* Reads a whole file ("-" = stdin) into a NUL-terminated buffer. */
static char *
slurp(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (f == NULL) {
        fprintf(stderr, "cfgctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap ? cap * 2 : 8192);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap = cap ? cap * 2 : 8192;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    if (buf != NULL && ferror(f)) {
        fprintf(stderr, "cfgctl: %s: read error\n", path);
        free(buf);
        buf = NULL;
    }
    if (f != stdin) {
        fclose(f);
    }
    if (buf != NULL) {
        buf[len] = '\0';
        if (strlen(buf) != len) {
            fprintf(stderr, "cfgctl: %s: contains a NUL byte\n", path);
            free(buf);
            buf = NULL;
        }
    }
    return buf;
}

/* A JSON string that keeps invalid UTF-8 as is rather than failing. */
static json_t *
jstr(const char *s)
{
    json_t *j = json_string(s);
    return j ? j : json_string_nocheck(s);
}

static int
print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(j);
    if (s == NULL) {
        fprintf(stderr, "cfgctl: out of memory\n");
        return EX_SERVICE;
    }
    printf("%s\n", s);
    free(s);
    return fflush(stdout) == 0 ? EX_OK : EX_SERVICE;
}

/* The one client of this run (every call goes to one URL). It is never
 * closed: the process exits right after its last call, and closing an
 * nng 1.5.2 socket whose last request just ended can panic inside nng
 * ("pthread_mutex_lock: Invalid argument", about 1 run in 1,000 with a
 * 1 ms --timeout, also after a timely answer) or hang in nng_close. It
 * stays reachable, so leak checkers do not count it. */
static crt_client *client;

/* Sends r and decodes the answer. Returns an exit status; on EX_OK the
 * response is in *resp (free it). */
static int
call(const char *url, int timeout_ms, const crt_request *r,
     crt_response *resp)
{
    void *buf = NULL, *rep = NULL;
    size_t len, rlen;
    crt_decode_error derr;
    int rv;

    if (client == NULL && (rv = crt_client_open(url, NULL, &client)) != 0) {
        fprintf(stderr, "cfgctl: cannot use URL '%s': %s\n", url,
                cr_strerror(rv));
        return rv == CR_EINVAL ? EX_USAGE : EX_UNREACHABLE;
    }
    if ((rv = crt_request_encode(r, &buf, &len)) == 0) {
        rv = crt_client_request(client, buf, len, timeout_ms, &rep, &rlen);
    }
    free(buf);
    if (rv == CR_ETIMEDOUT) {
        fprintf(stderr, "cfgctl: no answer from %s within %d ms\n", url,
                timeout_ms);
        return EX_UNREACHABLE;
    }
    if (rv != 0) {
        fprintf(stderr, "cfgctl: request failed: %s\n", cr_strerror(rv));
        return EX_UNREACHABLE;
    }
    rv = crt_response_decode(rep, rlen, NULL, resp, &derr);
    free(rep);
    if (rv != 0) {
        fprintf(stderr, "cfgctl: undecodable reply: %s\n", derr.text);
        return EX_SERVICE;
    }
    if (resp->error != NULL) {
        fprintf(stderr, "cfgctl: %s: %s\n", resp->error->type,
                resp->error->message);
        crt_response_free(resp);
        return EX_SERVICE;
    }
    return EX_OK;
}

static json_t *
versioned(const crt_response *resp)
{
    return json_pack("{s:I}", "version", (json_int_t)resp->version);
}

static json_t *
config_object(const crt_response *resp)
{
    json_t *cfg = json_object();
    for (size_t i = 0; i < resp->nconfig; i++) {
        json_t *t = json_object();
        for (size_t j = 0; j < resp->config[i].nentries; j++) {
            json_object_set_new(t, resp->config[i].entries[j].key,
                                jstr(resp->config[i].entries[j].value));
        }
        json_object_set_new(cfg, resp->config[i].type, t);
    }
    return cfg;
}

/* Builds the import request's values from {type:{key:value}} text. */
static int
import_values(const char *text, const char *src, crt_value **vals,
              size_t *n)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr), *types, *v;
    const char *type, *key;
    size_t cnt = 0, i = 0;
    if (root == NULL) {
        fprintf(stderr, "cfgctl: %s: invalid JSON at line %d: %s\n", src,
                jerr.line, jerr.text);
        return EX_USAGE;
    }
    if (!json_is_object(root)) {
        fprintf(stderr, "cfgctl: %s: expected {type:{key:value}}\n", src);
        json_decref(root);
        return EX_USAGE;
    }
    json_object_foreach(root, type, types) {
        if (!json_is_object(types)) {
            fprintf(stderr, "cfgctl: %s: type '%s' is not an object\n", src,
                    type);
            json_decref(root);
            return EX_USAGE;
        }
        cnt += json_object_size(types);
    }
    if (cnt == 0) {
        fprintf(stderr, "cfgctl: %s: nothing to import\n", src);
        json_decref(root);
        return EX_USAGE;
    }
    if ((*vals = calloc(cnt, sizeof(crt_value))) == NULL) {
        fprintf(stderr, "cfgctl: out of memory\n");
        json_decref(root);
        return EX_SERVICE;
    }
    json_object_foreach(root, type, types) {
        json_object_foreach(types, key, v) {
            crt_value *cv = &(*vals)[i++];
            cv->type = strdup(type);
            cv->key = strdup(key);
            cv->value = json_is_string(v)
                            ? strdup(json_string_value(v))
                            : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            cv->workspace = (char *)crt_empty_str;
        }
    }
    *n = cnt;
    json_decref(root);
    return EX_OK;
}

/* delete_workspace empties ws (every row, as one change: receivers stop
 * its flows) and then deletes its registration (one more change, with
 * workspace_changes.deleted), so that nothing of it is left for a
 * restarted receiver to start again. Prints {version, deleted}. */
static int
delete_workspace(const char *url, int timeout_ms, const char *ws)
{
    crt_request r = {.operation = CRT_OP_CONFIG, .workspace = (char *)ws};
    crt_response resp;
    int st = call(url, timeout_ms, &r, &resp);
    if (st != EX_OK) {
        return st;
    }
    size_t n = 0;
    for (size_t i = 0; i < resp.nconfig; i++) {
        n += resp.config[i].nentries;
    }
    crt_key *keys = calloc(n ? n : 1, sizeof(*keys));
    if (keys == NULL) {
        crt_response_free(&resp);
        fprintf(stderr, "cfgctl: out of memory\n");
        return EX_SERVICE;
    }
    size_t k = 0;
    for (size_t i = 0; i < resp.nconfig; i++) {
        for (size_t j = 0; j < resp.config[i].nentries; j++) {
            keys[k].type = resp.config[i].type;
            keys[k++].key = resp.config[i].entries[j].key;
        }
    }
    crt_response del;
    if (n > 0) {
        r = (crt_request){.operation = CRT_OP_DELETE,
                          .workspace = (char *)ws, .keys = keys, .nkeys = n};
        st = call(url, timeout_ms, &r, &del);
        if (st == EX_OK) {
            crt_response_free(&del);
        }
    }
    free(keys);
    crt_response_free(&resp);
    if (st != EX_OK) {
        return st;
    }
    crt_key reg = {.type = CRT_WORKSPACE_TYPE, .key = (char *)ws};
    r = (crt_request){.operation = CRT_OP_DELETE,
                      .workspace = CRT_WORKSPACES_NAMESPACE, .keys = &reg,
                      .nkeys = 1};
    if ((st = call(url, timeout_ms, &r, &del)) != EX_OK) {
        return st;
    }
    json_t *out = versioned(&del);
    json_object_set_new(out, "deleted", json_integer((json_int_t)n));
    crt_response_free(&del);
    return print_json(out);
}

static double
parse_seconds(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    return (*end != '\0' || end == s || !(v > 0) || v > 86400) ? -1 : v;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *url = DEF_URL;
    int timeout_ms = 10000;
    int c, st;
    crt_request r;
    crt_response resp;
    crt_value one;
    crt_key key1;
    char *owned = NULL; /* value text read from a file */
    json_t *out = NULL;

    while ((c = getopt_long(argc, argv, "+hu:t:", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 't': {
            double s = parse_seconds(optarg);
            if (s < 0) {
                return usage_error("bad --timeout '%s'", optarg);
            }
            timeout_ms = (int)(s * 1000) ? (int)(s * 1000) : 1;
            break;
        }
        case 'h':
            usage(stdout);
            return EX_OK;
        case 'V':
            cr_tool_version("cfgctl");
            return EX_OK;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    cr_log_setup(CR_LEVEL_ERROR, CR_LOG_TEXT, 2);
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        return usage_error("%s", "missing COMMAND");
    }
    const char *cmd = argv[0];
    int nargs = argc - 1;
    char **a = argv + 1;
    memset(&r, 0, sizeof(r));
    memset(&one, 0, sizeof(one));
    memset(&resp, 0, sizeof(resp));

#define NEED(n)                                                                \
    do {                                                                       \
        if (nargs != (n)) {                                                    \
            return usage_error("wrong number of arguments for '%s'", cmd);    \
        }                                                                      \
    } while (0)

    if (strcmp(cmd, "put") == 0 || strcmp(cmd, "put-flow") == 0) {
        const char *value;
        bool flow = cmd[3] == '-';
        NEED(flow ? 3 : 4);
        const char *src = flow ? a[2] : a[3];
        if (flow || src[0] == '@' || strcmp(src, "-") == 0) {
            const char *path = flow ? src : src[0] == '@' ? src + 1 : "-";
            if ((owned = slurp(path)) == NULL) {
                return EX_USAGE;
            }
            value = owned;
        } else {
            value = src;
        }
        if (flow) {
            json_error_t jerr;
            json_t *j = json_loads(value, 0, &jerr);
            if (j == NULL) {
                fprintf(stderr, "cfgctl: %s: invalid JSON at line %d: %s\n",
                        src, jerr.line, jerr.text);
                free(owned);
                return EX_USAGE;
            }
            char *compact = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
            json_decref(j);
            free(owned);
            owned = compact;
            value = owned;
        }
        one.type = flow ? "flow" : a[1];
        one.key = flow ? a[1] : a[2];
        one.value = (char *)value;
        one.workspace = "";
        r.operation = CRT_OP_PUT;
        r.workspace = a[0];
        r.values = &one;
        r.nvalues = 1;
    } else if (strcmp(cmd, "get") == 0) {
        NEED(3);
        key1.type = a[1];
        key1.key = a[2];
        r.operation = CRT_OP_GET;
        r.workspace = a[0];
        r.keys = &key1;
        r.nkeys = 1;
    } else if (strcmp(cmd, "list") == 0 || strcmp(cmd, "getvalues") == 0) {
        NEED(2);
        r.operation = cmd[0] == 'l' ? CRT_OP_LIST : CRT_OP_GETVALUES;
        r.workspace = a[0];
        r.type = a[1];
    } else if (strcmp(cmd, CRT_OP_GETVALUES_ALL) == 0 ||
               strcmp(cmd, CRT_OP_GETKEYS_ALL) == 0) {
        NEED(1);
        r.operation = (char *)cmd;
        r.type = a[0];
    } else if (strcmp(cmd, "delete") == 0 ||
               strcmp(cmd, "delete-flow") == 0) {
        bool flow = cmd[6] == '-';
        if (flow) {
            NEED(2);
        } else if (nargs < 3) {
            return usage_error("wrong number of arguments for '%s'", cmd);
        }
        size_t nk = flow ? 1 : (size_t)nargs - 2;
        r.keys = calloc(nk, sizeof(crt_key));
        for (size_t i = 0; i < nk; i++) {
            r.keys[i].type = flow ? "flow" : a[1];
            r.keys[i].key = flow ? a[1] : a[2 + i];
        }
        r.nkeys = nk;
        r.operation = CRT_OP_DELETE;
        r.workspace = a[0];
    } else if (strcmp(cmd, "config") == 0 || strcmp(cmd, "export") == 0) {
        NEED(1);
        r.operation = CRT_OP_CONFIG;
        r.workspace = a[0];
    } else if (strcmp(cmd, "version") == 0) {
        NEED(0);
        /* a get of no keys: the cheapest request that carries the version */
        r.operation = CRT_OP_GET;
        r.workspace = "default";
    } else if (strcmp(cmd, "create-workspace") == 0) {
        NEED(1);
        one.type = CRT_WORKSPACE_TYPE;
        one.key = a[0];
        one.value = "{}";
        one.workspace = "";
        r.operation = CRT_OP_PUT;
        r.workspace = CRT_WORKSPACES_NAMESPACE;
        r.values = &one;
        r.nvalues = 1;
    } else if (strcmp(cmd, "delete-workspace") == 0) {
        NEED(1);
        return delete_workspace(url, timeout_ms, a[0]);
    } else if (strcmp(cmd, "import") == 0) {
        NEED(2);
        if ((owned = slurp(a[1])) == NULL) {
            return EX_USAGE;
        }
        st = import_values(owned, a[1], &r.values, &r.nvalues);
        free(owned);
        owned = NULL;
        if (st != EX_OK) {
            return st;
        }
        r.operation = CRT_OP_PUT;
        r.workspace = a[0];
    } else {
        return usage_error("unknown command '%s'", cmd);
    }

    st = call(url, timeout_ms, &r, &resp);
    if (strcmp(cmd, "import") == 0) {
        for (size_t i = 0; i < r.nvalues; i++) {
            crt_value_free(&r.values[i]);
        }
        free(r.values);
    }
    if (r.keys != &key1) {
        free(r.keys);
    }
    free(owned);
    if (st != EX_OK) {
        return st;
    }

    if (strcmp(cmd, "get") == 0) {
        out = versioned(&resp);
        const char *v = resp.nvalues > 0 ? resp.values[0].value : NULL;
        json_object_set_new(out, "value", v ? jstr(v) : json_null());
    } else if (strcmp(cmd, "list") == 0) {
        json_t *k = json_array();
        for (size_t i = 0; i < resp.ndirectory; i++) {
            json_array_append_new(k, jstr(resp.directory[i]));
        }
        out = versioned(&resp);
        json_object_set_new(out, "keys", k);
    } else if (strcmp(cmd, "getvalues") == 0) {
        json_t *v = json_object();
        for (size_t i = 0; i < resp.nvalues; i++) {
            json_object_set_new(v, resp.values[i].key,
                                resp.values[i].value
                                    ? jstr(resp.values[i].value)
                                    : json_null());
        }
        out = versioned(&resp);
        json_object_set_new(out, "values", v);
    } else if (strcmp(cmd, CRT_OP_GETVALUES_ALL) == 0 ||
               strcmp(cmd, CRT_OP_GETKEYS_ALL) == 0) {
        bool keys = strcmp(cmd, CRT_OP_GETKEYS_ALL) == 0;
        json_t *arr = json_array();
        for (size_t i = 0; i < resp.nvalues; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "workspace",
                                jstr(resp.values[i].workspace));
            json_object_set_new(e, "key", jstr(resp.values[i].key));
            if (!keys) {
                json_object_set_new(e, "value",
                                    resp.values[i].value
                                        ? jstr(resp.values[i].value)
                                        : json_null());
            }
            json_array_append_new(arr, e);
        }
        out = versioned(&resp);
        json_object_set_new(out, keys ? "keys" : "values", arr);
    } else if (strcmp(cmd, "config") == 0) {
        out = versioned(&resp);
        json_object_set_new(out, "config", config_object(&resp));
    } else if (strcmp(cmd, "export") == 0) {
        out = config_object(&resp);
    } else if (strcmp(cmd, "import") == 0) {
        out = versioned(&resp);
        json_object_set_new(out, "imported",
                            json_integer((json_int_t)r.nvalues));
    } else {
        out = versioned(&resp);
    }
    crt_response_free(&resp);
    return print_json(out);
}
