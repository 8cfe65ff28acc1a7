/*
 * test_monitor.c - the monitor's pure parts (loopback checks, Prometheus
 * text, workspace table, event text, supervisor event conversion) and the
 * monitor and events actors in a real receiver tree (with an embedded
 * config service in memory), with a SUB socket on the events endpoint
 * and the ipc file modes.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <poll.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgrecv/actor.h"
#include "cfgrecv/supervisor.h"
#include "cfgsvc.h"
#include "events.h"
#include "events_actor.h"
#include "metrics.h"
#include "monitor.h"
#include "receiver.h"

/* ---- loopback checks --------------------------------------------------- */

Test(monitor, url_loopback) {
    static const char *const yes[] = {
        "ipc:///tmp/x.ipc",
        "inproc://m",
        "abstract://m",
        "tcp://127.0.0.1:5555",
        "tcp://127.9.8.7:1",
        "tcp4://127.0.0.1:5",
        "tcp://localhost:5555",
        "tcp://LOCALHOST:5555",
        "tcp://[::1]:5555",
        "tcp6://[::1]:5555",
        "ws://127.0.0.1:8080/mon",
        "tls+tcp://[::1]:9",
        "tcp://[::ffff:127.0.0.1]:5555",
        "tcp://127.0.0.1:0",
    };
    static const char *const no[] = {
        "tcp://0.0.0.0:5555",
        "tcp://:5555",
        "tcp://*:5555",
        "tcp://10.0.0.1:5555",
        "tcp://[::]:5555",
        "tcp://example.com:5",
        "tcp://127.0.0.1",
        "tcp://127.0.0.1:99999",
        "tcp://::1:5555",
        "tcp://[::1:5555",
        "ws://0.0.0.0:80/x",
        "zt://1.2.3:5",
        "",
        "ipc",
        "tcp://127.0.0.1:55a",
        "tcp://128.0.0.1:5555",
    };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        cr_expect(cra_url_is_loopback(yes[i]), "%s should be loopback", yes[i]);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        cr_expect(!cra_url_is_loopback(no[i]), "%s should not be loopback",
                  no[i]);
    }
    cr_expect(!cra_url_is_loopback(NULL));
}

Test(monitor, hostport_loopback) {
    cr_expect(cra_hostport_is_loopback("127.0.0.1:9100"));
    cr_expect(cra_hostport_is_loopback("localhost:9100"));
    cr_expect(cra_hostport_is_loopback("[::1]:9100"));
    cr_expect(!cra_hostport_is_loopback("127.0.0.1:0"));
    cr_expect(!cra_hostport_is_loopback("127.0.0.1"));
    cr_expect(!cra_hostport_is_loopback("0.0.0.0:9100"));
    cr_expect(!cra_hostport_is_loopback(":9100"));
    cr_expect(!cra_hostport_is_loopback("::1:9100"));
    cr_expect(!cra_hostport_is_loopback("192.168.1.1:9100"));
    cr_expect(!cra_hostport_is_loopback("127.0.0.1:65536"));
    cr_expect(!cra_hostport_is_loopback(NULL));
}

/* ---- Prometheus text ----------------------------------------------------- */

static bool
has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[n] == '\n') {
            return true;
        }
    }
    return false;
}

Test(monitor, metrics_text_from_documents) {
    json_t *status = json_loads(
        "{\"version\":7,\"uptime_s\":12.5,\"counts\":{\"workspaces\":2,"
        "\"flows\":3,\"actors\":9},\"config_service\":{\"notify_connected\":"
        "true,\"synced\":false},\"counters\":{\"notifies\":5,"
        "\"notifies_applied\":4,\"notifies_ignored\":1,\"fetches_ok\":6,"
        "\"fetches_failed\":2,\"fetches_pending\":1,\"resyncs\":3}}",
        0, NULL);
    json_t *flows = json_loads(
        "{\"version\":7,\"workspaces\":{\"a\":{\"f1\":{\"state\":\"running\"},"
        "\"f2\":{\"state\":\"failed\"}},\"b\":{\"f3\":{\"state\":"
        "\"running\"},\"f4\":{\"state\":\"weird\"}}}}",
        0, NULL);
    json_t *actors = json_loads(
        "{\"tree\":{\"name\":\"receiver\",\"id\":1,\"state\":\"running\","
        "\"restarts\":0,\"children\":[{\"name\":\"handlers\",\"id\":2,"
        "\"state\":\"running\",\"restarts\":1,\"children\":[{\"name\":"
        "\"handler:a\\\"b\\\\c\\nd\",\"id\":3,\"state\":\"restarting\","
        "\"restarts\":4}]}]},\"actors\":[{\"id\":1,\"name\":\"receiver\","
        "\"depth\":2,\"high_water\":9,\"msgs_in\":10,\"msgs_out\":11},"
        "{\"id\":42,\"name\":\"\",\"depth\":0,\"high_water\":1,"
        "\"msgs_in\":1,\"msgs_out\":0}]}",
        0, NULL);
    cr_assert_not_null(status);
    cr_assert_not_null(flows);
    cr_assert_not_null(actors);
    char *t = cra_metrics_text(status, actors, flows, 17);
    cr_assert_not_null(t);
    cr_expect(has_line(t, "# TYPE tg_gateway_active_flow_count gauge"));
    cr_expect(has_line(t, "tg_gateway_active_flow_count 2"), "%s", t);
    cr_expect(has_line(t, "cfgrecv_flows{state=\"running\"} 2"));
    cr_expect(has_line(t, "cfgrecv_flows{state=\"failed\"} 1"));
    cr_expect(has_line(t, "cfgrecv_flows{state=\"starting\"} 0"));
    cr_expect(has_line(t, "cfgrecv_flows{state=\"other\"} 1"));
    cr_expect(has_line(t, "cfgrecv_config_version 7"));
    cr_expect(has_line(t, "cfgrecv_config_service_connected 1"));
    cr_expect(has_line(t, "cfgrecv_synced 0"));
    cr_expect(has_line(t, "cfgrecv_notifies_total{result=\"ignored\"} 1"));
    cr_expect(has_line(t, "cfgrecv_fetches_total{result=\"failed\"} 2"));
    cr_expect(has_line(t, "# TYPE cfgrecv_actor_restarts_total counter"));
    cr_expect(has_line(t, "cfgrecv_actor_restarts_total{supervisor=\"\","
                          "actor=\"receiver\"} 0"));
    cr_expect(has_line(t, "cfgrecv_actor_restarts_total{supervisor="
                          "\"receiver\",actor=\"handlers\"} 1"));
    /* label escaping: quote, backslash and newline */
    cr_expect(has_line(t, "cfgrecv_actor_restarts_total{supervisor="
                          "\"handlers\",actor=\"handler:a\\\"b\\\\c\\nd\"} 4"),
              "%s", t);
    cr_expect(has_line(t, "cfgrecv_actor_up{supervisor=\"handlers\","
                          "actor=\"handler:a\\\"b\\\\c\\nd\"} 0"));
    cr_expect(has_line(t, "cfgrecv_actor_mailbox_depth{actor=\"receiver\"} 2"));
    cr_expect(has_line(t, "cfgrecv_actor_mailbox_high_water{actor=\"#42\"} 1"));
    cr_expect(has_line(t, "cfgrecv_events_dropped_total 17"));
    /* every line is a comment or "name{labels} value" */
    regex_t re;
    cr_assert_eq(regcomp(&re,
                         "^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\\{.*\\})? "
                         "[0-9.]+)$",
                         REG_EXTENDED | REG_NOSUB),
                 0);
    char *copy = strdup(t), *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save)) {
        cr_expect_eq(regexec(&re, l, 0, NULL, 0), 0, "bad line: %s", l);
    }
    regfree(&re);
    free(copy);
    cr_expect(t[strlen(t) - 1] == '\n');
    free(t);
    /* every part may be missing */
    t = cra_metrics_text(NULL, NULL, NULL, 0);
    cr_assert_not_null(t);
    cr_expect(has_line(t, "cfgrecv_events_dropped_total 0"));
    free(t);
    json_decref(status);
    json_decref(flows);
    json_decref(actors);
}

Test(monitor, workspaces_doc_counts_states) {
    json_t *flows = json_loads(
        "{\"version\":9,\"workspaces\":{\"a\":{\"running\":2,\"backoff\":1},"
        "\"late\":{\"starting\":1,\"failed\":2}}}",
        0, NULL);
    json_t *fm = json_loads(
        "{\"a\":{\"version\":8,\"notified\":8,\"flows\":3,\"fetching\":false},"
        "\"default\":{\"version\":2,\"notified\":2,\"flows\":0,"
        "\"fetching\":true}}",
        0, NULL);
    json_t *d = cra_monitor_workspaces_doc(flows, fm);
    cr_assert_not_null(d);
    json_t *want = json_loads(
        "{\"version\":9,\"workspaces\":{\"a\":{\"version\":8,\"flows\":3,"
        "\"fetching\":false,\"states\":{\"running\":2,\"backoff\":1}},"
        "\"default\":{\"version\":2,\"flows\":0,\"fetching\":true,"
        "\"states\":{}},\"late\":{\"version\":null,\"flows\":3,"
        "\"fetching\":false,\"states\":{\"starting\":1,\"failed\":2}}}}",
        0, NULL);
    char *got = json_dumps(d, JSON_SORT_KEYS);
    cr_expect(json_equal(d, want), "%s", got);
    free(got);
    json_decref(d);
    d = cra_monitor_workspaces_doc(flows, NULL);
    cr_assert_not_null(d);
    cr_expect_eq(json_object_size(json_object_get(d, "workspaces")), 2);
    json_decref(d);
    json_decref(want);
    json_decref(flows);
    json_decref(fm);
}

/* ---- events ------------------------------------------------------------- */

Test(monitor, event_text_has_event_and_ts_first) {
    /* 2024-05-01T12:34:56.789Z */
    uint64_t ms = 1714566896789ull;
    char *t = cra_event_text("flow.running", ms,
                             json_pack("{s:s, s:s, s:s}", "flow", "f1", "event",
                                       "forged", "ts", "forged"));
    cr_assert_not_null(t);
    cr_expect_str_eq(t, "{\"event\":\"flow.running\",\"ts\":"
                        "\"2024-05-01T12:34:56.789Z\",\"flow\":\"f1\"}");
    free(t);
    t = cra_event_text("x", 5, NULL);
    cr_expect_str_eq(t,
                     "{\"event\":\"x\",\"ts\":\"1970-01-01T00:00:00.005Z\"}");
    free(t);
    cr_expect_null(cra_event_text("bad\xff", 0, NULL));
    /* the seconds are cached per thread: the same second again, then
     * the next one */
    t = cra_event_text("x", 999, json_object());
    cr_expect_str_eq(t,
                     "{\"event\":\"x\",\"ts\":\"1970-01-01T00:00:00.999Z\"}");
    free(t);
    t = cra_event_text("x", 1000, NULL);
    cr_expect_str_eq(t,
                     "{\"event\":\"x\",\"ts\":\"1970-01-01T00:00:01.000Z\"}");
    free(t);
    /* hostile field values are escaped; a name that needs escaping takes
     * jansson's road and comes out the same way */
    t = cra_event_text("flow.failed", 5,
                       json_pack("{s:s, s:s}", "flow", "f\"1\n\x1b[2J",
                                 "error", "\xc3\xa9"));
    cr_expect_str_eq(t, "{\"event\":\"flow.failed\",\"ts\":"
                        "\"1970-01-01T00:00:00.005Z\",\"flow\":"
                        "\"f\\\"1\\n\\u001B[2J\",\"error\":\"\xc3\xa9\"}");
    free(t);
    t = cra_event_text("odd \"name\"", 5, json_pack("{s:i}", "n", 1));
    cr_expect_str_eq(t, "{\"event\":\"odd \\\"name\\\"\",\"ts\":"
                        "\"1970-01-01T00:00:00.005Z\",\"n\":1}");
    free(t);
}

Test(monitor, sup_event_fields) {
    cr_sup_event ev = {
        .kind = CR_SUP_EV_EXIT,
        .sup = 3,
        .sup_name = "receiver",
        .child = "fetcher",
        .id = 12,
        .restarts = 2,
        .reason = {.kind = CR_EXIT_ERROR, .code = 9, .text = "boom"},
    };
    const char *name = NULL;
    json_t *f = cra_sup_event_fields(&ev, &name);
    cr_assert_not_null(f);
    cr_expect_str_eq(name, "actor.exited");
    json_t *want =
        json_pack("{s:s, s:s, s:i, s:i, s:s, s:i, s:s}", "supervisor",
                  "receiver", "child", "fetcher", "restarts", 2, "id", 12,
                  "exit", "error", "code", 9, "reason", "boom");
    cr_expect(json_equal(f, want));
    json_decref(f);
    json_decref(want);

    ev.kind = CR_SUP_EV_RESTART_SCHEDULED;
    ev.id = 0;
    ev.delay_ms = 250;
    f = cra_sup_event_fields(&ev, &name);
    cr_expect_str_eq(name, "actor.restart_scheduled");
    cr_expect_eq(json_integer_value(json_object_get(f, "delay_ms")), 250);
    cr_expect_null(json_object_get(f, "reason"));
    cr_expect_null(json_object_get(f, "id"));
    json_decref(f);

    static const struct {
        cr_sup_event_kind k;
        const char *n;
    } names[] = {
        {CR_SUP_EV_START, "actor.started"},
        {CR_SUP_EV_RESTART, "actor.restarted"},
        {CR_SUP_EV_GIVEUP, "actor.gave_up"},
        {CR_SUP_EV_STOP_TIMEOUT, "actor.stop_timeout"},
        {CR_SUP_EV_REMOVED, "actor.removed"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ev.kind = names[i].k;
        f = cra_sup_event_fields(&ev, &name);
        cr_expect_not_null(f);
        cr_expect_str_eq(name, names[i].n);
        json_decref(f);
    }
    ev.kind = (cr_sup_event_kind)(1u << 20);
    cr_expect_null(cra_sup_event_fields(&ev, &name));
}

/* ---- the actors in a receiver ------------------------------------------- */

typedef struct fixture {
    char dir[64];
    char mon[160], ev[160], req[160], notify[160];
    char mon_path[96], ev_path[96];
    cr_rt *rt;
    cra_cfgsvc *svc;
    cra_receiver *recv;
} fixture;

static void
fx_start(fixture *f, int ipc_mode) {
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/cfgrecv-mon-test.XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    snprintf(f->mon_path, sizeof(f->mon_path), "%s/mon.ipc", f->dir);
    snprintf(f->ev_path, sizeof(f->ev_path), "%s/ev.ipc", f->dir);
    snprintf(f->mon, sizeof(f->mon), "ipc://%s", f->mon_path);
    snprintf(f->ev, sizeof(f->ev), "ipc://%s", f->ev_path);
    snprintf(f->req, sizeof(f->req), "ipc://%s/req.ipc", f->dir);
    snprintf(f->notify, sizeof(f->notify), "ipc://%s/not.ipc", f->dir);
    cr_assert_eq(cr_rt_new(NULL, &f->rt), 0);
    cra_cfgsvc_opts so = {
        .request_url = f->req, .notify_url = f->notify, .db_path = ":memory:"};
    cr_assert_eq(cra_cfgsvc_start(f->rt, &so, &f->svc), 0);
    cra_receiver_opts ro = {
        .request_url = f->req,
        .notify_url = f->notify,
        .fetch_timeout_ms = 1000,
        .monitor_url = f->mon,
        .events_url = f->ev,
        .monitor_ipc_mode = ipc_mode,
    };
    cr_assert_eq(cra_receiver_start(f->rt, &ro, &f->recv), 0);
}

static void
fx_stop(fixture *f) {
    cr_assert_eq(cra_receiver_stop(f->recv, 30000), 0);
    cra_cfgsvc_stop(f->svc);
    cr_expect_eq(cr_rt_actor_count(f->rt), 0, "actors left running");
    cr_rt_destroy(f->rt);
    /* clean shutdown: the socket files are gone with their listeners */
    cr_expect_neq(access(f->mon_path, F_OK), 0, "mon.ipc left behind");
    cr_expect_neq(access(f->ev_path, F_OK), 0, "ev.ipc left behind");
    rmdir(f->dir);
}

static json_t *
answer(fixture *f, const char *cmd, size_t len) {
    cra_monitor_opts o = {.recv = f->recv,
                          .started_ms = cr_now_ms(),
                          .request_url = f->req,
                          .notify_url = f->notify};
    char *text = cra_monitor_answer(f->rt, &o, cmd, len);
    cr_assert_not_null(text);
    size_t n = strlen(text);
    cr_assert(n > 0 && text[n - 1] == '\n', "reply must end in a newline");
    json_t *j = json_loads(text, 0, NULL);
    cr_assert_not_null(j, "not JSON: %s", text);
    free(text);
    return j;
}

static const json_t *
child_named(const json_t *node, const char *name) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(node, "children"), i, c) {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0) {
            return c;
        }
    }
    return NULL;
}

Test(monitor, answers_in_a_receiver, .timeout = 60) {
    fixture f;
    fx_start(&f, 0);
    struct stat st;
    cr_assert_eq(stat(f.mon_path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(stat(f.ev_path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);

    json_t *j = answer(&f, "actors", 6);
    const json_t *tree = json_object_get(j, "tree");
    cr_assert(json_is_object(tree));
    cr_expect_str_eq(json_string_value(json_object_get(tree, "name")),
                     "receiver");
    cr_expect_str_eq(json_string_value(json_object_get(tree, "kind")),
                     "supervisor");
    static const char *const order[] = {"monitor", "events",       "handlers",
                                        "fetcher", "flow-manager", "notify"};
    const json_t *kids = json_object_get(tree, "children");
    cr_assert_eq(json_array_size(kids), 6);
    for (size_t i = 0; i < 6; i++) {
        const json_t *c = json_array_get(kids, i);
        cr_expect_str_eq(json_string_value(json_object_get(c, "name")),
                         order[i]);
        static const char *const keys[] = {
            "id",       "kind",       "state",        "restarts",
            "depth",    "high_water", "capacity",     "msgs_in",
            "msgs_out", "last_exit",  "next_delay_ms"};
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            cr_expect_not_null(json_object_get(c, keys[k]), "%s.%s", order[i],
                               keys[k]);
        }
    }
    const json_t *h = child_named(tree, "handlers");
    cr_assert_not_null(h);
    cr_expect_not_null(child_named(h, "handler:flows"));
    cr_expect(json_array_size(json_object_get(j, "actors")) >= 8);
    json_decref(j);

    j = answer(&f, "status\n", 7);
    cr_expect(json_is_integer(json_object_get(j, "version")), "status");
    cr_expect(json_is_object(json_object_get(j, "counts")));
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_object_get(j, "config_service"), "request_url")),
                     f.req);
    json_decref(j);

    j = answer(&f, "flows", 5);
    json_t *want = json_pack("{s:i, s:{}}", "version", 0, "workspaces");
    cr_expect(json_equal(j, want));
    json_decref(want);
    json_decref(j);

    j = answer(&f, "flows 20", 8);
    want = json_pack("{s:i, s:{}, s:i, s:i, s:{s:i, s:i, s:i, s:i, s:i}, s:b}",
                     "version", 0, "workspaces", "total", 0, "workspace_count",
                     0, "states", "failed", 0, "backoff", 0, "starting", 0,
                     "stopping", 0, "running", 0, "truncated", 0);
    cr_expect(json_equal(j, want), "flows 20 with no flows");
    json_decref(want);
    json_decref(j);
    static const char *const bad_n[] = {"flows 0", "flows x", "flows 5x",
                                        "flows -1", "flows 2000000"};
    for (size_t i = 0; i < sizeof(bad_n) / sizeof(bad_n[0]); i++) {
        j = answer(&f, bad_n[i], strlen(bad_n[i]));
        cr_expect_not_null(json_object_get(j, "error"), "%s", bad_n[i]);
        json_decref(j);
    }

    j = answer(&f, "workspaces", 10);
    cr_expect(json_is_object(
        json_object_get(json_object_get(j, "workspaces"), "default")));
    json_decref(j);

    j = answer(&f, "help", 4);
    cr_expect_eq(json_array_size(json_object_get(j, "commands")), 7);
    json_decref(j);

    /* errors: unknown, empty, garbage, oversized */
    char big[4096];
    memset(big, 'a', sizeof(big));
    const struct {
        const char *c;
        size_t n;
    } bad[] = {{"bogus", 5},          {"", 0},
               {"\x01\xff\x00zz", 5}, {"  \n", 3},
               {big, sizeof(big)},    {"status\0x", 8}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = answer(&f, bad[i].c, bad[i].n);
        cr_expect(json_is_string(json_object_get(j, "error")), "case %zu", i);
        cr_expect_eq(json_object_size(j), 1);
        json_decref(j);
    }

    /* metrics: Prometheus text, not JSON */
    cra_monitor_opts o = {.recv = f.recv, .started_ms = cr_now_ms()};
    char *m = cra_monitor_answer(f.rt, &o, "metrics", 7);
    cr_assert_not_null(m);
    cr_expect(has_line(m, "tg_gateway_active_flow_count 0"), "%s", m);
    cr_expect(has_line(m, "cfgrecv_actor_restarts_total{supervisor="
                          "\"handlers\",actor=\"handler:flows\"} 0"),
              "%s", m);
    free(m);
    fx_stop(&f);
}

/* A SUB on the events endpoint; lines are read with poll on the receive
 * fd (no receive timeout on SUB: NOTES.md). */
typedef struct sub {
    nng_socket s;
    int fd;
    char *msg; /* the message being read: one event per line */
    size_t len, at;
} sub;

static void
sub_open(sub *s, const char *url) {
    memset(s, 0, sizeof(*s));
    cr_assert_eq(nng_sub0_open(&s->s), 0);
    cr_assert_eq(nng_socket_set(s->s, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
    /* room for a burst read only after it was sent: a SUB drops what its
     * queue cannot hold (default 128 messages) */
    cr_assert_eq(nng_socket_set_int(s->s, NNG_OPT_RECVBUF, 1024), 0);
    cr_assert_eq(nng_dial(s->s, url, NULL, 0), 0);
    cr_assert_eq(nng_socket_get_int(s->s, NNG_OPT_RECVFD, &s->fd), 0);
}

static void
sub_close(sub *s) {
    if (s->msg != NULL) {
        nng_free(s->msg, s->len);
    }
    nng_close(s->s);
}

/* sub_next returns the next event (parsed) or NULL after wait_ms. A
 * message holds one or more events, each a JSON object on its own line,
 * and ends with a newline. */
static json_t *
sub_next(sub *s, int wait_ms) {
    uint64_t end = cr_now_ms() + (uint64_t)wait_ms;
    for (;;) {
        if (s->msg != NULL && s->at < s->len) {
            char *line = s->msg + s->at;
            char *nl = memchr(line, '\n', s->len - s->at);
            cr_assert_not_null(nl, "a line without its newline");
            cr_assert(nl > line, "an empty line");
            s->at += (size_t)(nl - line) + 1;
            json_t *j = json_loadb(line, (size_t)(nl - line), 0, NULL);
            cr_assert_not_null(j, "a line that is not one JSON value");
            return j;
        }
        if (s->msg != NULL) {
            nng_free(s->msg, s->len);
            s->msg = NULL;
        }
        char *buf;
        size_t len;
        if (nng_recv(s->s, &buf, &len, NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK) ==
            0) {
            cr_assert(len > 0 && buf[len - 1] == '\n', "no newline");
            s->msg = buf;
            s->len = len;
            s->at = 0;
            continue;
        }
        uint64_t now = cr_now_ms();
        if (now >= end) {
            return NULL;
        }
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        poll(&p, 1, (int)(end - now));
    }
}

/* wait_event reads events until one named `name` (and, if child is set,
 * with that child) arrives; NULL after wait_ms. */
static json_t *
wait_event(sub *s, const char *name, const char *child, int wait_ms) {
    uint64_t end = cr_now_ms() + (uint64_t)wait_ms;
    while (cr_now_ms() < end) {
        json_t *j = sub_next(s, (int)(end - cr_now_ms()) + 1);
        if (j == NULL) {
            return NULL;
        }
        const char *ev = json_string_value(json_object_get(j, "event"));
        const char *ts = json_string_value(json_object_get(j, "ts"));
        cr_assert_not_null(ev);
        cr_assert_not_null(ts);
        cr_expect_eq(strlen(ts), 24, "ts %s", ts);
        cr_expect_eq(ts[23], 'Z');
        const char *c = json_string_value(json_object_get(j, "child"));
        if (strcmp(ev, name) == 0 &&
            (child == NULL || (c != NULL && strcmp(c, child) == 0))) {
            return j;
        }
        json_decref(j);
    }
    return NULL;
}

Test(monitor, events_published_with_supervisor_events, .timeout = 60) {
    fixture f;
    fx_start(&f, 0660);
    struct stat st;
    cr_assert_eq(stat(f.ev_path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0660);
    sub s;
    sub_open(&s, f.ev);
    /* the SUB's connection is asynchronous: emit until one arrives */
    json_t *j = NULL;
    for (int i = 0; i < 50 && j == NULL; i++) {
        cra_emit(f.rt, "test.hello", json_pack("{s:i}", "n", i));
        j = wait_event(&s, "test.hello", NULL, 100);
    }
    cr_assert_not_null(j, "no event arrived");
    cr_expect(json_is_integer(json_object_get(j, "n")));
    json_decref(j);

    /* a burst goes out batched, several lines a message when the events
     * actor is busy: every event arrives, once, in order (300 messages at
     * most: within both the PUB's and this SUB's queue) */
    for (int i = 0; i < 300; i++) {
        cra_emit(f.rt, "test.seq", json_pack("{s:i}", "n", i));
    }
    for (int i = 0; i < 300; i++) {
        j = wait_event(&s, "test.seq", NULL, 5000);
        cr_assert_not_null(j, "event %d of the burst missing", i);
        cr_assert_eq(json_integer_value(json_object_get(j, "n")), i);
        json_decref(j);
    }

    /* a child stopped from outside is restarted: exited, scheduled,
     * restarted, with its supervisor's name */
    cr_id n = CR_NOBODY;
    for (int i = 0; i < 100 && n == CR_NOBODY; i++) {
        if ((n = cr_whereis(f.rt, "notify")) == CR_NOBODY) {
            usleep(50 * 1000);
        }
    }
    cr_assert_neq(n, CR_NOBODY);
    cr_assert_eq(cr_stop(f.rt, n), 0);
    j = wait_event(&s, "actor.exited", "notify", 10000);
    cr_assert_not_null(j, "no actor.exited");
    cr_expect_str_eq(json_string_value(json_object_get(j, "supervisor")),
                     "receiver");
    cr_expect_str_eq(json_string_value(json_object_get(j, "exit")), "shutdown");
    json_decref(j);
    j = wait_event(&s, "actor.restart_scheduled", "notify", 10000);
    cr_assert_not_null(j, "no actor.restart_scheduled");
    cr_expect(json_is_integer(json_object_get(j, "delay_ms")));
    json_decref(j);
    j = wait_event(&s, "actor.restarted", "notify", 10000);
    cr_assert_not_null(j, "no actor.restarted");
    json_decref(j);

    /* the nested supervisor is followed too */
    cr_id hf = CR_NOBODY;
    for (int i = 0; i < 100 && hf == CR_NOBODY; i++) {
        if ((hf = cr_whereis(f.rt, "handler:flows")) == CR_NOBODY) {
            usleep(50 * 1000);
        }
    }
    cr_assert_neq(hf, CR_NOBODY);
    cr_assert_eq(cr_stop(f.rt, hf), 0);
    j = wait_event(&s, "actor.restarted", "handler:flows", 10000);
    cr_assert_not_null(j, "nested supervisor's events not seen");
    cr_expect_str_eq(json_string_value(json_object_get(j, "supervisor")),
                     "handlers");
    json_decref(j);
    sub_close(&s);
    fx_stop(&f);
}

/* An actor that emits 50 events while handling one message. */
static int
burst_handle(cr_ctx *ctx, void *state, const cr_msg *m) {
    (void)state;
    (void)m;
    for (int i = 0; i < 50; i++) {
        cra_emit(cr_ctx_rt(ctx), "test.actor", json_pack("{s:i}", "n", i));
    }
    return 0;
}

static const cr_behaviour burst_behaviour = {.kind = "burst",
                                             .handle = burst_handle};

/* An actor's events go to the events actor together once its message is
 * handled, and out as one PUB message, in order. */
Test(monitor, an_actors_events_leave_together, .timeout = 60) {
    fixture f;
    fx_start(&f, 0);
    sub s;
    sub_open(&s, f.ev);
    for (int i = 0; i < 500 && !cra_events_enabled(f.rt); i++) {
        usleep(10 * 1000);
    }
    cr_assert(cra_events_enabled(f.rt), "a subscriber connected");
    cr_id b;
    cr_assert_eq(cr_spawn(f.rt, &burst_behaviour, NULL, NULL, &b), 0);
    cr_assert_eq(cr_send(f.rt, CR_NOBODY, b, cr_msg_new(CR_MSG_USER)), 0);
    const char *msg = NULL;
    for (int i = 0; i < 50; i++) {
        json_t *j = wait_event(&s, "test.actor", NULL, 5000);
        cr_assert_not_null(j, "event %d missing", i);
        cr_assert_eq(json_integer_value(json_object_get(j, "n")), i);
        json_decref(j);
        if (i == 0) {
            msg = s.msg;
        }
        cr_expect_eq(s.msg, msg, "event %d came in another message", i);
    }
    cr_assert_eq(cr_stop_wait(f.rt, b, 5000), 0);
    /* the daemon side first: closing this SUB while the PUB still had it
     * hung inside nng_close about once in 40 runs (nng 1.5.2) */
    fx_stop(&f);
    sub_close(&s);
}

/* Events are built only while the stream has a subscriber: a PUB socket
 * with no pipe would drop them anyway (events.h). */
Test(monitor, events_built_only_while_watched, .timeout = 60) {
    fixture f;
    fx_start(&f, 0);
    for (int i = 0; i < 500 && cr_whereis(f.rt, "events") == CR_NOBODY; i++) {
        usleep(10 * 1000);
    }
    cr_assert(cr_whereis(f.rt, "events") != CR_NOBODY, "events actor up");
    cr_expect_not(cra_events_enabled(f.rt), "nobody watches yet");
    sub s;
    sub_open(&s, f.ev);
    for (int i = 0; i < 500 && !cra_events_enabled(f.rt); i++) {
        usleep(10 * 1000);
    }
    cr_assert(cra_events_enabled(f.rt), "a subscriber connected");
    sub_close(&s);
    for (int i = 0; i < 500 && cra_events_enabled(f.rt); i++) {
        usleep(10 * 1000);
    }
    cr_expect_not(cra_events_enabled(f.rt), "the subscriber left");
    fx_stop(&f);
}

Test(monitor, refuses_remote_and_busy_endpoints, .timeout = 60) {
    cr_rt *rt;
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    cra_receiver *r = NULL;
    cra_receiver_opts ro = {
        .request_url = "ipc:///tmp/cfgrecv-mon-test-none-req.ipc",
        .notify_url = "ipc:///tmp/cfgrecv-mon-test-none-not.ipc",
        .monitor_url = "tcp://0.0.0.0:45999",
    };
    cr_expect_eq(cra_receiver_start(rt, &ro, &r), CR_EINVAL);
    ro.monitor_url = NULL;
    ro.events_url = "tcp://10.1.2.3:45999";
    cr_expect_eq(cra_receiver_start(rt, &ro, &r), CR_EINVAL);
    ro.events_url = NULL;
    ro.metrics_listen = "0.0.0.0:45999";
    cr_expect_eq(cra_receiver_start(rt, &ro, &r), CR_EINVAL);
    cr_expect_eq(cr_rt_actor_count(rt), 0, "nothing may be left running");

    /* a busy URL fails start-up, unless that endpoint is optional */
    cra_monitor_cfg mc = {.url = "inproc://cfgrecv-mon-test-busy"};
    cra_monitor_endpoints *ep = NULL;
    cr_assert_eq(cra_monitor_open(&mc, &ep), 0);
    ro.metrics_listen = NULL;
    ro.monitor_url = "inproc://cfgrecv-mon-test-busy";
    cr_expect_eq(cra_receiver_start(rt, &ro, &r), CR_ENNG);
    cr_expect_eq(cr_rt_actor_count(rt), 0);
    ro.monitor_optional = true;
    cr_assert_eq(cra_receiver_start(rt, &ro, &r), 0);
    cr_expect_eq(cr_whereis(rt, "monitor"), CR_NOBODY,
                 "no monitor without its endpoint");
    cr_expect_eq(cra_receiver_stop(r, 30000), 0);
    cra_monitor_close(ep);
    cr_rt_destroy(rt);
}
