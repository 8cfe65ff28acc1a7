/*
 * stress_lguard.c - standalone stress driver for the listener guard
 * (plain main, exit status 1 on failure; runs under TSan, where criterion
 * cannot). Three guarded REP servers probed every 5 ms, while client
 * threads connect and ask back to back and a thread opens and closes a
 * fourth server over and over (starting and stopping the guard thread
 * itself when it is the last). Every request must be answered, and no
 * probe may restart a healthy listener.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfgrecv/actor.h"
#include "client.h"
#include "lguard.h"
#include "server.h"

#define SERVERS 3
#define CLIENTS 3
#define RUN_MS 3000

static char dir[64];
static char urls[SERVERS + 1][128];
static crt_server *srv[SERVERS + 1];
static atomic_int failures;
static atomic_bool stop;

static void
echo(void *arg, uint64_t token, const void *data, size_t len)
{
    crt_server_reply(*(crt_server **)arg, token, data, len);
}

static void *
client_main(void *arg)
{
    int k = (int)(intptr_t)arg;
    for (int i = 0; !atomic_load(&stop); i++) {
        const char *u = urls[(k + i) % SERVERS];
        crt_client *c;
        void *rep = NULL;
        size_t rlen;
        if (crt_client_open(u, NULL, &c) != 0) {
            atomic_fetch_add(&failures, 1);
            continue;
        }
        int rv = crt_client_request(c, "ping", 4, 10000, &rep, &rlen);
        if (rv != 0 || rlen != 4) {
            fprintf(stderr, "FAIL: ask %s: %s\n", u, cr_strerror(rv));
            atomic_fetch_add(&failures, 1);
        }
        free(rep);
        crt_client_close(c);
    }
    return NULL;
}

static void *
churn_main(void *arg)
{
    (void)arg;
    crt_server_opts so = {.guard_ms = 5};
    while (!atomic_load(&stop)) {
        if (crt_server_open(urls[SERVERS], &so, echo, &srv[SERVERS],
                            &srv[SERVERS]) != 0) {
            fprintf(stderr, "FAIL: churn open\n");
            atomic_fetch_add(&failures, 1);
            return NULL;
        }
        usleep(20000);
        crt_server_close(srv[SERVERS]);
    }
    return NULL;
}

int
main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cfgrecv-lguard-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    crt_server_opts so = {.guard_ms = 5};
    for (int i = 0; i <= SERVERS; i++) {
        snprintf(urls[i], sizeof(urls[i]), "ipc://%s/s%d", dir, i);
    }
    for (int i = 0; i < SERVERS; i++) {
        if (crt_server_open(urls[i], &so, echo, &srv[i], &srv[i]) != 0) {
            fprintf(stderr, "FAIL: open %s\n", urls[i]);
            return 1;
        }
    }
    pthread_t cl[CLIENTS], ch;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_create(&cl[i], NULL, client_main, (void *)(intptr_t)i);
    }
    pthread_create(&ch, NULL, churn_main, NULL);
    usleep(RUN_MS * 1000);
    atomic_store(&stop, true);
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(cl[i], NULL);
    }
    pthread_join(ch, NULL);
    unsigned restarts = 0;
    for (int i = 0; i < SERVERS; i++) {
        restarts += crt_server_restarts(srv[i]);
        crt_server_close(srv[i]);
    }
    if (restarts != 0) {
        fprintf(stderr, "FAIL: %u restarts of healthy listeners\n", restarts);
        atomic_fetch_add(&failures, 1);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", dir);
    }
    int f = atomic_load(&failures);
    printf("stress_lguard: %s (%d failures)\n", f ? "FAILED" : "ok", f);
    return f ? 1 : 0;
}
