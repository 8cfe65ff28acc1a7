/* tool_util.c - see tool_util.h. */
#include "tool_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>

#include "cfgrecv/actor.h" /* cr_now_ms */
#include "cfgrecv/log.h"

int
cr_tool_parse_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    for (const char *p = s; *p; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - d) / 10) {
            return -1; /* not a digit, or past UINT64_MAX */
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int
cr_tool_parse_duration(const char *s, uint64_t *ms)
{
    char num[32];
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n >= sizeof(num)) {
        return -1;
    }
    memcpy(num, s, n);
    num[n] = '\0';
    uint64_t v, mult;
    if (cr_tool_parse_uint(num, &v) != 0) {
        return -1;
    }
    const char *unit = s + n;
    if (strcmp(unit, "") == 0 || strcmp(unit, "s") == 0) {
        mult = 1000;
    } else if (strcmp(unit, "ms") == 0) {
        mult = 1;
    } else if (strcmp(unit, "m") == 0) {
        mult = 60000;
    } else if (strcmp(unit, "h") == 0) {
        mult = 3600000;
    } else {
        return -1;
    }
    if (v > UINT64_MAX / mult) {
        return -1;
    }
    *ms = v * mult;
    return 0;
}

int
cr_tool_pidfile_lock(const char *path, long *holder)
{
    *holder = 0;
    for (int tries = 0; tries < 8; tries++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            if (e == EWOULDBLOCK) {
                char buf[32] = {0};
                if (pread(fd, buf, sizeof(buf) - 1, 0) > 0) {
                    *holder = strtol(buf, NULL, 10);
                }
            }
            close(fd);
            errno = e;
            return -1;
        }
        /* The holder before us may have unlinked the file (at its exit)
         * between our open and our flock: a lock on a name that is gone
         * keeps nobody out, so take the name again. */
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(path, &named) == 0 &&
            held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
            return fd;
        }
        close(fd);
    }
    errno = EAGAIN;
    return -1;
}

int
cr_tool_pidfile_write(int fd)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    /* written before the old content is cut: a reader never sees an
     * empty file, and the first line is ours once pwrite returned */
    if (pwrite(fd, buf, (size_t)len, 0) != len || ftruncate(fd, len) != 0) {
        return -1;
    }
    return 0;
}

void
cr_tool_version(const char *prog)
{
    printf("%s %s (nng %s)\n", prog, CFGRECV_VERSION, nng_version());
}

/* ---- the shutdown guard ------------------------------------------------ */

#define GUARD_COMP "shutdown"
#define GUARD_TICK_MS 100

enum { GUARD_STOPPING, GUARD_TEARDOWN, GUARD_DONE };

struct cr_tool_guard {
    pthread_t thr;
    sigset_t sigs;         /* SIGTERM and SIGINT */
    const char *pidfile;   /* unlinked before a forced exit */
    int status;            /* the exit status of a teardown cut short */
    uint64_t until_ms;     /* teardown deadline, cr_now_ms */
    int teardown_ms;       /* its length, for the log line */
    _Atomic int phase;     /* written by the program, read by the guard;
                              release/acquire publish status, until_ms */
};

static void
guard_exit(cr_tool_guard *g, int status)
{
    if (g->pidfile != NULL) {
        unlink(g->pidfile);
    }
    CR_INFO(GUARD_COMP, "exit %d", status);
    _exit(status);
}

static void *
guard_main(void *arg)
{
    cr_tool_guard *g = arg;
    struct timespec tick = {.tv_sec = 0,
                            .tv_nsec = GUARD_TICK_MS * 1000000L};
    for (;;) {
        int phase = atomic_load_explicit(&g->phase, memory_order_acquire);
        if (phase == GUARD_DONE) {
            return NULL;
        }
        int sig = sigtimedwait(&g->sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            CR_WARN(GUARD_COMP, "%s during the stop: exiting now, what "
                                "is not stopped yet is left as it is",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT");
            guard_exit(g, 1);
        }
        if (phase == GUARD_TEARDOWN && cr_now_ms() >= g->until_ms) {
            CR_ERROR(GUARD_COMP, "closing the sockets hung for %d ms "
                                 "after the stop was done (nng 1.5.2, nng "
                                 "issue #1813); exiting without it",
                     g->teardown_ms);
            guard_exit(g, g->status);
        }
    }
}

cr_tool_guard *
cr_tool_guard_start(const char *pidfile)
{
    cr_tool_guard *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        CR_WARN(GUARD_COMP, "no shutdown guard: out of memory");
        return NULL;
    }
    sigemptyset(&g->sigs);
    sigaddset(&g->sigs, SIGTERM);
    sigaddset(&g->sigs, SIGINT);
    g->pidfile = pidfile;
    atomic_init(&g->phase, GUARD_STOPPING);
    if (pthread_create(&g->thr, NULL, guard_main, g) != 0) {
        CR_WARN(GUARD_COMP, "no shutdown guard: a second signal will wait");
        free(g);
        return NULL;
    }
    return g;
}

void
cr_tool_guard_teardown(cr_tool_guard *g, int status, int ms)
{
    if (g == NULL) {
        return;
    }
    g->status = status;
    g->teardown_ms = ms;
    g->until_ms = cr_now_ms() + (uint64_t)ms;
    atomic_store_explicit(&g->phase, GUARD_TEARDOWN, memory_order_release);
}

void
cr_tool_guard_stop(cr_tool_guard *g)
{
    if (g == NULL) {
        return;
    }
    atomic_store_explicit(&g->phase, GUARD_DONE, memory_order_release);
    pthread_join(g->thr, NULL);
    free(g);
}
