/*
 * test_worker_handler.c - the worker supervisor in a real handler actor,
 * with a shell script as the worker: argv, stdin and environment; output
 * lines logged with the flow's prefix; a worker that exits is restarted
 * with growing delays; SIGTERM then SIGKILL after the grace; a changed
 * definition is stop then start; 200 workers on one watcher thread leave
 * no zombie; shutdown stops every worker within one grace period; exec
 * failures back off; hostile ids are refused.
 */
#include <signal.h>

#include "procs_testlib.h"
#include "worker_handler.h"

static const char worker_body[] =
    "#!/bin/sh\n"
    "# argv: --tag T WORKSPACE FLOW\n"
    "echo \"start $3 $4 $$ $(date +%s%N) tag=$1:$2 bp=$CFGRECV_BLUEPRINT "
    "v=$CFGRECV_VERSION\" >> @D@/starts\n"
    "cat > \"@D@/in.$4\"\n"
    "case \"$4\" in\n"
    "  crash*) echo 'crashing now' >&2; exit 3 ;;\n"
    "  stubborn*) trap 'echo \"$4 got TERM\" >> @D@/terms' TERM\n"
    "             echo ready; while :; do sleep 0.05; done ;;\n"
    "  polite*) trap 'echo \"$4 got TERM\" >> @D@/terms; exit 0' TERM\n"
    "           echo ready; while :; do sleep 0.05; done ;;\n"
    "  *) echo \"hello from $4\"; exec sleep 1000 ;;\n"
    "esac\n";

static char worker_path[300];
static const char *const worker_args[] = {"--tag", "T"};
static cra_worker_opts WO;
static cra_flow_handler WH;
static const cr_backoff_policy retry = {
    .min_ms = 100,
    .max_ms = 5000,
    .factor = 2.0,
    .jitter = CR_JITTER_NONE,
    .stable_ms = 10000,
};

static void
setup(void) {
    p_setup();
    p_script(worker_path, sizeof(worker_path), "worker", worker_body);
    WO = (cra_worker_opts){.path = worker_path,
                           .args = worker_args,
                           .nargs = 2,
                           .grace_ms = 1500,
                           .retry = &retry};
    cra_worker_handler(&WH, &WO);
    p_spawn_handler(&WH);
}

TestSuite(worker, .init = setup, .fini = p_teardown_checked, .timeout = 120);

/* pids_of collects the pids of flow id's starts, in order. */
static int
starts_of(const char *id, long *pids, long long *ns, int max) {
    char *s = p_read("starts");
    int n = 0;
    for (char *l = strtok(s, "\n"); l && n < max; l = strtok(NULL, "\n")) {
        char ws[64], fid[64];
        long pid;
        long long t;
        if (sscanf(l, "start %63s %63s %ld %lld", ws, fid, &pid, &t) == 4 &&
            strcmp(fid, id) == 0) {
            if (pids != NULL) {
                pids[n] = pid;
            }
            if (ns != NULL) {
                ns[n] = t;
            }
            n++;
        }
    }
    free(s);
    return n;
}

static bool
wait_dead(long pid, int ms) {
    for (int t = 0; t <= ms; t += 20) {
        if (!p_alive(pid)) {
            return true;
        }
        usleep(20000);
    }
    return false;
}

Test(worker, runs_with_argv_stdin_env_and_logged_output) {
    const char *def = "{\"blueprint-name\":\"bp-1\",\"x\":1}";
    p_send1("w", 7, RM_OP_START, "plain", def);
    cr_assert(p_wait_state("w", "plain", "running", 10000));
    cr_assert(
        p_wait_count("log", "[worker] w/plain: hello from plain", 1, 5000));
    cr_assert(p_wait_count("starts", "start w plain ", 1, 5000));
    cr_assert_eq(p_count("starts", "tag=--tag:T bp=bp-1 v=7"), 1);
    for (int i = 0; i < 100 && p_count("in.plain", "}") == 0; i++) {
        usleep(20000);
    }
    char *in = p_read("in.plain");
    cr_assert_str_eq(in, def);
    free(in);
    long pid;
    cr_assert_eq(starts_of("plain", &pid, NULL, 1), 1);
    cr_assert(p_alive(pid));
    p_send1("w", 8, RM_OP_STOP, "plain", NULL);
    cr_assert(p_wait_state("w", "plain", "absent", 10000));
    cr_assert(wait_dead(pid, 2000));
}

Test(worker, exits_are_restarted_with_growing_delays) {
    p_send1("w", 1, RM_OP_START, "crash", "{}");
    cr_assert(p_wait_count("starts", "start w crash ", 5, 20000));
    long long ns[8];
    int n = starts_of("crash", NULL, ns, 8);
    cr_assert_geq(n, 5);
    /* delays 100, 200, 400, 800 ms (no jitter in this policy) */
    long long gap[4];
    for (int i = 0; i < 4; i++) {
        gap[i] = (ns[i + 1] - ns[i]) / 1000000;
    }
    /* each gap is its delay plus a fork and exec of a large process,
     * which a loaded machine can stretch by 100 ms: lower bounds per gap,
     * and growth where the margin is wide */
    for (int i = 0; i < 4; i++) {
        cr_assert_geq(gap[i], (100 << i) * 9 / 10, "gaps %lld %lld %lld %lld",
                      gap[0], gap[1], gap[2], gap[3]);
    }
    cr_assert_gt(gap[3], gap[0], "gaps %lld %lld %lld %lld", gap[0], gap[1],
                 gap[2], gap[3]);
    char err[1024];
    uint32_t restarts = 0;
    const char *st = p_state("w", "crash", err, sizeof(err), &restarts);
    cr_assert(strcmp(st, "backoff") == 0 || strcmp(st, "running") == 0, "%s",
              st);
    cr_assert_geq(restarts, 4);
    if (strcmp(st, "backoff") == 0) {
        cr_assert(strstr(err, "worker exited after ") == err &&
                      strstr(err, "exit status 3; stderr: crashing now") !=
                          NULL,
                  "error: %s", err);
    }
    p_send1("w", 2, RM_OP_STOP, "crash", NULL);
    cr_assert(p_wait_state("w", "crash", "absent", 10000));
}

Test(worker, sigterm_then_sigkill_after_the_grace) {
    p_op ops[] = {{RM_OP_START, "stubborn", "{}"},
                  {RM_OP_START, "polite", "{}"}};
    p_send("w", 1, ops, 2);
    cr_assert(p_wait_count("log", "w/stubborn: ready", 1, 10000));
    cr_assert(p_wait_count("log", "w/polite: ready", 1, 10000));
    long sp, pp;
    cr_assert_eq(starts_of("stubborn", &sp, NULL, 1), 1);
    cr_assert_eq(starts_of("polite", &pp, NULL, 1), 1);
    uint64_t t0 = cr_now_ms();
    p_send1("w", 2, RM_OP_STOP, "polite", NULL);
    cr_assert(p_wait_state("w", "polite", "absent", 10000));
    uint64_t polite_ms = cr_now_ms() - t0;
    t0 = cr_now_ms();
    p_send1("w", 3, RM_OP_STOP, "stubborn", NULL);
    cr_assert(p_wait_state("w", "stubborn", "absent", 10000));
    uint64_t stubborn_ms = cr_now_ms() - t0;
    cr_assert_lt(polite_ms, 1200,
                 "a worker that exits on SIGTERM is not "
                 "kept for the grace (%llu ms)",
                 (unsigned long long)polite_ms);
    cr_assert_geq(stubborn_ms, 1400, "SIGKILL before the grace (%llu ms)",
                  (unsigned long long)stubborn_ms);
    cr_assert_eq(p_count("terms", "polite got TERM"), 1);
    cr_assert_geq(p_count("terms", "stubborn got TERM"), 1);
    cr_assert(wait_dead(sp, 2000));
    cr_assert(wait_dead(pp, 2000));
    cr_assert(p_wait_count("log",
                           "still running after its grace period; "
                           "SIGKILL",
                           1, 1000));
}

Test(worker, definition_change_is_stop_then_start) {
    p_send1("w", 1, RM_OP_START, "plain", "{\"blueprint-name\":\"one\"}");
    cr_assert(p_wait_count("starts", "start w plain ", 1, 10000));
    cr_assert(p_wait_state("w", "plain", "running", 10000));
    p_send1("w", 2, RM_OP_UPDATE, "plain", "{\"blueprint-name\":\"two\"}");
    cr_assert(p_wait_count("starts", "start w plain ", 2, 10000));
    cr_assert(p_wait_state("w", "plain", "running", 10000));
    long pids[2];
    cr_assert_eq(starts_of("plain", pids, NULL, 2), 2);
    cr_assert(wait_dead(pids[0], 2000), "the old worker was stopped");
    cr_assert(p_alive(pids[1]));
    cr_assert_eq(p_count("starts", "bp=one v=1"), 1);
    cr_assert_eq(p_count("starts", "bp=two v=2"), 1);
    for (int i = 0; i < 100 && p_count("in.plain", "two") == 0; i++) {
        usleep(20000);
    }
    char *in = p_read("in.plain");
    cr_assert_str_eq(in, "{\"blueprint-name\":\"two\"}");
    free(in);
}

Test(worker, two_hundred_workers_one_thread_no_zombies) {
    enum { N = 200 };
    cr_assert(p_wait_state("w", "none", "absent", 1000)); /* actor up */
    int threads = p_threads();
    static p_op ops[N];
    static char ids[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "p%03d", i);
        ops[i] = (p_op){RM_OP_START, ids[i], "{}"};
    }
    p_send("w", 1, ops, N);
    for (int i = 0; i < 1500 && p_count_state("running") < N; i++) {
        usleep(20000);
    }
    cr_assert_eq(p_count_state("running"), N);
    cr_assert_eq(p_threads(), threads, "workers cost no threads");
    int z;
    for (int i = 0; i < 250 && p_children(&z) < N; i++) {
        usleep(20000);
    }
    cr_assert_eq(p_children(&z), N);
    cr_assert_eq(z, 0);
    /* "running" means exec'd: on a loaded machine a worker may not have
     * written its start line yet, and a stop now would kill it first */
    cr_assert(p_wait_count("starts", "start w p", N, 30000));
    for (int i = 0; i < N; i++) {
        ops[i] = (p_op){RM_OP_STOP, ids[i], NULL};
    }
    p_send("w", 2, ops, N);
    for (int i = 0; i < 1500 && p_count_flows() > 0; i++) {
        usleep(20000);
    }
    cr_assert_eq(p_count_flows(), 0);
    cr_assert_eq(p_children(&z), 0, "zombies: %d", z);
    cr_assert_eq(p_count("starts", "start w p"), N, "each started once");
}

Test(worker, shutdown_stops_every_worker_within_one_grace) {
    char ids[6][16];
    p_start_numbered("w", 1, "stubborn", ids, 6);
    cr_assert(p_wait_count("log", ": ready", 6, 10000));
    int z;
    cr_assert_eq(p_children(&z), 6);
    uint64_t t0 = cr_now_ms();
    cr_assert_eq(cr_stop_wait(P_rt, P_hid, 30000), 0);
    uint64_t took = cr_now_ms() - t0;
    /* one grace for all (1.5 s), not one each (9 s) */
    cr_assert_geq(took, 1400);
    cr_assert_lt(took, 4500, "took %llu ms", (unsigned long long)took);
    cr_assert_eq(p_children(&z), 0);
    cr_assert_eq(p_count("terms", "got TERM"), 6);
}

Test(worker, exec_failure_backs_off) {
    cr_assert_eq(cr_stop_wait(P_rt, P_hid, 10000), 0);
    WO.path = "/nonexistent/worker";
    cra_worker_handler(&WH, &WO);
    p_spawn_handler(&WH);
    p_send1("w", 1, RM_OP_START, "plain", "{}");
    char err[1024] = "";
    cr_assert(
        p_catch_state("w", "plain", "backoff", err, sizeof(err), 5000, 10));
    cr_assert(strstr(err, "cannot execute /nonexistent/worker: No such "
                          "file or directory") != NULL,
              "%s", err);
}

Test(worker, hostile_ids_are_refused) {
    p_op ops[] = {{RM_OP_START, "a b", "{}"},
                  {RM_OP_START, "$(touch PWNED)", "{}"},
                  {RM_OP_START, "`touch PWNED`", "{}"},
                  {RM_OP_START, "x;touch PWNED", "{}"},
                  {RM_OP_START, "../up", "{}"},
                  {RM_OP_START, "l\nf", "{}"},
                  {RM_OP_START, "\xe2\x98\x83", "{}"},
                  {RM_OP_START, "flow-00", "{}"}};
    size_t n = sizeof(ops) / sizeof(*ops);
    p_send("w", 1, ops, n);
    cr_assert(p_wait_state("w", "flow-00", "running", 10000));
    for (size_t i = 0; i + 1 < n; i++) {
        cr_assert(p_wait_state("w", ops[i].id, "failed", 5000), "#%zu", i);
    }
    /* "running" means exec'd: its start line may still be on its way */
    cr_assert(p_wait_count("starts", "start w flow-00", 1, 5000));
    usleep(500000);
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t restarts = 9;
        char err[1024];
        cr_assert_str_eq(p_state("w", ops[i].id, err, sizeof(err), &restarts),
                         "failed");
        cr_assert_eq(restarts, 0);
        cr_assert(strstr(err, "refused") != NULL, "%s", err);
    }
    cr_assert_eq(p_count("starts", "start "), 1);
    char p[300];
    cr_assert_neq(access(p_path(p, sizeof(p), "PWNED"), F_OK), 0);
    cr_assert_neq(access("PWNED", F_OK), 0);
}
