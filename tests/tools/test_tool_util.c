/*
 * test_tool_util.c - the programs' shared helpers: option values, and the
 * shutdown guard (a second signal exits 1 at once; a teardown that hangs
 * past its deadline exits with the status the program meant), each in a
 * process of its own (guard_child.c).
 */
#include "tool_util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

Test(tool_util, parses_durations_and_counts)
{
    uint64_t v = 0;
    cr_expect_eq(cr_tool_parse_duration("250ms", &v), 0);
    cr_expect_eq(v, 250);
    cr_expect_eq(cr_tool_parse_duration("3", &v), 0);
    cr_expect_eq(v, 3000);
    cr_expect_eq(cr_tool_parse_duration("2m", &v), 0);
    cr_expect_eq(v, 120000);
    cr_expect_eq(cr_tool_parse_duration("1h", &v), 0);
    cr_expect_eq(v, 3600000);
    v = 7;
    cr_expect_neq(cr_tool_parse_duration("soon", &v), 0);
    cr_expect_neq(cr_tool_parse_duration("-1s", &v), 0);
    cr_expect_neq(cr_tool_parse_duration("", &v), 0);
    cr_expect_eq(v, 7, "untouched on error");
    cr_expect_eq(cr_tool_parse_uint("18446744073709551615", &v), 0);
    cr_expect_neq(cr_tool_parse_uint("18446744073709551616", &v), 0);
    cr_expect_neq(cr_tool_parse_uint("12x", &v), 0);
}

/* child runs guard_child MODE [PIDFILE] (a fresh process: see
 * guard_child.c) and returns its exit status, or -1 if it did not exit
 * normally within 8 s. */
static int
child(const char *mode, const char *pidfile)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        execl(GUARD_CHILD, GUARD_CHILD, mode, pidfile, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 800; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(10 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

Test(tool_util, second_signal_exits_1_at_once)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_expect_eq(child("second-signal", NULL), 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_expect_lt(t1.tv_sec - t0.tv_sec, 4, "it waited for the stop");
}

Test(tool_util, the_pidfile_goes_with_a_forced_exit)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/cfgrecv-guard-%ld.pid",
             (long)getpid());
    long holder;
    int fd = cr_tool_pidfile_lock(path, &holder);
    cr_assert_geq(fd, 0);
    cr_assert_eq(cr_tool_pidfile_write(fd), 0);
    close(fd);
    cr_expect_eq(child("second-signal", path), 1);
    cr_expect_neq(access(path, F_OK), 0, "%s is still there", path);
    unlink(path);
}

/* A pidfile held by a running daemon keeps a second one out (it used to
 * be overwritten, and then unlinked by the second daemon's exit); one
 * left by a daemon that is gone, whatever pid it names, does not. */
Test(tool_util, a_held_pidfile_keeps_a_second_daemon_out)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/cfgrecv-pidlock-%ld.pid",
             (long)getpid());
    FILE *stale = fopen(path, "w");
    cr_assert_not_null(stale);
    fprintf(stale, "%ld\n", (long)getpid()); /* a live pid, no lock */
    fclose(stale);
    long holder = -1;
    int fd = cr_tool_pidfile_lock(path, &holder);
    cr_assert_geq(fd, 0, "a stale pidfile was refused");
    cr_assert_eq(cr_tool_pidfile_write(fd), 0);
    char buf[64] = {0};
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_expect_not_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    char want[32];
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    cr_expect_str_eq(buf, want);
    /* a second opener (another open file, as another process has) */
    cr_expect_lt(cr_tool_pidfile_lock(path, &holder), 0);
    cr_expect_eq(errno, EWOULDBLOCK);
    cr_expect_eq(holder, (long)getpid());
    close(fd); /* the daemon is gone */
    int again = cr_tool_pidfile_lock(path, &holder);
    cr_expect_geq(again, 0);
    close(again);
    unlink(path);
}

Test(tool_util, hung_teardown_exits_with_the_meant_status)
{
    cr_expect_eq(child("hung-teardown", NULL), 7);
}

Test(tool_util, a_teardown_in_time_is_left_alone)
{
    cr_expect_eq(child("timely-teardown", NULL), 0);
}
