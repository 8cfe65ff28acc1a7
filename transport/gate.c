/*
 * gate.c - see gate.h.
 */
#include "gate.h"

void
crt_gate_init(crt_gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->inside = 0;
    g->shut = false;
}

void
crt_gate_fini(crt_gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

bool
crt_gate_enter(crt_gate *g)
{
    bool ok;
    pthread_mutex_lock(&g->mu);
    ok = !g->shut;
    if (ok) {
        g->inside++;
    }
    pthread_mutex_unlock(&g->mu);
    return ok;
}

void
crt_gate_leave(crt_gate *g)
{
    pthread_mutex_lock(&g->mu);
    if (--g->inside == 0 && g->shut) {
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
}

void
crt_gate_shut(crt_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->shut = true;
    while (g->inside > 0) {
        pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
}
