/*
 * crash_plugin.c - a cfgrecvd plugin (actors/flow_handler.h, "plugins")
 * for the tests. Handler "crashy" appends "start|update|stop WS ID" to
 * ARG/calls (ARG: the --plugin-arg directory) and, the first time it is
 * asked to start a flow whose id begins with "crash", fails its whole
 * handler actor (cr_fail) - the way to make a handler actor crash inside
 * the real daemon. A marker file ARG/crashed-ID makes it crash once.
 * A flow whose id begins with "later" starts asynchronously: start
 * returns CRA_PENDING and a thread of the plugin's finishes it 50 ms
 * later with cra_handler_done, a function of the daemon's own.
 *
 * Built in variants for the loader's tests (test_plugin.c): -DVARIANT=
 * 1 no cfgrecv_plugin symbol, 2 another ABI, 3 a bad handler name, 4 the
 * name "flows", 5 a bad retry policy; none (0) is the working plugin.
 */
#include "flow_handler.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VARIANT
#define VARIANT 0
#endif

typedef struct crashy {
    cr_ctx *ctx;
    char dir[512];
} crashy;

static int
c_init(cr_ctx *ctx, void *arg, void **state)
{
    crashy *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return CR_ENOMEM;
    }
    c->ctx = ctx;
    snprintf(c->dir, sizeof(c->dir), "%s", arg ? (const char *)arg : "/tmp");
    *state = c;
    return 0;
}

static void
c_terminate(void *state)
{
    free(state);
}

static void
note(crashy *c, const char *op, const cra_flow_ref *f)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/calls", c->dir);
    FILE *fp = fopen(path, "a");
    if (fp != NULL) {
        fprintf(fp, "%s %s %s\n", op, f->workspace, f->id);
        fclose(fp);
    }
}

typedef struct later {
    cr_rt *rt;
    cr_id self;
    char *ws, *id;
    uint64_t seq;
} later;

static void *
finish_later(void *arg)
{
    later *l = arg;
    usleep(50 * 1000);
    cra_handler_done(l->rt, l->self, l->ws, l->id, l->seq, CRA_OK, NULL);
    free(l->ws);
    free(l->id);
    free(l);
    return NULL;
}

static int
c_start(void *state, const cra_flow_ref *f, char *err, size_t errlen)
{
    crashy *c = state;
    note(c, "start", f);
    if (strncmp(f->id, "later", 5) == 0 && !f->sync) {
        later *l = calloc(1, sizeof(*l));
        pthread_t t;
        if (l == NULL) {
            return CRA_FAILED;
        }
        *l = (later){cr_ctx_rt(c->ctx), cr_self(c->ctx), strdup(f->workspace),
                     strdup(f->id), f->op_seq};
        if (l->ws == NULL || l->id == NULL ||
            pthread_create(&t, NULL, finish_later, l) != 0) {
            free(l->ws);
            free(l->id);
            free(l);
            snprintf(err, errlen, "crashy: no thread");
            return CRA_FAILED;
        }
        pthread_detach(t);
        return CRA_PENDING;
    }
    if (strncmp(f->id, "crash", 5) == 0) {
        char marker[700];
        snprintf(marker, sizeof(marker), "%s/crashed-%s", c->dir, f->id);
        int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) { /* the first time only */
            close(fd);
            cr_fail(c->ctx, CR_EFAIL, "crashy: asked to crash by flow %s",
                    f->id);
        }
    }
    return CRA_OK;
}

static int
c_update(void *state, const cra_flow_ref *f, char *err, size_t errlen)
{
    note(state, "update", f);
    return CRA_OK;
}

static int
c_stop(void *state, const cra_flow_ref *f, char *err, size_t errlen)
{
    note(state, "stop", f);
    return CRA_OK;
}

#if VARIANT == 5
static const cr_backoff_policy bad_retry = {.min_ms = 100, .max_ms = 10, .factor = 0.5};
#endif

/* variant 1 exports the table under a name the loader does not look for */
#if VARIANT == 1
#define PLUGIN_SYMBOL crashy_table
#else
#define PLUGIN_SYMBOL cfgrecv_plugin
#endif

extern const cra_plugin PLUGIN_SYMBOL;
const cra_plugin PLUGIN_SYMBOL = {
    .abi = VARIANT == 2 ? CRA_PLUGIN_ABI + 1 : CRA_PLUGIN_ABI,
    .size = sizeof(cra_flow_handler),
    .handler =
        {
            .name = VARIANT == 3   ? "Bad Name!"
                    : VARIANT == 4 ? "flows"
                                   : "crashy",
            .init = c_init,
            .terminate = c_terminate,
            .start = c_start,
            .update = c_update,
            .stop = c_stop,
            .no_json_tree = true,
#if VARIANT == 5
            .retry = &bad_retry,
#endif
        },
};
