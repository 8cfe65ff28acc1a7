#!/usr/bin/env bash
# The runtime is usable on its own: install into a temporary prefix, then
# build and run a small program against it with nothing but pkg-config.
set -euo pipefail
BUILD=${CFGRECV_BUILD:?CFGRECV_BUILD must point at the build tree}
D=$(mktemp -d /tmp/cfgrecv-install.XXXXXX)
trap 'rm -rf "$D"' EXIT
cmake --install "$BUILD" --prefix "$D/prefix" >/dev/null
for f in bin/cfgrecvd bin/cfgsvcd bin/cfgctl bin/cfgrecv-monitor \
         include/cfgrecv/actor.h include/cfgrecv/supervisor.h; do
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
echo "1 passed, 0 failed"
