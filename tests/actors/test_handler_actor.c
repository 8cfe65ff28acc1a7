/*
 * test_handler_actor.c - a handler actor reconciles what it is told:
 * starts, updates, stops, a definition that is not a JSON object marks
 * that flow failed alone, a failing start is retried with backoff until it
 * succeeds (other flows untouched), a full set stops what is not listed,
 * RM_SYNC_END stops flows of vanished workspaces, and shutdown stops every
 * running flow before terminate.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cfgrecv/actor.h"
#include "handler_actor.h"
#include "recv_msgs.h"

/* A test handler that records calls and fails `fail_left` starts of flow
 * "bad". Shared with the actor thread under mu; asserted on the test
 * thread only. */
typedef struct th {
    pthread_mutex_t mu;
    char log[8192];
    int fail_left;
    int terminated;
} th;

static th T;

static void
logf_(const char *op, const cra_flow_ref *f)
{
    pthread_mutex_lock(&T.mu);
    size_t n = strlen(T.log);
    snprintf(T.log + n, sizeof(T.log) - n, "%s %s/%s;", op, f->workspace,
             f->id);
    pthread_mutex_unlock(&T.mu);
}

static int
t_start(void *st, const cra_flow_ref *f, char *err, size_t len)
{
    logf_("start", f);
    cr_assert(f->flow == NULL || json_is_object(f->flow));
    if (strcmp(f->id, "bad") == 0) {
        pthread_mutex_lock(&T.mu);
        int fail = T.fail_left > 0 ? T.fail_left-- : 0;
        pthread_mutex_unlock(&T.mu);
        if (fail) {
            snprintf(err, len, "induced failure");
            return CRA_FAILED;
        }
    }
    return CRA_OK;
}

static int
t_update(void *st, const cra_flow_ref *f, char *err, size_t len)
{
    logf_("update", f);
    return CRA_OK;
}

static int
t_stop(void *st, const cra_flow_ref *f, char *err, size_t len)
{
    logf_("stop", f);
    return CRA_OK;
}

static void
t_term(void *st)
{
    pthread_mutex_lock(&T.mu);
    T.terminated = 1;
    pthread_mutex_unlock(&T.mu);
}

static int
t_init(cr_ctx *ctx, void *arg, void **state)
{
    *state = &T;
    return 0;
}

static const cra_flow_handler test_handler = {
    .name = "test",
    .init = t_init,
    .terminate = t_term,
    .start = t_start,
    .update = t_update,
    .stop = t_stop,
};

static cr_rt *rt;
static cr_id hid;

static void
setup(void)
{
    memset(&T, 0, sizeof(T));
    pthread_mutex_init(&T.mu, NULL);
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    cr_spawn_opts so = {.name = "handler:test"};
    cr_assert_eq(cr_spawn(rt, &cra_handler_behaviour, (void *)&test_handler,
                          &so, &hid),
                 0);
}

static void
teardown(void)
{
    if (rt != NULL) {
        cr_rt_destroy(rt);
        rt = NULL;
    }
}

typedef struct op {
    int op;
    const char *id;
    const char *text;
} op;

static void
send_flows(const char *ws, uint64_t version, bool full, const op *ops,
           size_t n)
{
    rm_flows_builder b;
    cr_assert_eq(rm_flows_begin(&b), 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(rm_flows_add(&b, ops[i].op, ops[i].id,
                                  strlen(ops[i].id), ops[i].text,
                                  ops[i].text ? strlen(ops[i].text) : 0),
                     0);
    }
    cr_msg *m;
    cr_assert_eq(rm_flows_finish(&b, ws, strlen(ws), version, full, &m), 0);
    cr_assert_eq(cr_send(rt, CR_NOBODY, hid, m), 0);
}

/* state_of returns the state of ws/id ("absent" if not listed). */
static const char *
state_of(const char *ws, const char *id, char *err, size_t errlen)
{
    cra_flow_info *v;
    size_t n;
    const char *st = "absent";
    cr_assert_eq(cra_handler_query(rt, hid, 5000, &v, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].workspace, ws) == 0 && strcmp(v[i].id, id) == 0) {
            st = v[i].state;
            if (err != NULL) {
                snprintf(err, errlen, "%s", v[i].error);
            }
        }
    }
    cra_flow_info_free(v, n);
    return st;
}

static bool
wait_state(const char *ws, const char *id, const char *want, int ms)
{
    for (int waited = 0; waited <= ms; waited += 20) {
        if (strcmp(state_of(ws, id, NULL, 0), want) == 0) {
            return true;
        }
        usleep(20000);
    }
    return false;
}

static bool
log_has(const char *s)
{
    pthread_mutex_lock(&T.mu);
    bool r = strstr(T.log, s) != NULL;
    pthread_mutex_unlock(&T.mu);
    return r;
}

TestSuite(handler_actor, .init = setup, .fini = teardown, .timeout = 60);

Test(handler_actor, start_update_stop_in_order)
{
    op a[] = {{RM_OP_START, "f1", "{\"blueprint-name\":\"bp\"}"},
              {RM_OP_START, "f2", "{\"name\":\"test_flow_2\"}"}};
    send_flows("ws", 1, false, a, 2);
    cr_assert(wait_state("ws", "f1", "running", 5000));
    cr_assert(wait_state("ws", "f2", "running", 5000));
    op b[] = {{RM_OP_UPDATE, "f1", "{\"blueprint-name\":\"bp2\"}"},
              {RM_OP_STOP, "f2", NULL}};
    send_flows("ws", 2, false, b, 2);
    cr_assert(wait_state("ws", "f2", "absent", 5000));
    cr_assert(log_has("start ws/f1;start ws/f2;update ws/f1;stop ws/f2;"),
              "log: %s", T.log);
    /* the same definition again is a no-op */
    op c[] = {{RM_OP_UPDATE, "f1", "{\"blueprint-name\":\"bp2\"}"}};
    send_flows("ws", 3, false, c, 1);
    cr_assert(wait_state("ws", "f1", "running", 5000));
    pthread_mutex_lock(&T.mu);
    cr_assert_eq(strstr(strstr(T.log, "update ws/f1;") + 1, "update"), NULL,
                 "unchanged definition must not update: %s", T.log);
    pthread_mutex_unlock(&T.mu);
}

Test(handler_actor, non_object_value_fails_that_flow_only)
{
    op a[] = {{RM_OP_START, "good", "{}"},
              {RM_OP_START, "notjson", "this is not json"},
              {RM_OP_START, "array", "[1,2]"}};
    send_flows("ws", 1, false, a, 3);
    cr_assert(wait_state("ws", "good", "running", 5000));
    char err[512];
    cr_assert(wait_state("ws", "notjson", "failed", 5000));
    cr_assert_str_eq(state_of("ws", "notjson", err, sizeof(err)), "failed");
    cr_assert(strstr(err, "not valid JSON") != NULL, "error: %s", err);
    cr_assert(wait_state("ws", "array", "failed", 5000));
    cr_assert(!log_has("start ws/notjson"));
    /* a corrected definition recovers it */
    op b[] = {{RM_OP_UPDATE, "notjson", "{\"fixed\":true}"}};
    send_flows("ws", 2, false, b, 1);
    cr_assert(wait_state("ws", "notjson", "running", 5000));
}

Test(handler_actor, failing_start_retried_with_backoff)
{
    pthread_mutex_lock(&T.mu);
    T.fail_left = 2;
    pthread_mutex_unlock(&T.mu);
    op a[] = {{RM_OP_START, "bad", "{}"}, {RM_OP_START, "ok", "{}"}};
    send_flows("ws", 1, false, a, 2);
    cr_assert(wait_state("ws", "ok", "running", 5000));
    /* after two failures (backoff 0-100 ms, then 0-200 ms) it runs */
    cr_assert(wait_state("ws", "bad", "running", 10000));
    cra_flow_info *v;
    size_t n;
    cr_assert_eq(cra_handler_query(rt, hid, 5000, &v, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].id, "bad") == 0) {
            cr_assert_eq(v[i].restarts, 2);
        }
        if (strcmp(v[i].id, "ok") == 0) {
            cr_assert_eq(v[i].restarts, 0);
        }
    }
    cra_flow_info_free(v, n);
    pthread_mutex_lock(&T.mu);
    int starts = 0;
    for (const char *p = T.log; (p = strstr(p, "start ws/ok;")); p++) {
        starts++;
    }
    pthread_mutex_unlock(&T.mu);
    cr_assert_eq(starts, 1, "the healthy flow is started once");
}

Test(handler_actor, full_set_and_sync_end_stop_the_rest)
{
    op a[] = {{RM_OP_START, "a", "{}"}, {RM_OP_START, "b", "{}"}};
    send_flows("ws1", 1, false, a, 2);
    send_flows("ws2", 1, false, a, 2);
    cr_assert(wait_state("ws2", "b", "running", 5000));
    op full[] = {{RM_OP_START, "a", "{}"}};
    send_flows("ws1", 2, true, full, 1);
    cr_assert(wait_state("ws1", "b", "absent", 5000));
    cr_assert_str_eq(state_of("ws1", "a", NULL, 0), "running");
    const char *keep[] = {"ws1"};
    cr_msg *m = rm_strlist_new(RM_SYNC_END, keep, 1);
    cr_assert_eq(cr_send(rt, CR_NOBODY, hid, m), 0);
    cr_assert(wait_state("ws2", "a", "absent", 5000));
    cr_assert(wait_state("ws2", "b", "absent", 5000));
    cr_assert_str_eq(state_of("ws1", "a", NULL, 0), "running");
}

Test(handler_actor, shutdown_stops_every_flow)
{
    op a[] = {{RM_OP_START, "x", "{}"}, {RM_OP_START, "y", "{}"}};
    send_flows("ws", 1, false, a, 2);
    cr_assert(wait_state("ws", "y", "running", 5000));
    cr_assert_eq(cr_stop_wait(rt, hid, 10000), 0);
    cr_assert(log_has("stop ws/x;"));
    cr_assert(log_has("stop ws/y;"));
    pthread_mutex_lock(&T.mu);
    cr_assert_eq(T.terminated, 1);
    pthread_mutex_unlock(&T.mu);
}

Test(handler_actor, malformed_message_is_dropped_and_actor_lives)
{
    cr_msg *m = cr_msg_new_bytes(RM_FLOWS, "\xc1\xc1\xc1", 3);
    cr_assert_eq(cr_send(rt, CR_NOBODY, hid, m), 0);
    op a[] = {{RM_OP_START, "after", "{}"}};
    send_flows("ws", 1, false, a, 1);
    cr_assert(wait_state("ws", "after", "running", 5000));
    cr_assert(cr_alive(rt, hid));
}

/* A blueprint name too long for the directory is cut between whole UTF-8
 * characters, as the JSON scanner cuts it for the other handlers. */
Test(handler_actor, long_blueprint_cut_between_characters)
{
    char def[400], want[300];
    memset(want, 'a', 254);
    want[254] = '\0';
    snprintf(def, sizeof(def), "{\"blueprint-name\":\"%s\u00e9b\"}", want);
    op a[] = {{RM_OP_START, "f1", def}};
    send_flows("ws", 1, false, a, 1);
    cr_assert(wait_state("ws", "f1", "running", 5000));
    cra_flow_info *v;
    size_t n;
    cr_assert_eq(cra_handler_query(rt, hid, 5000, &v, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(v[0].blueprint, want, "cut after the 254 a's");
    cra_flow_info_free(v, n);
}
