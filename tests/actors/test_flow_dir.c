/*
 * test_flow_dir.c - the merged flow directory (actors/flow_dir.h): how
 * the handlers' reports merge, which flows `flows N` lists, and that the
 * text is exactly what jansson writes for the same document, hostile
 * names included.
 */
#include "flow_dir.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

/* info fills one report with copies of the strings (infos_free). */
static cra_flow_info
info(const char *ws, const char *id, const char *state, const char *bp,
     const char *err, uint32_t restarts, uint64_t since)
{
    cra_flow_info f = {
        .workspace = strdup(ws),
        .id = strdup(id),
        .state = state,
        .error = strdup(err),
        .blueprint = strdup(bp),
        .restarts = restarts,
        .since_ms = since,
    };
    return f;
}

static void
infos_free(cra_flow_info *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].workspace);
        free(v[i].id);
        free(v[i].error);
        free(v[i].blueprint);
    }
}

/* roundtrip: the text parses, and jansson's own sorted compact dump of
 * what it parsed is the same bytes. */
static json_t *
roundtrip(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert_not_null(j, "not JSON (%s at %d): %s", e.text, e.position, text);
    char *again = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(text, again);
    free(again);
    return j;
}

/* merge_one merges the reports a[0..n) of one handler, "flows". */
static cra_flow_dir *
merge_one(cra_flow_info *a, size_t n)
{
    static const char *const names[] = {"flows"};
    cra_flow_info *v[] = {a};
    cra_flow_dir *d = cra_flow_dir_merge(names, v, &n, 1);
    cr_assert_not_null(d);
    return d;
}

static const char *
str_at(json_t *doc, const char *ws, const char *id, const char *field)
{
    json_t *f = json_object_get(
        json_object_get(json_object_get(doc, "workspaces"), ws), id);
    return json_string_value(json_object_get(f, field));
}

Test(flow_dir, merges_handlers_reports)
{
    const char *names[] = {"flows", "hook"};
    cra_flow_info a[] = {
        info("w1", "f1", "running", "", "", 1, 1000),
        info("w1", "f2", "running", "bp-a", "", 0, 5000),
        info("w2", "only-a", "running", "bp", "", 0, 1000),
    };
    cra_flow_info b[] = {
        info("w1", "f1", "backoff", "bp-b", "exit 3", 2, 9000),
        info("w1", "f2", "running", "bp-b", "", 4, 2000),
    };
    cra_flow_info *v[] = {a, b};
    size_t n[] = {3, 2};
    cra_flow_dir *d = cra_flow_dir_merge(names, v, n, 2);
    cr_assert_not_null(d);
    cr_expect_eq(cra_flow_dir_flows(d), 3);
    char *text = cra_flow_dir_text(d, 42, 0, NULL);
    cr_assert_not_null(text);
    json_t *j = roundtrip(text);
    cr_expect_eq(json_integer_value(json_object_get(j, "version")), 42);
    /* least advanced state wins; blueprint: the first non-empty, in
     * handler order; error: the first, with its handler's name */
    cr_expect_str_eq(str_at(j, "w1", "f1", "state"), "backoff");
    cr_expect_str_eq(str_at(j, "w1", "f1", "blueprint"), "bp-b");
    cr_expect_str_eq(str_at(j, "w1", "f1", "error"), "hook: exit 3");
    cr_expect_str_eq(str_at(j, "w1", "f2", "blueprint"), "bp-a");
    cr_expect_str_eq(str_at(j, "w1", "f2", "state"), "running");
    cr_expect(json_is_null(json_object_get(
        json_object_get(json_object_get(json_object_get(j, "workspaces"),
                                        "w1"),
                        "f2"),
        "error")));
    /* restarts summed, since the latest */
    json_t *f1 = json_object_get(
        json_object_get(json_object_get(j, "workspaces"), "w1"), "f1");
    cr_expect_eq(json_integer_value(json_object_get(f1, "restarts")), 3);
    char when[64];
    cra_rfc3339_ms(9000, when, sizeof(when));
    cr_expect_str_eq(str_at(j, "w1", "f1", "since"), when);
    /* a handler yet to hear of a flow: "starting" for it, and overall */
    cr_expect_str_eq(str_at(j, "w2", "only-a", "state"), "starting");
    json_t *h = json_object_get(
        json_object_get(json_object_get(json_object_get(j, "workspaces"),
                                        "w2"),
                        "only-a"),
        "handlers");
    cr_expect_str_eq(json_string_value(json_object_get(h, "flows")),
                     "running");
    cr_expect_str_eq(json_string_value(json_object_get(h, "hook")),
                     "starting");
    json_decref(j);
    free(text);

    json_t *ws = cra_flow_dir_workspaces(d);
    json_t *want = json_loads(
        "{\"w1\":{\"backoff\":1,\"running\":1},\"w2\":{\"starting\":1}}", 0,
        NULL);
    cr_expect(json_equal(ws, want));
    json_decref(ws);
    json_decref(want);
    cra_flow_dir_free(d);
    infos_free(a, 3);
    infos_free(b, 2);
}

Test(flow_dir, limit_lists_the_least_advanced_and_counts_all)
{
    static const char *states[] = {"running", "failed",   "running",
                                   "backoff", "stopping", "starting"};
    cra_flow_info a[60];
    for (int i = 0; i < 60; i++) {
        char ws[16], id[16];
        snprintf(ws, sizeof(ws), "w%d", i % 7);
        snprintf(id, sizeof(id), "f%02d", i);
        a[i] = info(ws, id, states[i % 6], "", "", 0, 0);
    }
    cra_flow_dir *d = merge_one(a, 60);
    /* 10 failed, 10 backoff, 10 starting, 10 stopping, 20 running */
    char *text = cra_flow_dir_text(d, 7, 25, NULL);
    cr_assert_not_null(text);
    json_t *j = roundtrip(text);
    cr_expect_eq(json_integer_value(json_object_get(j, "total")), 60);
    cr_expect_eq(json_integer_value(json_object_get(j, "workspace_count")), 7);
    cr_expect(json_is_true(json_object_get(j, "truncated")));
    json_t *want = json_loads("{\"failed\":10,\"backoff\":10,\"starting\":10,"
                              "\"stopping\":10,\"running\":20}",
                              0, NULL);
    cr_expect(json_equal(json_object_get(j, "states"), want));
    json_decref(want);
    int by[5] = {0}, listed = 0;
    const char *wk, *fk;
    json_t *wv, *fv;
    json_object_foreach(json_object_get(j, "workspaces"), wk, wv) {
        json_object_foreach(wv, fk, fv) {
            const char *st = json_string_value(json_object_get(fv, "state"));
            by[0] += strcmp(st, "failed") == 0;
            by[1] += strcmp(st, "backoff") == 0;
            by[2] += strcmp(st, "starting") == 0;
            by[3] += strcmp(st, "stopping") == 0;
            by[4] += strcmp(st, "running") == 0;
            listed++;
        }
    }
    cr_expect_eq(listed, 25);
    cr_expect(by[0] == 10 && by[1] == 10 && by[2] == 5 && by[3] == 0 &&
                  by[4] == 0,
              "listed failed %d backoff %d starting %d stopping %d "
              "running %d",
              by[0], by[1], by[2], by[3], by[4]);
    json_decref(j);
    free(text);
    /* a limit over the count lists everything, not truncated */
    text = cra_flow_dir_text(d, 7, 1000, NULL);
    j = roundtrip(text);
    cr_expect(json_is_false(json_object_get(j, "truncated")));
    json_decref(j);
    free(text);
    cra_flow_dir_free(d);
    infos_free(a, 60);
}

Test(flow_dir, hostile_names_are_written_as_jansson_writes_them)
{
    const char *names[] = {"h\"1", "a/b"};
    static const char *ids[] = {
        "plain",      "quote\"d",  "back\\slash", "new\nline",
        "tab\there",  "ctl\x01\x1f", "del\x7f",   "caf\xc3\xa9",
        "emoji\xf0\x9f\x98\x80", "sl/ash", "-lead", "$(rm -rf /)",
        "\xe2\x80\xa8sep",
    };
    size_t nid = sizeof(ids) / sizeof(ids[0]);
    cra_flow_info a[16], b[16];
    for (size_t i = 0; i < nid; i++) {
        a[i] = info("ws \"x\"\n", ids[i], "running", ids[i], "", 0, 0);
        b[i] = info("ws \"x\"\n", ids[i], "failed", "", ids[i], 1, 0);
    }
    cra_flow_info *v[] = {a, b};
    size_t n[] = {nid, nid};
    cra_flow_dir *d = cra_flow_dir_merge(names, v, n, 2);
    cr_assert_not_null(d);
    char *text = cra_flow_dir_text(d, 1, 0, NULL);
    cr_assert_not_null(text);
    json_t *j = roundtrip(text); /* byte for byte as jansson */
    for (size_t i = 0; i < nid; i++) {
        cr_expect_str_eq(str_at(j, "ws \"x\"\n", ids[i], "blueprint"), ids[i]);
        char want[64];
        snprintf(want, sizeof(want), "a/b: %s", ids[i]);
        cr_expect_str_eq(str_at(j, "ws \"x\"\n", ids[i], "error"), want);
    }
    json_decref(j);
    free(text);
    cra_flow_dir_free(d);
    infos_free(a, nid);
    infos_free(b, nid);
}

Test(flow_dir, invalid_utf8_still_makes_json)
{
    cra_flow_info a[] = {
        info("bad\xff", "f\xc3", "running", "\xed\xa0\x80", "", 0, 0),
        info("bad\xff", "ok", "running", "", "", 0, 0),
    };
    cra_flow_dir *d = merge_one(a, 2);
    char *text = cra_flow_dir_text(d, 1, 0, NULL);
    json_t *j = roundtrip(text);
    /* bad bytes read as U+FFFD, one each */
    cr_expect_str_eq(str_at(j, "bad\xef\xbf\xbd", "f\xef\xbf\xbd", "blueprint"),
                     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    cr_expect_str_eq(str_at(j, "bad\xef\xbf\xbd", "ok", "state"), "running");
    json_decref(j);
    free(text);
    json_t *ws = cra_flow_dir_workspaces(d);
    cr_assert_not_null(ws);
    cr_expect_eq(json_integer_value(json_object_get(
                     json_object_get(ws, "bad\xef\xbf\xbd"), "running")),
                 2);
    json_decref(ws);
    cra_flow_dir_free(d);
    infos_free(a, 2);
}

/* Names that are not UTF-8 are merged, sorted and counted as they are
 * shown, so the text stays what jansson would write: no duplicate keys,
 * U+FFFD sorted where jansson sorts it, counts that match the listing. */
Test(flow_dir, names_shown_alike_are_one_flow)
{
    cra_flow_info a[] = {
        info("a\xfe", "f", "running", "", "", 0, 0),
        info("a\xff", "f", "failed", "", "", 0, 0),
        info("w", "g\xfe", "running", "", "", 0, 0),
        info("w", "g\xff", "running", "", "", 0, 0),
        info("\xf0\x9f\x98\x80", "x", "running", "", "", 0, 0),
        info("\xff", "x", "running", "", "", 0, 0),
    };
    cra_flow_dir *d = merge_one(a, 6);
    cr_expect_eq(cra_flow_dir_flows(d), 4);
    for (size_t limit = 0; limit <= 10; limit += 10) {
        char *text = cra_flow_dir_text(d, 1, limit, NULL);
        json_t *j = roundtrip(text); /* sorted as jansson sorts U+FFFD */
        cr_expect_str_eq(str_at(j, "a\xef\xbf\xbd", "f", "state"), "failed");
        /* the handler's own entry agrees with the merged state, whichever
         * of the two reports came first */
        json_t *hs = json_object_get(
            json_object_get(
                json_object_get(json_object_get(j, "workspaces"),
                                "a\xef\xbf\xbd"),
                "f"),
            "handlers");
        cr_expect_str_eq(json_string_value(json_object_get(hs, "flows")),
                         "failed");
        if (limit != 0) {
            cr_expect_eq(json_integer_value(json_object_get(j, "total")), 4);
            cr_expect_eq(
                json_integer_value(json_object_get(j, "workspace_count")), 4);
        }
        json_decref(j);
        free(text);
    }
    json_t *ws = cra_flow_dir_workspaces(d);
    json_t *want = json_loads(
        "{\"a\xef\xbf\xbd\":{\"failed\":1},\"w\":{\"running\":1},"
        "\"\xf0\x9f\x98\x80\":{\"running\":1},"
        "\"\xef\xbf\xbd\":{\"running\":1}}",
        0, NULL);
    cr_expect(json_equal(ws, want));
    json_decref(ws);
    json_decref(want);
    cra_flow_dir_free(d);
    infos_free(a, 6);
}

/* No name is too long to be listed: a flow the monitor drops is a flow
 * nobody sees failing. */
Test(flow_dir, long_names_are_listed)
{
    char *ws = malloc(5001);
    memset(ws, 'w', 5000);
    ws[5000] = '\0';
    cra_flow_info a[] = {
        info(ws, "abcd", "failed", "", "", 0, 0),
        info("w", "ok", "running", "", "", 0, 0),
    };
    cra_flow_dir *d = merge_one(a, 2);
    cr_expect_eq(cra_flow_dir_flows(d), 2);
    char *text = cra_flow_dir_text(d, 1, 1, NULL);
    json_t *j = roundtrip(text);
    cr_expect_str_eq(str_at(j, ws, "abcd", "state"), "failed");
    json_decref(j);
    free(text);
    cra_flow_dir_free(d);
    infos_free(a, 2);
    free(ws);
}

/* ---- differential: random reports, the text against jansson --------- */

static unsigned
rnd(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 8) & 0xffffff;
}

/* rstr: up to maxlen characters of one of four alphabets: a few ASCII
 * letters (names collide), all of ASCII, ASCII mixed with valid UTF-8,
 * any byte but NUL (not UTF-8) */
static char *
rstr(unsigned *seed, int mode, int maxlen)
{
    int n = (int)(rnd(seed) % (unsigned)(maxlen + 1));
    char *s = malloc((size_t)n * 4 + 1), *o = s;
    static const char *const utf8[] = {"\xc3\xa9", "\xe2\x82\xac",
                                       "\xf0\x9f\x98\x80"};
    for (int i = 0; i < n; i++) {
        unsigned r = rnd(seed);
        if (mode == 0) {
            *o++ = (char)('a' + r % 3);
        } else if (mode == 1 || (mode == 2 && r % 4 == 0)) {
            *o++ = (char)(1 + r % 127);
        } else if (mode == 2) {
            const char *u = utf8[r % 3];
            memcpy(o, u, strlen(u));
            o += strlen(u);
        } else {
            *o++ = (char)(1 + r % 255);
        }
    }
    *o = '\0';
    return s;
}

Test(flow_dir, random_reports_write_what_jansson_writes)
{
    static const char *const states[] = {"failed",   "backoff", "starting",
                                         "stopping", "running", "unknown"};
    for (unsigned it = 0; it < 1500; it++) {
        unsigned seed = it;
        int mode = (int)(rnd(&seed) % 4);
        size_t nh = 1 + rnd(&seed) % 4;
        char *names[4];
        cra_flow_info *v[4];
        size_t n[4];
        for (size_t i = 0; i < nh; i++) {
            char *r = rstr(&seed, mode, 3);
            names[i] = malloc(strlen(r) + 4);
            sprintf(names[i], "%s%zu", r, i); /* distinct */
            free(r);
            n[i] = rnd(&seed) % 6;
            v[i] = calloc(n[i] ? n[i] : 1, sizeof(cra_flow_info));
            for (size_t j = 0; j < n[i]; j++) {
                v[i][j] = (cra_flow_info){
                    .workspace = rstr(&seed, mode, 3),
                    .id = rstr(&seed, mode, 3),
                    .state = states[rnd(&seed) % 6],
                    .error = rnd(&seed) % 2 ? rstr(&seed, mode, 5) : strdup(""),
                    .blueprint =
                        rnd(&seed) % 2 ? rstr(&seed, mode, 5) : strdup(""),
                    .restarts = rnd(&seed) % 5,
                    .since_ms = (uint64_t)(rnd(&seed) % 100000) * 1000,
                };
            }
        }
        cra_flow_dir *d =
            cra_flow_dir_merge((const char *const *)names, v, n, nh);
        cr_assert_not_null(d);
        for (size_t limit = 0; limit <= 3; limit += 3) {
            size_t len = 0;
            char *text = cra_flow_dir_text(d, it, limit, &len);
            cr_assert_not_null(text);
            cr_assert_eq(strlen(text), len);
            json_decref(roundtrip(text));
            free(text);
        }
        cra_flow_dir_free(d);
        for (size_t i = 0; i < nh; i++) {
            infos_free(v[i], n[i]);
            free(v[i]);
            free(names[i]);
        }
    }
}

Test(flow_dir, empty)
{
    cra_flow_dir *d = merge_one(NULL, 0);
    char *text = cra_flow_dir_text(d, 3, 0, NULL);
    cr_expect_str_eq(text, "{\"version\":3,\"workspaces\":{}}");
    free(text);
    text = cra_flow_dir_text(d, 3, 5, NULL);
    cr_expect_str_eq(text, "{\"states\":{\"backoff\":0,\"failed\":0,"
                           "\"running\":0,\"starting\":0,\"stopping\":0},"
                           "\"total\":0,\"truncated\":false,\"version\":3,"
                           "\"workspace_count\":0,\"workspaces\":{}}");
    free(text);
    cra_flow_dir_free(d);
}
