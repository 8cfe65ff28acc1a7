/*
 * test_cfgsvc_service.c - the embedded config service (actors on the
 * runtime) driven through the real transport: the start-up push, a push
 * per change seen by a SUB, several requests in flight, a bad request
 * that leaves the service serving, a start failure that leaves nothing
 * running, and a clean stop.
 */
#include <cfgrecv/actor.h> /* before criterion (its cr_fail macro) */

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfgsvc.h"
#include "client.h"
#include "notify.h"
#include "proto.h"

static char dir[64], rurl[128], nurl[128], db[128];

static struct {
    pthread_mutex_t mu;
    crt_push pushes[64];
    int npush;
    int answers;
    int answer_status[64];
} rec;

static void
setup(void)
{
    memset(&rec, 0, sizeof(rec));
    pthread_mutex_init(&rec.mu, NULL);
    snprintf(dir, sizeof(dir), "/tmp/cfgsvc-svc-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(rurl, sizeof(rurl), "ipc://%s/req.ipc", dir);
    snprintf(nurl, sizeof(nurl), "ipc://%s/notify.ipc", dir);
    snprintf(db, sizeof(db), "%s/db.sqlite", dir);
}

static void
teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(cfgsvc_service, .init = setup, .fini = teardown, .timeout = 60);

static void
on_push(void *arg, const void *data, size_t len)
{
    pthread_mutex_lock(&rec.mu);
    if (rec.npush < 64 && crt_push_decode(data, len, NULL,
                                          &rec.pushes[rec.npush], NULL) == 0) {
        rec.npush++;
    }
    pthread_mutex_unlock(&rec.mu);
}

static int
npush(void)
{
    pthread_mutex_lock(&rec.mu);
    int n = rec.npush;
    pthread_mutex_unlock(&rec.mu);
    return n;
}

static int
wait_push(int n)
{
    for (int i = 0; i < 500 && npush() < n; i++) {
        usleep(10000);
    }
    return npush();
}

static void
on_answer(void *arg, int status, const void *reply, size_t len)
{
    crt_response r;
    int ok = status;
    if (status == 0) {
        ok = crt_response_decode(reply, len, NULL, &r, NULL);
        if (ok == 0) {
            ok = r.error ? CR_EFAIL : 0;
            crt_response_free(&r);
        }
    }
    pthread_mutex_lock(&rec.mu);
    rec.answer_status[rec.answers++] = ok;
    pthread_mutex_unlock(&rec.mu);
}

static int
request(crt_client *c, const crt_request *req, crt_response *resp)
{
    void *buf, *rep;
    size_t len, rlen;
    int rv;
    cr_assert_eq(crt_request_encode(req, &buf, &len), 0);
    rv = crt_client_request(c, buf, len, 5000, &rep, &rlen);
    free(buf);
    if (rv == 0) {
        rv = crt_response_decode(rep, rlen, NULL, resp, NULL);
        free(rep);
    }
    return rv;
}

Test(cfgsvc_service, pushes_and_parallel_requests)
{
    cr_rt *rt;
    cra_cfgsvc *svc;
    crt_sub *sub;
    crt_client *c;
    crt_sub_opts so = {.on_msg = on_push};
    /* The start-up push waits 1.5 s: long enough for the subscriber,
     * which redials with backoff, to be connected even on a loaded
     * machine (PUB/SUB drops what is sent before). */
    cra_cfgsvc_opts o = {.request_url = rurl, .notify_url = nurl,
                         .db_path = db, .startup_push_delay_ms = 1500};

    cr_assert_eq(crt_sub_open(nurl, &so, &sub), 0); /* dials until up */
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    cr_assert_eq(cra_cfgsvc_start(rt, &o, &svc), 0);
    cr_assert(cra_cfgsvc_alive(svc));
    for (int i = 0; i < 150 && !crt_sub_connected(sub); i++) {
        usleep(10000);
    }
    cr_assert(crt_sub_connected(sub), "subscriber connected");
    cr_assert_eq(wait_push(1), 1, "the start-up push");
    cr_assert_eq(rec.pushes[0].version, 0);
    cr_assert_eq(rec.pushes[0].nchanges, 0, "empty changes = everything");

    cr_assert_eq(crt_client_open(rurl, NULL, &c), 0);
    /* 20 puts in flight at once over one connection (8 contexts) */
    char keys[20][8];
    for (int i = 0; i < 20; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        crt_value v = {"flow", keys[i], "{}", ""};
        crt_request r = {.operation = "put",
                         .workspace = i % 2 ? "odd" : "even",
                         .values = &v,
                         .nvalues = 1};
        void *buf;
        size_t len;
        cr_assert_eq(crt_request_encode(&r, &buf, &len), 0);
        cr_assert_eq(crt_client_request_async(c, buf, len, 5000, on_answer,
                                              NULL),
                     0);
        free(buf);
    }
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&rec.mu);
        int n = rec.answers;
        pthread_mutex_unlock(&rec.mu);
        if (n == 20) {
            break;
        }
        usleep(10000);
    }
    cr_assert_eq(rec.answers, 20);
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(rec.answer_status[i], 0);
    }
    cr_assert_eq(wait_push(21), 21, "one push per change");
    for (int i = 1; i <= 20; i++) {
        cr_assert_eq(rec.pushes[i].version, (uint64_t)i, "in order");
        cr_assert_str_eq(rec.pushes[i].changes[0].type, "flow");
    }

    /* garbage, then the service still answers */
    void *rep;
    size_t rlen;
    crt_response resp;
    cr_assert_eq(crt_client_request(c, "\xc1", 1, 5000, &rep, &rlen), 0);
    cr_assert_eq(crt_response_decode(rep, rlen, NULL, &resp, NULL), 0);
    free(rep);
    cr_assert_not_null(resp.error);
    cr_assert_str_eq(resp.error->type, "bad-request");
    crt_response_free(&resp);
    crt_request g = {.operation = "getkeys-all-ws", .type = "flow"};
    cr_assert_eq(request(c, &g, &resp), 0);
    cr_assert_null(resp.error);
    cr_assert_eq(resp.version, 20);
    cr_assert_eq(resp.nvalues, 20);
    crt_response_free(&resp);

    crt_client_close(c);
    cra_cfgsvc_stop(svc);
    cr_assert_eq(cr_rt_actor_count(rt), 0, "every actor stopped");
    cr_rt_destroy(rt);
    crt_sub_close(sub);
    for (int i = 0; i < rec.npush; i++) {
        crt_push_free(&rec.pushes[i]);
    }
}

Test(cfgsvc_service, start_failure_leaves_nothing)
{
    cr_rt *rt;
    cra_cfgsvc *svc = NULL, *svc2 = NULL;
    cra_cfgsvc_opts o = {.request_url = rurl, .notify_url = nurl,
                         .db_path = db};
    cr_assert_eq(cr_rt_new(NULL, &rt), 0);
    cr_assert_eq(cra_cfgsvc_start(rt, &o, &svc), 0);
    /* same URLs again: cannot bind */
    cra_cfgsvc_opts o2 = o;
    o2.name = "second";
    cr_assert_neq(cra_cfgsvc_start(rt, &o2, &svc2), 0);
    cr_assert_eq(cr_rt_actor_count(rt), 2, "only the first service's");
    /* a database that cannot be opened */
    char bad[160];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/db", dir);
    cra_cfgsvc_opts o3 = {.request_url = "ipc:///tmp/unused-cfgsvc-a",
                          .notify_url = "ipc:///tmp/unused-cfgsvc-b",
                          .db_path = bad,
                          .name = "third"};
    char n3[128];
    snprintf(n3, sizeof(n3), "ipc://%s/n3.ipc", dir);
    o3.notify_url = n3;
    cr_assert_eq(cra_cfgsvc_start(rt, &o3, &svc2), CR_EFAIL);
    cr_assert_eq(cr_rt_actor_count(rt), 2);
    cra_cfgsvc_stop(svc);
    cr_assert_eq(cr_rt_actor_count(rt), 0);
    cr_rt_destroy(rt);
}
