/*
 * stress_supervisor.c - a standalone driver (runs under TSan, where
 * criterion cannot): a root supervisor with flaky children and nested
 * one_for_all / rest_for_one supervisors, while two client threads add,
 * remove and query children and toggle subscriptions. Exits non-zero on
 * any inconsistency; TSan reports races itself.
 *
 * usage: stress_supervisor [seconds]   (default 3)
 */
#include "cfgrecv/actor.h"
#include "cfgrecv/backoff.h"
#include "cfgrecv/supervisor.h"
#include "sup_testlib.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "stress_supervisor: %s:%d: ", __FILE__,            \
                    __LINE__);                                                 \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            failures++;                                                        \
        }                                                                      \
    } while (0)

/* A flaky child: lives a few ms, then fails, exits normally or lives on. */
typedef struct flaky {
    cr_rng rng;
} flaky;

static _Atomic uint64_t flaky_inits;
static _Atomic cr_id root_id; /* children call it (cr_call from an actor)
                                 while supervisors stop them */
static _Atomic uint64_t calls_made;

static int
flaky_init(cr_ctx *ctx, void *arg, void **state)
{
    flaky *f = calloc(1, sizeof(*f));
    *state = f;
    if (f == NULL) {
        return CR_ENOMEM;
    }
    atomic_fetch_add(&flaky_inits, 1);
    cr_rng_seed(&f->rng, 0);
    if (cr_rng_next(&f->rng) % 10 == 0) {
        return CR_EFAIL; /* init fails now and then */
    }
    return cr_timer_after(cr_ctx_rt(ctx), cr_self(ctx),
                          1 + cr_rng_next(&f->rng) % 20, 0, NULL);
}

static int
flaky_handle(cr_ctx *ctx, void *state, const cr_msg *m)
{
    flaky *f = state;
    if (cr_msg_type(m) != CR_MSG_TIMER) {
        return 0;
    }
    cr_id root = atomic_load(&root_id);
    if (root != CR_NOBODY && cr_rng_next(&f->rng) % 3 == 0) {
        /* a call its supervisor may stop it in the middle of (a
         * one_for_all restart, the final stop): cr_call must return */
        cr_sup_child_info *ci = NULL;
        size_t n;
        if (cr_sup_which_children(cr_ctx_rt(ctx), root, &ci, &n) == 0) {
            free(ci);
        }
        atomic_fetch_add(&calls_made, 1);
    }
    uint64_t r = cr_rng_next(&f->rng) % 10;
    if (r < 6) {
        return CR_EFAIL;
    }
    if (r < 8) {
        return CR_STOP_NORMAL;
    }
    return cr_timer_after(cr_ctx_rt(ctx), cr_self(ctx),
                          1 + cr_rng_next(&f->rng) % 20, 0, NULL);
}

static void
flaky_terminate(cr_ctx *ctx, void *state, const cr_exit *why)
{
    free(state);
}

static const cr_behaviour flaky_behaviour = {
    .kind = "flaky",
    .init = flaky_init,
    .handle = flaky_handle,
    .terminate = flaky_terminate,
};

static cr_child_spec
flaky_spec(const char *name, cr_restart_type rt)
{
    cr_child_spec s = {.name = name,
                       .behaviour = &flaky_behaviour,
                       .restart = rt,
                       .shutdown_timeout_ms = 5000};
    return s;
}

static cr_sup_opts
stress_opts(cr_sup_strategy st, const char *name, cr_id subscriber)
{
    cr_sup_opts o = {
        .name = name,
        .strategy = st,
        .max_restarts = CR_SUP_UNLIMITED,
        .backoff = {.min_ms = 1, .max_ms = 10, .factor = 2.0,
                    .jitter = CR_JITTER_FULL, .stable_ms = 50},
        .subscriber = subscriber,
    };
    return o;
}

typedef struct client {
    cr_rt *rt;
    cr_id root;
    int idx;
    tcol *sub; /* a second collector whose subscription is toggled */
    _Atomic bool *stop;
    int adds, removes, queries, errors;
} client;

static void
on_arg_free(void *arg)
{
    free(arg);
}

static void *
client_main(void *arg)
{
    client *c = arg;
    cr_rng r;
    cr_rng_seed(&r, 0);
    int k = 0;
    while (!atomic_load(c->stop)) {
        char name[32];
        snprintf(name, sizeof(name), "dyn-%d-%d", c->idx, k % 8);
        switch (cr_rng_next(&r) % 4) {
        case 0: {
            cr_child_spec s = flaky_spec(name, (cr_restart_type)(
                                                   cr_rng_next(&r) % 3));
            s.arg = malloc(16); /* owned by the supervisor on success */
            s.arg_free = on_arg_free;
            int rv = cr_sup_add_child(c->rt, c->root, &s, NULL);
            if (rv == 0 || rv == CR_ETIMEDOUT) {
                c->adds++;
            } else {
                free(s.arg);
                if (rv != CR_EEXIST) {
                    c->errors++;
                }
            }
            break;
        }
        case 1: {
            int rv = cr_sup_remove_child(c->rt, c->root, name);
            if (rv == 0) {
                c->removes++;
            } else if (rv != CR_ENOENT) {
                c->errors++;
            }
            break;
        }
        case 2: {
            cr_sup_child_info *ci;
            size_t n;
            int rv = cr_sup_which_children(c->rt, c->root, &ci, &n);
            if (rv == 0) {
                c->queries++;
                for (size_t i = 0; i < n; i++) {
                    if (ci[i].state > CR_CHILD_STOPPING) {
                        c->errors++;
                    }
                }
                free(ci);
            } else {
                c->errors++;
            }
            break;
        }
        default:
            if (cr_sup_subscribe(c->rt, c->root, c->sub->id,
                                 (uint32_t)(cr_rng_next(&r) %
                                            (CR_SUP_EV_ALL + 1))) != 0) {
                c->errors++;
            }
            break;
        }
        k++;
        usleep(500);
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    int secs = argc > 1 ? atoi(argv[1]) : 3;
    cr_rt *rt;
    if (cr_rt_new(NULL, &rt) != 0) {
        fprintf(stderr, "cr_rt_new failed\n");
        return 1;
    }
    tcol col, col2;
    CHECK(tcol_start(rt, &col) == 0, "collector");
    CHECK(tcol_start(rt, &col2) == 0, "collector 2");

    /* nested: a one_for_all and a rest_for_one of 4 flaky children each */
    static const char *names[4] = {"w0", "w1", "w2", "w3"};
    cr_child_spec leaves[4];
    for (int i = 0; i < 4; i++) {
        leaves[i] = flaky_spec(names[i], (cr_restart_type)(i % 3));
    }
    cr_sup_opts ao = stress_opts(CR_SUP_ONE_FOR_ALL, "all", col.id);
    cr_sup_opts ro = stress_opts(CR_SUP_REST_FOR_ONE, "rest", col.id);
    cr_sup_args *aa, *ra;
    CHECK(cr_sup_args_new(&ao, leaves, 4, &aa) == 0, "args all");
    CHECK(cr_sup_args_new(&ro, leaves, 4, &ra) == 0, "args rest");
    cr_child_spec top[12];
    cr_sup_child_spec(&top[0], "all", aa);
    cr_sup_child_spec(&top[1], "rest", ra);
    char tn[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(tn[i], sizeof(tn[i]), "f%d", i);
        top[2 + i] = flaky_spec(tn[i], CR_RESTART_PERMANENT);
    }
    cr_sup_opts oo = stress_opts(CR_SUP_ONE_FOR_ONE, "root", col.id);
    cr_id root;
    CHECK(cr_sup_start(rt, &oo, top, 12, &root) == 0, "start root");
    atomic_store(&root_id, root);

    _Atomic bool stop = false;
    client cl[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        cl[i] = (client){.rt = rt, .root = root, .idx = i, .sub = &col2,
                         .stop = &stop};
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    sleep((unsigned)secs);
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        CHECK(cl[i].errors == 0, "client %d: %d errors", i, cl[i].errors);
    }
    size_t n;
    cr_sup_child_info *ci;
    CHECK(cr_sup_which_children(rt, root, &ci, &n) == 0, "which");
    free(ci);
    CHECK(cr_sup_stop(rt, root, 60000) == 0, "stop root");
    cr_exit why;
    CHECK(cr_sup_wait(rt, root, 1000, &why) == 0 &&
              why.kind == CR_EXIT_SHUTDOWN,
          "root exit reason");
    for (int i = 0; i < 300 && cr_rt_actor_count(rt) > 2; i++) {
        usleep(10000);
    }
    CHECK(cr_rt_actor_count(rt) == 2, "actors left: %zu",
          cr_rt_actor_count(rt));
    int restarts = tcol_count(&col, CR_SUP_EV_RESTART, NULL, 0);
    int exits = tcol_count(&col, CR_SUP_EV_EXIT, NULL, 0);
    CHECK(col.bad == 0 && col2.bad == 0, "undecodable events");
    CHECK(restarts > 10, "only %d restarts", restarts);
    CHECK(atomic_load(&calls_made) > 0, "no child called the root");
    CHECK(tcol_count(&col, CR_SUP_EV_GIVEUP, NULL, 0) == 0, "no give-up");
    printf("stress_supervisor: %d s, %llu child inits, %d restarts, %d exits, "
           "adds %d+%d, removes %d+%d, queries %d+%d, calls from children "
           "%llu\n",
           secs, (unsigned long long)atomic_load(&flaky_inits), restarts,
           exits, cl[0].adds, cl[1].adds, cl[0].removes, cl[1].removes,
           cl[0].queries, cl[1].queries,
           (unsigned long long)atomic_load(&calls_made));
    tcol_stop(rt, &col);
    tcol_stop(rt, &col2);
    CHECK(cr_rt_actor_count(rt) == 0, "actors left at the end");
    cr_rt_destroy(rt);
    if (failures != 0) {
        fprintf(stderr, "stress_supervisor: %d failure(s)\n", failures);
        return 1;
    }
    return 0;
}
