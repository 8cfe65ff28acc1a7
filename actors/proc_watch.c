/*
 * proc_watch.c - one thread watches every child: epoll over pidfds and
 * pipes, deadlines from the epoll timeout.
 *
 * Design notes. A thread per child (blocking waitpid) would cost 1,000
 * threads for 1,000 workers, and SIGCHLD is process-wide and awkward in a
 * library. A pidfd (pidfd_open, Linux 5.3) becomes readable when its
 * process exits, so one epoll set covers exits, output and stdin; the
 * watcher reaps with waitpid(pid, WNOHANG) only the pid whose pidfd fired
 * (a pid cannot be reused before it is reaped, so this never reaps
 * anything else). Deadlines (timeouts, SIGTERM-then-SIGKILL grace) are a
 * field per child, scanned after each batch; the nearest one sets the
 * epoll timeout. The scan is O(children) per wake-up, which for a few
 * thousand processes costs less than one fork.
 *
 * Every structure lives under w->mu. Callers add children and send
 * signals under it; the watcher thread holds it while it handles a batch
 * (including logging output lines) and calls exit callbacks after
 * dropping it. A child's descriptors are removed from epoll explicitly
 * before they are closed: a copy inherited by a child being forked at that
 * moment would otherwise keep the registration alive. An event for a
 * descriptor closed earlier in the same batch is recognised by fd == -1;
 * records are freed only by take/wait/destroy, never inside a batch.
 */
#define _GNU_SOURCE
#include "proc_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cfgrecv/actor.h"
#include "cfgrecv/log.h"
#include "strmap.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define LINE_CAP   1024 /* longer lines are split */
#define TAIL_MAX   16   /* stderr lines kept per child, at most */
#define TAIL_LINE  240  /* each truncated to this */
#define READ_BURST 16   /* reads per event, so one child cannot starve */

enum { K_PID = 0, K_IN = 1, K_OUT = 2, K_ERR = 3 };

typedef struct child child;

typedef struct tag {
    child *c; /* NULL: the wake-up eventfd */
    int kind;
} tag;

typedef struct lbuf {
    char b[LINE_CAP + 1];
    size_t n;
} lbuf;

struct child {
    uint64_t key;
    pid_t pid;
    int fd[4]; /* pidfd, stdin, stdout, stderr; -1 once closed */
    tag tags[4];
    char *prefix;
    char *in; /* stdin bytes not yet written */
    size_t in_len, in_off;
    lbuf out, err;
    char *tail[TAIL_MAX];
    size_t tail_cap, tail_pos, tail_count;
    uint64_t started_ms;
    uint64_t deadline_ms; /* 0 = none */
    bool deadline_is_timeout;
    uint64_t timeout_ms;
    bool kill_group;
    bool exited; /* ex is valid; waiting to be taken */
    cra_proc_exit ex;
    child *prev, *next; /* the live list, while !exited */
};

struct cra_procw {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast at every exit (CLOCK_MONOTONIC) */
    int ep;
    int evfd;
    tag evtag;
    pthread_t thr;
    bool stopping;      /* (protected by mu) */
    cra_strmap *by_key; /* key -> child, live or untaken (protected by mu) */
    child live;         /* sentinel of the live list (protected by mu) */
    size_t nlive;       /* (protected by mu) */
    char comp[32];
    cra_procw_exit_fn fn;
    void *arg;
};

/* ---- small helpers ---------------------------------------------------- */

static void
wake(cra_procw *w) {
    uint64_t one = 1;
    ssize_t r = write(w->evfd, &one, sizeof(one));
    (void)r;
}

static void
sig_group(child *c, int sig) {
    /* The child is unreaped (we hold its record), so its pid and its
     * process group id cannot have been reused. */
    if (kill(-c->pid, sig) != 0) {
        kill(c->pid, sig);
    }
}

static void
close_fd(cra_procw *w, child *c, int kind) {
    if (c->fd[kind] >= 0) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd[kind], NULL);
        close(c->fd[kind]);
        c->fd[kind] = -1;
    }
    if (kind == K_IN) {
        free(c->in);
        c->in = NULL;
    }
}

static void
child_free(child *c) {
    for (int k = 0; k < 4; k++) {
        if (c->fd[k] >= 0) {
            close(c->fd[k]);
        }
    }
    for (size_t i = 0; i < TAIL_MAX; i++) {
        free(c->tail[i]);
    }
    free(c->in);
    free(c->prefix);
    free(c);
}

static void
list_del(cra_procw *w, child *c) {
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->prev = c->next = NULL;
    w->nlive--;
}

/* ---- output lines ----------------------------------------------------- */

static void
emit_line(cra_procw *w, child *c, int kind, char *line, size_t n) {
    if (n > 0 && line[n - 1] == '\r') {
        n--;
    }
    line[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (line[i] == '\0') {
            line[i] = '?'; /* a NUL would cut the line short */
        }
    }
    if (kind == K_OUT) {
        CR_INFO(w->comp, "%s: %s", c->prefix, line);
        return;
    }
    CR_INFO(w->comp, "%s [stderr]: %s", c->prefix, line);
    if (c->tail_cap == 0) {
        return;
    }
    size_t keep = n < TAIL_LINE ? n : TAIL_LINE;
    char *s = malloc(keep + 1);
    if (s == NULL) {
        return;
    }
    memcpy(s, line, keep);
    s[keep] = '\0';
    free(c->tail[c->tail_pos]);
    c->tail[c->tail_pos] = s;
    c->tail_pos = (c->tail_pos + 1) % c->tail_cap;
    if (c->tail_count < c->tail_cap) {
        c->tail_count++;
    }
}

static void
feed_lines(cra_procw *w, child *c, int kind, const char *p, size_t n) {
    lbuf *b = kind == K_OUT ? &c->out : &c->err;
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        size_t room = LINE_CAP - b->n;
        if (take > room) {
            take = room;
            nl = NULL;
        }
        memcpy(b->b + b->n, p, take);
        b->n += take;
        p += take;
        n -= take;
        if (nl != NULL) {
            p++; /* the newline */
            n--;
            emit_line(w, c, kind, b->b, b->n);
            b->n = 0;
        } else if (b->n == LINE_CAP) {
            emit_line(w, c, kind, b->b, b->n);
            b->n = 0;
        }
    }
}

static void
flush_partial(cra_procw *w, child *c, int kind) {
    lbuf *b = kind == K_OUT ? &c->out : &c->err;
    if (b->n > 0) {
        emit_line(w, c, kind, b->b, b->n);
        b->n = 0;
    }
}

/* drain reads what the pipe holds now (at most READ_BURST reads unless
 * `all`); closes it at EOF or error. */
static void
drain(cra_procw *w, child *c, int kind, bool all) {
    char buf[4096];
    for (int i = 0; c->fd[kind] >= 0 && (all || i < READ_BURST); i++) {
        ssize_t r = read(c->fd[kind], buf, sizeof(buf));
        if (r > 0) {
            feed_lines(w, c, kind, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        flush_partial(w, c, kind); /* EOF or error */
        close_fd(w, c, kind);
    }
}

static void
feed_stdin(cra_procw *w, child *c) {
    while (c->fd[K_IN] >= 0 && c->in_off < c->in_len) {
        ssize_t r =
            write(c->fd[K_IN], c->in + c->in_off, c->in_len - c->in_off);
        if (r > 0) {
            c->in_off += (size_t)r;
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return; /* EPOLLOUT again when the child has read some */
        } else {
            break; /* EPIPE: the child closed its stdin or exited */
        }
    }
    close_fd(w, c, K_IN); /* all written (EOF for the child) or failed */
}

/* ---- exits and deadlines ---------------------------------------------- */

static void
build_tail(child *c) {
    size_t n = 0;
    c->ex.tail[0] = '\0';
    size_t first = (c->tail_pos + c->tail_cap - c->tail_count) %
                   (c->tail_cap ? c->tail_cap : 1);
    for (size_t i = 0; i < c->tail_count; i++) {
        const char *s = c->tail[(first + i) % c->tail_cap];
        int k = snprintf(c->ex.tail + n, sizeof(c->ex.tail) - n, "%s%s",
                         i ? " | " : "", s ? s : "");
        if (k < 0 || (size_t)k >= sizeof(c->ex.tail) - n) {
            break;
        }
        n += (size_t)k;
    }
}

/* child_exited handles a readable pidfd. Returns true if the child was reaped
 * (its key must then be announced). */
static bool
child_exited(cra_procw *w, child *c) {
    int status = 0;
    if (c->kill_group) {
        /* before reaping: the zombie leader keeps the group id valid */
        kill(-c->pid, SIGKILL);
    }
    pid_t r;
    do {
        r = waitpid(c->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return false; /* not yet (spurious wake-up) */
    }
    if (r < 0) { /* reaped elsewhere (SIGCHLD ignored?): status unknown */
        CR_WARN(w->comp, "%s: pid %ld: waitpid: %s", c->prefix, (long)c->pid,
                strerror(errno));
        c->ex.signaled = false;
        c->ex.code = -1;
    } else if (WIFSIGNALED(status)) {
        c->ex.signaled = true;
        c->ex.code = WTERMSIG(status);
    } else {
        c->ex.signaled = false;
        c->ex.code = WEXITSTATUS(status);
    }
    /* what the child wrote before it died; later writers of its group
     * (a background grandchild) lose their pipe */
    drain(w, c, K_OUT, true);
    drain(w, c, K_ERR, true);
    flush_partial(w, c, K_OUT);
    flush_partial(w, c, K_ERR);
    for (int k = 0; k < 4; k++) {
        close_fd(w, c, k);
    }
    c->ex.key = c->key;
    c->ex.pid = c->pid;
    c->ex.ran_ms = cr_now_ms() - c->started_ms;
    c->ex.timeout_ms = c->timeout_ms;
    build_tail(c);
    c->exited = true;
    list_del(w, c);
    pthread_cond_broadcast(&w->cv);
    return true;
}

static void
check_deadlines(cra_procw *w) {
    uint64_t now = cr_now_ms();
    for (child *c = w->live.next; c != &w->live; c = c->next) {
        if (c->deadline_ms != 0 && now >= c->deadline_ms) {
            if (c->deadline_is_timeout) {
                c->ex.timed_out = true;
                CR_WARN(w->comp,
                        "%s: pid %ld timed out after %llu ms; "
                        "killed",
                        c->prefix, (long)c->pid,
                        (unsigned long long)c->timeout_ms);
            } else {
                CR_WARN(w->comp,
                        "%s: pid %ld still running after its "
                        "grace period; SIGKILL",
                        c->prefix, (long)c->pid);
            }
            sig_group(c, SIGKILL);
            c->deadline_ms = 0;
        }
    }
}

static int
next_timeout(cra_procw *w) {
    uint64_t now = cr_now_ms(), best = 0;
    for (child *c = w->live.next; c != &w->live; c = c->next) {
        if (c->deadline_ms != 0 && (best == 0 || c->deadline_ms < best)) {
            best = c->deadline_ms;
        }
    }
    if (best == 0) {
        return -1;
    }
    if (best <= now) {
        return 0;
    }
    return best - now > INT_MAX ? INT_MAX : (int)(best - now);
}

static void *
watch_main(void *arg) {
    cra_procw *w = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* EPIPE, never SIGPIPE */
    struct epoll_event ev[64];
    uint64_t *keys = NULL;
    size_t nkeys = 0, capkeys = 0;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        bool stop = w->stopping;
        int to = next_timeout(w);
        pthread_mutex_unlock(&w->mu);
        if (stop) {
            break;
        }
        int n = epoll_wait(w->ep, ev, 64, to);
        if (n < 0 && errno != EINTR) {
            CR_ERROR(w->comp, "epoll_wait: %s", strerror(errno));
            n = 0;
        }
        pthread_mutex_lock(&w->mu);
        for (int i = 0; i < n; i++) {
            tag *t = ev[i].data.ptr;
            if (t->c == NULL) {
                uint64_t v;
                ssize_t r = read(w->evfd, &v, sizeof(v));
                (void)r;
                continue;
            }
            child *c = t->c;
            if (c->exited || c->fd[t->kind] < 0) {
                continue; /* closed earlier in this batch */
            }
            switch (t->kind) {
            case K_PID:
                if (child_exited(w, c)) {
                    if (nkeys == capkeys) {
                        size_t nc = capkeys ? capkeys * 2 : 64;
                        uint64_t *nk = realloc(keys, nc * sizeof(*nk));
                        if (nk == NULL) {
                            break; /* the record still waits to be taken */
                        }
                        keys = nk;
                        capkeys = nc;
                    }
                    keys[nkeys++] = c->key;
                }
                break;
            case K_IN:
                feed_stdin(w, c);
                break;
            default:
                drain(w, c, t->kind, false);
                break;
            }
        }
        check_deadlines(w);
        pthread_mutex_unlock(&w->mu);
        for (size_t i = 0; i < nkeys; i++) {
            w->fn(w->arg, keys[i]);
        }
        nkeys = 0;
    }
    free(keys);
    return NULL;
}

/* ---- public API --------------------------------------------------------- */

int
cra_procw_new(const char *comp, cra_procw_exit_fn fn, void *arg,
              cra_procw **out) {
    *out = NULL;
    cra_procw *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return CR_ENOMEM;
    }
    snprintf(w->comp, sizeof(w->comp), "%s", comp);
    w->fn = fn;
    w->arg = arg;
    w->live.next = w->live.prev = &w->live;
    w->ep = w->evfd = -1;
    pthread_mutex_init(&w->mu, NULL);
    cr_cond_init_monotonic(&w->cv);
    int rv = CR_EFAIL;
    if ((w->by_key = cra_strmap_new()) == NULL) {
        rv = CR_ENOMEM;
        goto fail;
    }
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w->ep < 0 || w->evfd < 0) {
        CR_ERROR(comp, "epoll/eventfd: %s", strerror(errno));
        goto fail;
    }
    w->evtag.c = NULL;
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &w->evtag};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &e) != 0) {
        CR_ERROR(comp, "epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    int e2 = pthread_create(&w->thr, NULL, watch_main, w);
    if (e2 != 0) {
        CR_ERROR(comp, "pthread_create: %s", strerror(e2));
        goto fail;
    }
    *out = w;
    return 0;
fail:
    if (w->ep >= 0) {
        close(w->ep);
    }
    if (w->evfd >= 0) {
        close(w->evfd);
    }
    cra_strmap_free(w->by_key, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return rv;
}

/* pipe_hi makes a close-on-exec pipe whose ends are both above 2, so the
 * child's dup2 onto 0, 1, 2 can never clobber one of them. */
static int
pipe_hi(int p[2]) {
    if (pipe2(p, O_CLOEXEC) != 0) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (p[i] <= 2) {
            int d = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
            if (d < 0) {
                close(p[0]);
                close(p[1]);
                return -1;
            }
            close(p[i]);
            p[i] = d;
        }
    }
    return 0;
}

/* child_exec runs in the forked child: only async-signal-safe calls. */
static void __attribute__((noreturn))
child_exec(const cra_proc_spec *s, const int in[2], const int out[2],
           const int err[2], int st_w, pid_t parent) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int i = 1; i < NSIG; i++) {
        if (i != SIGKILL && i != SIGSTOP) {
            sigaction(i, &sa, NULL); /* EINVAL for reserved ones: fine */
        }
    }
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(127); /* the daemon is already gone */
    }
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) {
        int e = errno;
        ssize_t r = write(st_w, &e, sizeof(e));
        (void)r;
        _exit(127);
    }
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        struct rlimit rl;
        int max = 65536;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536) {
            max = (int)rl.rlim_cur;
        }
        for (int fd = 3; fd < max; fd++) {
            if (fd != st_w) {
                close(fd);
            }
        }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(s->path, s->argv, s->envp);
    int e = errno;
    ssize_t r = write(st_w, &e, sizeof(e));
    (void)r;
    _exit(127);
}

static void
close_pair(int p[2]) {
    for (int i = 0; i < 2; i++) {
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
    }
}

int
cra_procw_spawn(cra_procw *w, uint64_t key, const cra_proc_spec *s, char *err,
                size_t errlen) {
    if (errlen > 0) {
        err[0] = '\0';
    }
    pthread_mutex_lock(&w->mu);
    bool taken =
        cra_strmap_get(w->by_key, (const char *)&key, sizeof(key)) != NULL;
    pthread_mutex_unlock(&w->mu);
    if (taken) {
        snprintf(err, errlen, "key in use");
        return CR_EEXIST;
    }
    child *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return CR_ENOMEM;
    }
    for (int k = 0; k < 4; k++) {
        c->fd[k] = -1;
        c->tags[k] = (tag){.c = c, .kind = k};
    }
    c->key = key;
    c->prefix = strdup(s->prefix ? s->prefix : "?");
    c->in_len = s->input ? s->input_len : 0;
    c->in = malloc(c->in_len ? c->in_len : 1);
    c->tail_cap = s->tail_lines == 0         ? 5
                  : s->tail_lines > TAIL_MAX ? TAIL_MAX
                                             : s->tail_lines;
    c->timeout_ms = s->timeout_ms;
    c->kill_group = s->kill_group_on_exit;
    if (c->prefix == NULL || c->in == NULL) {
        child_free(c);
        snprintf(err, errlen, "out of memory");
        return CR_ENOMEM;
    }
    if (c->in_len > 0) {
        memcpy(c->in, s->input, c->in_len);
    }
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, st[2] = {-1, -1};
    if (pipe_hi(in) != 0 || pipe_hi(out) != 0 || pipe_hi(er) != 0 ||
        pipe_hi(st) != 0) {
        snprintf(err, errlen, "cannot create pipes: %s", strerror(errno));
        goto fail;
    }
    pid_t parent = getpid();
    sigset_t all, old;
    sigfillset(&all);
    /* no signal handler may run in the child before it resets them */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        child_exec(s, in, out, er, st[1], parent);
    }
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(fork_errno));
        goto fail;
    }
    setpgid(pid, pid); /* also done by the child; whoever is first wins */
    close(in[0]);
    close(out[1]);
    close(er[1]);
    close(st[1]);
    in[0] = out[1] = er[1] = st[1] = -1;
    int child_errno = 0;
    ssize_t r;
    do {
        r = read(st[0], &child_errno, sizeof(child_errno));
    } while (r < 0 && errno == EINTR);
    close_pair(st);
    if (r == (ssize_t)sizeof(child_errno)) {
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
        snprintf(err, errlen, "cannot execute %s: %s", s->path,
                 strerror(child_errno));
        goto fail;
    }
    int pidfd = pidfd_open(pid, 0);
    if (pidfd < 0) {
        int e = errno;
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
        snprintf(err, errlen, "pidfd_open: %s", strerror(e));
        goto fail;
    }
    c->pid = pid;
    c->fd[K_PID] = pidfd;
    c->fd[K_IN] = in[1];
    c->fd[K_OUT] = out[0];
    c->fd[K_ERR] = er[0];
    in[1] = out[0] = er[0] = -1;
    for (int k = K_IN; k <= K_ERR; k++) {
        fcntl(c->fd[k], F_SETFL, fcntl(c->fd[k], F_GETFL) | O_NONBLOCK);
    }
    if (c->in_len == 0) {
        close(c->fd[K_IN]); /* not yet registered */
        c->fd[K_IN] = -1;
    }
    c->started_ms = cr_now_ms();
    if (s->timeout_ms > 0) {
        c->deadline_ms = c->started_ms + s->timeout_ms;
        c->deadline_is_timeout = true;
    }
    pthread_mutex_lock(&w->mu);
    if (cra_strmap_put(w->by_key, (const char *)&key, sizeof(key), c, NULL) !=
        0) {
        pthread_mutex_unlock(&w->mu);
        sig_group(c, SIGKILL);
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
        snprintf(err, errlen, "out of memory");
        child_free(c);
        return CR_ENOMEM;
    }
    c->next = &w->live;
    c->prev = w->live.prev;
    w->live.prev->next = c;
    w->live.prev = c;
    w->nlive++;
    static const uint32_t evs[4] = {EPOLLIN, EPOLLOUT, EPOLLIN, EPOLLIN};
    for (int k = 0; k < 4; k++) {
        if (c->fd[k] < 0) {
            continue;
        }
        struct epoll_event e = {.events = evs[k], .data.ptr = &c->tags[k]};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd[k], &e) != 0) {
            /* cannot watch it: kill it so the pidfd still reports */
            CR_ERROR(w->comp, "%s: epoll_ctl: %s", c->prefix, strerror(errno));
            sig_group(c, SIGKILL);
            if (k != K_PID) {
                close(c->fd[k]);
                c->fd[k] = -1;
            }
        }
    }
    pthread_mutex_unlock(&w->mu);
    wake(w); /* the nearest deadline may have changed */
    return 0;
fail:
    close_pair(in);
    close_pair(out);
    close_pair(er);
    close_pair(st);
    child_free(c);
    return CR_EFAIL;
}

static child *
live_child(cra_procw *w, uint64_t key) {
    child *c = cra_strmap_get(w->by_key, (const char *)&key, sizeof(key));
    return c != NULL && !c->exited ? c : NULL;
}

static void
term_locked(child *c, uint64_t grace_ms) {
    if (grace_ms == 0) {
        sig_group(c, SIGKILL);
        return;
    }
    sig_group(c, SIGTERM);
    uint64_t dl = cr_now_ms() + grace_ms;
    if (c->deadline_ms == 0 || dl < c->deadline_ms) {
        c->deadline_ms = dl;
        c->deadline_is_timeout = false;
    }
}

int
cra_procw_term(cra_procw *w, uint64_t key, uint64_t grace_ms) {
    pthread_mutex_lock(&w->mu);
    child *c = live_child(w, key);
    if (c != NULL) {
        term_locked(c, grace_ms);
    }
    pthread_mutex_unlock(&w->mu);
    if (c == NULL) {
        return CR_ENOENT;
    }
    wake(w);
    return 0;
}

size_t
cra_procw_term_all(cra_procw *w, uint64_t grace_ms) {
    size_t n = 0;
    pthread_mutex_lock(&w->mu);
    for (child *c = w->live.next; c != &w->live; c = c->next) {
        term_locked(c, grace_ms);
        n++;
    }
    pthread_mutex_unlock(&w->mu);
    wake(w);
    return n;
}

/* take_locked hands c's record out and frees it. */
static void
take_locked(cra_procw *w, child *c, cra_proc_exit *out) {
    *out = c->ex;
    cra_strmap_del(w->by_key, (const char *)&c->key, sizeof(c->key));
    child_free(c);
}

int
cra_procw_take(cra_procw *w, uint64_t key, cra_proc_exit *out) {
    pthread_mutex_lock(&w->mu);
    child *c = cra_strmap_get(w->by_key, (const char *)&key, sizeof(key));
    int rv = c == NULL ? CR_ENOENT : !c->exited ? CR_EINVAL : 0;
    if (rv == 0) {
        take_locked(w, c, out);
    }
    pthread_mutex_unlock(&w->mu);
    return rv;
}

int
cra_procw_wait(cra_procw *w, uint64_t key, int timeout_ms, cra_proc_exit *out) {
    struct timespec ts;
    if (timeout_ms >= 0) {
        cr_deadline_ts(&ts, (uint64_t)timeout_ms);
    }
    pthread_mutex_lock(&w->mu);
    int rv;
    for (;;) {
        child *c = cra_strmap_get(w->by_key, (const char *)&key, sizeof(key));
        if (c == NULL) {
            rv = CR_ENOENT;
            break;
        }
        if (c->exited) {
            take_locked(w, c, out);
            rv = 0;
            break;
        }
        int e = timeout_ms >= 0 ? pthread_cond_timedwait(&w->cv, &w->mu, &ts)
                                : pthread_cond_wait(&w->cv, &w->mu);
        if (e == ETIMEDOUT) {
            rv = CR_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rv;
}

size_t
cra_procw_running(cra_procw *w) {
    pthread_mutex_lock(&w->mu);
    size_t n = w->nlive;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* wait_none waits up to ms for every child to be reaped. */
static bool
wait_none(cra_procw *w, int ms) {
    struct timespec ts;
    cr_deadline_ts(&ts, (uint64_t)ms);
    pthread_mutex_lock(&w->mu);
    while (w->nlive > 0) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    bool none = w->nlive == 0;
    pthread_mutex_unlock(&w->mu);
    return none;
}

void
cra_procw_destroy(cra_procw *w, uint64_t grace_ms) {
    if (w == NULL) {
        return;
    }
    size_t n = cra_procw_term_all(w, grace_ms);
    if (n > 0) {
        CR_INFO(w->comp, "stopping %zu child processes", n);
    }
    int wait_ms = (int)(grace_ms > 3600000 ? 3600000 : grace_ms) + 5000;
    if (!wait_none(w, wait_ms)) {
        /* SIGKILL was sent at the end of the grace; a process stuck in
         * an uninterruptible sleep still has to come out of it */
        CR_ERROR(w->comp, "%zu child processes survive SIGKILL; waiting",
                 cra_procw_running(w));
        cra_procw_term_all(w, 0);
        wait_none(w, 30000);
    }
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_mutex_unlock(&w->mu);
    wake(w);
    pthread_join(w->thr, NULL);
    const char *k;
    size_t kl;
    void *v;
    for (size_t it = 0; cra_strmap_next(w->by_key, &it, &k, &kl, &v);) {
        child *c = v;
        if (!c->exited) {
            CR_ERROR(w->comp, "%s: pid %ld abandoned (unkillable)", c->prefix,
                     (long)c->pid);
        }
        child_free(c);
    }
    cra_strmap_free(w->by_key, NULL);
    close(w->ep);
    close(w->evfd);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- exit descriptions ----------------------------------------------------
 */

bool
cra_proc_exit_ok(const cra_proc_exit *e) {
    return !e->signaled && !e->timed_out && e->code == 0;
}

void
cra_proc_exit_text(const cra_proc_exit *e, char *buf, size_t len) {
    int n;
    if (e->timed_out) {
        n = snprintf(buf, len, "timed out after %llu ms (killed)",
                     (unsigned long long)e->timeout_ms);
    } else if (e->signaled) {
        n = snprintf(buf, len, "killed by signal %d (%s)", e->code,
                     strsignal(e->code));
    } else {
        n = snprintf(buf, len, "exit status %d", e->code);
    }
    if (n > 0 && (size_t)n < len && e->tail[0] != '\0') {
        snprintf(buf + n, len - (size_t)n, "; stderr: %s", e->tail);
    }
}
