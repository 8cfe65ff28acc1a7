/*
 * supervisor.c - the supervisor actor (see cfgrecv/supervisor.h for the
 * semantics and the defaults).
 *
 * Design notes. A supervisor is an ordinary actor whose state is a vector
 * of child records in start order; everything it does is driven by
 * messages in its own mailbox, so none of its state needs a lock:
 *  - DOWN (it monitors every child through cr_spawn's link_monitor, so a
 *    child that fails inside init is never missed): the record whose
 *    current id matches decides whether and how to restart. A DOWN whose
 *    id matches no current child is stale (an instance the supervisor
 *    stopped itself, already reported) unless it is a "stuck" instance
 *    whose stop timed out, which is then reported late and released.
 *  - TIMER: restarts are never slept for. one_for_one arms one timer per
 *    child (tag TAG_CHILD); the group strategies arm a single "wave" timer
 *    (tag TAG_WAVE) and, when it fires, start every pending child in start
 *    order. A timer is matched by its id, so a cancelled timer whose
 *    message was already queued is ignored.
 *  - SUP_REQ: add/remove/which/subscribe, raw process-local structs
 *    (they carry function pointers); answered with cr_reply.
 * The one place a supervisor blocks is stopping children (shutdown, the
 * stop half of a group restart, remove): cr_stop_wait, one child at a
 * time in reverse order, each bounded by its own timeout, as OTP's
 * supervisor does. A child that does not stop in time keeps its record
 * (state STOPPING, id kept in `stuck`) and is not started again until its
 * thread is gone.
 * Failure accounting: a failure that leads to a restart pushes the clock
 * into a ring of max_restarts + 1 timestamps; if the ring is full and its
 * oldest entry is younger than within_ms, that was one restart too many:
 * the supervisor emits GIVEUP and calls cr_fail, and its terminate (the
 * single exit path) stops the children in reverse order.
 * A root supervisor (cr_sup_start) also leaves its exit reason in a small
 * process-wide table so cr_sup_wait can report it even if it ended before
 * main() started waiting.
 */
#include "cfgrecv/supervisor.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "cfgrecv/log.h"

#define COMP "supervisor"

enum { TAG_CHILD = 1, TAG_WAVE = 2 };

/* Start results besides 0 and a CR_E* code. */
#define START_POSTPONED (-100)

/* ---- the args: validated, deep copies of opts + specs ---------------- */

struct cr_sup_args {
    cr_sup_opts opts; /* opts.name points at name[] (or NULL) */
    char name[64];
    cr_child_spec *specs; /* specs[i].name points at names[i] */
    char (*names)[CR_SUP_NAME_MAX + 1];
    size_t n;
    bool root;      /* made by cr_sup_start: the instance owns it */
    bool args_live; /* the spec args with arg_free are still owned here */
};

static int
check_name(const char *name)
{
    if (name == NULL || name[0] == '\0' ||
        strnlen(name, CR_SUP_NAME_MAX + 1) > CR_SUP_NAME_MAX) {
        return CR_EINVAL;
    }
    return 0;
}

static int
check_spec(const cr_child_spec *sp)
{
    if (check_name(sp->name) != 0 || sp->behaviour == NULL ||
        sp->restart > CR_RESTART_TEMPORARY) {
        return CR_EINVAL;
    }
    return 0;
}

static int
check_opts(const cr_sup_opts *o)
{
    if (o->name != NULL && strnlen(o->name, 64) > 63) {
        return CR_EINVAL;
    }
    if (o->strategy > CR_SUP_REST_FOR_ONE) {
        return CR_EINVAL;
    }
    if (o->max_restarts != CR_SUP_UNLIMITED && o->max_restarts > 1000000) {
        return CR_EINVAL;
    }
    if (!cr_backoff_policy_is_zero(&o->backoff) &&
        cr_backoff_policy_check(&o->backoff) != 0) {
        return CR_EINVAL;
    }
    return 0;
}

int
cr_sup_args_new(const cr_sup_opts *opts, const cr_child_spec *specs,
                size_t n, cr_sup_args **out)
{
    cr_sup_opts zero = {0};
    if (out == NULL || (n > 0 && specs == NULL)) {
        return CR_EINVAL;
    }
    if (opts == NULL) {
        opts = &zero;
    }
    if (check_opts(opts) != 0) {
        return CR_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (check_spec(&specs[i]) != 0) {
            return CR_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(specs[i].name, specs[j].name) == 0) {
                return CR_EINVAL;
            }
        }
    }
    cr_sup_args *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return CR_ENOMEM;
    }
    if (n > 0) {
        a->specs = calloc(n, sizeof(*a->specs));
        a->names = calloc(n, sizeof(*a->names));
        if (a->specs == NULL || a->names == NULL) {
            free(a->specs);
            free(a->names);
            free(a);
            return CR_ENOMEM;
        }
    }
    a->opts = *opts;
    if (opts->name != NULL) {
        snprintf(a->name, sizeof(a->name), "%s", opts->name);
        a->opts.name = a->name;
    }
    for (size_t i = 0; i < n; i++) {
        a->specs[i] = specs[i];
        snprintf(a->names[i], sizeof(a->names[i]), "%s", specs[i].name);
        a->specs[i].name = a->names[i];
    }
    a->n = n;
    a->args_live = true;
    *out = a;
    return 0;
}

/* args_release frees the args struct; with free_args, also the spec args
 * it owns. */
static void
args_release(cr_sup_args *a, bool free_args)
{
    if (a == NULL) {
        return;
    }
    if (free_args && a->args_live) {
        for (size_t i = 0; i < a->n; i++) {
            if (a->specs[i].arg_free != NULL) {
                a->specs[i].arg_free(a->specs[i].arg);
            }
        }
    }
    free(a->specs);
    free(a->names);
    free(a);
}

void
cr_sup_args_free(void *args)
{
    args_release(args, true);
}

void
cr_sup_child_spec(cr_child_spec *spec, const char *name, cr_sup_args *args)
{
    memset(spec, 0, sizeof(*spec));
    spec->name = name;
    spec->behaviour = &cr_sup_behaviour;
    spec->arg = args;
    spec->arg_free = cr_sup_args_free;
    spec->restart = CR_RESTART_PERMANENT;
    spec->shutdown_timeout_ms = CR_SUP_INFINITY;
}

/* ---- root records (for cr_sup_wait) ------------------------------------ */

typedef struct root_rec {
    cr_rt *rt;
    cr_id id;
    bool done;
    cr_exit why;
    struct root_rec *next;
} root_rec;

static pthread_mutex_t roots_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t roots_cv = PTHREAD_COND_INITIALIZER;
static root_rec *roots; /* protected by roots_mu */

/* ---- the instance ------------------------------------------------------ */

typedef struct child {
    char name[CR_SUP_NAME_MAX + 1];
    const cr_behaviour *b;
    void *arg;
    void (*arg_free)(void *);
    bool owns_arg; /* this instance calls arg_free (else the args do) */
    cr_restart_type restart;
    uint32_t shutdown_ms;
    bool reg;
    size_t stack;
    uint32_t cap;

    cr_id id;        /* the running instance, 0 if none */
    cr_id stuck;     /* an instance whose stop timed out, 0 if none */
    cr_child_state state;
    bool started_once;
    bool pending;    /* to be (re)started by the wave (group strategies) */
    bool removed;    /* removed while stuck: forgotten once it is gone */
    uint64_t tid;    /* one_for_one restart timer, 0 if none */
    cr_backoff bo;
    uint64_t started_at;
    uint32_t restarts;
    uint32_t next_delay;
    cr_exit last_exit;
} child;

typedef struct sub {
    cr_id who;
    uint32_t mask;
} sub;

typedef struct supv {
    cr_ctx *ctx;
    cr_rt *rt;
    cr_id self;
    char name[64];
    cr_sup_args *args;
    bool owns_args;
    cr_sup_strategy strategy;
    uint32_t max_restarts;
    uint32_t within_ms;
    cr_backoff_policy policy;
    cr_clock_fn clock;
    void *clock_arg;
    cr_rng_fn rng;
    void *rng_arg;
    cr_rng own_rng;

    child **kids; /* start order */
    size_t n, cap;

    uint64_t *ring; /* restart timestamps, max_restarts + 1 of them */
    size_t ring_len, ring_head, ring_count;

    uint64_t wave_tid; /* group restart timer, 0 if none */
    uint32_t wave_delay;

    sub *subs;
    size_t nsubs, subcap;
    uint64_t seq;
    uint64_t dropped;

    bool giving_up;
} supv;

static const char *const ev_names[] = {"start",        "exit",
                                       "restart_scheduled", "restart",
                                       "giveup",       "stop_timeout",
                                       "removed"};

const char *
cr_sup_event_name(cr_sup_event_kind k)
{
    for (unsigned i = 0; i < sizeof(ev_names) / sizeof(ev_names[0]); i++) {
        if (k == (1u << i)) {
            return ev_names[i];
        }
    }
    return "?";
}

const char *
cr_child_state_name(cr_child_state s)
{
    switch (s) {
    case CR_CHILD_RUNNING:
        return "running";
    case CR_CHILD_RESTARTING:
        return "restarting";
    case CR_CHILD_STOPPED:
        return "stopped";
    case CR_CHILD_STOPPING:
        return "stopping";
    }
    return "?";
}

static const char *const kind_names[] = {"normal", "shutdown", "error",
                                         "noproc"};

static const char *
kind_name(cr_exit_kind k)
{
    return (unsigned)k <= CR_EXIT_NOPROC ? kind_names[k] : "?";
}

static void
set_reason(cr_exit *e, cr_exit_kind kind, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
set_reason(cr_exit *e, cr_exit_kind kind, int code, const char *fmt, ...)
{
    e->kind = kind;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
}

static uint64_t
now_ms(supv *s)
{
    return s->clock(s->clock_arg);
}

/* ---- events -------------------------------------------------------- */

static void
pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str_with_body(pk, s, n);
}

static void
pack_reason(msgpack_packer *pk, const cr_exit *why)
{
    msgpack_pack_map(pk, 3);
    pack_str(pk, "kind");
    pack_str(pk, kind_name(why->kind));
    pack_str(pk, "code");
    msgpack_pack_int(pk, why->code);
    pack_str(pk, "text");
    msgpack_pack_str_with_body(pk, why->text,
                               strnlen(why->text, sizeof(why->text) - 1));
}

/* emit sends one event to every subscriber that wants it. why may be NULL
 * (then c->last_exit is used for EXIT); c may be NULL (GIVEUP). */
static void
emit(supv *s, cr_sup_event_kind kind, const child *c, cr_id id,
     const cr_exit *why, uint64_t num)
{
    s->seq++;
    bool any = false;
    for (size_t i = 0; i < s->nsubs; i++) {
        if (s->subs[i].mask & kind) {
            any = true;
            break;
        }
    }
    if (!any) {
        return;
    }
    cr_msg *m = cr_msg_new(CR_MSG_SUP_EVENT);
    if (m == NULL) {
        s->dropped++;
        return;
    }
    msgpack_packer *pk = cr_msg_packer(m);
    bool has_reason = kind == CR_SUP_EV_EXIT || kind == CR_SUP_EV_GIVEUP;
    bool has_delay = kind == CR_SUP_EV_RESTART_SCHEDULED;
    bool has_timeout = kind == CR_SUP_EV_STOP_TIMEOUT;
    msgpack_pack_map(pk, 8 + has_reason + has_delay + has_timeout);
    pack_str(pk, "ev");
    pack_str(pk, cr_sup_event_name(kind));
    pack_str(pk, "seq");
    msgpack_pack_uint64(pk, s->seq);
    pack_str(pk, "t");
    msgpack_pack_uint64(pk, now_ms(s));
    pack_str(pk, "sup");
    msgpack_pack_uint64(pk, s->self);
    pack_str(pk, "sup_name");
    pack_str(pk, s->name);
    pack_str(pk, "child");
    pack_str(pk, c != NULL ? c->name : "");
    pack_str(pk, "id");
    msgpack_pack_uint64(pk, id);
    pack_str(pk, "restarts");
    msgpack_pack_uint32(pk, c != NULL ? c->restarts : 0);
    if (has_delay) {
        pack_str(pk, "delay_ms");
        msgpack_pack_uint64(pk, num);
    }
    if (has_timeout) {
        pack_str(pk, "timeout_ms");
        msgpack_pack_uint64(pk, num);
    }
    if (has_reason) {
        pack_str(pk, "reason");
        pack_reason(pk, why != NULL ? why : &c->last_exit);
    }
    if (cr_msg_packer_failed(m)) {
        cr_msg_free(m);
        s->dropped++;
        return;
    }
    for (size_t i = 0; i < s->nsubs;) {
        if (!(s->subs[i].mask & kind)) {
            i++;
            continue;
        }
        cr_msg *copy = cr_msg_dup(m);
        int rv = copy != NULL ? cr_ctx_send(s->ctx, s->subs[i].who, copy)
                              : CR_ENOMEM;
        if (rv == 0) {
            i++;
            continue;
        }
        cr_msg_free(copy);
        if (rv == CR_ENOENT || rv == CR_ECLOSED) {
            s->subs[i] = s->subs[--s->nsubs]; /* gone: drop it */
            continue;
        }
        if (s->dropped++ % 1000 == 0) {
            CR_WARN(COMP, "supervisor '%s': event for %llu dropped (%s); "
                          "%llu dropped so far",
                    s->name, (unsigned long long)s->subs[i].who,
                    cr_strerror(rv), (unsigned long long)s->dropped);
        }
        i++;
    }
    cr_msg_free(m);
}

static int
subscribe(supv *s, cr_id who, uint32_t mask)
{
    for (size_t i = 0; i < s->nsubs; i++) {
        if (s->subs[i].who == who) {
            if (mask == 0) {
                s->subs[i] = s->subs[--s->nsubs];
            } else {
                s->subs[i].mask = mask;
            }
            return 0;
        }
    }
    if (mask == 0) {
        return 0;
    }
    if (s->nsubs == s->subcap) {
        size_t nc = s->subcap ? s->subcap * 2 : 4;
        sub *ns = realloc(s->subs, nc * sizeof(*ns));
        if (ns == NULL) {
            return CR_ENOMEM;
        }
        s->subs = ns;
        s->subcap = nc;
    }
    s->subs[s->nsubs++] = (sub){who, mask};
    return 0;
}

/* ---- child records ----------------------------------------------------- */

static child *
find_name(supv *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->kids[i]->name, name) == 0) {
            return s->kids[i];
        }
    }
    return NULL;
}

static size_t
index_of(supv *s, const child *c)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->kids[i] == c) {
            return i;
        }
    }
    assert(!"child not in its supervisor");
    return 0;
}

static int
append_child(supv *s, const cr_child_spec *sp, bool owns_arg, child **out)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        child **nk = realloc(s->kids, nc * sizeof(*nk));
        if (nk == NULL) {
            return CR_ENOMEM;
        }
        s->kids = nk;
        s->cap = nc;
    }
    child *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return CR_ENOMEM;
    }
    snprintf(c->name, sizeof(c->name), "%s", sp->name);
    c->b = sp->behaviour;
    c->arg = sp->arg;
    c->arg_free = sp->arg_free;
    c->owns_arg = owns_arg;
    c->restart = sp->restart;
    c->shutdown_ms = sp->shutdown_timeout_ms ? sp->shutdown_timeout_ms
                                             : CR_SUP_SHUTDOWN_DEFAULT;
    c->reg = sp->register_name;
    c->stack = sp->stack_size;
    c->cap = sp->mailbox_cap;
    c->state = CR_CHILD_RESTARTING;
    set_reason(&c->last_exit, CR_EXIT_NORMAL, 0, "%s", "");
    s->kids[s->n++] = c;
    *out = c;
    return 0;
}

/* forget drops c from the vector and frees it (and its arg if owned). Only
 * for a child with no instance left (id == 0, stuck == 0). */
static void
forget(supv *s, child *c)
{
    size_t i = index_of(s, c);
    memmove(&s->kids[i], &s->kids[i + 1], (s->n - i - 1) * sizeof(*s->kids));
    s->n--;
    if (c->tid != 0) {
        cr_timer_cancel(s->rt, c->tid);
    }
    if (c->owns_arg && c->arg_free != NULL) {
        c->arg_free(c->arg);
    }
    free(c);
}

/* ---- starting and stopping -------------------------------------------- */

/* start_child spawns c. Returns 0, START_POSTPONED (a stuck instance of c
 * is still running) or the cr_spawn error (reported as an exit; the caller
 * handles the failure). */
static int
start_child(supv *s, child *c)
{
    if (c->stuck != 0) {
        if (cr_alive(s->rt, c->stuck)) {
            return START_POSTPONED;
        }
        c->stuck = 0; /* gone; its DOWN is stale now */
    }
    cr_spawn_opts so = {
        .name = c->reg ? c->name : NULL,
        .stack_size = c->stack,
        .mailbox_cap = c->cap,
        .link_monitor = s->self,
        /* a nested supervisor spawns its children in its init: waiting
         * for it means the whole subtree exists (names registered,
         * mailboxes open) before the next sibling starts. The flow
         * manager, started after the handlers' supervisor, finds every
         * handler at its first sync instead of racing their spawn. */
        .wait_init = c->b == &cr_sup_behaviour,
    };
    cr_id id = 0;
    c->started_at = now_ms(s);
    c->next_delay = 0;
    int rv = cr_spawn(s->rt, c->b, c->arg, &so, &id);
    if (rv != 0) {
        c->id = 0;
        set_reason(&c->last_exit, CR_EXIT_ERROR, rv, "start failed: %s",
                   cr_strerror(rv));
        CR_WARN(COMP, "supervisor '%s': child '%s' failed to start: %s",
                s->name, c->name, cr_strerror(rv));
        emit(s, CR_SUP_EV_EXIT, c, 0, NULL, 0);
        return rv;
    }
    c->id = id;
    c->state = CR_CHILD_RUNNING;
    if (c->started_once) {
        c->restarts++;
        CR_DEBUG(COMP, "supervisor '%s': child '%s' restarted as %llu (%u)",
                 s->name, c->name, (unsigned long long)id, c->restarts);
        emit(s, CR_SUP_EV_RESTART, c, id, NULL, 0);
    } else {
        c->started_once = true;
        CR_DEBUG(COMP, "supervisor '%s': child '%s' started as %llu",
                 s->name, c->name, (unsigned long long)id);
        emit(s, CR_SUP_EV_START, c, id, NULL, 0);
    }
    return 0;
}

/* stop_instance stops actor id of child c, waiting up to c's timeout.
 * Returns true if it ended; false if it did not stop in time (reported). */
static bool
stop_instance(supv *s, child *c, cr_id id)
{
    int to = c->shutdown_ms == CR_SUP_INFINITY ? -1 : (int)c->shutdown_ms;
    int rv = cr_stop_wait(s->rt, id, to);
    if (rv == CR_ETIMEDOUT) {
        CR_WARN(COMP,
                "supervisor '%s': child '%s' (%llu) did not stop within "
                "%u ms; left to exit when its handler returns",
                s->name, c->name, (unsigned long long)id, c->shutdown_ms);
        emit(s, CR_SUP_EV_STOP_TIMEOUT, c, id, NULL, c->shutdown_ms);
        return false;
    }
    return true;
}

/* stop_child stops c's running instance (if any); c ends STOPPED, or
 * STOPPING with c->stuck set if it did not stop in time. */
static void
stop_child(supv *s, child *c)
{
    if (c->tid != 0) {
        cr_timer_cancel(s->rt, c->tid);
        c->tid = 0;
    }
    c->pending = false;
    c->next_delay = 0;
    cr_id id = c->id;
    if (id == 0) {
        if (c->state != CR_CHILD_STOPPING) {
            c->state = CR_CHILD_STOPPED;
        }
        return;
    }
    c->id = 0;
    if (stop_instance(s, c, id)) {
        c->state = CR_CHILD_STOPPED;
        set_reason(&c->last_exit, CR_EXIT_SHUTDOWN, 0, "%s",
                   "stopped by supervisor");
        emit(s, CR_SUP_EV_EXIT, c, id, NULL, 0);
    } else {
        c->state = CR_CHILD_STOPPING;
        c->stuck = id;
    }
}

/* ---- restarts ------------------------------------------------------------ */

static void on_failure(supv *s, child *c);

/* intensity_exceeded records one restart at now and reports whether that
 * makes more than max_restarts within within_ms. */
static bool
intensity_exceeded(supv *s, uint64_t now)
{
    if (s->ring == NULL) {
        return false; /* unlimited */
    }
    size_t slot = (s->ring_head + s->ring_count) % s->ring_len;
    if (s->ring_count == s->ring_len) {
        slot = s->ring_head; /* overwrite the oldest */
        s->ring_head = (s->ring_head + 1) % s->ring_len;
    } else {
        s->ring_count++;
    }
    s->ring[slot] = now;
    if (s->ring_count < s->ring_len) {
        return false;
    }
    uint64_t oldest = s->ring[s->ring_head];
    return now - oldest < s->within_ms;
}

static void
give_up(supv *s, const child *c)
{
    cr_exit why;
    set_reason(&why, CR_EXIT_ERROR, CR_EFAIL,
               "more than %u restarts within %u ms (last: child '%s': %s)",
               s->max_restarts, s->within_ms, c->name, c->last_exit.text);
    s->giving_up = true;
    if (s->owns_args) {
        CR_ERROR(COMP, "root supervisor '%s' gave up: %s", s->name,
                 why.text);
    } else {
        CR_ERROR(COMP, "supervisor '%s' gave up: %s; escalating", s->name,
                 why.text);
    }
    emit(s, CR_SUP_EV_GIVEUP, NULL, 0, &why, 0);
    cr_fail(s->ctx, CR_EFAIL, "%s", why.text);
}

/* arm (re)arms the restart timer *tid (a child's or the wave's). Without
 * a timer what it restarts would never come back: the supervisor then
 * fails loudly so its parent restarts the whole subtree. */
static void
arm(supv *s, uint64_t *tid, uint32_t delay, uint64_t tag)
{
    if (*tid != 0) {
        cr_timer_cancel(s->rt, *tid);
        *tid = 0;
    }
    int rv = cr_timer_after(s->rt, s->self, delay, tag, tid);
    if (rv != 0) {
        CR_ERROR(COMP, "supervisor '%s': cannot arm restart timer: %s",
                 s->name, cr_strerror(rv));
        cr_fail(s->ctx, rv, "cannot arm restart timer");
        s->giving_up = true;
    }
}

static void
schedule_child(supv *s, child *c, uint32_t delay)
{
    arm(s, &c->tid, delay, TAG_CHILD);
}

static void
schedule_wave(supv *s, uint32_t delay)
{
    s->wave_delay = delay;
    arm(s, &s->wave_tid, delay, TAG_WAVE);
}

/* start_pending starts, in order, every child marked pending (the wave).
 * Stops at a postponed child (re-arming the wave) or at a failure (whose
 * handling re-arms it). */
static void
start_pending(supv *s)
{
    for (size_t i = 0; i < s->n && !s->giving_up; i++) {
        child *c = s->kids[i];
        if (!c->pending) {
            continue;
        }
        int rv = start_child(s, c);
        if (rv == START_POSTPONED) {
            schedule_wave(s, s->policy.min_ms ? s->policy.min_ms : 100);
            return;
        }
        c->pending = false;
        if (rv != 0) {
            on_failure(s, c);
            if (s->strategy != CR_SUP_ONE_FOR_ONE) {
                return; /* on_failure re-armed the wave from here */
            }
        }
    }
}

/* on_failure: c (no instance running) must be restarted per strategy. */
static void
on_failure(supv *s, child *c)
{
    uint64_t now = now_ms(s);
    cr_backoff_stable(&c->bo, &s->policy, now - c->started_at);
    if (intensity_exceeded(s, now)) {
        give_up(s, c);
        return;
    }
    uint32_t delay = cr_backoff_next(&c->bo, &s->policy, s->rng, s->rng_arg);
    if (s->strategy == CR_SUP_ONE_FOR_ONE) {
        c->state = CR_CHILD_RESTARTING;
        c->next_delay = delay;
        CR_DEBUG(COMP, "supervisor '%s': child '%s' restarts in %u ms",
                 s->name, c->name, delay);
        emit(s, CR_SUP_EV_RESTART_SCHEDULED, c, 0, NULL, delay);
        schedule_child(s, c, delay);
        return;
    }
    size_t first = s->strategy == CR_SUP_ONE_FOR_ALL ? 0 : index_of(s, c);
    /* Stop the rest of the group, in reverse start order. */
    for (size_t i = s->n; i-- > first;) {
        child *k = s->kids[i];
        if (k != c && !k->removed && k->id != 0) {
            stop_child(s, k);
        }
    }
    /* Mark the group pending; temporary siblings are dropped (OTP). */
    for (size_t i = first; i < s->n;) {
        child *k = s->kids[i];
        if (k->removed) {
            i++;
            continue;
        }
        if (k != c && k->restart == CR_RESTART_TEMPORARY) {
            if (k->stuck != 0) {
                k->removed = true;
                i++;
            } else {
                emit(s, CR_SUP_EV_REMOVED, k, 0, NULL, 0);
                forget(s, k);
            }
            continue;
        }
        k->pending = true;
        if (k->state != CR_CHILD_STOPPING) {
            k->state = CR_CHILD_RESTARTING;
        }
        k->next_delay = delay;
        emit(s, CR_SUP_EV_RESTART_SCHEDULED, k, 0, NULL, delay);
        i++;
    }
    CR_DEBUG(COMP, "supervisor '%s': restarting from '%s' in %u ms",
             s->name, c->name, delay);
    schedule_wave(s, delay);
}

/* child_exited handles the DOWN of c's current instance. */
static void
child_exited(supv *s, child *c, const cr_exit *why)
{
    cr_id id = c->id;
    c->id = 0;
    c->last_exit = *why;
    bool failed = why->kind == CR_EXIT_ERROR || why->kind == CR_EXIT_NOPROC;
    if (failed) {
        CR_WARN(COMP, "supervisor '%s': child '%s' (%llu) failed: %s",
                s->name, c->name, (unsigned long long)id, why->text);
    } else {
        CR_DEBUG(COMP, "supervisor '%s': child '%s' (%llu) exited: %s",
                 s->name, c->name, (unsigned long long)id, why->text);
    }
    emit(s, CR_SUP_EV_EXIT, c, id, NULL, 0);
    if (c->restart == CR_RESTART_TEMPORARY) {
        emit(s, CR_SUP_EV_REMOVED, c, 0, NULL, 0);
        forget(s, c);
        return;
    }
    if (c->restart == CR_RESTART_TRANSIENT && !failed) {
        c->state = CR_CHILD_STOPPED;
        return;
    }
    on_failure(s, c);
}

/* ---- requests ------------------------------------------------------------ */

enum { OP_ADD = 1, OP_REMOVE = 2, OP_WHICH = 3, OP_SUBSCRIBE = 4 };

typedef struct req {
    uint32_t op;
    cr_child_spec spec; /* OP_ADD; spec.name points at name */
    char name[CR_SUP_NAME_MAX + 1];
    cr_id who;     /* OP_SUBSCRIBE */
    uint32_t mask; /* OP_SUBSCRIBE */
} req;

typedef struct rep {
    int rc;
    cr_id id;
} rep;

static void
reply_rc(supv *s, const cr_msg *m, int rc, cr_id id, const cr_child_spec *rej)
{
    rep r = {rc, id};
    cr_msg *out = cr_msg_new_bytes(CR_MSG_SUP_REQ, &r, sizeof(r));
    int rv = out != NULL ? cr_reply(s->ctx, m, out) : CR_ENOMEM;
    if (rv == CR_ENOENT && rej != NULL && rej->arg_free != NULL) {
        /* The caller timed out and so handed the arg to us: free it. */
        rej->arg_free(rej->arg);
    }
    if (out == NULL && rej != NULL && rej->arg_free != NULL) {
        CR_WARN(COMP, "supervisor '%s': rejected child '%s' (%s), and the "
                      "reply was lost (out of memory)",
                s->name, rej->name, cr_strerror(rc));
    }
}

static void
op_add(supv *s, const cr_msg *m, req *r)
{
    r->spec.name = r->name;
    r->name[CR_SUP_NAME_MAX] = '\0';
    int rc = check_spec(&r->spec);
    if (rc == 0 && find_name(s, r->name) != NULL) {
        rc = CR_EEXIST;
    }
    child *c = NULL;
    if (rc == 0) {
        rc = append_child(s, &r->spec, true, &c);
    }
    if (rc != 0) {
        reply_rc(s, m, rc, 0, &r->spec);
        return;
    }
    if (s->strategy != CR_SUP_ONE_FOR_ONE && s->wave_tid != 0) {
        c->pending = true; /* joins the pending group restart, in order */
        reply_rc(s, m, 0, 0, NULL);
        return;
    }
    int rv = start_child(s, c);
    reply_rc(s, m, 0, c->id, NULL);
    if (rv != 0) {
        on_failure(s, c);
    }
}

static void
op_remove(supv *s, const cr_msg *m, const req *r)
{
    char name[CR_SUP_NAME_MAX + 1];
    memcpy(name, r->name, sizeof(name));
    name[CR_SUP_NAME_MAX] = '\0';
    child *c = find_name(s, name);
    if (c == NULL || c->removed) {
        reply_rc(s, m, CR_ENOENT, 0, NULL);
        return;
    }
    bool cancelled = c->tid != 0 || c->pending;
    if (cancelled) {
        CR_DEBUG(COMP, "supervisor '%s': pending restart of '%s' cancelled",
                 s->name, c->name);
    }
    stop_child(s, c);
    emit(s, CR_SUP_EV_REMOVED, c, 0, NULL, 0);
    if (c->stuck != 0) {
        c->removed = true; /* forgotten once its thread is gone */
    } else {
        forget(s, c);
    }
    reply_rc(s, m, 0, 0, NULL);
}

static void
pack_child(msgpack_packer *pk, const child *c)
{
    msgpack_pack_map(pk, 8);
    pack_str(pk, "name");
    pack_str(pk, c->name);
    pack_str(pk, "id");
    msgpack_pack_uint64(pk, c->id != 0 ? c->id : c->stuck);
    pack_str(pk, "state");
    msgpack_pack_uint32(pk, (uint32_t)c->state);
    pack_str(pk, "restart");
    msgpack_pack_uint32(pk, (uint32_t)c->restart);
    pack_str(pk, "restarts");
    msgpack_pack_uint32(pk, c->restarts);
    pack_str(pk, "last_exit");
    pack_reason(pk, &c->last_exit);
    pack_str(pk, "next_delay_ms");
    msgpack_pack_uint32(pk, c->next_delay);
    pack_str(pk, "attempt");
    msgpack_pack_uint32(pk, c->bo.attempt);
}

static void
op_which(supv *s, const cr_msg *m)
{
    cr_msg *out = cr_msg_new(CR_MSG_SUP_REQ);
    if (out == NULL) {
        return; /* the caller times out */
    }
    msgpack_packer *pk = cr_msg_packer(out);
    msgpack_pack_array(pk, s->n);
    for (size_t i = 0; i < s->n; i++) {
        pack_child(pk, s->kids[i]);
    }
    if (cr_msg_packer_failed(out)) {
        cr_msg_free(out);
        return;
    }
    (void)cr_reply(s->ctx, m, out);
}

static void
on_request(supv *s, const cr_msg *m)
{
    if (cr_msg_len(m) != sizeof(req)) {
        CR_WARN(COMP, "supervisor '%s': malformed request ignored", s->name);
        return;
    }
    req r;
    memcpy(&r, cr_msg_data(m), sizeof(r));
    switch (r.op) {
    case OP_ADD:
        op_add(s, m, &r);
        break;
    case OP_REMOVE:
        op_remove(s, m, &r);
        break;
    case OP_WHICH:
        op_which(s, m);
        break;
    case OP_SUBSCRIBE:
        reply_rc(s, m, subscribe(s, r.who, r.mask), 0, NULL);
        break;
    default:
        reply_rc(s, m, CR_EINVAL, 0, NULL);
        break;
    }
}

/* ---- the behaviour ------------------------------------------------------- */

static void
on_down(supv *s, const cr_msg *m)
{
    cr_down d;
    if (cr_down_decode(m, &d) != 0) {
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        child *c = s->kids[i];
        if (c->id == d.who) {
            child_exited(s, c, &d.why);
            return;
        }
        if (c->stuck == d.who) {
            /* The late exit of an instance whose stop timed out. */
            c->stuck = 0;
            CR_INFO(COMP, "supervisor '%s': child '%s' (%llu) finally "
                          "exited: %s",
                    s->name, c->name, (unsigned long long)d.who,
                    d.why.text);
            c->last_exit = d.why;
            emit(s, CR_SUP_EV_EXIT, c, d.who, NULL, 0);
            if (c->state == CR_CHILD_STOPPING) {
                c->state = c->pending || c->tid ? CR_CHILD_RESTARTING
                                                : CR_CHILD_STOPPED;
            }
            if (c->removed) {
                forget(s, c);
            }
            return;
        }
    }
    /* Otherwise stale: an instance stopped by us and already reported. */
}

static void
on_timer(supv *s, const cr_msg *m)
{
    uint64_t tid, tag;
    if (cr_timer_decode(m, &tid, &tag) != 0) {
        return;
    }
    if (tag == TAG_WAVE) {
        if (tid == s->wave_tid) {
            s->wave_tid = 0;
            start_pending(s);
        }
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        child *c = s->kids[i];
        if (c->tid != tid) {
            continue;
        }
        c->tid = 0;
        int rv = start_child(s, c);
        if (rv == START_POSTPONED) {
            schedule_child(s, c, s->policy.min_ms ? s->policy.min_ms : 100);
        } else if (rv != 0) {
            on_failure(s, c);
        }
        return;
    }
}

static int
sup_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    supv *s = state;
    if (s->giving_up) {
        return 0; /* exiting after this callback */
    }
    switch (cr_msg_type(m)) {
    case CR_MSG_DOWN:
        on_down(s, m);
        break;
    case CR_MSG_TIMER:
        on_timer(s, m);
        break;
    case CR_MSG_SUP_REQ:
        on_request(s, m);
        break;
    default:
        CR_DEBUG(COMP, "supervisor '%s': message type %u ignored", s->name,
                 cr_msg_type(m));
        break;
    }
    return 0;
}

static int
sup_init(cr_ctx *ctx, void *arg, void **state)
{
    cr_sup_args *a = arg;
    supv *s = calloc(1, sizeof(*s));
    *state = s;
    if (s == NULL) {
        if (a->root) {
            args_release(a, true);
        }
        return CR_ENOMEM;
    }
    s->ctx = ctx;
    s->rt = cr_ctx_rt(ctx);
    s->self = cr_self(ctx);
    s->args = a;
    s->owns_args = a->root;
    const cr_sup_opts *o = &a->opts;
    if (o->name != NULL) {
        snprintf(s->name, sizeof(s->name), "%s", o->name);
    } else {
        snprintf(s->name, sizeof(s->name), "%s", cr_ctx_name(ctx));
        if (s->name[0] == '\0') {
            snprintf(s->name, sizeof(s->name), "sup-%llu",
                     (unsigned long long)s->self);
        }
    }
    s->strategy = o->strategy;
    s->max_restarts = o->max_restarts ? o->max_restarts
                                      : CR_SUP_MAX_RESTARTS_DEF;
    s->within_ms = o->within_ms ? o->within_ms : CR_SUP_WITHIN_MS_DEF;
    if (cr_backoff_policy_is_zero(&o->backoff)) {
        cr_backoff_policy_default(&s->policy);
    } else {
        s->policy = o->backoff;
    }
    s->clock = o->clock ? o->clock : cr_clock_default;
    s->clock_arg = o->clock_arg;
    if (o->rng != NULL) {
        s->rng = o->rng;
        s->rng_arg = o->rng_arg;
    } else {
        cr_rng_seed(&s->own_rng, 0);
        s->rng = cr_rng_next;
        s->rng_arg = &s->own_rng;
    }
    if (s->max_restarts != CR_SUP_UNLIMITED) {
        s->ring_len = (size_t)s->max_restarts + 1;
        s->ring = calloc(s->ring_len, sizeof(*s->ring));
        if (s->ring == NULL) {
            return CR_ENOMEM; /* terminate frees the rest */
        }
    }
    if (o->subscriber != CR_NOBODY) {
        int rv = subscribe(s, o->subscriber,
                           o->subscribe_mask ? o->subscribe_mask
                                             : CR_SUP_EV_ALL);
        if (rv != 0) {
            return rv;
        }
    }
    for (size_t i = 0; i < a->n; i++) {
        child *c;
        /* A root owns its specs' args; a nested supervisor's belong to
         * its cr_sup_args, which every restart of it starts from. */
        int rv = append_child(s, &a->specs[i], s->owns_args, &c);
        if (rv != 0) {
            return rv;
        }
        c->pending = true;
    }
    CR_DEBUG(COMP, "supervisor '%s' (%llu) starting %zu children", s->name,
             (unsigned long long)s->self, s->n);
    start_pending(s);
    return 0;
}

static void
sup_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    supv *s = state;
    if (s == NULL) {
        return;
    }
    if (s->wave_tid != 0) {
        cr_timer_cancel(s->rt, s->wave_tid);
        s->wave_tid = 0;
    }
    /* Stop every child, in reverse start order; stuck ones get one more
     * chance to end within their timeout. */
    for (size_t i = s->n; i-- > 0;) {
        child *c = s->kids[i];
        cr_id was_stuck = c->stuck;
        stop_child(s, c);
        if (was_stuck != 0 && cr_alive(s->rt, was_stuck) &&
            stop_instance(s, c, was_stuck)) {
            c->stuck = 0;
        }
    }
    bool leaked_static = false;
    for (size_t i = 0; i < s->n; i++) {
        child *c = s->kids[i];
        bool stuck = c->stuck != 0 && cr_alive(s->rt, c->stuck);
        if (stuck && c->arg_free != NULL) {
            CR_WARN(COMP, "supervisor '%s': child '%s' (%llu) still running "
                          "at exit: its arg is leaked, not freed under it",
                    s->name, c->name, (unsigned long long)c->stuck);
            if (!c->owns_arg) {
                leaked_static = true;
            }
        } else if (c->owns_arg && c->arg_free != NULL) {
            c->arg_free(c->arg);
        }
        free(c);
    }
    if (s->owns_args) {
        args_release(s->args, false); /* spec args handled just above */
    } else if (leaked_static) {
        /* The parent's cr_sup_args must not free an arg under a running
         * thread either: it keeps them all (a logged leak). */
        s->args->args_live = false;
    }
    if (s->owns_args) {
        pthread_mutex_lock(&roots_mu);
        for (root_rec *r = roots; r != NULL; r = r->next) {
            if (r->rt == s->rt && r->id == s->self) {
                r->done = true;
                r->why = *why;
                break;
            }
        }
        pthread_cond_broadcast(&roots_cv);
        pthread_mutex_unlock(&roots_mu);
    }
    if (why->kind == CR_EXIT_ERROR && !s->giving_up) {
        CR_ERROR(COMP, "supervisor '%s' failed: %s", s->name, why->text);
    }
    free(s->kids);
    free(s->ring);
    free(s->subs);
    free(s);
}

const cr_behaviour cr_sup_behaviour = {
    .kind = "supervisor",
    .init = sup_init,
    .handle = sup_handle,
    .terminate = sup_terminate,
};

/* ---- public functions ---------------------------------------------------- */

int
cr_sup_start(cr_rt *rt, const cr_sup_opts *opts, const cr_child_spec *specs,
             size_t n, cr_id *idp)
{
    if (rt == NULL) {
        return CR_EINVAL;
    }
    cr_sup_args *a;
    int rv = cr_sup_args_new(opts, specs, n, &a);
    if (rv != 0) {
        return rv;
    }
    a->root = true;
    root_rec *rec = calloc(1, sizeof(*rec));
    if (rec == NULL) {
        args_release(a, false);
        return CR_ENOMEM;
    }
    cr_spawn_opts so = {.name = a->opts.name};
    cr_id id;
    /* The record must exist before the supervisor can exit: hold roots_mu
     * across the spawn so its terminate finds it. */
    pthread_mutex_lock(&roots_mu);
    rv = cr_spawn(rt, &cr_sup_behaviour, a, &so, &id);
    if (rv == 0) {
        rec->rt = rt;
        rec->id = id;
        rec->next = roots;
        roots = rec;
    }
    pthread_mutex_unlock(&roots_mu);
    if (rv != 0) {
        free(rec);
        args_release(a, false);
        return rv;
    }
    if (idp != NULL) {
        *idp = id;
    }
    return 0;
}

int
cr_sup_stop(cr_rt *rt, cr_id sup, int timeout_ms)
{
    return cr_stop_wait(rt, sup, timeout_ms);
}

/* A helper actor for cr_sup_wait on a supervisor that is not a root. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    cr_exit why;
    cr_id target;
} waiter;

static int
waiter_init(cr_ctx *ctx, void *arg, void **state)
{
    waiter *w = arg;
    *state = w;
    return cr_monitor(cr_ctx_rt(ctx), cr_self(ctx), w->target, NULL);
}

static int
waiter_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    waiter *w = state;
    cr_down d;
    if (cr_msg_type(m) != CR_MSG_DOWN || cr_down_decode(m, &d) != 0 ||
        d.who != w->target) {
        return 0;
    }
    pthread_mutex_lock(&w->mu);
    w->done = true;
    w->why = d.why;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return CR_STOP_NORMAL;
}

static const cr_behaviour waiter_behaviour = {
    .kind = "sup-waiter",
    .init = waiter_init,
    .handle = waiter_handle,
};

/* wait_root waits on a root's record. Returns 1 if sup is a root (and
 * sets *rv), 0 if it is not. */
static int
wait_root(cr_rt *rt, cr_id sup, int timeout_ms, cr_exit *why, int *rv)
{
    struct timespec dl;
    if (timeout_ms >= 0) {
        /* roots_cv uses CLOCK_REALTIME (static initialiser). */
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&roots_mu);
    root_rec **pp = &roots;
    while (*pp != NULL && !((*pp)->rt == rt && (*pp)->id == sup)) {
        pp = &(*pp)->next;
    }
    if (*pp == NULL) {
        pthread_mutex_unlock(&roots_mu);
        return 0;
    }
    root_rec *r = *pp;
    int w = 0;
    while (!r->done && w == 0) {
        w = timeout_ms >= 0 ? pthread_cond_timedwait(&roots_cv, &roots_mu, &dl)
                            : pthread_cond_wait(&roots_cv, &roots_mu);
    }
    if (r->done) {
        if (why != NULL) {
            *why = r->why;
        }
        /* unlink: the list may have changed while we waited */
        for (pp = &roots; *pp != r; pp = &(*pp)->next) {
        }
        *pp = r->next;
        free(r);
        *rv = 0;
    } else {
        *rv = CR_ETIMEDOUT;
    }
    pthread_mutex_unlock(&roots_mu);
    return 1;
}

int
cr_sup_wait(cr_rt *rt, cr_id sup, int timeout_ms, cr_exit *why)
{
    if (rt == NULL) {
        return CR_EINVAL;
    }
    int rv;
    if (wait_root(rt, sup, timeout_ms, why, &rv)) {
        return rv;
    }
    waiter w = {.target = sup};
    pthread_mutex_init(&w.mu, NULL);
    cr_cond_init_monotonic(&w.cv);
    cr_id helper;
    rv = cr_spawn(rt, &waiter_behaviour, &w, NULL, &helper);
    if (rv == 0) {
        struct timespec dl;
        if (timeout_ms >= 0) {
            cr_deadline_ts(&dl, (uint64_t)timeout_ms);
        }
        int e = 0;
        pthread_mutex_lock(&w.mu);
        while (!w.done && e == 0) {
            e = timeout_ms >= 0 ? pthread_cond_timedwait(&w.cv, &w.mu, &dl)
                                : pthread_cond_wait(&w.cv, &w.mu);
        }
        bool done = w.done;
        pthread_mutex_unlock(&w.mu);
        /* The helper points at w, on this stack: make sure it is gone. */
        (void)cr_stop_wait(rt, helper, -1);
        if (done) {
            if (why != NULL) {
                *why = w.why;
            }
        } else {
            rv = CR_ETIMEDOUT;
        }
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rv;
}

int
cr_sup_exit_status(const cr_exit *why)
{
    if (why->kind == CR_EXIT_NORMAL || why->kind == CR_EXIT_SHUTDOWN) {
        return 0;
    }
    CR_ERROR(COMP, "root supervisor ended abnormally (%s: %s); exiting "
                   "with status 1",
             kind_name(why->kind), why->text);
    return 1;
}

/* call sends request r and returns the reply (or an error). */
static int
call(cr_rt *rt, cr_id sup, const req *r, int timeout_ms, cr_msg **reply)
{
    cr_msg *m = cr_msg_new_bytes(CR_MSG_SUP_REQ, r, sizeof(*r));
    if (m == NULL) {
        return CR_ENOMEM;
    }
    int rv = cr_call(rt, CR_NOBODY, sup, m, timeout_ms, reply);
    if (rv != 0 && rv != CR_ETIMEDOUT) {
        cr_msg_free(m);
    }
    return rv;
}

static int
call_rc(cr_rt *rt, cr_id sup, const req *r, int timeout_ms, cr_id *idp)
{
    cr_msg *reply;
    int rv = call(rt, sup, r, timeout_ms, &reply);
    if (rv != 0) {
        return rv;
    }
    rep p;
    if (cr_msg_len(reply) != sizeof(p)) {
        cr_msg_free(reply);
        return CR_EPROTO;
    }
    memcpy(&p, cr_msg_data(reply), sizeof(p));
    cr_msg_free(reply);
    if (idp != NULL) {
        *idp = p.id;
    }
    return p.rc;
}

int
cr_sup_add_child(cr_rt *rt, cr_id sup, const cr_child_spec *spec,
                 cr_id *idp)
{
    if (rt == NULL || spec == NULL || check_spec(spec) != 0) {
        return CR_EINVAL;
    }
    req r;
    memset(&r, 0, sizeof(r));
    r.op = OP_ADD;
    r.spec = *spec;
    r.spec.name = NULL;
    snprintf(r.name, sizeof(r.name), "%s", spec->name);
    return call_rc(rt, sup, &r, CR_SUP_CALL_TIMEOUT_MS, idp);
}

int
cr_sup_remove_child(cr_rt *rt, cr_id sup, const char *name)
{
    if (rt == NULL || check_name(name) != 0) {
        return CR_EINVAL;
    }
    req r;
    memset(&r, 0, sizeof(r));
    r.op = OP_REMOVE;
    snprintf(r.name, sizeof(r.name), "%s", name);
    /* The supervisor waits for the child (its own timeout, unknown here):
     * wait long, but not for ever. */
    return call_rc(rt, sup, &r, 120000, NULL);
}

int
cr_sup_subscribe(cr_rt *rt, cr_id sup, cr_id who, uint32_t mask)
{
    if (rt == NULL || who == CR_NOBODY) {
        return CR_EINVAL;
    }
    req r;
    memset(&r, 0, sizeof(r));
    r.op = OP_SUBSCRIBE;
    r.who = who;
    r.mask = mask & CR_SUP_EV_ALL;
    return call_rc(rt, sup, &r, CR_SUP_CALL_TIMEOUT_MS, NULL);
}

int
cr_sup_which_children(cr_rt *rt, cr_id sup, cr_sup_child_info **out,
                      size_t *np)
{
    if (rt == NULL || out == NULL || np == NULL) {
        return CR_EINVAL;
    }
    *out = NULL;
    *np = 0;
    req r;
    memset(&r, 0, sizeof(r));
    r.op = OP_WHICH;
    cr_msg *reply;
    int rv = call(rt, sup, &r, CR_SUP_CALL_TIMEOUT_MS, &reply);
    if (rv != 0) {
        return rv;
    }
    rv = cr_sup_children_decode(reply, out, np);
    cr_msg_free(reply);
    return rv;
}

/* ---- decoding ------------------------------------------------------------ */

/* Replies and events are small; anything bigger is not ours. */
#define EVENT_MAX    4096
#define CHILDREN_MAX (64u << 20)

static bool
key_is(const msgpack_object *k, const char *want)
{
    size_t n = strlen(want);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, want, n) == 0;
}

static void
get_str(const msgpack_object *o, char *dst, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR) {
        dst[0] = '\0';
        return;
    }
    size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
    memcpy(dst, o->via.str.ptr, n);
    dst[n] = '\0';
}

static uint64_t
get_u64(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static int
get_reason(const msgpack_object *o, cr_exit *why)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        return CR_EPROTO;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        const msgpack_object *v = &o->via.map.ptr[i].val;
        if (key_is(k, "kind")) {
            char kn[16];
            get_str(v, kn, sizeof(kn));
            for (int j = 0; j <= CR_EXIT_NOPROC; j++) {
                if (strcmp(kn, kind_names[j]) == 0) {
                    why->kind = (cr_exit_kind)j;
                }
            }
        } else if (key_is(k, "code")) {
            if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
                why->code = (int)v->via.i64;
            }
        } else if (key_is(k, "text")) {
            get_str(v, why->text, sizeof(why->text));
        }
    }
    return 0;
}

/* unpack_one unpacks exactly one object filling m's payload. */
static int
unpack_one(const cr_msg *m, msgpack_unpacked *u)
{
    size_t off = 0;
    if (msgpack_unpack_next(u, cr_msg_data(m), cr_msg_len(m), &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        off != cr_msg_len(m)) {
        return CR_EPROTO;
    }
    return 0;
}

int
cr_sup_event_decode(const cr_msg *m, cr_sup_event *ev)
{
    if (m == NULL || ev == NULL || cr_msg_type(m) != CR_MSG_SUP_EVENT ||
        cr_msg_len(m) > EVENT_MAX) {
        return CR_EPROTO;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rv = unpack_one(m, &u);
    if (rv != 0 || u.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&u);
        return CR_EPROTO;
    }
    memset(ev, 0, sizeof(*ev));
    const msgpack_object_map *mp = &u.data.via.map;
    for (uint32_t i = 0; i < mp->size && rv == 0; i++) {
        const msgpack_object *k = &mp->ptr[i].key;
        const msgpack_object *v = &mp->ptr[i].val;
        if (key_is(k, "ev")) {
            char en[24];
            get_str(v, en, sizeof(en));
            for (unsigned j = 0; j < sizeof(ev_names) / sizeof(ev_names[0]);
                 j++) {
                if (strcmp(en, ev_names[j]) == 0) {
                    ev->kind = (cr_sup_event_kind)(1u << j);
                }
            }
        } else if (key_is(k, "seq")) {
            ev->seq = get_u64(v);
        } else if (key_is(k, "t")) {
            ev->t_ms = get_u64(v);
        } else if (key_is(k, "sup")) {
            ev->sup = get_u64(v);
        } else if (key_is(k, "sup_name")) {
            get_str(v, ev->sup_name, sizeof(ev->sup_name));
        } else if (key_is(k, "child")) {
            get_str(v, ev->child, sizeof(ev->child));
        } else if (key_is(k, "id")) {
            ev->id = get_u64(v);
        } else if (key_is(k, "restarts")) {
            ev->restarts = (uint32_t)get_u64(v);
        } else if (key_is(k, "delay_ms")) {
            ev->delay_ms = get_u64(v);
        } else if (key_is(k, "timeout_ms")) {
            ev->timeout_ms = get_u64(v);
        } else if (key_is(k, "reason")) {
            rv = get_reason(v, &ev->reason);
        }
    }
    if (ev->kind == 0) {
        rv = CR_EPROTO;
    }
    msgpack_unpacked_destroy(&u);
    return rv;
}

int
cr_sup_children_decode(const cr_msg *reply, cr_sup_child_info **out,
                       size_t *np)
{
    if (reply == NULL || out == NULL || np == NULL) {
        return CR_EINVAL;
    }
    *out = NULL;
    *np = 0;
    size_t len = cr_msg_len(reply);
    if (len > CHILDREN_MAX || len == 0) {
        return CR_EPROTO;
    }
    /* Peek at the array header before unpacking: a hostile count must not
     * make the unpacker reserve gigabytes (see NOTES.md). Each entry takes
     * at least 9 bytes (a map header + 8 keys), so count <= len. */
    const uint8_t *p = cr_msg_data(reply);
    uint64_t count;
    if ((p[0] & 0xf0) == 0x90) {
        count = p[0] & 0x0f;
    } else if (p[0] == 0xdc && len >= 3) {
        count = (uint64_t)p[1] << 8 | p[2];
    } else if (p[0] == 0xdd && len >= 5) {
        count = (uint64_t)p[1] << 24 | (uint64_t)p[2] << 16 |
                (uint64_t)p[3] << 8 | p[4];
    } else {
        return CR_EPROTO;
    }
    if (count > len) {
        return CR_EPROTO;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int rv = unpack_one(reply, &u);
    if (rv != 0 || u.data.type != MSGPACK_OBJECT_ARRAY) {
        msgpack_unpacked_destroy(&u);
        return CR_EPROTO;
    }
    size_t n = u.data.via.array.size;
    cr_sup_child_info *arr = NULL;
    if (n > 0 && (arr = calloc(n, sizeof(*arr))) == NULL) {
        msgpack_unpacked_destroy(&u);
        return CR_ENOMEM;
    }
    for (size_t i = 0; i < n && rv == 0; i++) {
        const msgpack_object *e = &u.data.via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_MAP) {
            rv = CR_EPROTO;
            break;
        }
        cr_sup_child_info *ci = &arr[i];
        for (uint32_t j = 0; j < e->via.map.size && rv == 0; j++) {
            const msgpack_object *k = &e->via.map.ptr[j].key;
            const msgpack_object *v = &e->via.map.ptr[j].val;
            if (key_is(k, "name")) {
                get_str(v, ci->name, sizeof(ci->name));
            } else if (key_is(k, "id")) {
                ci->id = get_u64(v);
            } else if (key_is(k, "state")) {
                ci->state = (cr_child_state)get_u64(v);
            } else if (key_is(k, "restart")) {
                ci->restart = (cr_restart_type)get_u64(v);
            } else if (key_is(k, "restarts")) {
                ci->restarts = (uint32_t)get_u64(v);
            } else if (key_is(k, "last_exit")) {
                rv = get_reason(v, &ci->last_exit);
            } else if (key_is(k, "next_delay_ms")) {
                ci->next_delay_ms = (uint32_t)get_u64(v);
            } else if (key_is(k, "attempt")) {
                ci->backoff_attempt = (uint32_t)get_u64(v);
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    if (rv != 0) {
        free(arr);
        return rv;
    }
    *out = arr;
    *np = n;
    return 0;
}
