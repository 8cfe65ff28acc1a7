/*
 * ipc_fixture.h - a temporary directory holding one ipc:// socket path
 * per test, an echo server and a client of it (the transport tests'
 * common fixture). Include after criterion.
 */
#ifndef IPC_FIXTURE_H
#define IPC_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "server.h"

static char fx_dir[64];
static char url[128]; /* ipc://<fx_dir>/sock */

static inline void
fx_make(void)
{
    snprintf(fx_dir, sizeof(fx_dir), "/tmp/cfgrecv-transport-XXXXXX");
    cr_assert_not_null(mkdtemp(fx_dir));
    snprintf(url, sizeof(url), "ipc://%s/sock", fx_dir);
}

static inline void
fx_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx_dir);
    cr_assert_eq(system(cmd), 0);
}

/* echo_cb answers every request with its own bytes; arg points to the
 * server (set by crt_server_open's out parameter). */
static inline void
echo_cb(void *arg, uint64_t token, const void *data, size_t len)
{
    crt_server_reply(*(crt_server **)arg, token, data, len);
}

/* echo_open starts an echo server on url and a client of it; *srv must
 * be static storage (it is the server callback's argument). */
static inline void
echo_open(crt_server **srv, crt_client **c)
{
    cr_assert_eq(crt_server_open(url, NULL, echo_cb, srv, srv), 0);
    cr_assert_eq(crt_client_open(url, NULL, c), 0);
}

/* expect_echo asks text and asserts the same bytes come back in time. */
static inline void
expect_echo(crt_client *c, const char *text, int timeout_ms)
{
    void *rep;
    size_t rlen, n = strlen(text);
    cr_assert_eq(crt_client_request(c, text, n, timeout_ms, &rep, &rlen), 0,
                 "no answer to '%s'", text);
    cr_assert_eq(rlen, n);
    cr_assert_eq(memcmp(rep, text, n), 0);
    free(rep);
}

#endif /* IPC_FIXTURE_H */
