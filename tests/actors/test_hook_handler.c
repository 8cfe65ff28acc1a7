/*
 * test_hook_handler.c - the hook runner in a real handler actor, with a
 * shell script as the hook: every transition runs the hook exactly once
 * and in order per flow, with the flow's JSON on stdin and the CFGRECV_*
 * environment; hooks of different flows overlap but never more than the
 * concurrency; a hook that fails twice then succeeds ends `running`; a
 * hanging hook is killed at the timeout (its process group too); a
 * failing stop hook is retried a bounded number of times and the flow is
 * gone; hostile ids are refused (failed, never retried, never run) while
 * the other flows carry on; shutdown runs every owed stop hook, including
 * the one of a start still in flight.
 */
#include <signal.h>

#include "hook_handler.h"
#include "procs_testlib.h"

static const char hook_body[] =
    "#!/bin/sh\n"
    "op=$1 ws=$2 id=$3\n"
    "now() { date +%s%N; }\n"
    "echo \"begin $op $ws $id $(now)\" >> @D@/times\n"
    "cat > \"@D@/in.$op.$id\"\n"
    "printf '%s %s %s v=%s bp=%s env=%s/%s\\n' \"$op\" \"$ws\" \"$id\" "
    "\"$CFGRECV_VERSION\" \"$CFGRECV_BLUEPRINT\" \"$CFGRECV_WORKSPACE\" "
    "\"$CFGRECV_FLOW\" >> @D@/calls\n"
    "case \"$id\" in\n"
    "  slow*) sleep 0.5 ;;\n"
    "  step*) sleep 0.1 ;;\n"
    "  flaky) if [ \"$op\" = start ]; then\n"
    "           n=$(cat @D@/cnt 2>/dev/null || echo 0); n=$((n+1))\n"
    "           echo $n > @D@/cnt\n"
    "           if [ $n -le 2 ]; then echo \"flaky attempt $n\" >&2; exit 1; "
    "fi\n"
    "         fi ;;\n"
    "  hang) if [ \"$op\" = start ]; then echo $$ > @D@/hang.pid; sleep 30; "
    "fi ;;\n"
    "  badstop) if [ \"$op\" = stop ]; then echo 'cannot stop' >&2; exit 1; "
    "fi ;;\n"
    "esac\n"
    "echo \"end $op $ws $id $(now)\" >> @D@/times\n"
    "exit 0\n";

static char hook_path[300];
static cra_hook_opts HO;
static cra_flow_handler HH;
static const cr_backoff_policy retry = {
    .min_ms = 200,
    .max_ms = 2000,
    .factor = 2.0,
    .jitter = CR_JITTER_NONE,
    .stable_ms = 10000,
};

static void
setup(void) {
    p_setup();
    p_script(hook_path, sizeof(hook_path), "hook", hook_body);
    HO = (cra_hook_opts){.path = hook_path,
                         .concurrency = 4,
                         .timeout_ms = 1500,
                         .stop_attempts = 3,
                         .retry = &retry};
    cra_hook_handler(&HH, &HO);
    p_spawn_handler(&HH);
}

TestSuite(hook, .init = setup, .fini = p_teardown_checked, .timeout = 90);

/* calls_of returns the malloc'd concatenation of the "calls" lines of
 * flow id (op and v= only), e.g. "start v=1;update v=2;". */
static char *
calls_of(const char *ws, const char *id) {
    char *all = p_read("calls");
    char *out = calloc(1, strlen(all) + 1);
    char want[200];
    snprintf(want, sizeof(want), " %s %s ", ws, id);
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        char *sp = strstr(line, want);
        if (sp == NULL || strchr(line, ' ') != sp) {
            continue;
        }
        char *v = strstr(line, " v=");
        char *bp = strstr(line, " bp=");
        strncat(out, line, (size_t)(sp - line));
        strncat(out, v, (size_t)(bp - v));
        strcat(out, ";");
    }
    free(all);
    return out;
}

Test(hook, once_per_transition_in_order_with_stdin_and_env) {
    char ids[6][16];
    char def1[6][128], def2[6][128];
    for (int i = 0; i < 6; i++) {
        snprintf(ids[i], sizeof(ids[i]), "step%d", i);
        snprintf(def1[i], sizeof(def1[i]),
                 "{\"blueprint-name\":\"bp-%d\",\"n\":1}", i);
        snprintf(def2[i], sizeof(def2[i]),
                 "{\"blueprint-name\":\"bp-%d\",\"n\":2}", i);
    }
    /* start and update in one diff: the update waits for the start */
    for (int i = 0; i < 6; i++) {
        p_send1("w1", 1, RM_OP_START, ids[i], def1[i]);
        p_send1("w1", 2, RM_OP_UPDATE, ids[i], def2[i]);
    }
    cr_assert(p_wait_count("calls", "update w1 step", 6, 20000));
    for (int i = 0; i < 6; i++) {
        cr_assert(p_wait_state("w1", ids[i], "running", 10000));
    }
    /* the same definition again (a resync) runs nothing */
    p_send1("w1", 3, RM_OP_UPDATE, "step0", def2[0]);
    for (int i = 0; i < 6; i++) {
        p_send1("w1", 4, RM_OP_STOP, ids[i], NULL);
    }
    for (int i = 0; i < 6; i++) {
        cr_assert(p_wait_state("w1", ids[i], "absent", 10000));
    }
    for (int i = 0; i < 6; i++) {
        char *c = calls_of("w1", ids[i]);
        cr_assert_str_eq(c, "start v=1;update v=2;stop v=2;", "%s: %s", ids[i],
                         c);
        free(c);
    }
    /* stdin: the definition of each transition; stop gets the last one */
    char *in = p_read("in.start.step3");
    cr_assert_str_eq(in, def1[3]);
    free(in);
    in = p_read("in.update.step3");
    cr_assert_str_eq(in, def2[3]);
    free(in);
    in = p_read("in.stop.step3");
    cr_assert_str_eq(in, def2[3]);
    free(in);
    cr_assert_eq(p_count("calls", "start w1 step3 v=1 bp=bp-3 env=w1/step3"),
                 1);
    cr_assert_eq(p_count("calls", "stop w1 step3 v=2 bp=bp-3 env=w1/step3"), 1);
}

Test(hook, flows_overlap_within_the_concurrency) {
    /* 8 flows whose start hook takes 0.5 s, 4 at a time */
    char ids[8][16];
    p_start_numbered("w", 1, "slow", ids, 8);
    for (int i = 0; i < 8; i++) {
        cr_assert(p_wait_state("w", ids[i], "running", 20000));
    }
    /* replay begin/end stamps in time order: how many ran at once */
    char *t = p_read("times");
    struct ev {
        long long ns;
        int d;
    } evs[32];
    int n = 0;
    for (char *l = strtok(t, "\n"); l && n < 32; l = strtok(NULL, "\n")) {
        char what[8], op[8], ws[8], id[16];
        long long ns;
        if (sscanf(l, "%7s %7s %7s %15s %lld", what, op, ws, id, &ns) == 5) {
            evs[n++] = (struct ev){ns, strcmp(what, "begin") == 0 ? 1 : -1};
        }
    }
    free(t);
    cr_assert_eq(n, 16);
    for (int i = 1; i < n; i++) { /* insertion sort; ends first on ties */
        for (int j = i;
             j > 0 && (evs[j].ns < evs[j - 1].ns ||
                       (evs[j].ns == evs[j - 1].ns && evs[j].d < evs[j - 1].d));
             j--) {
            struct ev x = evs[j];
            evs[j] = evs[j - 1];
            evs[j - 1] = x;
        }
    }
    int cur = 0, max = 0;
    for (int i = 0; i < n; i++) {
        cur += evs[i].d;
        max = cur > max ? cur : max;
    }
    cr_assert_geq(max, 2, "hooks of different flows overlap");
    cr_assert_leq(max, 4, "never more than --hook-concurrency: %d", max);
}

Test(hook, fails_twice_then_running) {
    p_send1("w", 1, RM_OP_START, "flaky", "{}");
    p_send1("w", 1, RM_OP_START, "other", "{}");
    cr_assert(p_wait_state("w", "other", "running", 10000));
    /* catch it in backoff, with the exit status and stderr */
    char err[1024] = "";
    cr_assert(p_catch_state("w", "flaky", "backoff", err, sizeof(err), 2500, 5),
              "flaky never seen in backoff");
    cr_assert(strstr(err, "start hook failed: exit status 1; stderr: flaky "
                          "attempt") != NULL,
              "error: %s", err);
    cr_assert(p_wait_state("w", "flaky", "running", 10000));
    uint32_t restarts = 0;
    cr_assert_str_eq(p_state("w", "flaky", err, sizeof(err), &restarts),
                     "running");
    cr_assert_eq(restarts, 2);
    cr_assert_str_eq(err, "");
    cr_assert_eq(p_count("calls", "start w flaky "), 3);
    cr_assert_eq(p_count("calls", "start w other "), 1);
}

Test(hook, hanging_hook_is_killed_at_the_timeout) {
    uint64_t t0 = cr_now_ms();
    p_send1("w", 1, RM_OP_START, "hang", "{}");
    char err[1024] = "";
    cr_assert(
        p_catch_state("w", "hang", "backoff", err, sizeof(err), 15000, 20),
        "the hanging hook never failed");
    cr_assert_geq(cr_now_ms() - t0, 1400, "not before the timeout");
    cr_assert(strstr(err, "start hook failed: timed out after 1500 ms "
                          "(killed)") != NULL,
              "error: %s", err);
    char *pid = p_read("hang.pid");
    long hp = atol(pid);
    free(pid);
    cr_assert_gt(hp, 0);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        gone = kill(-(pid_t)hp, 0) != 0; /* its whole process group */
        usleep(20000);
    }
    cr_assert(gone, "the hook's process group survived");
    p_send1("w", 2, RM_OP_STOP, "hang", NULL);
    cr_assert(p_wait_state("w", "hang", "absent", 10000));
}

Test(hook, failing_stop_is_retried_then_the_flow_is_gone) {
    p_send1("w", 1, RM_OP_START, "badstop", "{}");
    cr_assert(p_wait_state("w", "badstop", "running", 10000));
    p_send1("w", 2, RM_OP_STOP, "badstop", NULL);
    cr_assert(p_wait_state("w", "badstop", "absent", 15000));
    cr_assert_eq(p_count("calls", "stop w badstop "), 3);
    cr_assert(p_wait_count("log",
                           "stop hook failed: exit status 1; "
                           "stderr: cannot stop; gave up after 3 "
                           "attempts",
                           1, 5000));
    usleep(1500000); /* and no more attempts (a 4th would come 800 ms on) */
    cr_assert_eq(p_count("calls", "stop w badstop "), 3);
}

Test(hook, hostile_ids_are_refused_and_the_rest_carry_on) {
    static const char *const bad[] = {
        "has space",
        "quo'te\"s",
        "semi;touch PWNED",
        "$(touch PWNED)",
        "`touch PWNED`",
        "../../etc",
        "new\nline",
        "n\xc3\xafx",
        "-rf",
        ".hidden",
        "",
    };
    size_t nbad = sizeof(bad) / sizeof(*bad);
    p_op ops[16];
    size_t n = 0;
    for (size_t i = 0; i < nbad; i++) {
        ops[n++] = (p_op){RM_OP_START, bad[i], "{}"};
    }
    ops[n++] = (p_op){RM_OP_START, "flow-00", "{}"};
    ops[n++] = (p_op){RM_OP_START, "a:b@c.d_e-f", "{}"};
    p_send("w", 1, ops, n);
    /* a hostile workspace, with an innocent flow id */
    p_send1("ws $(touch PWNED)", 1, RM_OP_START, "flow-01", "{}");
    cr_assert(p_wait_state("w", "flow-00", "running", 10000));
    cr_assert(p_wait_state("w", "a:b@c.d_e-f", "running", 10000));
    for (size_t i = 0; i < nbad; i++) {
        cr_assert(p_wait_state("w", bad[i], "failed", 5000), "id #%zu", i);
    }
    cr_assert(p_wait_state("ws $(touch PWNED)", "flow-01", "failed", 5000));
    usleep(700000); /* past several retry periods: still failed */
    for (size_t i = 0; i < nbad; i++) {
        char err[1024];
        uint32_t restarts = 99;
        cr_assert_str_eq(p_state("w", bad[i], err, sizeof(err), &restarts),
                         "failed", "id #%zu", i);
        cr_assert_eq(restarts, 0, "refused ids are not retried");
        cr_assert(strstr(err, "flow id \"") == err &&
                      strstr(err, "refused") != NULL &&
                      strstr(err, "[A-Za-z0-9._:@-]") != NULL,
                  "error: %s", err);
        cr_assert_null(strchr(err, '\n'), "the id is escaped: %s", err);
    }
    char err[1024];
    p_state("ws $(touch PWNED)", "flow-01", err, sizeof(err), NULL);
    cr_assert(strstr(err, "workspace id \"ws $(touch PWNED)\" refused") == err,
              "%s", err);
    /* only the good ones ran */
    char *calls = p_read("calls");
    cr_assert_str_eq(calls, calls[8] == 'f'
                                ? "start w flow-00 v=1 bp= env=w/flow-00\n"
                                  "start w a:b@c.d_e-f v=1 bp= "
                                  "env=w/a:b@c.d_e-f\n"
                                : "start w a:b@c.d_e-f v=1 bp= "
                                  "env=w/a:b@c.d_e-f\n"
                                  "start w flow-00 v=1 bp= env=w/flow-00\n");
    free(calls);
    char p[300];
    cr_assert_neq(access(p_path(p, sizeof(p), "PWNED"), F_OK), 0);
    cr_assert_neq(access("PWNED", F_OK), 0);
    /* a new definition is refused again, and runs nothing either */
    p_send1("w", 2, RM_OP_UPDATE, "$(touch PWNED)", "{\"v\":2}");
    usleep(300000);
    cr_assert_str_eq(p_state("w", "$(touch PWNED)", NULL, 0, NULL), "failed");
    cr_assert_eq(p_count("calls", "\n"), 2);
    /* and removing a refused flow runs no stop hook */
    p_send1("w", 3, RM_OP_STOP, "has space", NULL);
    cr_assert(p_wait_state("w", "has space", "absent", 5000));
    cr_assert_eq(p_count("calls", "stop"), 0);
}

Test(hook, shutdown_runs_every_owed_stop_hook) {
    char ids[5][16];
    p_start_numbered("w", 1, "f", ids, 5);
    for (int i = 0; i < 5; i++) {
        cr_assert(p_wait_state("w", ids[i], "running", 10000));
    }
    /* a start in flight at shutdown: it succeeds, so its stop is owed */
    p_send1("w", 2, RM_OP_START, "slowstart", "{}");
    cr_assert(p_wait_count("calls", "start w slowstart", 1, 5000));
    cr_assert_eq(cr_stop_wait(P_rt, P_hid, 30000), 0);
    for (int i = 0; i < 5; i++) {
        char want[128];
        snprintf(want, sizeof(want), "stop w %s ", ids[i]);
        cr_assert_eq(p_count("calls", want), 1, "%s", want);
    }
    cr_assert_eq(p_count("calls", "stop w slowstart "), 1);
    cr_assert_eq(p_count("calls", "stop"), 6);
}

Test(hook, big_definition_on_stdin) {
    size_t n = 200 * 1024;
    char *def = malloc(n + 32);
    strcpy(def, "{\"pad\":\"");
    size_t k = strlen(def);
    memset(def + k, 'p', n);
    strcpy(def + k + n, "\"}");
    p_send1("w", 1, RM_OP_START, "big", def);
    cr_assert(p_wait_state("w", "big", "running", 10000));
    char *in = p_read("in.start.big");
    cr_assert_eq(strlen(in), strlen(def));
    cr_assert_str_eq(in, def);
    free(in);
    free(def);
}
