#!/usr/bin/env bash
# End-to-end test of cfgrecvd's hooks and workers (--hook, --worker) with
# the embedded config service, cfgctl and stock nngcat:
#  - the hook runs exactly once per transition, in order per flow, with
#    the CFGRECV_* environment and the flow's JSON on stdin;
#  - hostile workspace/flow ids (spaces, quotes, ';', $(...), backticks,
#    ../, newlines, non-ASCII, leading '-') are refused with a clear error
#    (monitor state and flow.failed events), nothing runs for them and the
#    other flows carry on;
#  - a worker that exits is restarted with backoff (restarts grow);
#  - 200 flows with workers started and stopped: no zombie (/proc), no
#    thread per worker;
#  - SIGTERM stops every worker (and runs the stop hooks) within the
#    grace; a daemon killed with SIGKILL takes its workers with it;
#  - a second SIGTERM while a stop hook hangs exits 1 at once, saying so,
#    and the hook dies with the daemon.
set -euo pipefail

BIN=${CFGRECV_BIN:?CFGRECV_BIN must point at the built tools}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
D=$(mktemp -d /tmp/cfgrecv-procs-e2e.XXXXXX)
REQ=ipc://$D/req.ipc
NOT=ipc://$D/not.ipc
MON=ipc://$D/mon.ipc
EV=ipc://$D/ev.ipc
DPID=
SUBPID=

# kill_workers: every worker this test started (their pids are logged)
kill_workers() {
    [ -f "$D/workers" ] || return 0
    while read -r pid _; do
        kill -9 "$pid" 2>/dev/null || true
    done <"$D/workers"
}

cleanup() {
    [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null || true
    [ -n "$SUBPID" ] && kill -9 "$SUBPID" 2>/dev/null || true
    kill_workers
    wait 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "--- daemon log (tail)" >&2
    tail -40 "$D/daemon.log" >&2 || true
    exit 1
}

ctl() { "$BIN/cfgctl" --url "$REQ" --timeout 5 "$@" >/dev/null; }
flows() { nngcat --req --dial "$MON" --data flows --raw --recv-timeout 5; }

# pyflows EXPR: evaluate EXPR with j = the flows document; prints result
pyflows() {
    flows | "$PY" -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# wait_for SECONDS DESCRIPTION CMD...: poll until CMD succeeds
wait_for() {
    local secs=$1 what=$2
    shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || fail "timed out waiting for: $what"
        sleep 0.1
    done
}

# flows_eq EXPR WANT: pyflows EXPR prints WANT (re-evaluated per call)
flows_eq() { [ "$(pyflows "$1")" = "$2" ]; }

lines() { [ -f "$1" ] && grep -c -- "$2" "$1" || echo 0; }
at_least() { [ "$(lines "$1" "$2")" -ge "$3" ]; }

# daemon_children PID: "children zombies" of PID, from /proc
daemon_children() {
    "$PY" - "$1" <<'EOF'
import os, sys
me, n, z = sys.argv[1], 0, 0
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        s = open("/proc/%s/stat" % p).read()
    except OSError:
        continue
    f = s[s.rindex(")") + 2:].split()
    if f[1] == me:
        n += 1
        z += f[0] == "Z"
print(n, z)
EOF
}

children_eq() { [ "$(daemon_children "$1")" = "$2" ]; }

# term_wait: SIGTERM the daemon and wait for it; sets rc (its exit
# status) and took (ms from the signal to its exit)
term_wait() {
    local t0
    t0=$(date +%s%N)
    kill -TERM "$DPID"
    set +e
    wait "$DPID"
    rc=$?
    set -e
    DPID=
    took=$((($(date +%s%N) - t0) / 1000000))
}

# w4_lines: the 4 w4 workers have written their pid lines ("running"
# means exec'd; the line follows)
w4_lines() { [ "$(awk '$4 == "w4"' "$D/workers" 2>/dev/null | wc -l)" -ge 4 ]; }

threads_of() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

# ---- the programs --------------------------------------------------------
cat >"$D/hook.sh" <<EOF
#!/bin/sh
# argv: start|update|stop WORKSPACE FLOW
sum=\$(md5sum | cut -c1-8)
echo "\$1|\$2|\$3|\$CFGRECV_WORKSPACE|\$CFGRECV_FLOW|\$CFGRECV_BLUEPRINT|\$sum" >>"$D/calls"
case "\$3" in slow*) sleep 0.2 ;; esac
case "\$1|\$3" in "stop|hang"*) echo \$\$ >"$D/hang.pid"; exec sleep 30 ;; esac
exit 0
EOF
cat >"$D/worker.sh" <<EOF
#!/bin/sh
# argv: --mode e2e WORKSPACE FLOW
echo "\$\$ \$1 \$2 \$3 \$4" >>"$D/workers"
case "\$4" in
  crash*) echo "crash \$4" >&2; exit 2 ;;
  stubborn*) trap '' TERM; echo "worker \$4 ignores SIGTERM"
             while :; do sleep 0.1; done ;;
esac
echo "worker \$4 up"
exec sleep 1000
EOF
chmod +x "$D/hook.sh" "$D/worker.sh"

DAEMON_ARGS=(--db "$D/db.sqlite" --svc-request-url "$REQ"
    --svc-notify-url "$NOT" --monitor-url "$MON" --events-url "$EV"
    --hook "$D/hook.sh" --hook-concurrency 4 --hook-timeout 5s
    --worker "$D/worker.sh" --worker-arg --mode --worker-arg e2e
    --worker-grace 2s)

# ---- usage checks --------------------------------------------------------
set +e
timeout 10 "$BIN/cfgrecvd" --hook "$D/nope.sh" 2>"$D/err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "missing hook: exit $rc"
grep -q "is not an executable file" "$D/err" || fail "hook msg: $(cat "$D/err")"
echo 'not a program' >"$D/plain.txt"
chmod 0644 "$D/plain.txt"
set +e
timeout 10 "$BIN/cfgrecvd" --worker "$D/plain.txt" 2>"$D/err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "non-executable worker: exit $rc"
"$BIN/cfgrecvd" --help | grep -q -- "--worker-grace" || fail "--help"

start_daemon() {
    "$BIN/cfgrecvd" "${DAEMON_ARGS[@]}" 2>>"$D/daemon.log" &
    DPID=$!
    wait_for 10 "the monitor endpoint" flows
}

start_daemon
# the SUB dials once (nngcat gives up if nobody listens yet)
stdbuf -o0 nngcat --sub --dial "$EV" --raw >"$D/events" 2>/dev/null &
SUBPID=$!
sleep 0.3

# ---- 1. hooks: once per transition, in order per flow --------------------
for i in 1 2 3 4 5; do
    echo "{\"blueprint-name\":\"bp-a\",\"n\":$i}" >"$D/a$i.json"
    echo "{\"blueprint-name\":\"bp-b\",\"n\":$i}" >"$D/b$i.json"
done
for i in 1 2 3 4 5; do ctl put-flow w1 "slow$i" "$D/a$i.json"; done
wait_for 20 "5 start hooks" at_least "$D/calls" "^start|w1|slow" 5
wait_for 20 "5 flows running" flows_eq 'sum(f["handlers"]["hook"]=="running" for f in j["workspaces"]["w1"].values())' 5
for i in 1 2 3 4 5; do ctl put-flow w1 "slow$i" "$D/b$i.json"; done
wait_for 20 "5 update hooks" at_least "$D/calls" "^update|w1|slow" 5
for i in 1 2 3 4 5; do ctl delete-flow w1 "slow$i"; done
wait_for 20 "5 stop hooks" at_least "$D/calls" "^stop|w1|slow" 5
wait_for 20 "w1 gone" flows_eq 'len(j["workspaces"].get("w1", {}))' 0
"$PY" - "$D/calls" "$D" <<'EOF' || fail "hook calls: $(cat "$D/calls")"
import hashlib, json, sys
calls = [l.rstrip("\n").split("|") for l in open(sys.argv[1])]
d = sys.argv[2]
def md5(path):
    raw = open(path).read().strip()
    # cfgctl stores compact JSON: that is what the hook reads
    txt = json.dumps(json.loads(raw), separators=(",", ":"))
    return hashlib.md5(txt.encode()).hexdigest()[:8]
for i in range(1, 6):
    fid = "slow%d" % i
    mine = [c for c in calls if c[2] == fid]
    ops = [c[0] for c in mine]
    assert ops == ["start", "update", "stop"], (fid, ops)
    for c in mine:
        assert c[1] == "w1" and c[3] == "w1" and c[4] == fid, c
    assert [c[5] for c in mine] == ["bp-a", "bp-b", "bp-b"], mine
    a, b = md5("%s/a%d.json" % (d, i)), md5("%s/b%d.json" % (d, i))
    assert [c[6] for c in mine] == [a, b, b], (mine, a, b)
EOF
echo "ok: hooks once per transition, in order, env and stdin"

# ---- 2. hostile ids ------------------------------------------------------
: >"$D/calls"
echo '{"blueprint-name":"bp"}' >"$D/f.json"
BAD_IDS=("has space" "quo'te\"s" "semi;touch PWNED" '$(touch PWNED)'
    '`touch PWNED`' "../../etc/passwd" $'new\nline' "n$(printf '\xc3\xaf')x"
    "-rf" ".hidden")
for id in "${BAD_IDS[@]}"; do ctl put-flow w2 "$id" "$D/f.json"; done
ctl put-flow w2 "flow-00" "$D/f.json"
ctl put-flow 'ws $(touch PWNED)' "flow-01" "$D/f.json"
wait_for 20 "flow-00 running" flows_eq 'j["workspaces"]["w2"]["flow-00"]["state"]' running
wait_for 20 "hostile ids failed" flows_eq 'sum(f["state"]=="failed" for k,f in j["workspaces"]["w2"].items())' "${#BAD_IDS[@]}"
sleep 1 # several retry periods: a refused id stays failed, never retried
flows >"$D/flows.json"
"$PY" - "$D/flows.json" "${#BAD_IDS[@]}" <<'EOF' || fail "hostile ids: $(cat "$D/flows.json")"
import json, sys
j = json.load(open(sys.argv[1]))
w2 = j["workspaces"]["w2"]
bad = {k: v for k, v in w2.items() if k != "flow-00"}
assert len(bad) == int(sys.argv[2]), sorted(bad)
for k, v in bad.items():
    assert v["state"] == "failed", (k, v)
    assert v["handlers"]["hook"] == "failed" and v["handlers"]["worker"] == "failed", (k, v)
    assert v["restarts"] == 0, (k, v)
    assert "refused" in v["error"] and "[A-Za-z0-9._:@-]" in v["error"], (k, v)
assert w2["flow-00"]["state"] == "running", w2["flow-00"]
ws = j["workspaces"]["ws $(touch PWNED)"]["flow-01"]
assert ws["state"] == "failed" and "workspace id" in ws["error"], ws
EOF
[ ! -e "$D/PWNED" ] && [ ! -e PWNED ] || fail "something was executed"
[ "$(cat "$D/calls")" = "start|w2|flow-00|w2|flow-00|bp|$(printf '{"blueprint-name":"bp"}' | md5sum | cut -c1-8)" ] \
    || fail "only flow-00's hook may run: $(cat "$D/calls")"
[ "$(grep -c ' e2e w2 ' "$D/workers")" = 1 ] || fail "workers: $(cat "$D/workers")"
"$PY" - "$D/events" <<'EOF' || fail "flow.failed events: $(grep failed "$D/events" | head)"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
refused = [e for e in ev if e.get("event") == "flow.failed" and "refused" in (e.get("error") or "")]
hooks = {e["flow"] for e in refused if e["handler"] == "hook"}
assert len(hooks) >= 10 and "$(touch PWNED)" in hooks and "new\nline" in hooks, hooks
EOF
for id in "${BAD_IDS[@]}" flow-00; do ctl delete-flow w2 "$id"; done
ctl delete-flow 'ws $(touch PWNED)' flow-01
echo "ok: hostile ids refused, the rest carry on"

# ---- 3. a crashing worker is restarted with backoff ----------------------
ctl put-flow w3 crash1 "$D/f.json"
wait_for 30 "3 restarts of crash1" flows_eq 'j["workspaces"]["w3"]["crash1"]["restarts"] >= 3' True
"$PY" - "$(flows)" <<'EOF' || fail "crash1 state: $(flows)"
import json, sys
f = json.loads(sys.argv[1])["workspaces"]["w3"]["crash1"]
assert f["handlers"]["worker"] in ("backoff", "running"), f
if f["handlers"]["worker"] == "backoff":
    assert "exit status 2; stderr: crash crash1" in f["error"], f
EOF
grep -q "worker\] w3/crash1 \[stderr\]: crash crash1" "$D/daemon.log" \
    || fail "worker stderr not in the log"
ctl delete-flow w3 crash1
wait_for 20 "crash1 gone" flows_eq 'len(j["workspaces"].get("w3", {}))' 0
echo "ok: crashing worker restarted with backoff"

# ---- 4. 200 flows with workers, started and stopped: no zombies ----------
threads0=$(threads_of "$DPID")
"$PY" -c '
import json
print(json.dumps({"flow": {"p%03d" % i: {"blueprint-name": "bulk", "i": i} for i in range(200)}}))
' >"$D/bulk.json"
"$BIN/cfgctl" --url "$REQ" --timeout 10 import bulk "$D/bulk.json" >/dev/null
wait_for 60 "200 workers running" flows_eq 'sum(f["handlers"]["worker"]=="running" for f in j["workspaces"].get("bulk", {}).values())' 200
wait_for 30 "200 hooks ran" at_least "$D/calls" "^start|bulk|" 200
read -r nchild nzomb < <(daemon_children "$DPID")
[ "$nchild" -ge 200 ] || fail "expected 200 worker processes, saw $nchild"
threads1=$(threads_of "$DPID")
[ "$threads1" -le $((threads0 + 2)) ] || fail "threads grew with workers: $threads0 -> $threads1"
grep -q "worker\] bulk/p123: worker p123 up" "$D/daemon.log" || fail "worker output not logged"
keys=()
for i in $(seq 0 199); do keys+=("$(printf 'p%03d' "$i")"); done
"$BIN/cfgctl" --url "$REQ" --timeout 10 delete bulk flow "${keys[@]}" >/dev/null
wait_for 60 "bulk gone" flows_eq 'len(j["workspaces"].get("bulk", {}))' 0
wait_for 10 "no children left" children_eq "$DPID" "0 0"
[ "$(lines "$D/calls" "^stop|bulk|")" = 200 ] || fail "200 stop hooks"
echo "ok: 200 workers started and stopped, no zombies ($threads0 -> $threads1 threads)"

# ---- 5. SIGTERM: every worker stopped within the grace -------------------
for i in 1 2 3; do ctl put-flow w4 "keep$i" "$D/f.json"; done
ctl put-flow w4 stubborn1 "$D/f.json"
wait_for 20 "4 workers" flows_eq 'sum(f["state"]=="running" for f in j["workspaces"].get("w4", {}).values())' 4
wait_for 10 "the 4 w4 workers' pid lines" w4_lines
wpids=$(awk '$4 == "w4" {print $1}' "$D/workers")
[ "$(echo "$wpids" | wc -w)" = 4 ] || fail "w4 workers: $wpids"
wait_for 10 "the stubborn worker" grep -q "stubborn1 ignores SIGTERM" "$D/daemon.log"
term_wait
[ "$rc" = 0 ] || fail "daemon exit $rc"
! grep -q "Sanitizer\|runtime error" "$D/daemon.log" || fail "sanitizer report"
# the stubborn worker is killed at the end of the 2 s grace, the others
# go at once, all within one grace period
[ "$took" -ge 1900 ] || fail "SIGKILL came before the grace: $took ms"
[ "$took" -lt 5000 ] || fail "shutdown took $took ms (grace 2 s)"
for p in $wpids; do
    ! kill -0 "$p" 2>/dev/null || fail "worker $p survived the daemon"
done
[ "$(lines "$D/calls" "^stop|w4|")" = 4 ] || fail "stop hooks at shutdown: $(grep w4 "$D/calls")"
echo "ok: SIGTERM stopped every worker in $took ms"

# ---- 6. workers die with a daemon killed outright (PR_SET_PDEATHSIG) ------
: >"$D/workers"
start_daemon
wait_for 20 "w4 back" flows_eq 'sum(f["state"]=="running" for f in j["workspaces"].get("w4", {}).values())' 4
wait_for 10 "the 4 w4 workers' pid lines" w4_lines
wpids=$(awk '$4 == "w4" {print $1}' "$D/workers")
kill -9 "$DPID"
wait "$DPID" 2>/dev/null || true
DPID=
for p in $wpids; do
    wait_for 5 "worker $p to die with the daemon" sh -c "! kill -0 $p 2>/dev/null"
done
echo "ok: workers die with a killed daemon"

# ---- 7. a second SIGTERM while stopping exits at once ----------------------
rm -f "$D/hang.pid"
start_daemon
ctl put-flow w7 hang1 "$D/f.json"
wait_for 20 "hang1 running" flows_eq 'j["workspaces"].get("w7", {}).get("hang1", {}).get("state")' running
kill -TERM "$DPID"
wait_for 10 "the hanging stop hook" test -s "$D/hang.pid"
hpid=$(cat "$D/hang.pid")
kill -0 "$DPID" 2>/dev/null || fail "the daemon did not wait for its stop hook"
term_wait
[ "$rc" = 1 ] || fail "second SIGTERM: exit $rc, want 1"
[ "$took" -lt 2000 ] || fail "second SIGTERM: exit took $took ms"
grep -q "SIGTERM during the stop: exiting now" "$D/daemon.log" || fail "no log line for the second SIGTERM"
wait_for 5 "the hook $hpid to die with the daemon" sh -c "! kill -0 $hpid 2>/dev/null"
echo "ok: a second SIGTERM exits 1 in $took ms"
echo "PASS"
