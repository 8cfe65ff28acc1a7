/*
 * hook_handler.c - the hook runner (see hook_handler.h).
 *
 * Design notes. Everything here runs on the handler actor's thread except
 * exit_cb (the watcher thread), which only posts HOOK_EXIT with the
 * child's key. A *job* is one handler call in progress: queued (waiting
 * for a concurrency slot), running (a child under `key`), or waiting for
 * a stop retry (a timer message under `key`). An *hflow* is what the
 * runner knows of a flow: whether its start hook succeeded (so a stop
 * hook is owed), the definition that was started (the stop hook's stdin)
 * and its job. Keys are never reused, so a late exit or retry message for
 * something already finished finds nothing and is dropped.
 */
#include "hook_handler.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfgrecv/log.h"
#include "events.h"
#include "proc_flow.h"
#include "proc_watch.h"
#include "strmap.h"

#define COMP "hook"

enum {
    HOOK_EXIT = CR_MSG_USER + 600,  /* payload: uint64 key */
    HOOK_RETRY = CR_MSG_USER + 601, /* payload: uint64 key */
};

enum { OP_START = 0, OP_UPDATE = 1, OP_STOP = 2 };
static const char *const op_names[] = {"start", "update", "stop"};

typedef enum { J_QUEUED, J_RUNNING, J_RETRY } job_state;

typedef struct hflow hflow;

typedef struct job {
    hflow *hf;
    int op;
    uint64_t op_seq;
    char *text;
    size_t len;
    char *bp;
    uint64_t version;
    unsigned attempts; /* failed runs so far (stop) */
    job_state st;
    uint64_t key;     /* child (running) or retry timer message (retry) */
    struct job *next; /* queue link */
} job;

struct hflow {
    char *ws, *id;
    char *fkey; /* ws "\0" id */
    size_t fklen;
    bool started; /* a start/update hook succeeded; a stop hook is owed */
    char *text;   /* the definition started */
    size_t len;
    char *bp;
    uint64_t version;
    job *job;
    char *stop_err; /* shutdown: why its stop hook failed */
};

typedef struct hook {
    const cra_hook_opts *o;
    unsigned conc;
    uint64_t timeout_ms;
    unsigned attempts;
    cr_rt *rt;
    cr_id self;
    cra_procw *pw;
    cra_strmap *flows; /* fkey -> hflow */
    cra_strmap *jobs;  /* 8-byte key -> job (running or retry) */
    job *qhead, *qtail;
    unsigned active;
    uint64_t next_key;
    bool shut; /* shutdown done: every stop hook ran */
} hook;

static char *
dupn(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d != NULL) {
        if (n > 0) {
            memcpy(d, s, n);
        }
        d[n] = '\0';
    }
    return d;
}

static void
job_free(job *j) {
    if (j != NULL) {
        free(j->text);
        free(j->bp);
        free(j);
    }
}

static void
hflow_free(void *p) {
    hflow *hf = p;
    free(hf->ws);
    free(hf->id);
    free(hf->fkey);
    free(hf->text);
    free(hf->bp);
    free(hf->stop_err);
    free(hf);
}

static hflow *
hflow_get(hook *hk, const char *ws, const char *id, bool create) {
    size_t a = strlen(ws), b = strlen(id);
    char *k = malloc(a + b + 1);
    if (k == NULL) {
        return NULL;
    }
    memcpy(k, ws, a);
    k[a] = '\0';
    memcpy(k + a + 1, id, b);
    hflow *hf = cra_strmap_get(hk->flows, k, a + b + 1);
    if (hf != NULL || !create) {
        free(k);
        return hf;
    }
    hf = calloc(1, sizeof(*hf));
    if (hf == NULL || (hf->ws = strdup(ws)) == NULL ||
        (hf->id = strdup(id)) == NULL) {
        free(k);
        if (hf != NULL) {
            hflow_free(hf);
        }
        return NULL;
    }
    hf->fkey = k;
    hf->fklen = a + b + 1;
    if (cra_strmap_put(hk->flows, k, hf->fklen, hf, NULL) != 0) {
        hflow_free(hf);
        return NULL;
    }
    return hf;
}

/* hflow_drop forgets hf once it owes nothing and has nothing running. */
static void
hflow_drop(hook *hk, hflow *hf) {
    if (hf->started || hf->job != NULL || hk->shut) {
        return;
    }
    cra_strmap_del(hk->flows, hf->fkey, hf->fklen);
    hflow_free(hf);
}

/* exit_cb runs on the watcher thread: tell the actor. */
static void
exit_cb(void *arg, uint64_t key) {
    hook *hk = arg;
    cr_msg *m = cr_msg_new_bytes(HOOK_EXIT, &key, sizeof(key));
    if (m == NULL) {
        CR_ERROR(COMP, "out of memory: a hook's exit is lost");
        return;
    }
    if (cr_send_wait(hk->rt, CR_NOBODY, hk->self, m, 5000) != 0) {
        cr_msg_free(m); /* the actor is gone (shutdown) */
    }
}

static int
msg_key(const cr_msg *m, uint64_t *key) {
    if (cr_msg_len(m) != sizeof(*key)) {
        return CR_EPROTO;
    }
    memcpy(key, cr_msg_data(m), sizeof(*key));
    return 0;
}

/* spawn_hook runs PATH OP WS ID for hf with text on stdin under a new key
 * (*keyp). 0, or an error code with err filled. */
static int
spawn_hook(hook *hk, hflow *hf, int op, const char *text, size_t len,
           const char *bp, uint64_t version, uint64_t *keyp, char *err,
           size_t errlen) {
    cra_proc_cmd cmd;
    const char *mid[1] = {op_names[op]};
    if (cra_proc_cmd_build(&cmd, hk->o->path, mid, 1, hf->ws, hf->id, bp,
                           version, op_names[op]) != 0) {
        snprintf(err, errlen, "out of memory");
        return CR_ENOMEM;
    }
    uint64_t key = ++hk->next_key;
    cra_proc_spec spec = {
        .path = hk->o->path,
        .argv = cmd.argv,
        .envp = cmd.envp,
        .input = text,
        .input_len = len,
        .prefix = cmd.prefix,
        .timeout_ms = hk->timeout_ms,
        .tail_lines = 5,
    };
    int rv = cra_procw_spawn(hk->pw, key, &spec, err, errlen);
    cra_proc_cmd_free(&cmd);
    if (rv == 0) {
        *keyp = key;
    }
    return rv;
}

static void
enqueue(hook *hk, job *j) {
    j->st = J_QUEUED;
    j->key = 0;
    j->next = NULL;
    if (hk->qtail != NULL) {
        hk->qtail->next = j;
    } else {
        hk->qhead = j;
    }
    hk->qtail = j;
}

static void finish(hook *hk, job *j, bool ok, const char *why);

/* pump starts queued jobs while slots are free. */
static void
pump(hook *hk) {
    while (hk->active < hk->conc && hk->qhead != NULL) {
        job *j = hk->qhead;
        hk->qhead = j->next;
        if (hk->qhead == NULL) {
            hk->qtail = NULL;
        }
        j->next = NULL;
        char err[512];
        uint64_t key;
        if (spawn_hook(hk, j->hf, j->op, j->text, j->len, j->bp, j->version,
                       &key, err, sizeof(err)) != 0) {
            finish(hk, j, false, err);
            continue;
        }
        if (cra_strmap_put(hk->jobs, (const char *)&key, sizeof(key), j,
                           NULL) != 0) {
            /* cannot track it: stop it; its exit is then dropped */
            cra_procw_term(hk->pw, key, 0);
            finish(hk, j, false, "out of memory");
            continue;
        }
        j->st = J_RUNNING;
        j->key = key;
        hk->active++;
    }
}

static void
done(hook *hk, job *j, int rc, const char *err) {
    if (cra_handler_done(hk->rt, hk->self, j->hf->ws, j->hf->id, j->op_seq, rc,
                         err) != 0) {
        CR_ERROR(COMP, "%s/%s: cannot report the %s hook's result", j->hf->ws,
                 j->hf->id, op_names[j->op]);
    }
}

static void
stop_failed_event(hook *hk, hflow *hf, const char *err) {
    if (cra_events_enabled(hk->rt)) {
        cra_emit(hk->rt, "flow.stop_failed",
                 json_pack("{s:s, s:s, s:s, s:s}", "handler", "hook",
                           "workspace", hf->ws, "flow", hf->id, "error", err));
    }
}

static uint64_t
stop_retry_delay(unsigned attempts) {
    uint64_t d = 200;
    for (unsigned i = 1; i < attempts && d < 5000; i++) {
        d *= 2;
    }
    return d < 5000 ? d : 5000;
}

/* finish applies a job's outcome (why: the failure) and frees it, or
 * schedules its retry. */
static void
finish(hook *hk, job *j, bool ok, const char *why) {
    hflow *hf = j->hf;
    char err[1200];
    if (!ok) {
        snprintf(err, sizeof(err), "%s hook failed: %s", op_names[j->op], why);
    }
    if (j->op != OP_STOP) {
        if (ok) {
            free(hf->text);
            free(hf->bp);
            hf->text = j->text;
            hf->len = j->len;
            hf->bp = j->bp;
            hf->version = j->version;
            j->text = j->bp = NULL;
            hf->started = true;
        }
        done(hk, j, ok ? CRA_OK : CRA_FAILED, ok ? NULL : err);
        hf->job = NULL;
        job_free(j);
        hflow_drop(hk, hf);
        return;
    }
    if (!ok && ++j->attempts < hk->attempts) {
        uint64_t delay = stop_retry_delay(j->attempts);
        uint64_t key = ++hk->next_key;
        cr_msg *m = cr_msg_new_bytes(HOOK_RETRY, &key, sizeof(key));
        if (m != NULL && cra_strmap_put(hk->jobs, (const char *)&key,
                                        sizeof(key), j, NULL) == 0) {
            if (cr_send_after(hk->rt, hk->self, m, delay, NULL) == 0) {
                CR_WARN(COMP,
                        "%s/%s: %s (attempt %u of %u); retry in "
                        "%llu ms",
                        hf->ws, hf->id, err, j->attempts, hk->attempts,
                        (unsigned long long)delay);
                j->st = J_RETRY;
                j->key = key;
                return;
            }
            cra_strmap_del(hk->jobs, (const char *)&key, sizeof(key));
        }
        cr_msg_free(m);
        /* cannot schedule: give up now */
    }
    if (!ok) {
        CR_ERROR(COMP,
                 "%s/%s: %s; gave up after %u attempts, the flow is "
                 "gone",
                 hf->ws, hf->id, err, j->attempts);
        stop_failed_event(hk, hf, err);
    }
    hf->started = false;
    done(hk, j, ok ? CRA_OK : CRA_FAILED, ok ? NULL : err);
    hf->job = NULL;
    job_free(j);
    hflow_drop(hk, hf);
}

/* ---- the handler's calls --------------------------------------------- */

static int
check_ids(const cra_flow_ref *f, char *err, size_t errlen) {
    if (cra_proc_id_check("workspace", f->workspace, err, errlen) != 0 ||
        cra_proc_id_check("flow", f->id, err, errlen) != 0) {
        return -1; /* logged by the handler actor */
    }
    return 0;
}

static int
submit(hook *hk, int op, const cra_flow_ref *f, char *err, size_t errlen) {
    hflow *hf = hflow_get(hk, f->workspace, f->id, op != OP_STOP);
    if (op == OP_STOP && (hf == NULL || !hf->started)) {
        return CRA_OK; /* its start hook never succeeded: nothing owed */
    }
    if (hf == NULL) {
        snprintf(err, errlen, "out of memory");
        return CRA_FAILED;
    }
    if (hf->job != NULL) { /* the handler actor never does this */
        snprintf(err, errlen, "a %s hook is still in progress",
                 op_names[hf->job->op]);
        return CRA_FAILED;
    }
    job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        hflow_drop(hk, hf);
        snprintf(err, errlen, "out of memory");
        return CRA_FAILED;
    }
    j->hf = hf;
    j->op = op;
    j->op_seq = f->op_seq;
    if (op == OP_STOP) {
        j->text = dupn(hf->text ? hf->text : "", hf->text ? hf->len : 0);
        j->len = hf->text ? hf->len : 0;
        j->bp = strdup(hf->bp ? hf->bp : "");
        j->version = f->version ? f->version : hf->version;
    } else {
        j->text = dupn(f->text ? f->text : "", f->text ? f->text_len : 0);
        j->len = f->text ? f->text_len : 0;
        j->bp = strdup(cra_proc_blueprint(f->flow));
        j->version = f->version;
    }
    if (j->text == NULL || j->bp == NULL) {
        job_free(j);
        hflow_drop(hk, hf);
        snprintf(err, errlen, "out of memory");
        return CRA_FAILED;
    }
    hf->job = j;
    enqueue(hk, j);
    pump(hk);
    return CRA_PENDING;
}

static int
h_start(void *state, const cra_flow_ref *f, char *err, size_t errlen) {
    if (check_ids(f, err, errlen) != 0) {
        return CRA_REFUSED;
    }
    return submit(state, OP_START, f, err, errlen);
}

static int
h_update(void *state, const cra_flow_ref *f, char *err, size_t errlen) {
    return submit(state, OP_UPDATE, f, err, errlen);
}

/* ---- shutdown --------------------------------------------------------- */

/* A slot of the shutdown window: one flow's stop hook, run and waited
 * for synchronously with the bounded retries (slot_start / slot_wait); a
 * final failure is recorded in hf->stop_err. */
typedef struct slot {
    hflow *hf;
    uint64_t key;
    unsigned attempts;
    bool busy;
} slot;

static void
slot_start(hook *hk, slot *s) {
    char err[512];
    while (s->attempts < hk->attempts) {
        if (spawn_hook(hk, s->hf, OP_STOP, s->hf->text,
                       s->hf->text ? s->hf->len : 0, s->hf->bp, s->hf->version,
                       &s->key, err, sizeof(err)) == 0) {
            s->busy = true;
            return;
        }
        s->attempts++;
    }
    char e[700];
    snprintf(e, sizeof(e), "stop hook failed: %s", err);
    CR_ERROR(COMP, "%s/%s: %s", s->hf->ws, s->hf->id, e);
    free(s->hf->stop_err);
    s->hf->stop_err = strdup(e);
    s->hf->started = false;
}

static void
slot_wait(hook *hk, slot *s) {
    cra_proc_exit ex;
    int rv = cra_procw_wait(hk->pw, s->key, (int)hk->timeout_ms + 10000, &ex);
    s->busy = false;
    if (rv == 0 && cra_proc_exit_ok(&ex)) {
        s->hf->started = false;
        return;
    }
    char why[1100], e[1200];
    if (rv == 0) {
        cra_proc_exit_text(&ex, why, sizeof(why));
    } else {
        snprintf(why, sizeof(why), "%s", cr_strerror(rv));
        cra_procw_term(hk->pw, s->key, 0);
    }
    snprintf(e, sizeof(e), "stop hook failed: %s", why);
    if (++s->attempts < hk->attempts) {
        CR_WARN(COMP, "%s/%s: %s (attempt %u of %u); retrying", s->hf->ws,
                s->hf->id, e, s->attempts, hk->attempts);
        struct timespec ts = {.tv_sec = 0,
                              .tv_nsec = (long)stop_retry_delay(s->attempts) *
                                         1000000L};
        nanosleep(&ts, NULL);
        slot_start(hk, s);
        return;
    }
    CR_ERROR(COMP, "%s/%s: %s; gave up after %u attempts", s->hf->ws, s->hf->id,
             e, s->attempts);
    stop_failed_event(hk, s->hf, e);
    free(s->hf->stop_err);
    s->hf->stop_err = strdup(e);
    s->hf->started = false;
}

/* shutdown_all: hooks in flight finish, then every started flow's stop
 * hook runs, `conc` at a time. Runs once. */
static void
shutdown_all(hook *hk) {
    if (hk->shut) {
        return;
    }
    hk->shut = true;
    /* 1. queued jobs never ran: a start is simply dropped; an update or
     *    a stop leaves the flow started, so its stop hook runs below */
    while (hk->qhead != NULL) {
        job *j = hk->qhead;
        hk->qhead = j->next;
        j->hf->job = NULL;
        job_free(j);
    }
    hk->qtail = NULL;
    /* 2. jobs in flight: wait for them (the watcher enforces the
     *    timeout); a stop waiting for its retry is retried below */
    const char *k;
    size_t kl;
    void *v;
    size_t waited = 0;
    for (size_t it = 0; cra_strmap_next(hk->jobs, &it, &k, &kl, &v);) {
        job *j = v;
        cra_strmap_del(hk->jobs, k, kl);
        if (j->st == J_RUNNING) {
            cra_proc_exit ex;
            int rv = cra_procw_wait(hk->pw, j->key, (int)hk->timeout_ms + 10000,
                                    &ex);
            bool ok = rv == 0 && cra_proc_exit_ok(&ex);
            if (j->op == OP_START && ok) {
                j->hf->started = true;
                free(j->hf->text);
                free(j->hf->bp);
                j->hf->text = j->text;
                j->hf->len = j->len;
                j->hf->bp = j->bp;
                j->text = j->bp = NULL;
            } else if (j->op == OP_STOP && ok) {
                j->hf->started = false;
            }
            waited++;
        }
        j->hf->job = NULL;
        job_free(j);
    }
    hk->active = 0;
    if (waited > 0) {
        CR_INFO(COMP, "shutdown: %zu hooks in flight finished", waited);
    }
    /* 3. every stop hook owed */
    size_t n = 0;
    for (size_t it = 0; cra_strmap_next(hk->flows, &it, &k, &kl, &v);) {
        n += ((hflow *)v)->started;
    }
    if (n == 0) {
        return;
    }
    CR_INFO(COMP, "shutdown: running %zu stop hooks, %u at a time", n,
            hk->conc);
    slot *win = calloc(hk->conc, sizeof(*win));
    if (win == NULL) {
        CR_ERROR(COMP, "out of memory: stop hooks not run");
        return;
    }
    size_t head = 0; /* the slot to wait for when all are busy */
    for (size_t it = 0; cra_strmap_next(hk->flows, &it, &k, &kl, &v);) {
        hflow *hf = v;
        if (!hf->started) {
            continue;
        }
        /* take a free slot, or wait for the oldest one to free up */
        slot *s = NULL;
        while (s == NULL) {
            for (unsigned i = 0; i < hk->conc && s == NULL; i++) {
                if (!win[i].busy) {
                    s = &win[i];
                }
            }
            if (s == NULL) { /* wait for the slots in turn */
                slot_wait(hk, &win[head]);
                head = (head + 1) % hk->conc;
            }
        }
        *s = (slot){.hf = hf};
        slot_start(hk, s);
    }
    for (unsigned i = 0; i < hk->conc; i++) {
        while (win[i].busy) {
            slot_wait(hk, &win[i]);
        }
    }
    free(win);
}

static int
h_stop(void *state, const cra_flow_ref *f, char *err, size_t errlen) {
    hook *hk = state;
    if (!f->sync) {
        return submit(hk, OP_STOP, f, err, errlen);
    }
    shutdown_all(hk);
    hflow *hf = hflow_get(hk, f->workspace, f->id, false);
    if (hf != NULL && hf->stop_err != NULL) {
        snprintf(err, errlen, "%s", hf->stop_err);
        return CRA_FAILED;
    }
    return CRA_OK;
}

/* ---- messages --------------------------------------------------------- */

static int
on_exit_msg(hook *hk, const cr_msg *m) {
    uint64_t key;
    cra_proc_exit ex;
    if (msg_key(m, &key) != 0 || cra_procw_take(hk->pw, key, &ex) != 0) {
        return 0; /* taken by a shutdown wait, or malformed */
    }
    job *j = cra_strmap_del(hk->jobs, (const char *)&key, sizeof(key));
    if (j == NULL) {
        return 0;
    }
    hk->active--;
    bool ok = cra_proc_exit_ok(&ex);
    char why[1100] = "";
    if (!ok) {
        cra_proc_exit_text(&ex, why, sizeof(why));
    }
    CR_DEBUG(COMP, "%s/%s: %s hook done in %llu ms%s%s", j->hf->ws, j->hf->id,
             op_names[j->op], (unsigned long long)ex.ran_ms, ok ? "" : ": ",
             why);
    finish(hk, j, ok, why);
    pump(hk);
    return 0;
}

static int
on_retry_msg(hook *hk, const cr_msg *m) {
    uint64_t key;
    if (msg_key(m, &key) != 0) {
        return 0;
    }
    job *j = cra_strmap_del(hk->jobs, (const char *)&key, sizeof(key));
    if (j == NULL || j->st != J_RETRY) {
        return 0;
    }
    enqueue(hk, j);
    pump(hk);
    return 0;
}

static int
h_handle(void *state, cr_ctx *ctx, const cr_msg *m) {
    hook *hk = state;
    switch (cr_msg_type(m)) {
    case HOOK_EXIT:
        return on_exit_msg(hk, m);
    case HOOK_RETRY:
        return on_retry_msg(hk, m);
    default:
        CR_WARN(COMP, "unexpected message type %u dropped", cr_msg_type(m));
        return 0;
    }
}

/* ---- life cycle --------------------------------------------------------- */

static void
h_terminate(void *state) {
    hook *hk = state;
    shutdown_all(hk);
    cra_procw_destroy(hk->pw, 1000);
    cra_strmap_free(hk->jobs, NULL); /* emptied by shutdown_all */
    cra_strmap_free(hk->flows, hflow_free);
    free(hk);
}

static int
h_init(cr_ctx *ctx, void *arg, void **state) {
    const cra_hook_opts *o = arg;
    hook *hk = calloc(1, sizeof(*hk));
    if (hk == NULL) {
        return CR_ENOMEM;
    }
    hk->o = o;
    hk->conc = o->concurrency ? o->concurrency : 4;
    hk->timeout_ms = o->timeout_ms ? o->timeout_ms : 30000;
    hk->attempts = o->stop_attempts ? o->stop_attempts : 3;
    hk->rt = cr_ctx_rt(ctx);
    hk->self = cr_self(ctx);
    hk->flows = cra_strmap_new();
    hk->jobs = cra_strmap_new();
    int rv = CR_ENOMEM;
    if (hk->flows == NULL || hk->jobs == NULL ||
        (rv = cra_procw_new(COMP, exit_cb, hk, &hk->pw)) != 0) {
        cra_strmap_free(hk->flows, NULL);
        cra_strmap_free(hk->jobs, NULL);
        free(hk);
        return rv;
    }
    CR_INFO(COMP, "hook runner: %s (concurrency %u, timeout %llu ms)", o->path,
            hk->conc, (unsigned long long)hk->timeout_ms);
    *state = hk;
    return 0;
}

void
cra_hook_handler(cra_flow_handler *h, const cra_hook_opts *o) {
    *h = (cra_flow_handler){
        .name = "hook",
        .init = h_init,
        .terminate = h_terminate,
        .start = h_start,
        .update = h_update,
        .stop = h_stop,
        .handle = h_handle,
        .arg = (void *)o,
        .retry = o->retry,
    };
}
