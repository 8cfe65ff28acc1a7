#!/usr/bin/env bash
# The runtime is usable on its own: install into a temporary prefix, then
# build and run a small program against it with nothing but pkg-config;
# and a cfgrecvd plugin built the same way runs in the installed daemon.
set -euo pipefail
BUILD=${CFGRECV_BUILD:?CFGRECV_BUILD must point at the build tree}
D=$(mktemp -d /tmp/cfgrecv-install.XXXXXX)
trap 'rm -rf "$D"' EXIT
cmake --install "$BUILD" --prefix "$D/prefix" >/dev/null
for f in bin/cfgrecvd bin/cfgsvcd bin/cfgctl bin/cfgrecv-monitor \
         include/cfgrecv/actor.h include/cfgrecv/supervisor.h \
         include/cfgrecv/flow_handler.h; do
    [ -e "$D/prefix/$f" ] || { echo "FAIL: $f not installed" >&2; exit 1; }
done
# every installed program answers --version on stdout with exit 0
want=$(sed -n 's/^project(cfgrecv VERSION \([0-9.]*\).*/\1/p' "$(dirname "$0")/../../CMakeLists.txt")
for p in cfgrecvd cfgsvcd cfgctl cfgrecv-monitor; do
    v=$("$D/prefix/bin/$p" --version) || { echo "FAIL: $p --version exit $?" >&2; exit 1; }
    case "$v" in
    "$p $want (nng "*")") ;;
    *) echo "FAIL: $p --version said '$v' (want $p $want)" >&2; exit 1 ;;
    esac
done
PC=$(find "$D/prefix" -name cfgrecv-runtime.pc | head -n1)
[ -n "$PC" ] || { echo "FAIL: no cfgrecv-runtime.pc" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$PC")
cat >"$D/ping.c" <<'C'
#include <cfgrecv/actor.h>
#include <stdio.h>
static int h(cr_ctx *c, void *s, const cr_msg *m) {
    cr_msg *r = cr_msg_new_bytes(cr_msg_type(m), "pong", 4);
    cr_reply(c, m, r);
    return 0;
}
static const cr_behaviour B = {.kind = "ping", .handle = h};
int main(void) {
    cr_rt *rt; cr_id id; cr_msg *rep = NULL;
    if (cr_rt_new(NULL, &rt) || cr_spawn(rt, &B, NULL, NULL, &id)) return 1;
    int rv = cr_call(rt, CR_NOBODY, id, cr_msg_new(CR_MSG_USER), 5000, &rep);
    int ok = rv == 0 && cr_msg_len(rep) == 4;
    cr_msg_free(rep);
    cr_rt_destroy(rt);
    puts(ok ? "pong" : "no reply");
    return ok ? 0 : 1;
}
C
cc -std=c11 -o "$D/ping" "$D/ping.c" $(pkg-config --cflags --libs cfgrecv-runtime) \
    -Wl,-rpath,"$(pkg-config --variable=libdir cfgrecv-runtime)"
out=$("$D/ping")
[ "$out" = pong ] || { echo "FAIL: got '$out'" >&2; exit 1; }

# a plugin built the README's way against the installed headers, loaded
# by the installed cfgrecvd: it sees a flow put with the installed cfgctl
cat >"$D/mine.c" <<'C'
#include <cfgrecv/flow_handler.h>
#include <stdio.h>
static int start(void *st, const cra_flow_ref *f, char *err, size_t n) {
    FILE *fp = fopen((const char *)st, "a");
    if (fp == NULL) return CRA_FAILED;
    fprintf(fp, "start %s %s\n", f->workspace, f->id);
    fclose(fp);
    return CRA_OK;
}
static int stop(void *st, const cra_flow_ref *f, char *err, size_t n) {
    return CRA_OK;
}
static int init(cr_ctx *ctx, void *arg, void **st) { *st = arg; return 0; }
const cra_plugin cfgrecv_plugin = {
    .abi = CRA_PLUGIN_ABI, .size = sizeof(cra_flow_handler),
    .handler = {.name = "mine", .init = init, .start = start, .stop = stop},
};
C
cc -shared -fPIC -o "$D/mine.so" "$D/mine.c" $(pkg-config --cflags cfgrecv-runtime jansson)
"$D/prefix/bin/cfgrecvd" --db "$D/db.sqlite" --svc-request-url "ipc://$D/req.ipc" \
    --svc-notify-url "ipc://$D/not.ipc" --monitor-url "ipc://$D/mon.ipc" \
    --events-url none --plugin "$D/mine.so" --plugin-arg "$D/started" \
    2>"$D/daemon.log" &
DPID=$!
ok=
for _ in $(seq 1 100); do
    "$D/prefix/bin/cfgctl" --url "ipc://$D/req.ipc" --timeout 1 \
        put-flow w1 f1 /dev/stdin <<<'{"n":1}' >/dev/null 2>&1 && { ok=1; break; }
    sleep 0.1
done
[ -n "$ok" ] || { kill $DPID; echo "FAIL: no config service" >&2; cat "$D/daemon.log" >&2; exit 1; }
for _ in $(seq 1 100); do
    grep -q "^start w1 f1$" "$D/started" 2>/dev/null && break
    sleep 0.1
done
grep -q "^start w1 f1$" "$D/started" 2>/dev/null ||
    { kill $DPID; echo "FAIL: the plugin was not told of w1/f1" >&2; cat "$D/daemon.log" >&2; exit 1; }
kill -TERM $DPID
wait $DPID || { echo "FAIL: cfgrecvd with a plugin exit $?" >&2; exit 1; }
echo "2 passed, 0 failed"
