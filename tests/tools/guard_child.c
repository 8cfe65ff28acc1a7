/*
 * guard_child.c - a process of its own for test_tool_util's shutdown
 * guard tests (tools/tool_util.h). The test forks and execs it: a child
 * forked from the multi-threaded criterion worker could not safely start
 * threads or log (a lock held at the fork by another thread stays held
 * in the child; this hung once under ASan).
 *
 * usage: guard_child second-signal [PIDFILE] | hung-teardown |
 *        timely-teardown
 * Exit statuses are the guard's (1 or 7), 0 when nothing was cut short,
 * 98 when the guard could not start, 99 when it did not act in time.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tool_util.h"

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: guard_child MODE [PIDFILE]\n");
        return 2;
    }
    /* as the daemons have them: blocked in every thread */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    cr_tool_guard *g = cr_tool_guard_start(argc > 2 ? argv[2] : NULL);
    if (g == NULL) {
        return 98;
    }
    if (strcmp(argv[1], "second-signal") == 0) {
        kill(getpid(), SIGTERM); /* the first began the stop */
        sleep(5);                /* a stop that takes long */
    } else if (strcmp(argv[1], "hung-teardown") == 0) {
        cr_tool_guard_teardown(g, 7, 200);
        sleep(5); /* nng_close hanging */
    } else if (strcmp(argv[1], "timely-teardown") == 0) {
        cr_tool_guard_teardown(g, 7, 2000); /* room for a loaded machine */
        usleep(100 * 1000);
        cr_tool_guard_stop(g); /* joins: the process goes on */
        usleep(2200 * 1000);   /* past the deadline: nothing happens */
        return 0;
    } else {
        return 2;
    }
    return 99;
}
