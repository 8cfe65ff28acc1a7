/*
 * test_cfgsvc_core.c - the config service's semantics over its SQLite
 * store, without threads or sockets: every operation, its version
 * effect, the push it produces, workspace_changes, errors, persistence.
 */
#include <cfgrecv/actor.h> /* before criterion (its cr_fail macro) */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfgsvc_core.h"
#include "cfgsvc_store.h"
#include "mpread.h"
#include "proto.h"

static cra_store *st;
static char dir[64];
static char path[128];

static void
setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cfgsvc-core-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/db.sqlite", dir);
    cr_assert_eq(cra_store_open(path, &st), 0);
}

static void
teardown(void)
{
    char cmd[200];
    cra_store_close(st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Runs one request under lim (NULL: the defaults); returns the decoded
 * response, and the push if any. The encoded answer's length is in
 * *resp_len if resp_len is not NULL. */
static void
run_lim(const crt_request *req, const crt_limits *lim, crt_response *resp,
        crt_push *push, bool *pushed, size_t *resp_len)
{
    void *buf;
    size_t len;
    cra_cfgsvc_result res;
    crt_decode_error err;
    cr_assert_eq(crt_request_encode(req, &buf, &len), 0);
    cr_assert_eq(cra_cfgsvc_handle(st, buf, len, lim, &res), 0);
    free(buf);
    if (resp_len != NULL) {
        *resp_len = res.resp_len;
    }
    cr_assert_eq(crt_response_decode(res.resp, res.resp_len, NULL, resp,
                                     &err),
                 0, "%s", err.text);
    *pushed = res.push != NULL;
    if (res.push != NULL) {
        cr_assert_eq(crt_push_decode(res.push, res.push_len, NULL, push,
                                     &err),
                     0, "%s", err.text);
    } else {
        memset(push, 0, sizeof(*push));
    }
    cra_cfgsvc_result_free(&res);
}

static void
run(const crt_request *req, crt_response *resp, crt_push *push, bool *pushed)
{
    run_lim(req, NULL, resp, push, pushed, NULL);
}

static uint64_t
put1(const char *ws, const char *type, const char *key, const char *value)
{
    crt_value v = {(char *)type, (char *)key, (char *)value, ""};
    crt_request r = {.operation = "put",
                     .workspace = (char *)ws,
                     .values = &v,
                     .nvalues = 1};
    crt_response resp;
    crt_push p;
    bool pushed;
    run(&r, &resp, &p, &pushed);
    cr_assert_null(resp.error);
    cr_assert(pushed);
    cr_assert_eq(p.version, resp.version);
    uint64_t ver = resp.version;
    crt_response_free(&resp);
    crt_push_free(&p);
    return ver;
}

TestSuite(cfgsvc_core, .init = setup, .fini = teardown);

Test(cfgsvc_core, put_get_version_and_push)
{
    cr_assert_eq(cra_store_version(st), 0);
    crt_value vals[3] = {{"flow", "f1", "{\"a\":1}", "ignored"},
                         {"flow", "f2", "{}", ""},
                         {"prompt", "p", "hello", ""}};
    crt_request r = {.operation = "put",
                     .workspace = "w1",
                     .values = vals,
                     .nvalues = 3};
    crt_response resp;
    crt_push p;
    bool pushed;
    run(&r, &resp, &p, &pushed);
    cr_assert_null(resp.error);
    cr_assert_eq(resp.version, 1, "one put = one version");
    cr_assert(pushed);
    cr_assert_eq(p.version, 1);
    cr_assert_eq(p.nchanges, 2, "distinct types");
    cr_assert_str_eq(p.changes[0].type, "flow");
    cr_assert_str_eq(p.changes[0].workspaces[0], "w1");
    cr_assert_str_eq(p.changes[1].type, "prompt");
    cr_assert_null(p.workspace_changes);
    crt_response_free(&resp);
    crt_push_free(&p);

    crt_key keys[2] = {{"flow", "f1"}, {"flow", "nope"}};
    crt_request g = {.operation = "get",
                     .workspace = "w1",
                     .keys = keys,
                     .nkeys = 2};
    run(&g, &resp, &p, &pushed);
    cr_assert_not(pushed, "reads never push");
    cr_assert_eq(resp.version, 1);
    cr_assert_eq(resp.nvalues, 2);
    cr_assert_str_eq(resp.values[0].value, "{\"a\":1}");
    cr_assert_str_eq(resp.values[0].key, "f1");
    cr_assert_null(resp.values[1].value, "missing key gives nil");
    crt_response_free(&resp);

    /* another workspace does not see w1's keys */
    g.workspace = "w2";
    run(&g, &resp, &p, &pushed);
    cr_assert_null(resp.values[0].value);
    crt_response_free(&resp);
}

Test(cfgsvc_core, list_getvalues_config)
{
    put1("w1", "flow", "b", "2");
    put1("w1", "flow", "a", "1");
    put1("w1", "prompt", "x", "p");
    cr_assert_eq(put1("w2", "flow", "c", "3"), 4);

    crt_request r = {.operation = "list", .workspace = "w1", .type = "flow"};
    crt_response resp;
    crt_push p;
    bool pushed;
    run(&r, &resp, &p, &pushed);
    cr_assert_eq(resp.version, 4);
    cr_assert_eq(resp.ndirectory, 2);
    cr_assert_str_eq(resp.directory[0], "a");
    cr_assert_str_eq(resp.directory[1], "b");
    cr_assert_eq(resp.nvalues, 0);
    crt_response_free(&resp);

    r.operation = "getvalues";
    run(&r, &resp, &p, &pushed);
    cr_assert_eq(resp.nvalues, 2);
    cr_assert_str_eq(resp.values[0].type, "flow");
    cr_assert_str_eq(resp.values[0].key, "a");
    cr_assert_str_eq(resp.values[0].value, "1");
    cr_assert_str_eq(resp.values[0].workspace, "");
    crt_response_free(&resp);

    r.operation = "config";
    r.type = "";
    run(&r, &resp, &p, &pushed);
    cr_assert_eq(resp.nconfig, 2);
    cr_assert_str_eq(resp.config[0].type, "flow");
    cr_assert_eq(resp.config[0].nentries, 2);
    cr_assert_str_eq(resp.config[0].entries[1].value, "2");
    cr_assert_str_eq(resp.config[1].type, "prompt");
    crt_response_free(&resp);

    crt_request a = {.operation = "getvalues-all-ws", .type = "flow"};
    run(&a, &resp, &p, &pushed);
    cr_assert_eq(resp.nvalues, 3);
    cr_assert_str_eq(resp.values[0].workspace, "w1");
    cr_assert_str_eq(resp.values[2].workspace, "w2");
    cr_assert_str_eq(resp.values[2].value, "3");
    crt_response_free(&resp);

    a.operation = "getkeys-all-ws";
    run(&a, &resp, &p, &pushed);
    cr_assert_eq(resp.nvalues, 3);
    cr_assert_str_eq(resp.values[2].workspace, "w2");
    cr_assert_str_eq(resp.values[2].key, "c");
    cr_assert_null(resp.values[2].value, "getkeys-all-ws sends no values");
    crt_response_free(&resp);
}

Test(cfgsvc_core, delete_and_workspace_changes)
{
    cr_assert_eq(put1("w1", "flow", "a", "1"), 1);
    crt_key k = {"flow", "a"};
    crt_request d = {.operation = "delete",
                     .workspace = "w1",
                     .keys = &k,
                     .nkeys = 1};
    crt_response resp;
    crt_push p;
    bool pushed;
    run(&d, &resp, &p, &pushed);
    cr_assert_null(resp.error);
    cr_assert_eq(resp.version, 2);
    cr_assert(pushed);
    cr_assert_str_eq(p.changes[0].type, "flow");
    crt_response_free(&resp);
    crt_push_free(&p);
    /* deleting a missing key still counts as a change (TrustGraph) */
    run(&d, &resp, &p, &pushed);
    cr_assert_eq(resp.version, 3);
    crt_response_free(&resp);
    crt_push_free(&p);

    crt_value wv = {"workspace", "acme", "{}", ""};
    crt_request pw = {.operation = "put",
                      .workspace = "__workspaces__",
                      .values = &wv,
                      .nvalues = 1};
    run(&pw, &resp, &p, &pushed);
    cr_assert_not_null(p.workspace_changes);
    cr_assert_eq(p.workspace_changes->ncreated, 1);
    cr_assert_str_eq(p.workspace_changes->created[0], "acme");
    cr_assert_eq(p.workspace_changes->ndeleted, 0);
    cr_assert_str_eq(p.changes[0].workspaces[0], "__workspaces__");
    crt_response_free(&resp);
    crt_push_free(&p);

    crt_key wk = {"workspace", "acme"};
    crt_request dw = {.operation = "delete",
                      .workspace = "__workspaces__",
                      .keys = &wk,
                      .nkeys = 1};
    run(&dw, &resp, &p, &pushed);
    cr_assert_not_null(p.workspace_changes);
    cr_assert_eq(p.workspace_changes->ndeleted, 1);
    cr_assert_str_eq(p.workspace_changes->deleted[0], "acme");
    crt_response_free(&resp);
    crt_push_free(&p);

    /* other types in __workspaces__ do not fill workspace_changes */
    crt_value ov = {"other", "x", "1", ""};
    pw.values = &ov;
    run(&pw, &resp, &p, &pushed);
    cr_assert_null(p.workspace_changes);
    crt_response_free(&resp);
    crt_push_free(&p);
}

Test(cfgsvc_core, errors_keep_version)
{
    put1("w", "t", "k", "v");
    crt_response resp;
    crt_push p;
    bool pushed;

    crt_request bad = {.operation = "frobnicate", .workspace = "w"};
    run(&bad, &resp, &p, &pushed);
    cr_assert_not_null(resp.error);
    cr_assert_str_eq(resp.error->type, "bad-operation");
    cr_assert_not_null(strstr(resp.error->message, "frobnicate"));
    cr_assert_eq(resp.version, 1);
    cr_assert_not(pushed);
    crt_response_free(&resp);

    crt_request nows = {.operation = "get"};
    run(&nows, &resp, &p, &pushed);
    cr_assert_str_eq(resp.error->type, "bad-request");
    cr_assert_not_null(strstr(resp.error->message, "workspace is required"));
    crt_response_free(&resp);

    crt_request empty_put = {.operation = "put", .workspace = "w"};
    run(&empty_put, &resp, &p, &pushed);
    cr_assert_str_eq(resp.error->type, "bad-request");
    cr_assert_not(pushed);
    crt_response_free(&resp);

    /* garbage bytes and an oversized body */
    cra_cfgsvc_result res;
    crt_decode_error err;
    static const unsigned char junk[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    cr_assert_eq(cra_cfgsvc_handle(st, junk, sizeof(junk), NULL, &res), 0);
    cr_assert_eq(crt_response_decode(res.resp, res.resp_len, NULL, &resp,
                                     &err),
                 0);
    cr_assert_str_eq(resp.error->type, "bad-request");
    cr_assert_not_null(strstr(resp.error->message, "expected map"),
                       "%s", resp.error->message);
    crt_response_free(&resp);
    cra_cfgsvc_result_free(&res);

    crt_limits lim = {16, 0};
    crt_value big = {"t", "k", "0123456789abcdef", ""};
    crt_request r = {.operation = "put",
                     .workspace = "w",
                     .values = &big,
                     .nvalues = 1};
    void *buf;
    size_t len;
    cr_assert_eq(crt_request_encode(&r, &buf, &len), 0);
    cr_assert_eq(cra_cfgsvc_handle(st, buf, len, &lim, &res), 0);
    free(buf);
    cr_assert_eq(crt_response_decode(res.resp, res.resp_len, NULL, &resp,
                                     &err),
                 0);
    cr_assert_str_eq(resp.error->type, "bad-request");
    cr_assert_not_null(strstr(resp.error->message, "exceeds"));
    cr_assert_null(res.push);
    crt_response_free(&resp);
    cra_cfgsvc_result_free(&res);
    cr_assert_eq(cra_store_version(st), 1, "errors never bump the version");
}

Test(cfgsvc_core, persists_across_reopen)
{
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i);
        put1("w", "t", k, k);
    }
    cra_store_close(st);
    cr_assert_eq(cra_store_open(path, &st), 0);
    cr_assert_eq(cra_store_version(st), 20);
    char **keys;
    size_t n;
    cr_assert_eq(cra_store_list(st, "w", "t", &keys, &n), 0);
    cr_assert_eq(n, 20);
    crt_strv_free(keys, n);
}

Test(cfgsvc_core, push_everything)
{
    void *buf;
    size_t len;
    crt_push p;
    cr_assert_eq(cra_cfgsvc_push_everything(7, &buf, &len), 0);
    cr_assert_eq(crt_push_decode(buf, len, NULL, &p, NULL), 0);
    cr_assert_eq(p.version, 7);
    cr_assert_eq(p.nchanges, 0);
    cr_assert_null(p.workspace_changes);
    crt_push_free(&p);
    free(buf);
}

/* Every value fits the message limit, the workspace's whole `config`
 * answer does not: the answer is a clear error, not a message the
 * client's nng would drop together with its connection. */
Test(cfgsvc_core, answer_over_the_limit_is_an_error)
{
    char big[3001];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    put1("ws", "flow", "a", big);
    uint64_t v = put1("ws", "flow", "b", big);
    crt_limits lim = {.max_size = 4096};
    crt_request r = {.operation = "config", .workspace = "ws"};
    crt_response resp;
    crt_push p;
    bool pushed;
    size_t rlen;
    run_lim(&r, &lim, &resp, &p, &pushed, &rlen);
    cr_assert_leq(rlen, 4096);
    cr_assert_not_null(resp.error);
    cr_assert_str_eq(resp.error->type, CRT_ERR_CONFIG);
    cr_assert(strstr(resp.error->message, "exceeds the 4096-byte") != NULL,
              "%s", resp.error->message);
    cr_assert_eq(resp.version, v, "the version still says where it is");
    crt_response_free(&resp);
    /* within the limit, the same workspace is served */
    run(&r, &resp, &p, &pushed);
    cr_assert_null(resp.error);
    crt_response_free(&resp);
}

/* A workspace named "" cannot be registered: nothing could name it. */
Test(cfgsvc_core, empty_workspace_name_refused)
{
    crt_value v = {CRT_WORKSPACE_TYPE, "", "{}", ""};
    crt_request r = {.operation = "put",
                     .workspace = CRT_WORKSPACES_NAMESPACE,
                     .values = &v,
                     .nvalues = 1};
    crt_response resp;
    crt_push p;
    bool pushed;
    run(&r, &resp, &p, &pushed);
    cr_assert_not_null(resp.error);
    cr_assert_str_eq(resp.error->type, CRT_ERR_BAD_REQUEST);
    cr_assert_not(pushed);
    cr_assert_eq(resp.version, 0);
    crt_response_free(&resp);
}
