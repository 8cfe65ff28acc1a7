#!/usr/bin/env bash
# End-to-end test of cfgsvcd + cfgctl: every operation and its version
# effect, the notifies seen by a real SUB (nngcat), workspace_changes, the
# start-up push, bad/oversized/unknown requests (the service keeps
# working), cfgctl's exit codes, kill -9 durability and a clean SIGTERM.
set -euo pipefail

BIN=${CFGRECV_BIN:?CFGRECV_BIN must point at the built tools}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
D=$(mktemp -d /tmp/cfgsvc-e2e.XXXXXX)
R=ipc://$D/req.ipc
N=ipc://$D/notify.ipc
SVC_PID=
SUB_PID=

cleanup() {
    [ -n "$SVC_PID" ] && kill -9 "$SVC_PID" 2>/dev/null || true
    [ -n "$SUB_PID" ] && kill -9 "$SUB_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "--- service log" >&2
    cat "$D/svc.log" >&2 || true
    exit 1
}

ctl() { "$BIN/cfgctl" --url "$R" --timeout 5 "$@"; }

# jq-free JSON check: jcheck JSON PYTHON-EXPR (j is the parsed object)
jcheck() {
    "$PY" -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" \
        || fail "check '$2' failed on: $1"
}

start_svc() {
    "$BIN/cfgsvcd" --request-url "$R" --notify-url "$N" --db "$D/db.sqlite" \
        --max-message 65536 --startup-push-delay 1000 --log-level info \
        2>>"$D/svc.log" &
    SVC_PID=$!
    for _ in $(seq 100); do
        if ctl version >/dev/null 2>&1; then return 0; fi
        sleep 0.05
    done
    fail "cfgsvcd did not come up"
}

# pushes: print the decoded pushes seen by the subscriber, one per line
pushes() {
    "$PY" - "$D/sub.bin" <<'EOF'
import json, sys, msgpack
u = msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False)
print(json.dumps([o for o in u]))
EOF
}

wait_pushes() { # wait until at least $1 pushes were seen
    for _ in $(seq 100); do
        n=$(pushes | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
        [ "$n" -ge "$1" ] && return 0
        sleep 0.05
    done
    fail "expected $1 pushes, saw: $(pushes)"
}

# ---- subscriber first, then the service: the start-up push is seen ------
stdbuf -o0 nngcat --sub --dial "$N" --async --raw >"$D/sub.bin" 2>/dev/null &
SUB_PID=$!
for _ in $(seq 100); do # until stdbuf has exec'd nngcat
    case "$(readlink "/proc/$SUB_PID/exe" 2>/dev/null)" in *nngcat) break ;; esac
    sleep 0.02
done
sleep 0.2
start_svc
wait_pushes 1
P=$(pushes)
jcheck "$P" 'j[0]["version"] == 0 and j[0]["changes"] == {} and j[0]["workspace_changes"] is None'

# ---- operations and versions ----------------------------------------------
out=$(ctl version);                      jcheck "$out" 'j == {"version": 0}'
out=$(ctl put default flow f1 '{"name": "test_flow_1"}'); jcheck "$out" 'j["version"] == 1'
echo -n 'from a file' >"$D/v.txt"
out=$(ctl put default prompt p1 @"$D/v.txt"); jcheck "$out" 'j["version"] == 2'
out=$(echo -n 'from stdin' | ctl put ws2 prompt p2 -); jcheck "$out" 'j["version"] == 3'
out=$(ctl get default flow f1);          jcheck "$out" 'j == {"version": 3, "value": "{\"name\": \"test_flow_1\"}"}'
out=$(ctl get default prompt p1);        jcheck "$out" 'j["value"] == "from a file"'
out=$(ctl get ws2 prompt p2);            jcheck "$out" 'j["value"] == "from stdin"'
out=$(ctl get default flow missing);     jcheck "$out" 'j == {"version": 3, "value": None}'
out=$(ctl list default flow);            jcheck "$out" 'j == {"version": 3, "keys": ["f1"]}'
out=$(ctl getvalues default prompt);     jcheck "$out" 'j["values"] == {"p1": "from a file"}'
out=$(ctl getvalues-all-ws prompt)
jcheck "$out" 'j["values"] == [{"workspace": "default", "key": "p1", "value": "from a file"}, {"workspace": "ws2", "key": "p2", "value": "from stdin"}]'
out=$(ctl getkeys-all-ws prompt)
jcheck "$out" 'j["keys"] == [{"workspace": "default", "key": "p1"}, {"workspace": "ws2", "key": "p2"}]'
out=$(ctl config default)
jcheck "$out" 'j["version"] == 3 and j["config"] == {"flow": {"f1": "{\"name\": \"test_flow_1\"}"}, "prompt": {"p1": "from a file"}}'

echo '{ "description": "d", "blueprint-name": "bp",
        "interfaces": {"a": "q"}, "parameters": {} }' >"$D/flow.json"
out=$(ctl put-flow acme fl1 "$D/flow.json"); jcheck "$out" 'j["version"] == 4'
out=$(ctl get acme flow fl1)
jcheck "$out" 'json.loads(j["value"]) == {"description": "d", "blueprint-name": "bp", "interfaces": {"a": "q"}, "parameters": {}}'
echo '{ not json' >"$D/bad.json"
set +e; ctl put-flow acme fl2 "$D/bad.json" 2>/dev/null; rc=$?; set -e
[ "$rc" = 2 ] || fail "put-flow with invalid JSON: exit $rc, want 2"
out=$(ctl delete-flow acme fl1);          jcheck "$out" 'j["version"] == 5'
out=$(ctl get acme flow fl1);             jcheck "$out" 'j["value"] is None'
out=$(ctl delete default prompt p1 nope); jcheck "$out" 'j["version"] == 6'

# export / import round trip (one change for the whole import)
ctl export default >"$D/exp.json"
jcheck "$(cat "$D/exp.json")" 'j == {"flow": {"f1": "{\"name\": \"test_flow_1\"}"}}'
out=$(ctl import copy "$D/exp.json");    jcheck "$out" 'j == {"version": 7, "imported": 1}'
out=$(ctl export copy);                  jcheck "$out" 'j == {"flow": {"f1": "{\"name\": \"test_flow_1\"}"}}'

# workspace registry: workspace_changes
out=$(ctl put __workspaces__ workspace newws '{}'); jcheck "$out" 'j["version"] == 8'
out=$(ctl delete __workspaces__ workspace newws);   jcheck "$out" 'j["version"] == 9'
# the same through cfgctl's workspace commands; delete-workspace empties
# the workspace first (one change), then deletes its registration
out=$(ctl create-workspace team1);           jcheck "$out" 'j["version"] == 10'
ctl put team1 flow f1 '{}' >/dev/null        # 11
ctl put team1 prompt p1 hello >/dev/null     # 12
out=$(ctl delete-workspace team1);           jcheck "$out" 'j == {"version": 14, "deleted": 2}'
out=$(ctl config team1);                     jcheck "$out" 'j["config"] == {}'
out=$(ctl get __workspaces__ workspace team1); jcheck "$out" 'j["value"] is None'
set +e; ctl delete-workspace 2>/dev/null; rc=$?; set -e
[ "$rc" = 2 ] || fail "delete-workspace without a name: exit $rc, want 2"

# ---- the notifies ------------------------------------------------------------
wait_pushes 15
P=$(pushes)
jcheck "$P" '[p["version"] for p in j] == list(range(15))'
jcheck "$P" 'j[1]["changes"] == {"flow": ["default"]} and j[1]["workspace_changes"] is None'
jcheck "$P" 'j[3]["changes"] == {"prompt": ["ws2"]}'
jcheck "$P" 'j[4]["changes"] == {"flow": ["acme"]}'
jcheck "$P" 'j[6]["changes"] == {"prompt": ["default"]}'
jcheck "$P" 'j[8]["changes"] == {"workspace": ["__workspaces__"]} and j[8]["workspace_changes"] == {"created": ["newws"], "deleted": []}'
jcheck "$P" 'j[9]["workspace_changes"] == {"created": [], "deleted": ["newws"]}'
jcheck "$P" 'j[10]["workspace_changes"] == {"created": ["team1"], "deleted": []}'
jcheck "$P" 'j[13]["changes"] == {"flow": ["team1"], "prompt": ["team1"]} and j[13]["workspace_changes"] is None'
jcheck "$P" 'j[14]["workspace_changes"] == {"created": [], "deleted": ["team1"]}'

# ---- bad requests: the service answers and keeps serving --------------------
raw_req() { # raw_req FILE -> decoded response JSON
    nngcat --req --dial "$R" --file "$1" --raw --recv-timeout 5 >"$D/resp.bin"
    "$PY" - "$D/resp.bin" <<'EOF'
import json, sys, msgpack
print(json.dumps(msgpack.unpackb(open(sys.argv[1], "rb").read(), raw=False)))
EOF
}
"$PY" -c 'import msgpack,sys; open(sys.argv[1],"wb").write(msgpack.packb({"operation": "frobnicate", "workspace": "default"}))' "$D/op.bin"
out=$(raw_req "$D/op.bin")
jcheck "$out" 'j["error"]["type"] == "bad-operation" and "frobnicate" in j["error"]["message"] and j["version"] == 14'
printf '\xdd\x04\x00\x00\x00' >"$D/bomb.bin"
out=$(raw_req "$D/bomb.bin")
jcheck "$out" 'j["error"]["type"] == "bad-request" and "array" in j["error"]["message"]'
printf '\x81\xa9operation\xa3get\xc0' >"$D/trail.bin"
out=$(raw_req "$D/trail.bin")
jcheck "$out" 'j["error"]["type"] == "bad-request" and "trailing" in j["error"]["message"]'
# a request from an independent encoder (python3-msgpack), unknown keys too
"$PY" -c 'import msgpack,sys; open(sys.argv[1],"wb").write(msgpack.packb({"id": 7, "operation": "get", "workspace": "default", "keys": [{"type": "flow", "key": "f1", "x": [1, 2.5]}]}))' "$D/get.bin"
out=$(raw_req "$D/get.bin")
jcheck "$out" 'j["error"] is None and j["values"][0]["value"] == "{\"name\": \"test_flow_1\"}"'
# oversized (the service runs with --max-message 65536)
head -c 100000 /dev/zero | tr '\0' 'x' >"$D/big.txt"
set +e; ctl put default big k @"$D/big.txt" 2>"$D/err.txt"; rc=$?; set -e
[ "$rc" = 1 ] || fail "oversized put: exit $rc, want 1"
grep -q "bad-request" "$D/err.txt" || fail "oversized put: $(cat "$D/err.txt")"
grep -q "exceeds" "$D/err.txt" || fail "oversized put: $(cat "$D/err.txt")"
out=$(ctl version); jcheck "$out" 'j == {"version": 14}'

# ---- cfgctl exit codes ---------------------------------------------------------
set +e
ctl get "" flow f1 2>/dev/null; rc1=$?
"$BIN/cfgctl" --url "ipc://$D/nobody.ipc" --timeout 0.3 version 2>/dev/null; rc3=$?
ctl frob 2>/dev/null; rc2=$?
ctl get default 2>/dev/null; rc2b=$?
set -e
[ "$rc1" = 1 ] || fail "service error: exit $rc1, want 1"
[ "$rc3" = 3 ] || fail "unreachable: exit $rc3, want 3"
[ "$rc2" = 2 ] || fail "unknown command: exit $rc2, want 2"
[ "$rc2b" = 2 ] || fail "missing args: exit $rc2b, want 2"
"$BIN/cfgctl" --help | grep -q "getkeys-all-ws" || fail "cfgctl --help"
"$BIN/cfgsvcd" --help | grep -q -- "--notify-url" || fail "cfgsvcd --help"

# ---- clients that hang up while connecting lock nobody out ------------------------
# (nng 1.5.2 wedges such a listener for good; the listener guard restarts it:
# transport/lguard.h). Every later cfgctl is served again.
"$PY" "$(dirname "$0")/hang_up.py" "${R#ipc://}"
served=
for _ in $(seq 30); do # the guard's period (3 s) and probe wait (5 s)
    if ctl version >/dev/null 2>&1; then served=1; break; fi
done
[ -n "$served" ] || fail "cfgctl not served after clients hung up while connecting"
out=$(ctl version); jcheck "$out" '"version" in j'

# ---- durability: N acknowledged puts survive kill -9 ---------------------------
NPUTS=50
for i in $(seq $NPUTS); do
    ctl put dur item "k$i" "v$i" >/dev/null || fail "put $i"
done
before=$(ctl version | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["version"])')
kill -9 "$SVC_PID"
wait "$SVC_PID" 2>/dev/null || true
SVC_PID=
start_svc
out=$(ctl list dur item)
jcheck "$out" "len(j['keys']) == $NPUTS and j['version'] >= $before"
out=$(ctl get dur item "k$NPUTS"); jcheck "$out" "j['value'] == 'v$NPUTS'"

# ---- clean shutdown on SIGTERM ---------------------------------------------------
kill -TERM "$SVC_PID"
set +e; wait "$SVC_PID"; rc=$?; set -e
SVC_PID=
[ "$rc" = 0 ] || fail "cfgsvcd exit $rc after SIGTERM, want 0"
grep -q "stopped" "$D/svc.log" || fail "no clean stop in the log"
echo "cfgsvc e2e: OK"
