/*
 * worker_handler.c - one supervised process per flow (see
 * worker_handler.h).
 *
 * Design notes. A *wflow* is a running worker: its flow and the watcher
 * key of its process (never reused: a late exit message for an older
 * worker of the same flow finds nothing). It is indexed by flow (for
 * stop) and by key (for exits). Every exit message first takes the
 * watcher's record, so none is left behind, then looks the key up. The
 * actor never waits for a worker except in shutdown's sync stops.
 */
#include "worker_handler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/log.h"
#include "proc_flow.h"
#include "proc_watch.h"
#include "strmap.h"

#define COMP "worker"

enum {
    WORKER_EXIT = CR_MSG_USER + 610, /* payload: uint64 key */
};

typedef struct wflow {
    char *ws, *id;
    char *fkey; /* ws "\0" id */
    size_t fklen;
    uint64_t key;
    bool stopping;
    uint64_t op_seq; /* the pending stop's */
} wflow;

typedef struct wsup {
    const cra_worker_opts *o;
    uint64_t grace_ms;
    cr_rt *rt;
    cr_id self;
    cra_procw *pw;
    cra_strmap *flows; /* fkey -> wflow */
    cra_strmap *bykey; /* 8-byte key -> wflow */
    uint64_t next_key;
    bool shutting; /* every worker got its SIGTERM */
} wsup;

static void
wflow_free(void *p) {
    wflow *wf = p;
    free(wf->ws);
    free(wf->id);
    free(wf->fkey);
    free(wf);
}

static char *
flow_key(const char *ws, const char *id, size_t *len) {
    size_t a = strlen(ws), b = strlen(id);
    char *k = malloc(a + b + 1);
    if (k != NULL) {
        memcpy(k, ws, a);
        k[a] = '\0';
        memcpy(k + a + 1, id, b);
        *len = a + b + 1;
    }
    return k;
}

static wflow *
wflow_get(wsup *ws, const char *w, const char *id) {
    size_t len;
    char *k = flow_key(w, id, &len);
    if (k == NULL) {
        return NULL;
    }
    wflow *wf = cra_strmap_get(ws->flows, k, len);
    free(k);
    return wf;
}

static void
wflow_forget(wsup *s, wflow *wf) {
    cra_strmap_del(s->flows, wf->fkey, wf->fklen);
    cra_strmap_del(s->bykey, (const char *)&wf->key, sizeof(wf->key));
    wflow_free(wf);
}

static void
exit_cb(void *arg, uint64_t key) {
    wsup *s = arg;
    cr_msg *m = cr_msg_new_bytes(WORKER_EXIT, &key, sizeof(key));
    if (m == NULL) {
        CR_ERROR(COMP, "out of memory: a worker's exit is lost");
        return;
    }
    if (cr_send_wait(s->rt, CR_NOBODY, s->self, m, 5000) != 0) {
        cr_msg_free(m); /* the actor is gone (shutdown) */
    }
}

static int
w_start(void *state, const cra_flow_ref *f, char *err, size_t errlen) {
    wsup *s = state;
    if (cra_proc_id_check("workspace", f->workspace, err, errlen) != 0 ||
        cra_proc_id_check("flow", f->id, err, errlen) != 0) {
        return CRA_REFUSED; /* logged by the handler actor */
    }
    wflow *old = wflow_get(s, f->workspace, f->id);
    if (old != NULL) { /* cannot happen: the handler actor stops first */
        CR_WARN(COMP, "%s/%s: a worker still runs; killing it", old->ws,
                old->id);
        cra_procw_term(s->pw, old->key, 0);
        wflow_forget(s, old);
    }
    wflow *wf = calloc(1, sizeof(*wf));
    if (wf == NULL || (wf->ws = strdup(f->workspace)) == NULL ||
        (wf->id = strdup(f->id)) == NULL ||
        (wf->fkey = flow_key(f->workspace, f->id, &wf->fklen)) == NULL) {
        if (wf != NULL) {
            wflow_free(wf);
        }
        snprintf(err, errlen, "out of memory");
        return CRA_FAILED;
    }
    wf->key = ++s->next_key;
    if (cra_strmap_put(s->flows, wf->fkey, wf->fklen, wf, NULL) != 0) {
        wflow_free(wf);
        snprintf(err, errlen, "out of memory");
        return CRA_FAILED;
    }
    if (cra_strmap_put(s->bykey, (const char *)&wf->key, sizeof(wf->key), wf,
                       NULL) != 0) {
        cra_strmap_del(s->flows, wf->fkey, wf->fklen);
        wflow_free(wf);
        snprintf(err, errlen, "out of memory");
        return CRA_FAILED;
    }
    cra_proc_cmd cmd;
    if (cra_proc_cmd_build(&cmd, s->o->path, s->o->args, s->o->nargs,
                           f->workspace, f->id, cra_proc_blueprint(f->flow),
                           f->version, NULL) != 0) {
        wflow_forget(s, wf);
        snprintf(err, errlen, "out of memory");
        return CRA_FAILED;
    }
    cra_proc_spec spec = {
        .path = s->o->path,
        .argv = cmd.argv,
        .envp = cmd.envp,
        .input = f->text,
        .input_len = f->text ? f->text_len : 0,
        .prefix = cmd.prefix,
        .kill_group_on_exit = true,
        .tail_lines = 5,
    };
    int rv = cra_procw_spawn(s->pw, wf->key, &spec, err, errlen);
    cra_proc_cmd_free(&cmd);
    if (rv != 0) {
        wflow_forget(s, wf);
        return CRA_FAILED;
    }
    CR_DEBUG(COMP, "%s/%s: worker started", wf->ws, wf->id);
    return CRA_OK;
}

static int
w_stop(void *state, const cra_flow_ref *f, char *err, size_t errlen) {
    wsup *s = state;
    if (f->sync && !s->shutting) {
        s->shutting = true;
        size_t n = cra_procw_term_all(s->pw, s->grace_ms);
        if (n > 0) {
            CR_INFO(COMP,
                    "stopping %zu workers (SIGTERM, SIGKILL after "
                    "%llu ms)",
                    n, (unsigned long long)s->grace_ms);
        }
    }
    wflow *wf = wflow_get(s, f->workspace, f->id);
    if (wf == NULL) {
        return CRA_OK; /* it exited on its own meanwhile */
    }
    if (f->sync) {
        cra_proc_exit ex;
        int rv = cra_procw_wait(s->pw, wf->key, (int)s->grace_ms + 10000, &ex);
        wflow_forget(s, wf);
        if (rv == CR_ETIMEDOUT) {
            snprintf(err, errlen, "the worker did not exit after SIGKILL");
            return CRA_FAILED;
        }
        return CRA_OK;
    }
    if (cra_procw_term(s->pw, wf->key, s->grace_ms) != 0) {
        wflow_forget(s, wf); /* exited; its exit message finds nothing */
        return CRA_OK;
    }
    wf->stopping = true;
    wf->op_seq = f->op_seq;
    return CRA_PENDING;
}

static int
on_exit_msg(wsup *s, const cr_msg *m) {
    uint64_t key;
    cra_proc_exit ex;
    if (cr_msg_len(m) != sizeof(key)) {
        return 0;
    }
    memcpy(&key, cr_msg_data(m), sizeof(key));
    if (cra_procw_take(s->pw, key, &ex) != 0) {
        return 0; /* taken by a sync stop */
    }
    wflow *wf = cra_strmap_get(s->bykey, (const char *)&key, sizeof(key));
    if (wf == NULL) {
        return 0;
    }
    char why[1100];
    cra_proc_exit_text(&ex, why, sizeof(why));
    if (wf->stopping) {
        CR_DEBUG(COMP, "%s/%s: worker stopped (%s)", wf->ws, wf->id, why);
        if (cra_handler_done(s->rt, s->self, wf->ws, wf->id, wf->op_seq, CRA_OK,
                             NULL) != 0) {
            CR_ERROR(COMP, "%s/%s: cannot report the stop", wf->ws, wf->id);
        }
        wflow_forget(s, wf);
        return 0;
    }
    char err[1200];
    snprintf(err, sizeof(err), "worker exited after %llu ms: %s",
             (unsigned long long)ex.ran_ms, why);
    CR_WARN(COMP, "%s/%s: %s", wf->ws, wf->id, err);
    if (cra_handler_flow_down(s->rt, s->self, wf->ws, wf->id, err) != 0) {
        CR_ERROR(COMP, "%s/%s: cannot report the exit", wf->ws, wf->id);
    }
    wflow_forget(s, wf);
    return 0;
}

static int
w_handle(void *state, cr_ctx *ctx, const cr_msg *m) {
    if (cr_msg_type(m) == WORKER_EXIT) {
        return on_exit_msg(state, m);
    }
    CR_WARN(COMP, "unexpected message type %u dropped", cr_msg_type(m));
    return 0;
}

static void
w_terminate(void *state) {
    wsup *s = state;
    /* workers whose stop was pending, or all of them if the handler
     * actor stopped none (a failure exit) */
    cra_procw_destroy(s->pw, s->grace_ms);
    cra_strmap_free(s->bykey, NULL);
    cra_strmap_free(s->flows, wflow_free);
    free(s);
}

static int
w_init(cr_ctx *ctx, void *arg, void **state) {
    const cra_worker_opts *o = arg;
    wsup *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return CR_ENOMEM;
    }
    s->o = o;
    s->grace_ms = o->grace_ms ? o->grace_ms : 10000;
    s->rt = cr_ctx_rt(ctx);
    s->self = cr_self(ctx);
    s->flows = cra_strmap_new();
    s->bykey = cra_strmap_new();
    int rv = CR_ENOMEM;
    if (s->flows == NULL || s->bykey == NULL ||
        (rv = cra_procw_new(COMP, exit_cb, s, &s->pw)) != 0) {
        cra_strmap_free(s->flows, NULL);
        cra_strmap_free(s->bykey, NULL);
        free(s);
        return rv;
    }
    CR_INFO(COMP, "worker supervisor: %s (%zu extra args, grace %llu ms)",
            o->path, o->nargs, (unsigned long long)s->grace_ms);
    *state = s;
    return 0;
}

void
cra_worker_handler(cra_flow_handler *h, const cra_worker_opts *o) {
    *h = (cra_flow_handler){
        .name = "worker",
        .init = w_init,
        .terminate = w_terminate,
        .start = w_start,
        .update = NULL, /* stop, then start with the new definition */
        .stop = w_stop,
        .handle = w_handle,
        .arg = (void *)o,
        .keep_definitions = true,
        .retry = o->retry,
    };
}
