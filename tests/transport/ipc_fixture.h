/*
 * ipc_fixture.h - a temporary directory holding one ipc:// socket path
 * per test, and an echo callback for crt_server (the transport tests'
 * common fixture). Include after criterion.
 */
#ifndef IPC_FIXTURE_H
#define IPC_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

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

#endif /* IPC_FIXTURE_H */
