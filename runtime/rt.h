/*
 * rt.h - internal: the runtime and actor structures and the cross-file
 * cri_ functions of the runtime core.
 *
 * Lock order (outer first): reg_lk, then call_mu / svc_mu / an actor's
 * end_mu / a mailbox's mu. No function calls into a mailbox (which takes
 * its mu and nng locks) while holding reg_lk, call_mu or svc_mu, except
 * where noted. Nothing is ever called with a mailbox mu held except nng.
 */
#ifndef CRI_RT_H
#define CRI_RT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cfgrecv/actor.h"
#include "mailbox.h"
#include "map.h"

typedef struct cri_monitor cri_monitor;
typedef struct cri_pending cri_pending;
typedef struct cri_timer cri_timer;

/* An actor. cr_ctx is the actor itself (its handle on its own thread). */
/* One cr_defer request. */
typedef struct cri_deferred {
    void (*fn)(void *arg);
    void *arg;
} cri_deferred;

struct cr_ctx {
    cr_rt *rt;
    cr_id id;
    _Atomic int refs; /* registry + thread + transient lookups */
    const cr_behaviour *b;
    void *arg;
    char spawn_name[64]; /* immutable: cr_ctx_name, thread name */
    char kind[32];       /* immutable */
    uint64_t started_ms; /* immutable */
    pthread_t thr;
    cri_mailbox mb;
    bool mb_open; /* mailbox initialised (immutable after spawn) */

    /* Written by the actor thread, read by anyone (relaxed). */
    _Atomic int state; /* cr_actor_state */
    _Atomic uint64_t msgs_in;
    _Atomic uint64_t msgs_out;
    _Atomic bool stop_req; /* set by cr_stop from any thread */

    /* Actor thread only. */
    void *state_ptr;
    bool exit_req;
    cr_exit exit;
    cri_deferred deferred[CR_DEFER_MAX]; /* cr_defer, run by run_deferred */
    unsigned ndeferred;

    /* Protected by rt->reg_lk. */
    char regname[64];          /* registered name, "" if none */
    cr_ctx *name_next;         /* chain of actors whose names hash alike */
    cr_ctx *prev, *next;       /* live list, spawn order */
    cri_monitor *monitors;     /* monitors watching this actor */
    bool registered;           /* in the id table */

    /* Protected by rt->call_mu. */
    cri_pending *asyncs;  /* pending cr_call_async made by this actor */
    cri_pending *waiting; /* the cr_call its thread blocks in, or NULL */

    /* Protected by rt->svc_mu. */
    cr_ctx *reap_next;

    /* Protected by end_mu: init has returned (cr_spawn_opts.wait_init);
     * the reaper has joined the thread. */
    pthread_mutex_t end_mu;
    pthread_cond_t end_cv;
    bool inited;
    bool joined;
};

struct cr_rt {
    cr_rt_opts opts; /* resolved defaults; immutable */

    /* Registry (registry.c, monitor.c), protected by reg_lk. */
    pthread_rwlock_t reg_lk;
    cri_map actors;    /* id -> cr_ctx* (holds one ref) */
    cri_map names;     /* fnv(name) -> cr_ctx* chain (name_next) */
    cri_map monitors;  /* ref -> cri_monitor* */
    cr_ctx *live_head; /* spawn order */
    cr_ctx *live_tail;
    size_t live_n;
    uint64_t next_ref;
    bool closing; /* cr_rt_destroy started: no more spawns */
    _Atomic uint64_t next_id;

    /* Calls (call.c), protected by call_mu. */
    pthread_mutex_t call_mu;
    cri_map calls; /* corr -> cri_pending* */
    _Atomic uint64_t next_corr;
    _Atomic uint64_t replies_dropped;

    /* Service thread (timer.c): timers and the reaper; protected by
     * svc_mu. */
    pthread_mutex_t svc_mu;
    pthread_cond_t svc_cv;  /* wakes the service thread */
    pthread_cond_t idle_cv; /* threads reached 0 */
    pthread_t svc_thr;
    bool svc_stop;
    cri_timer **heap;
    size_t heap_n;
    size_t heap_cap;
    cri_map timers; /* tid -> cri_timer* */
    uint64_t next_tid;
    cr_ctx *reap_head;
    size_t threads; /* actor threads started and not yet joined */
};

/* ---- rt.c ---- */

/* cri_current returns the actor running on this thread, or NULL. */
cr_ctx *cri_current(void);
void cri_set_current(cr_ctx *a);


/* ---- registry.c ---- */

/* cri_registry_init / fini set up and free the tables (fini assumes no
 * actor is left). cri_registry_init returns 0 or CR_ENOMEM. */
int cri_registry_init(cr_rt *rt);
void cri_registry_fini(cr_rt *rt);

/* cri_actor_get returns a referenced live actor, or NULL. Release with
 * cri_actor_put. */
cr_ctx *cri_actor_get(cr_rt *rt, cr_id id);

/* cri_actor_ref / cri_actor_put take and drop a reference; the last put
 * frees the actor (its mailbox must be closed by then). */
void cri_actor_ref(cr_ctx *a);
void cri_actor_put(cr_ctx *a);

/* cri_registry_add enters a new actor (id table, live list, name, an
 * optional link monitor). Takes the table's reference on success.
 * Returns CR_ECLOSED (runtime closing), CR_EEXIST (name taken),
 * CR_EINVAL (name too long) or CR_ENOMEM; nothing is entered then. */
int cri_registry_add(cr_rt *rt, cr_ctx *a, const char *name,
                     cr_id link_monitor);

/* cri_registry_remove takes the actor out of every table (id, name, live
 * list) and returns its detached monitor list (caller sends the DOWNs and
 * frees them with cri_monitors_fire). Drops the table's reference. */
cri_monitor *cri_registry_remove(cr_rt *rt, cr_ctx *a);

/* cri_last_live returns a referenced actor spawned last, or NULL. */
cr_ctx *cri_last_live(cr_rt *rt);

/* ---- monitor.c ---- */

/* cri_monitor_add_locked attaches a monitor of `watcher` to target a
 * (reg_lk held for writing). Returns 0 or CR_ENOMEM. */
int cri_monitor_add_locked(cr_rt *rt, cr_ctx *a, cr_id watcher,
                           uint64_t *refp);

/* cri_monitors_detach_locked unlinks all monitors of a from the tables
 * (reg_lk held for writing) and returns the list. */
cri_monitor *cri_monitors_detach_locked(cr_rt *rt, cr_ctx *a);

/* cri_monitors_fire sends one DOWN per monitor in list and frees it. */
void cri_monitors_fire(cr_rt *rt, cri_monitor *list, cr_id who,
                       const char *name, const cr_exit *why);

/* cri_monitors_free frees a list without sending anything. */
void cri_monitors_free(cri_monitor *list);

/* ---- actor.c ---- */

/* cri_send delivers m to `to` with the mailbox flags (CRI_PUT_*) and the
 * waiting timeout (0 = none). Ownership as cr_send: on 0 m is consumed. */
int cri_send(cr_rt *rt, cr_id from, cr_id to, cr_msg *m, unsigned flags,
             int timeout_ms);

/* cri_actor_reaped is called by the reaper after joining a's thread. */
void cri_actor_reaped(cr_ctx *a);

/* ---- call.c ---- */

int cri_calls_init(cr_rt *rt);
void cri_calls_fini(cr_rt *rt);

/* cri_calls_drop_actor forgets every pending async call made by a. */
void cri_calls_drop_actor(cr_rt *rt, cr_ctx *a);

/* cri_calls_interrupt wakes a's thread if it blocks in cr_call, so that
 * a stop just asked for (stop_req set) ends that wait. */
void cri_calls_interrupt(cr_rt *rt, cr_ctx *a);

/* ---- timer.c (the service thread: timers + reaper) ---- */

/* cri_service_start starts the service thread. 0, CR_ENOMEM. */
int cri_service_start(cr_rt *rt);

/* cri_service_stop waits until every actor thread was joined, stops the
 * service thread and frees the pending timers. */
void cri_service_stop(cr_rt *rt);

/* cri_thread_started counts a new actor thread (before pthread_create);
 * cri_thread_unstarted undoes it if pthread_create failed. */
void cri_thread_started(cr_rt *rt);
void cri_thread_unstarted(cr_rt *rt);

/* cri_reap hands an exiting actor's thread to the reaper. The caller (the
 * actor's own thread) must not touch a afterwards. */
void cri_reap(cr_rt *rt, cr_ctx *a);

/* cri_timer_ack marks periodic timer tid's tick handled (so the next
 * tick may be queued). */
void cri_timer_ack(cr_rt *rt, uint64_t tid);

#endif
