/*
 * cfgrecv/actor.h - the actor runtime core.
 *
 * An actor is a pthread with a mailbox. The mailbox is an nng inproc
 * socket pair (PULL owned by the actor, PUSH shared by every sender);
 * each nng message carries a *batch* of one or more envelopes encoded
 * with msgpack, so that a busy mailbox costs one nng round trip for many
 * envelopes. An envelope is {type, from, corr, payload}; the payload is
 * opaque bytes (by convention msgpack).
 *
 * Naming: public API `cr_`, internal cross-file `cri_`, file-static names
 * short and unprefixed.
 *
 * OWNERSHIP RULE (one rule for every function that takes a cr_msg *):
 *   on success (return 0) the callee owns the message and the caller must
 *   not touch it again; on failure (non-zero return) the caller still owns
 *   it and must free it or retry. This is nng_sendmsg's rule.
 *   A handler receives its message *borrowed*: valid until the handler
 *   returns; the runtime frees it. Use cr_msg_dup() to keep it.
 *
 * Errors are negative-free int codes: 0 on success, otherwise one of the
 * CR_E* values below (strerror-like text from cr_strerror()).
 */
#ifndef CFGRECV_ACTOR_H
#define CFGRECV_ACTOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes -------------------------------------------------- */
enum {
    CR_OK = 0,
    CR_ENOMEM = 1,   /* allocation failed */
    CR_EINVAL = 2,   /* bad argument */
    CR_ENOENT = 3,   /* no such actor / name / timer */
    CR_EEXIST = 4,   /* name already registered */
    CR_EFULL = 5,    /* mailbox full (non-waiting send) */
    CR_ETIMEDOUT = 6, /* call or waiting send timed out */
    CR_ECLOSED = 7,  /* actor stopped or runtime shutting down */
    CR_EPROTO = 8,   /* malformed envelope / payload */
    CR_ENNG = 9,     /* unexpected nng failure (logged) */
    CR_EFAIL = 10,   /* generic failure returned by a behaviour */
};

/* cr_strerror returns a static description of a CR_E* code. */
const char *cr_strerror(int err);

/* ---- identities ---------------------------------------------------- */

/* An actor id. Never reused within a runtime; 0 is "nobody". */
typedef uint64_t cr_id;
#define CR_NOBODY ((cr_id)0)

typedef struct cr_rt cr_rt;   /* a runtime: registry, timer service */
typedef struct cr_ctx cr_ctx; /* an actor's own handle, its thread only */
typedef struct cr_msg cr_msg; /* an envelope */

/* ---- message types ------------------------------------------------- */
/* Types below CR_MSG_USER are reserved for the runtime: 1..127 the core,
 * 128..143 the supervisor (CR_MSG_SUP_*, cfgrecv/supervisor.h). */
enum {
    CR_MSG_DOWN = 1,    /* a monitored actor exited; see cr_down_decode */
    CR_MSG_TIMER = 2,   /* a timer fired; payload: msgpack [timer_id, tag] */
    CR_MSG_REPLY = 3,   /* reply to cr_call_async; corr = the call's corr */
    CR_MSG_WAKE = 4,    /* internal: wake-up, never delivered to handlers */
    CR_MSG_USER = 256,  /* first user type */
};

/* ---- exit reasons -------------------------------------------------- */
typedef enum {
    CR_EXIT_NORMAL = 0,   /* behaviour asked to stop, or init said so */
    CR_EXIT_SHUTDOWN = 1, /* stopped from outside (cr_stop / rt destroy) */
    CR_EXIT_ERROR = 2,    /* init/handle failed, or cr_fail() was called */
    CR_EXIT_NOPROC = 3,   /* DOWN for a monitor on an already-dead actor */
} cr_exit_kind;

typedef struct cr_exit {
    cr_exit_kind kind;
    int code;       /* error code for CR_EXIT_ERROR, else 0 */
    char text[160]; /* human-readable reason, NUL-terminated */
} cr_exit;

/* ---- messages ------------------------------------------------------ */

/* cr_msg_new allocates a message of the given type with an empty
 * payload. Returns NULL on allocation failure. The caller owns it. */
cr_msg *cr_msg_new(uint32_t type);

/* cr_msg_new_bytes allocates a message whose payload is a copy of
 * data[0..len). Returns NULL on allocation failure. */
cr_msg *cr_msg_new_bytes(uint32_t type, const void *data, size_t len);

/* cr_msg_dup copies a message (including a borrowed one). NULL on ENOMEM. */
cr_msg *cr_msg_dup(const cr_msg *m);

/* cr_msg_free frees a message the caller owns. NULL is a no-op. */
void cr_msg_free(cr_msg *m);

/* cr_msg_append appends bytes to the payload. Returns 0 or CR_ENOMEM
 * (the payload is unchanged on failure). */
int cr_msg_append(cr_msg *m, const void *data, size_t len);

/* cr_msg_packer returns a msgpack_packer (as void * to keep msgpack out of
 * this header; cast to msgpack_packer *) that appends to the payload.
 * Valid while the caller owns m. Allocation failures inside the packer
 * are reported by cr_msg_packer_failed(). */
void *cr_msg_packer(cr_msg *m);
bool cr_msg_packer_failed(const cr_msg *m);

uint32_t cr_msg_type(const cr_msg *m);
cr_id cr_msg_from(const cr_msg *m);
uint64_t cr_msg_corr(const cr_msg *m);
const void *cr_msg_data(const cr_msg *m);
size_t cr_msg_len(const cr_msg *m);
/* cr_msg_set_type changes the type of an owned message. */
void cr_msg_set_type(cr_msg *m, uint32_t type);

/* ---- behaviours ---------------------------------------------------- */

/* A behaviour is a table of callbacks (designated initialisers please).
 * All run on the actor's own thread.
 *  init:      called first with the spawn argument; sets *state. Returns 0
 *             to run, CR_STOP_NORMAL to exit normally at once, or an error
 *             code to exit with CR_EXIT_ERROR (terminate is still called).
 *  handle:    called per message (borrowed). Returns 0 to continue,
 *             CR_STOP_NORMAL to exit normally after this message, or an
 *             error code to exit with CR_EXIT_ERROR.
 *  terminate: called once on every exit path (even when init failed) with
 *             the exit reason; frees the state. May be NULL.
 */
#define CR_STOP_NORMAL (-1)

typedef struct cr_behaviour {
    const char *kind; /* short description shown by monitors, e.g. "fetcher" */
    int (*init)(cr_ctx *ctx, void *arg, void **state);
    int (*handle)(cr_ctx *ctx, void *state, const cr_msg *m);
    void (*terminate)(cr_ctx *ctx, void *state, const cr_exit *why);
    /* drain_on_stop: on cr_stop, first handle every message already
     * queued when the stop was asked for (as an OTP process trapping
     * exits sees the shutdown signal behind its queue), then exit. For an
     * actor whose queue is output others count on at shutdown: the events
     * publisher. Bounded: messages queued after the stop are dropped. */
    bool drain_on_stop;
    /* batch_end: optional; called after the actor has handled the
     * messages of one received batch, before it waits for the next. A
     * busy actor's batches hold up to batch_max messages, an idle one's
     * one: an actor that buffers output (the events publisher) flushes
     * here, so its output is batched under load and prompt when idle.
     * Also called when a batch ends early because the actor is exiting.
     * A non-zero return fails the actor, as from handle. */
    int (*batch_end)(cr_ctx *ctx, void *state);
} cr_behaviour;

typedef struct cr_spawn_opts {
    const char *name;       /* registered name (NULL = anonymous); copied */
    size_t stack_size;      /* 0 = runtime default (256 KiB) */
    uint32_t mailbox_cap;   /* max queued envelopes; 0 = default (65536).
                               Runtime messages (DOWN, async REPLY, timer
                               messages, stop wake-ups) are admitted past
                               it, each bounded by its own source, so the
                               high-water mark may exceed cap slightly. */
    cr_id link_monitor;     /* if set, this actor monitors the new one
                               before it can possibly exit (no race) */
    bool wait_init;         /* cr_spawn returns once the new actor's init
                               has returned, whatever it returned (OTP's
                               start_link). An init that waits for its
                               spawner would deadlock. */
} cr_spawn_opts;

/* ---- runtime ------------------------------------------------------- */

typedef struct cr_rt_opts {
    size_t default_stack;  /* 0 = 256 KiB */
    uint32_t default_cap;  /* 0 = 65536 */
    uint32_t batch_max;    /* max envelopes per nng message; 0 = 256 */
} cr_rt_opts;

/* cr_rt_new creates a runtime (its timer/reaper thread included).
 * opts may be NULL. Returns 0 and sets *rtp, or an error code. */
int cr_rt_new(const cr_rt_opts *opts, cr_rt **rtp);

/* cr_rt_destroy stops every actor still alive (CR_EXIT_SHUTDOWN, in reverse
 * spawn order), joins every thread, closes every socket and frees rt.
 * Must not be called from an actor thread of rt. */
void cr_rt_destroy(cr_rt *rt);

/* cr_spawn starts an actor. arg is passed to init. On success sets *idp
 * (may be NULL) and returns 0; the actor's init runs on its own thread.
 * Returns CR_EEXIST if the name is taken, CR_ENOMEM/CR_ENNG otherwise. */
int cr_spawn(cr_rt *rt, const cr_behaviour *b, void *arg,
             const cr_spawn_opts *opts, cr_id *idp);

/* cr_whereis looks a registered name up. Returns CR_NOBODY if unknown. */
cr_id cr_whereis(cr_rt *rt, const char *name);

/* cr_register / cr_unregister name an existing actor (names are also
 * dropped automatically when the actor exits, before its DOWNs go out).
 * One name per actor: CR_EEXIST if the name is taken or the actor is
 * already named; CR_ENOENT; CR_EINVAL for "" or 64+ characters. */
int cr_register(cr_rt *rt, const char *name, cr_id id);
int cr_unregister(cr_rt *rt, const char *name);

/* cr_alive reports whether id is a running actor. */
bool cr_alive(cr_rt *rt, cr_id id);

/* ---- sending ------------------------------------------------------- */

/* cr_send sends m to actor `to` without waiting. from is the sender id
 * (CR_NOBODY from a non-actor thread). Ownership: on 0 the runtime owns m;
 * on error the caller still owns it. Errors: CR_ENOENT/CR_ECLOSED (no
 * such actor), CR_EFULL (mailbox at capacity).
 * Envelopes from one sender thread to one actor arrive in send order. */
int cr_send(cr_rt *rt, cr_id from, cr_id to, cr_msg *m);

/* cr_send_wait is cr_send that waits up to timeout_ms for room in a full
 * mailbox; CR_ETIMEDOUT after that (timeout_ms < 0 waits forever, 0 is
 * cr_send). CR_ECLOSED if the actor exits meanwhile. Same ownership
 * rule. An actor waiting on its own mailbox gets CR_EFULL at once. */
int cr_send_wait(cr_rt *rt, cr_id from, cr_id to, cr_msg *m, int timeout_ms);

/* cr_ctx_send is cr_send from inside an actor (from = self); counts the
 * message in the actor's msgs_out. Same ownership rule. */
int cr_ctx_send(cr_ctx *ctx, cr_id to, cr_msg *m);

/* cr_ctx_send_wait is cr_send_wait from inside an actor (from = self,
 * counted in msgs_out): it waits up to timeout_ms for room in a full
 * mailbox (back-pressure between actors). Same ownership rule. */
int cr_ctx_send_wait(cr_ctx *ctx, cr_id to, cr_msg *m, int timeout_ms);

/* cr_call sends m (a fresh correlation id is assigned) and blocks the
 * calling thread until the reply or timeout_ms (< 0 = forever; a full
 * mailbox is waited for within the same timeout). On 0, *reply is an owned
 * message (free it). Ownership of m: on 0 *and* on CR_ETIMEDOUT the
 * runtime owns m (it was sent); on any other error the caller owns m.
 * A reply that arrives after the timeout is dropped, never delivered to
 * another call. May be called from a non-actor thread (from = CR_NOBODY)
 * or from an actor (it then blocks that actor's message processing); an
 * actor asked to stop while it waits stops waiting at once (CR_ETIMEDOUT),
 * unless the call began after the stop was asked (in terminate). */
int cr_call(cr_rt *rt, cr_id from, cr_id to, cr_msg *m, int timeout_ms,
            cr_msg **reply);

/* cr_call_async sends m as a request from the calling actor; the reply
 * arrives in its mailbox as a CR_MSG_REPLY whose corr equals *corrp.
 * Ownership as cr_send. No timeout: use cr_send_after for one, and
 * cr_call_forget(corr) to drop a late reply. */
int cr_call_async(cr_ctx *ctx, cr_id to, cr_msg *m, uint64_t *corrp);

/* cr_call_forget drops a pending async call; a reply sent after it is
 * dropped (one already queued in the mailbox may still arrive). */
void cr_call_forget(cr_ctx *ctx, uint64_t corr);

/* cr_reply answers request `req` (borrowed) with `reply`. Exception to
 * the ownership rule: cr_reply *always* takes reply, on success and on
 * every error, so callers may ignore the return. Returns CR_ENOENT if
 * nobody waits any more (the caller timed out, forgot the call or is
 * gone; the reply is dropped and counted), CR_EINVAL if req is not a
 * request (corr 0). A reply to cr_call goes straight to the blocked
 * caller with the type given; a reply to cr_call_async is delivered to
 * the caller's mailbox with its type set to CR_MSG_REPLY. */
int cr_reply(cr_ctx *ctx, const cr_msg *req, cr_msg *reply);

/* ---- the actor's own handle ---------------------------------------- */

cr_id cr_self(cr_ctx *ctx);
cr_rt *cr_ctx_rt(cr_ctx *ctx);
const char *cr_ctx_name(cr_ctx *ctx); /* spawn name, "" if anonymous */

/* cr_fail records an error reason; the actor exits with CR_EXIT_ERROR
 * after the current callback returns, whatever it returns. (The name is
 * parenthesised because criterion defines a cr_fail() macro: in a file
 * that includes criterion, call it as `(cr_fail)(ctx, ...)`.) */
void(cr_fail)(cr_ctx *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* cr_exit_self asks to exit after the current message with the given
 * reason (kind NORMAL or SHUTDOWN). */
void cr_exit_self(cr_ctx *ctx, cr_exit_kind kind);

/* ---- stopping ------------------------------------------------------ */

/* cr_stop asks actor id to stop: it finishes the message in hand (with
 * drain_on_stop: every message queued before this call; a cr_call it
 * blocks in returns at once), runs terminate and exits with
 * CR_EXIT_SHUTDOWN. Returns at once (0, or CR_ENOENT). */
int cr_stop(cr_rt *rt, cr_id id);

/* cr_stop_wait is cr_stop that waits up to timeout_ms (<0 = forever) for
 * the actor's thread to end. 0 once it ended; CR_ETIMEDOUT if still
 * running (it will still exit when its handler returns). Must not be
 * called by the actor on itself. */
int cr_stop_wait(cr_rt *rt, cr_id id, int timeout_ms);

/* ---- monitors ------------------------------------------------------ */

/* cr_monitor makes `watcher` receive one CR_MSG_DOWN when `target` exits.
 * If target is already gone the DOWN (kind CR_EXIT_NOPROC) is sent at
 * once. Returns 0 and a monitor ref in *refp (may be NULL). */
int cr_monitor(cr_rt *rt, cr_id watcher, cr_id target, uint64_t *refp);

/* cr_demonitor cancels a monitor; a DOWN already queued may still come. */
int cr_demonitor(cr_rt *rt, uint64_t ref);

/* cr_down_decode parses a CR_MSG_DOWN payload. Returns 0 or CR_EPROTO. */
typedef struct cr_down {
    cr_id who;
    uint64_t ref;
    cr_exit why;
    char name[64];
} cr_down;
int cr_down_decode(const cr_msg *m, cr_down *out);

/* ---- timers -------------------------------------------------------- */

/* cr_send_after delivers m to `to` after delay_ms (from = CR_NOBODY
 * unless sent with cr_ctx_send_after). Ownership: on 0 the runtime owns
 * m, on error the caller does. Returns a timer id in *tidp (may be NULL).
 * If the target is gone when the timer fires the message is dropped. */
int cr_send_after(cr_rt *rt, cr_id to, cr_msg *m, uint64_t delay_ms,
                  uint64_t *tidp);

/* cr_ctx_send_after is cr_send_after from inside an actor: the message
 * arrives with from = the calling actor. Same ownership rule. */
int cr_ctx_send_after(cr_ctx *ctx, cr_id to, cr_msg *m, uint64_t delay_ms,
                      uint64_t *tidp);

/* cr_tick_every delivers a CR_MSG_TIMER message with payload
 * [timer_id, tag] to `to` every period_ms until cancelled. A tick is
 * skipped (not queued twice) while the previous one is still unhandled. */
int cr_tick_every(cr_rt *rt, cr_id to, uint64_t period_ms, uint64_t tag,
                  uint64_t *tidp);

/* cr_timer_after delivers one CR_MSG_TIMER [timer_id, tag] after delay. */
int cr_timer_after(cr_rt *rt, cr_id to, uint64_t delay_ms, uint64_t tag,
                   uint64_t *tidp);

/* cr_timer_cancel cancels a pending timer. 0, or CR_ENOENT if it already
 * fired or never existed. Cancelling never frees a message twice. */
int cr_timer_cancel(cr_rt *rt, uint64_t tid);

/* cr_timer_decode parses a CR_MSG_TIMER payload. 0 or CR_EPROTO. */
int cr_timer_decode(const cr_msg *m, uint64_t *tid, uint64_t *tag);

/* ---- counters ------------------------------------------------------ */

typedef enum {
    CR_STATE_STARTING = 0,
    CR_STATE_RUNNING = 1,
    CR_STATE_STOPPING = 2,
    CR_STATE_EXITED = 3,
} cr_actor_state;

const char *cr_state_name(cr_actor_state s);

typedef struct cr_actor_info {
    cr_id id;
    char name[64];
    char kind[32];
    cr_actor_state state;
    uint64_t msgs_in;    /* envelopes handled */
    uint64_t msgs_out;   /* envelopes sent with cr_ctx_send & co */
    uint32_t depth;      /* envelopes queued now */
    uint32_t high_water; /* max depth seen */
    uint32_t capacity;
    uint64_t started_ms; /* monotonic ms when spawned */
} cr_actor_info;

/* cr_actor_info_get fills *out for one actor. 0 or CR_ENOENT. */
int cr_actor_info_get(cr_rt *rt, cr_id id, cr_actor_info *out);

/* cr_snapshot fills up to max entries (live actors, spawn order) and
 * returns how many live actors there are (may exceed max). */
size_t cr_snapshot(cr_rt *rt, cr_actor_info *out, size_t max);

/* cr_rt_actor_count returns the number of live actors. */
size_t cr_rt_actor_count(cr_rt *rt);

/* cr_rt_timer_count returns the number of pending timers: one-shot ones
 * not fired yet, and periodic ones (removed by cr_timer_cancel, or at
 * their next period once their target is gone). */
size_t cr_rt_timer_count(cr_rt *rt);

/* ---- deferred work -------------------------------------------------- */

#define CR_DEFER_MAX 8

/* cr_defer asks for fn(arg) to run on the calling actor's own thread once
 * the work in hand is done: after the handle calls of the batch being
 * handled and its batch_end, after init, or after terminate. The same
 * (fn, arg) asked for again before it ran runs once. For work cheaper done
 * once per batch than once per message, such as sending an actor's events
 * on in one message (events.h). Returns 0; CR_ENOENT when the caller is
 * not an actor thread, CR_EFULL when CR_DEFER_MAX other callbacks already
 * wait: fn is not recorded then, and the caller does the work itself. */
int cr_defer(void (*fn)(void *arg), void *arg);

/* ---- clock ---------------------------------------------------------- */
/* cr_now_ms returns CLOCK_MONOTONIC in milliseconds. */
uint64_t cr_now_ms(void);

/* cr_cond_init_monotonic initialises *cv to time its waits against
 * CLOCK_MONOTONIC, so a step of the wall clock neither stretches nor cuts
 * a pthread_cond_timedwait. Returns pthread_cond_init's result. */
int cr_cond_init_monotonic(pthread_cond_t *cv);

/* cr_deadline_ts sets *ts to CLOCK_MONOTONIC now + ms: the deadline of a
 * pthread_cond_timedwait on such a condition variable. */
void cr_deadline_ts(struct timespec *ts, uint64_t ms);

#ifdef __cplusplus
}
#endif
#endif /* CFGRECV_ACTOR_H */
