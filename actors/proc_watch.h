/*
 * proc_watch.h - child processes watched by one thread, without a thread
 * (or a blocking wait) per child.
 *
 * A watcher owns ONE thread that waits with epoll on every child's pidfd
 * (readable once the child exited) and on its stdout/stderr pipes (read
 * non-blocking, split into lines, each line logged as "PREFIX: text") and
 * its stdin pipe (fed with the spawn's input, any size, as the child
 * reads it). It also enforces deadlines: a spawn's timeout (SIGKILL to
 * the child's process group, reported as timed_out) and the grace period
 * of cra_procw_term (SIGTERM now, SIGKILL at the end of the grace).
 *
 * Exits are reaped by the watcher thread (waitpid on the pid whose pidfd
 * became readable; nothing else reaps), kept as an *exit record* under
 * the child's key, and announced through the exit callback, which runs on
 * the watcher thread with no lock held (the handlers post a message to
 * their actor from it). The owner then takes the record with
 * cra_procw_take, or waits for it with cra_procw_wait (shutdown paths that
 * cannot read their mailbox). A record is given out exactly once.
 *
 * Children (see cra_procw_spawn): fork + execve, never a shell; each in a
 * process group of its own; PR_SET_PDEATHSIG(SIGKILL) (checked against
 * getppid() to close the race with a parent that already died); signal
 * mask and dispositions reset; every descriptor but 0, 1, 2 closed at
 * exec. An exec failure is reported by spawn itself (through a
 * close-on-exec status pipe), not as an exit.
 *
 * Thread-safety: every function may be called from any thread, except
 * cra_procw_destroy (once, from the owner, not from the exit callback).
 * Internally one mutex protects the child tables; the watcher thread holds
 * it while it handles a batch of events and drops it before callbacks.
 */
#ifndef CRA_PROC_WATCH_H
#define CRA_PROC_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct cra_procw cra_procw;

/* How a child ended. */
typedef struct cra_proc_exit {
    uint64_t key;
    pid_t pid;
    bool signaled; /* killed by signal `code`; else exited with `code` */
    int code;
    bool timed_out;      /* killed by the watcher at the spawn's timeout */
    uint64_t ran_ms;     /* from spawn to reaping */
    uint64_t timeout_ms; /* the spawn's timeout (0 = none) */
    char tail[1024];     /* its last stderr lines joined by " | "; "" if none */
} cra_proc_exit;

/* The exit callback: child `key` exited; take its record. Runs on the
 * watcher thread, without any watcher lock held; must not block long and
 * must not call cra_procw_destroy. */
typedef void (*cra_procw_exit_fn)(void *arg, uint64_t key);

typedef struct cra_proc_spec {
    const char *path;  /* executed as is (execve: no PATH search) */
    char *const *argv; /* NULL-terminated */
    char *const *envp; /* NULL-terminated: the child's whole env */
    const char *input; /* stdin contents, copied; NULL = empty */
    size_t input_len;
    const char *prefix;      /* output lines are logged as "PREFIX: line" */
    uint64_t timeout_ms;     /* 0 = none; else killed and timed_out */
    bool kill_group_on_exit; /* SIGKILL what is left of the child's
                                process group when the child exits */
    size_t tail_lines;       /* stderr lines kept for cra_proc_exit.tail
                                (0 = 5) */
} cra_proc_spec;

/* cra_procw_new starts a watcher (and its thread). comp is the log
 * component of output lines (copied); fn(arg, key) is told of exits.
 * Returns 0 and *out, or CR_ENOMEM / CR_EFAIL (errno logged) with nothing
 * left behind. */
int cra_procw_new(const char *comp, cra_procw_exit_fn fn, void *arg,
                  cra_procw **out);

/* cra_procw_spawn starts a child under `key` (unique among the watcher's
 * live children and untaken records; the caller picks it). Blocks only
 * until the child has exec'd. Returns 0 once the program runs; CR_EEXIST
 * for a key in use; CR_EFAIL when it could not be started (fork, pipes,
 * or execve failed: err holds e.g. "cannot execute /x: No such file or
 * directory"), nothing left behind. */
int cra_procw_spawn(cra_procw *w, uint64_t key, const cra_proc_spec *s,
                    char *err, size_t errlen);

/* cra_procw_term sends SIGTERM to child key's process group and SIGKILL
 * after grace_ms (0 = SIGKILL at once); a deadline already nearer is
 * kept. Returns 0, or CR_ENOENT if key is not running (any more). */
int cra_procw_term(cra_procw *w, uint64_t key, uint64_t grace_ms);

/* cra_procw_term_all is cra_procw_term for every running child, so that a
 * shutdown waits one grace period in all. Returns how many it signalled. */
size_t cra_procw_term_all(cra_procw *w, uint64_t grace_ms);

/* cra_procw_take takes child key's exit record into *out (and forgets
 * it). Returns 0; CR_EINVAL while the child still runs (nothing taken);
 * CR_ENOENT if the key is unknown or its record was taken already. */
int cra_procw_take(cra_procw *w, uint64_t key, cra_proc_exit *out);

/* cra_procw_wait is cra_procw_take that first waits up to timeout_ms
 * (<0 = forever) for the child to exit. CR_ETIMEDOUT if it still runs
 * (nothing taken), CR_ENOENT as for take. */
int cra_procw_wait(cra_procw *w, uint64_t key, int timeout_ms,
                   cra_proc_exit *out);

/* cra_procw_running returns how many children run now. */
size_t cra_procw_running(cra_procw *w);

/* cra_procw_destroy terminates every child still running (SIGTERM to its
 * group, SIGKILL after grace_ms), waits until all are reaped (no zombie is
 * left), stops the thread and frees w and untaken records. The exit
 * callback may still run until it returns. NULL is a no-op. */
void cra_procw_destroy(cra_procw *w, uint64_t grace_ms);

/* cra_proc_exit_text writes a one-line description of *e into buf:
 * "exit status 3", "killed by signal 9", "timed out after 30000 ms
 * (killed)", followed by "; stderr: <tail>" when there is one. */
void cra_proc_exit_text(const cra_proc_exit *e, char *buf, size_t len);

/* cra_proc_exit_ok reports whether e is a normal exit with status 0. */
bool cra_proc_exit_ok(const cra_proc_exit *e);

#endif
