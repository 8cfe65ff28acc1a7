/*
 * cfgrecv/supervisor.h - the supervisor actor: starts children in order,
 * restarts them with backoff when they fail, gives up (escalates) past a
 * restart intensity, stops them in reverse order, and tells subscribers
 * about all of it.
 *
 * Semantics follow Erlang/OTP's supervisor(3) unless said otherwise:
 *
 * Children. A child spec names a behaviour and an argument, a restart type
 * and a shutdown timeout. Children are started in spec order when the
 * supervisor starts; cr_sup_add_child appends one at the end while it
 * runs, cr_sup_remove_child stops one and forgets it. "Started" means
 * spawned: the child's name is registered and its mailbox exists before
 * the next child is spawned, but its init runs on its own thread and is
 * not waited for (unlike OTP's start_link), except a nested supervisor's:
 * its init spawns its own children, so that whole subtree exists before
 * the next sibling is spawned. A child whose init fails simply exits with
 * CR_EXIT_ERROR, and that is handled like any failure.
 *
 * Failure. A child *fails* when it exits with CR_EXIT_ERROR (init or a
 * handler returned an error, or it called cr_fail) or CR_EXIT_NOPROC, or
 * when it cannot even be spawned. CR_EXIT_NORMAL and CR_EXIT_SHUTDOWN are
 * normal exits (OTP: normal, shutdown).
 *   permanent  restarted after any exit;
 *   transient  restarted only after a failure;
 *   temporary  never restarted, and forgotten when it exits (OTP).
 * A process-wide crash (SIGSEGV, abort, a stack overflow) is out of scope:
 * threads share one address space, so nothing is left to supervise; the
 * process dies and the service manager (systemd) must restart it.
 *
 * Strategies. When a child is to be restarted:
 *   CR_SUP_ONE_FOR_ONE   only that child is restarted;
 *   CR_SUP_ONE_FOR_ALL   all other children are stopped (reverse start
 *                        order), then all are started again in order;
 *   CR_SUP_REST_FOR_ONE  the children after it are stopped (reverse
 *                        order), then it and they are started in order.
 * Temporary siblings stopped by a group restart are not restarted.
 *
 * Backoff. A restart happens after a delay from cr_backoff_next (see
 * cfgrecv/backoff.h) on the failed child's own backoff state, scheduled
 * with cr_timer_after: the supervisor never sleeps. The state resets when
 * the child had stayed up for the policy's stable_ms before failing. A
 * group restart (one_for_all, rest_for_one) uses the failed child's delay
 * for the whole group, so the group still starts in order. Removing a
 * child cancels its pending restart.
 *
 * Intensity. If restarts would exceed max_restarts within within_ms
 * (counted when a restart is decided, i.e. at the failure; a group
 * restart counts once), the supervisor gives up: it emits
 * CR_SUP_EV_GIVEUP, logs an error, stops its children in reverse order
 * and exits with CR_EXIT_ERROR. A parent supervisor sees that as a failed
 * child and applies its own strategy (escalation); a root supervisor's
 * exit is reported to main() by cr_sup_wait (see "Root" below).
 *
 * Defaults and why: 5 restarts within 30 s (OTP: 1 in 5 s). OTP restarts
 * at once, so its intensity is what stops a tight crash loop. Here the
 * backoff already spaces restarts; intensity only has to tell a crash
 * loop that backoff cannot fix from a child that fails now and then:
 *  - the first 5 default backoff delays add up to at most 6.2 s, so a
 *    child that fails at once every time is escalated for sure, within
 *    ~6 s of its first failure, whatever the jitter draws (with a larger
 *    N the sum of N delays can exceed T and the outcome becomes random);
 *  - a child that stays up more than ~6 s each time never trips it alone:
 *    it is just restarted with growing delays, for ever;
 *  - a burst of up to 5 children failing together from one cause (flow
 *    handlers all losing the config service) is absorbed; the average
 *    rate allowed, 1 per 6 s, is about OTP's 1 per 5 s.
 * Escalation then restarts a bigger subtree with fresh state (the root is
 * rest_for_one, so the fetcher, flow manager and notify consumer resync
 * from scratch), and a root that gives up exits so systemd can restart
 * the process and someone gets alerted.
 *
 * Shutdown. When the supervisor stops (cr_sup_stop, cr_stop, or giving
 * up), and for the stop half of a group restart, children are stopped one
 * at a time in reverse start order: cr_stop, then wait up to the child's
 * shutdown_timeout_ms for its thread to end. The supervisor's own thread
 * waits (as OTP's does): it answers no query meanwhile. A child that has
 * not ended in time is reported (CR_SUP_EV_STOP_TIMEOUT and a warning)
 * and the supervisor moves on: a thread cannot be killed safely, so the
 * child keeps running until its current callback returns, then runs its
 * terminate and exits on its own (its DOWN is still reported, as a late
 * CR_SUP_EV_EXIT, if the supervisor is still alive). Until then the child
 * is not started again (its restart is postponed), and if the supervisor
 * owns the child's arg (arg_free), the arg is freed only after that late
 * exit, or leaked (with a log line) if the supervisor exits first. Give a
 * nested supervisor CR_SUP_INFINITY, so it can stop its own children.
 *
 * Root. cr_sup_start starts a root supervisor from a plain thread.
 * main() learns that it gave up with cr_sup_wait, which returns its exit
 * reason; the supervisor has already logged an ERROR line starting
 * "root supervisor '<name>' gave up". Typical main():
 *
 *     cr_id root;
 *     if (cr_sup_start(rt, &opts, specs, n, &root) != 0) { ...exit(1) }
 *     cr_exit why;
 *     cr_sup_wait(rt, root, -1, &why);  // returns when root exits
 *     cr_rt_destroy(rt);
 *     return cr_sup_exit_status(&why);  // 0, or 1 after a give-up
 *
 * Observability. Subscribers (actors) receive every event as a message of
 * type CR_MSG_SUP_EVENT whose payload is a msgpack map (decode with
 * cr_sup_event_decode):
 *   {"ev": "start"|"exit"|"restart_scheduled"|"restart"|"giveup"|
 *          "stop_timeout"|"removed",
 *    "seq": uint (per supervisor, from 1), "t": uint (supervisor clock ms),
 *    "sup": uint (supervisor id), "sup_name": str,
 *    "child": str, "id": uint (child actor id, 0 if none),
 *    "restarts": uint (the child's restart count),
 *    "delay_ms": uint (restart_scheduled only),
 *    "timeout_ms": uint (stop_timeout only),
 *    "reason": {"kind": "normal"|"shutdown"|"error"|"noproc",
 *               "code": int, "text": str} (exit and giveup only)}
 * Unknown keys must be ignored by readers (fields may be added).
 * cr_sup_which_children answers with every child's state, restart count,
 * last exit reason and next restart delay; the reply payload (for
 * cr_call_async users, decoded by cr_sup_children_decode) is a msgpack
 * array, in start order, of maps {"name", "id", "state" (cr_child_state),
 * "restart" (cr_restart_type), "restarts", "last_exit" (a "reason" map as
 * above), "next_delay_ms", "attempt"}.
 *
 * Requests to a supervisor are process-local messages (they carry
 * function pointers) of type CR_MSG_SUP_REQ; use the wrappers below, which
 * use cr_call and may be called from any thread (including an actor, which
 * then blocks until the answer), except from the supervisor itself or one
 * of its children while the supervisor waits for that child to stop.
 *
 * Message types CR_MSG_SUP_FIRST..CR_MSG_SUP_LAST (128..143) are taken
 * from the runtime's reserved range for the supervisor.
 */
#ifndef CFGRECV_SUPERVISOR_H
#define CFGRECV_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfgrecv/actor.h"
#include "cfgrecv/backoff.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CR_MSG_SUP_FIRST = 128,
    CR_MSG_SUP_EVENT = 128, /* an event, see above */
    CR_MSG_SUP_REQ = 129,   /* a request (process-local layout) */
    CR_MSG_SUP_LAST = 143,
};

typedef enum {
    CR_SUP_ONE_FOR_ONE = 0,
    CR_SUP_ONE_FOR_ALL = 1,
    CR_SUP_REST_FOR_ONE = 2,
} cr_sup_strategy;

typedef enum {
    CR_RESTART_PERMANENT = 0,
    CR_RESTART_TRANSIENT = 1,
    CR_RESTART_TEMPORARY = 2,
} cr_restart_type;

#define CR_SUP_INFINITY           UINT32_MAX /* shutdown: wait for ever */
#define CR_SUP_SHUTDOWN_DEFAULT   5000u      /* ms, as OTP's workers */
#define CR_SUP_MAX_RESTARTS_DEF   5u
#define CR_SUP_WITHIN_MS_DEF      30000u
#define CR_SUP_UNLIMITED          UINT32_MAX /* max_restarts: never give up */
#define CR_SUP_NAME_MAX           63         /* longest child name */
#define CR_SUP_CALL_TIMEOUT_MS    10000      /* wrappers' default timeout */

/* A child spec. Copied by the supervisor (name included). */
typedef struct cr_child_spec {
    const char *name;              /* unique in this supervisor, 1..63 */
    const cr_behaviour *behaviour; /* must outlive the supervisor */
    /* arg is passed to init at every (re)start; init borrows it and must
     * not free it or keep it past terminate (copy what it needs). If
     * arg_free is set, the supervisor owns arg once the start/add call
     * succeeded and calls arg_free(arg) when it forgets the child (removed,
     * temporary child exited, supervisor exited) after the child's thread
     * has ended. If arg_free is NULL the caller keeps arg alive as long as
     * the supervisor may start the child. */
    void *arg;
    void (*arg_free)(void *arg);
    cr_restart_type restart;
    uint32_t shutdown_timeout_ms; /* 0 = CR_SUP_SHUTDOWN_DEFAULT;
                                     CR_SUP_INFINITY = wait for ever */
    bool register_name; /* register `name` with the runtime (cr_whereis) */
    size_t stack_size;    /* 0 = runtime default */
    uint32_t mailbox_cap; /* 0 = runtime default */
} cr_child_spec;

/* Supervisor options. Zero fields take the defaults given. */
typedef struct cr_sup_opts {
    const char *name; /* registered name (NULL = anonymous); copied.
                         Also used in events and logs. */
    cr_sup_strategy strategy;
    uint32_t max_restarts; /* 0 = 5; CR_SUP_UNLIMITED = never give up */
    uint32_t within_ms;    /* 0 = 30000 */
    cr_backoff_policy backoff; /* all-zero = CR_BACKOFF_POLICY_DEFAULT */
    cr_clock_fn clock;         /* NULL = cr_clock_default */
    void *clock_arg;
    cr_rng_fn rng; /* NULL = a cr_rng seeded from the clock */
    void *rng_arg;
    /* An initial subscriber, subscribed before the first child starts (so
     * it sees every event); CR_NOBODY = none. */
    cr_id subscriber;
    uint32_t subscribe_mask; /* cr_sup_event_kind bits; 0 = all */
} cr_sup_opts;

/* ---- starting and stopping ----------------------------------------- */

/* cr_sup_start validates and copies opts and specs[0..n), spawns a root
 * supervisor actor and sets *idp. Its children are started, in order, by
 * its init. Returns 0, CR_EINVAL (bad opts or spec: empty, long or
 * duplicate name, NULL behaviour, bad policy) or a cr_spawn error; on
 * error nothing was started and the caller still owns every arg. */
int cr_sup_start(cr_rt *rt, const cr_sup_opts *opts,
                 const cr_child_spec *specs, size_t n, cr_id *idp);

/* cr_sup_stop stops supervisor sup (its children first, in reverse order)
 * and waits up to timeout_ms (<0 = for ever) for it to end. 0, or
 * CR_ENOENT / CR_ETIMEDOUT as cr_stop_wait. Not from sup's children. */
int cr_sup_stop(cr_rt *rt, cr_id sup, int timeout_ms);

/* cr_sup_wait waits up to timeout_ms (<0 = for ever) for actor sup to
 * exit, and sets *why (may be NULL) to its exit reason. Works from any
 * thread but sup's own. Returns 0, CR_ETIMEDOUT (still running), or
 * CR_ENOMEM / a cr_spawn error (it uses a small helper actor); if sup
 * is already gone *why says CR_EXIT_NOPROC. */
int cr_sup_wait(cr_rt *rt, cr_id sup, int timeout_ms, cr_exit *why);

/* cr_sup_exit_status returns the exit status a main() should return for
 * a root supervisor that ended with *why: 0 for CR_EXIT_NORMAL or
 * CR_EXIT_SHUTDOWN, 1 otherwise (and logs an ERROR line saying so). */
int cr_sup_exit_status(const cr_exit *why);

/* ---- nested supervisors -------------------------------------------- */

/* The supervisor behaviour, for a supervisor that is the child of
 * another. Its arg is a cr_sup_args. */
extern const cr_behaviour cr_sup_behaviour;

typedef struct cr_sup_args cr_sup_args;

/* cr_sup_args_new copies opts and specs[0..n) into *out, to be the arg of
 * a child spec whose behaviour is &cr_sup_behaviour. The copy owns the
 * specs' args that have arg_free (each restart of the nested supervisor
 * starts its children from the same copy). Returns 0, CR_EINVAL (as
 * cr_sup_start) or CR_ENOMEM; on error the caller still owns every arg. */
int cr_sup_args_new(const cr_sup_opts *opts, const cr_child_spec *specs,
                    size_t n, cr_sup_args **out);

/* cr_sup_args_free frees a cr_sup_args and the args it owns (use it as
 * the child spec's arg_free). NULL is a no-op. */
void cr_sup_args_free(void *args);

/* cr_sup_child_spec fills *spec for a nested supervisor child: behaviour
 * &cr_sup_behaviour, arg args, arg_free cr_sup_args_free, permanent,
 * shutdown CR_SUP_INFINITY. */
void cr_sup_child_spec(cr_child_spec *spec, const char *name,
                       cr_sup_args *args);

/* ---- operations (cr_call to the supervisor) ------------------------- */

/* cr_sup_add_child appends and starts a child; sets *idp (may be NULL) to
 * its actor id (0 if its start failed and a restart is scheduled).
 * Returns 0, CR_EEXIST (name in use), CR_EINVAL, CR_ETIMEDOUT, CR_ENOENT
 * (no such supervisor) or CR_ENOMEM. arg ownership: on 0 and on
 * CR_ETIMEDOUT the supervisor owns arg (it frees it if it later rejects
 * the request); on any other error the caller still does. */
int cr_sup_add_child(cr_rt *rt, cr_id sup, const cr_child_spec *spec,
                     cr_id *idp);

/* cr_sup_remove_child stops the child called name (waiting up to its
 * shutdown timeout), cancels its pending restart if any, and forgets it.
 * Returns 0, CR_ENOENT (no such child or supervisor) or CR_ETIMEDOUT (the
 * answer did not come in time; the removal still happens). */
int cr_sup_remove_child(cr_rt *rt, cr_id sup, const char *name);

typedef enum {
    CR_CHILD_RUNNING = 0,    /* spawned, not seen exiting */
    CR_CHILD_RESTARTING = 1, /* waiting for its restart timer */
    CR_CHILD_STOPPED = 2,    /* exited, not to be restarted (transient) */
    CR_CHILD_STOPPING = 3,   /* stop timed out; thread still running */
} cr_child_state;

/* cr_child_state_name returns "running", "restarting", "stopped",
 * "stopping" (or "?"). */
const char *cr_child_state_name(cr_child_state s);

typedef struct cr_sup_child_info {
    char name[CR_SUP_NAME_MAX + 1];
    cr_id id; /* current actor, 0 if none */
    cr_child_state state;
    cr_restart_type restart;
    uint32_t restarts;      /* times restarted so far */
    cr_exit last_exit;      /* kind NORMAL, code 0, text "" if none yet */
    uint32_t next_delay_ms; /* restart delay when RESTARTING, else 0 */
    uint32_t backoff_attempt;
} cr_sup_child_info;

/* cr_sup_which_children returns, in start order, a malloc'ed array of
 * *np entries in *out (free() it; NULL when *np is 0). Returns 0,
 * CR_ENOENT, CR_ETIMEDOUT, CR_ENOMEM or CR_EPROTO; *out is NULL then. */
int cr_sup_which_children(cr_rt *rt, cr_id sup, cr_sup_child_info **out,
                          size_t *np);

/* cr_sup_children_decode parses the reply of a which_children request
 * (for callers using cr_call_async): same result as above. */
int cr_sup_children_decode(const cr_msg *reply, cr_sup_child_info **out,
                           size_t *np);

/* ---- events --------------------------------------------------------- */

typedef enum {
    CR_SUP_EV_START = 1u << 0,    /* a child was started (first time) */
    CR_SUP_EV_EXIT = 1u << 1,     /* a child exited; reason */
    CR_SUP_EV_RESTART_SCHEDULED = 1u << 2, /* delay_ms */
    CR_SUP_EV_RESTART = 1u << 3,  /* a child was started again */
    CR_SUP_EV_GIVEUP = 1u << 4,   /* intensity exceeded; reason */
    CR_SUP_EV_STOP_TIMEOUT = 1u << 5, /* a child did not stop in time */
    CR_SUP_EV_REMOVED = 1u << 6,  /* a child was forgotten */
    CR_SUP_EV_ALL = (1u << 7) - 1,
} cr_sup_event_kind;

typedef struct cr_sup_event {
    cr_sup_event_kind kind;
    uint64_t seq;
    uint64_t t_ms;
    cr_id sup;
    char sup_name[64];
    char child[CR_SUP_NAME_MAX + 1]; /* "" for giveup */
    cr_id id;
    uint32_t restarts;
    uint64_t delay_ms;
    uint64_t timeout_ms;
    cr_exit reason;
} cr_sup_event;

/* cr_sup_event_name returns "start", "exit", ... for one kind bit. */
const char *cr_sup_event_name(cr_sup_event_kind k);

/* cr_sup_subscribe makes actor `who` receive the events whose kind bits
 * are in mask (0 = unsubscribe) from now on. A subscriber that is gone is
 * dropped; an event that does not fit a full mailbox is dropped (and
 * counted in a warning). Returns 0, CR_ENOENT, CR_ETIMEDOUT or CR_ENOMEM. */
int cr_sup_subscribe(cr_rt *rt, cr_id sup, cr_id who, uint32_t mask);

/* cr_sup_event_decode parses a CR_MSG_SUP_EVENT message into *ev.
 * Returns 0 or CR_EPROTO (bad type, malformed or oversize payload). */
int cr_sup_event_decode(const cr_msg *m, cr_sup_event *ev);

#ifdef __cplusplus
}
#endif
#endif /* CFGRECV_SUPERVISOR_H */
