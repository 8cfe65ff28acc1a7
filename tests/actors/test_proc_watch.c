/*
 * test_proc_watch.c - the process watcher alone: exit statuses and stderr
 * tails, stdin larger than a pipe, exec failures reported by spawn, the
 * timeout kills the whole process group, SIGTERM then SIGKILL after the
 * grace, records taken exactly once, the child's clean state (signals,
 * descriptors, process group), and 100 children on one thread with no
 * zombie left.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "proc_watch.h"
#include "procs_testlib.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int exits_seen;

static void
on_exit_cb(void *arg, uint64_t key) {
    pthread_mutex_lock(&mu);
    exits_seen++;
    pthread_mutex_unlock(&mu);
}

static cra_procw *W;

/* wait_seen waits (the callback runs after the record is ready) until
 * `want` exits were announced, and returns how many were. */
static int
wait_seen(int want) {
    int seen = 0;
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&mu);
        seen = exits_seen;
        pthread_mutex_unlock(&mu);
        if (seen >= want) {
            break;
        }
        usleep(10000);
    }
    usleep(50000); /* and no more than that */
    pthread_mutex_lock(&mu);
    seen = exits_seen;
    pthread_mutex_unlock(&mu);
    return seen;
}

static void
setup(void) {
    p_setup();
    exits_seen = 0;
    cr_assert_eq(cra_procw_new("pw", on_exit_cb, NULL, &W), 0);
}

static void
teardown(void) {
    cra_procw_destroy(W, 1000);
    W = NULL;
    int z;
    int n = p_children(&z);
    p_teardown();
    cr_assert_eq(n, 0, "children left: %d (zombies %d)", n, z);
}

TestSuite(proc_watch, .init = setup, .fini = teardown, .timeout = 60);

static char *env_[] = {"PATH=/usr/bin:/bin", NULL};

static int
sh(uint64_t key, const char *script, const char *in, size_t inlen,
   uint64_t timeout_ms, char *err, size_t errlen) {
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    cra_proc_spec s = {
        .path = "/bin/sh",
        .argv = argv,
        .envp = env_,
        .input = in,
        .input_len = inlen,
        .prefix = "ws/f",
        .timeout_ms = timeout_ms,
    };
    return cra_procw_spawn(W, key, &s, err, errlen);
}

Test(proc_watch, exit_status_stderr_tail_and_big_stdin) {
    size_t big = 300 * 1024; /* more than a pipe holds */
    char *in = malloc(big);
    memset(in, 'x', big);
    char err[256];
    cr_assert_eq(sh(1,
                    "wc -c; for i in 1 2 3 4 5 6 7; do echo e$i >&2; "
                    "done; exit 3",
                    in, big, 0, err, sizeof(err)),
                 0, "%s", err);
    free(in);
    cra_proc_exit ex;
    cr_assert_eq(cra_procw_wait(W, 1, 10000, &ex), 0);
    cr_assert(!ex.signaled);
    cr_assert_eq(ex.code, 3);
    cr_assert(!cra_proc_exit_ok(&ex));
    /* the last five stderr lines, oldest first */
    cr_assert_str_eq(ex.tail, "e3 | e4 | e5 | e6 | e7");
    char text[1200];
    cra_proc_exit_text(&ex, text, sizeof(text));
    cr_assert_str_eq(text, "exit status 3; stderr: e3 | e4 | e5 | e6 | e7");
    cr_assert(p_count("log", "[pw] ws/f: 307200") == 1,
              "stdout line logged with its prefix");
    cr_assert(p_count("log", "[pw] ws/f [stderr]: e1") == 1);
    /* taken once */
    cr_assert_eq(cra_procw_take(W, 1, &ex), CR_ENOENT);
    cr_assert_eq(wait_seen(1), 1, "the exit callback ran once");
}

Test(proc_watch, exec_failure_is_reported_by_spawn) {
    char err[256];
    char *argv[] = {"/nonexistent/prog", NULL};
    cra_proc_spec s = {.path = "/nonexistent/prog",
                       .argv = argv,
                       .envp = env_,
                       .prefix = "ws/f"};
    cr_assert_eq(cra_procw_spawn(W, 1, &s, err, sizeof(err)), CR_EFAIL);
    cr_assert(strstr(err, "cannot execute /nonexistent/prog: No such file") !=
                  NULL,
              "%s", err);
    char p[300];
    p_script(p, sizeof(p), "noexec", "#!/bin/sh\nexit 0\n");
    chmod(p, 0644);
    s.path = p;
    cr_assert_eq(cra_procw_spawn(W, 2, &s, err, sizeof(err)), CR_EFAIL);
    cr_assert(strstr(err, "Permission denied") != NULL, "%s", err);
    cr_assert_eq(cra_procw_running(W), 0);
}

Test(proc_watch, timeout_kills_the_process_group) {
    char err[256], script[512], gcp[300];
    snprintf(script, sizeof(script), "sleep 30 & echo $! > %s; wait",
             p_path(gcp, sizeof(gcp), "gc"));
    cr_assert_eq(sh(7, script, NULL, 0, 300, err, sizeof(err)), 0);
    cra_proc_exit ex;
    cr_assert_eq(cra_procw_wait(W, 7, 10000, &ex), 0);
    cr_assert(ex.timed_out);
    cr_assert(ex.signaled && ex.code == SIGKILL);
    cr_assert_lt(ex.ran_ms, 5000);
    char text[256];
    cra_proc_exit_text(&ex, text, sizeof(text));
    cr_assert_str_eq(text, "timed out after 300 ms (killed)");
    char *gc = p_read("gc");
    long gpid = atol(gc);
    free(gc);
    cr_assert_gt(gpid, 0);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        gone = !p_alive(gpid);
        usleep(20000);
    }
    cr_assert(gone, "the hook's grandchild survived the timeout");
}

Test(proc_watch, term_then_kill_after_grace) {
    char err[256];
    /* cooperative: SIGTERM ends it */
    cr_assert_eq(sh(1, "exec sleep 30", NULL, 0, 0, err, sizeof(err)), 0);
    /* stubborn: ignores SIGTERM */
    cr_assert_eq(sh(2,
                    "trap '' TERM; echo ready; "
                    "while :; do sleep 0.05; done",
                    NULL, 0, 0, err, sizeof(err)),
                 0);
    cr_assert(p_wait_count("log", "ws/f: ready", 1, 5000));
    cra_proc_exit ex;
    cr_assert_eq(cra_procw_take(W, 1, &ex), CR_EINVAL, "still running");
    uint64_t t0 = cr_now_ms();
    cr_assert_eq(cra_procw_term(W, 1, 400), 0);
    cr_assert_eq(cra_procw_term(W, 2, 400), 0);
    cr_assert_eq(cra_procw_wait(W, 1, 10000, &ex), 0);
    cr_assert(ex.signaled && ex.code == SIGTERM, "code %d", ex.code);
    cr_assert_eq(cra_procw_wait(W, 2, 10000, &ex), 0);
    uint64_t took = cr_now_ms() - t0;
    cr_assert(ex.signaled && ex.code == SIGKILL, "code %d", ex.code);
    cr_assert(!ex.timed_out);
    cr_assert_geq(took, 350, "killed before the grace: %llu ms",
                  (unsigned long long)took);
    cr_assert_lt(took, 5000);
    cr_assert_eq(cra_procw_term(W, 2, 10), CR_ENOENT);
}

Test(proc_watch, child_starts_clean) {
    /* a blocked signal, an ignored one and an inheritable descriptor in
     * the parent must not reach the child */
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s, &old);
    signal(SIGPIPE, SIG_IGN);
    int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC */
    cr_assert_geq(leak, 3);
    char script[400], err[256];
    snprintf(script, sizeof(script),
             "grep -E '^Sig(Blk|Ign)' /proc/self/status; "
             "test -e /proc/self/fd/%d && echo fd-leaked || echo fd-closed; "
             "echo pgrp $(cut -d' ' -f5 /proc/$$/stat) pid $$; "
             "echo env $(env | sort | tr '\\n' ' ')",
             leak);
    cr_assert_eq(sh(3, script, NULL, 0, 0, err, sizeof(err)), 0);
    cra_proc_exit ex;
    cr_assert_eq(cra_procw_wait(W, 3, 10000, &ex), 0);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    signal(SIGPIPE, SIG_DFL);
    close(leak);
    cr_assert(cra_proc_exit_ok(&ex));
    cr_assert_eq(p_count("log", "SigBlk:\\t0000000000000000"), 1);
    cr_assert_eq(p_count("log", "SigIgn:\\t0000000000000000"), 1);
    cr_assert_eq(p_count("log", "fd-closed"), 1);
    char *log = p_read("log");
    char *pg = strstr(log, "ws/f: pgrp ");
    cr_assert_not_null(pg);
    long a = 0, b = 0;
    cr_assert_eq(sscanf(pg, "ws/f: pgrp %ld pid %ld", &a, &b), 2);
    cr_assert_eq(a, b, "the child leads its own process group");
    cr_assert_eq(a, (long)ex.pid);
    free(log);
    /* (sh itself adds PWD) */
    cr_assert_eq(p_count("log", "ws/f: env PATH=/usr/bin:/bin PWD="), 1,
                 "only the given environment");
}

Test(proc_watch, hundred_children_one_thread_no_zombies) {
    int t0 = p_threads();
    char err[256];
    for (uint64_t k = 1; k <= 100; k++) {
        cr_assert_eq(sh(k, k % 2 ? "exec sleep 30" : "exit 0", NULL, 0, 0, err,
                        sizeof(err)),
                     0, "%s", err);
    }
    cr_assert_eq(p_threads(), t0, "spawning costs no thread");
    for (int i = 0; i < 250 && cra_procw_running(W) > 50; i++) {
        usleep(20000);
    }
    cr_assert_eq(cra_procw_running(W), 50);
    cr_assert_eq(cra_procw_term_all(W, 2000), 50);
    for (int i = 0; i < 250 && cra_procw_running(W) > 0; i++) {
        usleep(20000);
    }
    cr_assert_eq(cra_procw_running(W), 0);
    int z;
    cr_assert_eq(p_children(&z), 0, "all reaped (zombies %d)", z);
    cra_proc_exit ex;
    for (uint64_t k = 1; k <= 100; k++) {
        cr_assert_eq(cra_procw_take(W, k, &ex), 0);
        cr_assert_eq(cra_proc_exit_ok(&ex), k % 2 == 0);
    }
    cr_assert_eq(wait_seen(100), 100);
}
