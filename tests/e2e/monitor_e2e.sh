#!/usr/bin/env bash
# End-to-end test of the monitor endpoints of cfgrecvd and of
# cfgrecv-monitor: option safety checks (exit 2), the ipc file mode, each
# query's JSON shape (through cfgrecv-monitor --json and stock nngcat),
# the events seen by SUBs (nngcat --sub --raw and cfgrecv-monitor events)
# while flows start, fail and stop, garbage and oversized requests, HTTP
# /metrics, readable output, `top` off a tty and under tmux (q and Ctrl-C,
# no escape garbage, terminal restored), exit codes, a tcp loopback
# endpoint, `events` and `top` following a daemon restart, and a clean
# SIGTERM that removes the socket files.
set -euo pipefail

BIN=${CFGRECV_BIN:?CFGRECV_BIN must point at the built tools}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
D=$(mktemp -d /tmp/cfgrecv-mon-e2e.XXXXXX)
MON=ipc://$D/mon.ipc
EV=ipc://$D/ev.ipc
REQ=ipc://$D/req.ipc
NOT=ipc://$D/not.ipc
TMUX_SOCK=$D/tmux.sock
DPID=
BG_PIDS=()

cleanup() {
    [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null || true
    for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
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

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

mon() { "$BIN/cfgrecv-monitor" --url "$MON" --events-url "$EV" --timeout 5 "$@"; }
ctl() { "$BIN/cfgctl" --url "$REQ" --timeout 5 "$@"; }
req() { nngcat --req --dial "$MON" --raw --recv-timeout 3 "$@"; }

# jcheck JSON PYTHON-EXPR (j is the parsed document; re is imported)
jcheck() {
    "$PY" -c 'import json,re,sys; j=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2" \
        || fail "check '$2' failed on: $1"
}

expect_rc() { # expect_rc WANT DESCRIPTION CMD...
    local want=$1 what=$2 rc
    shift 2
    set +e
    "$@" >"$D/out" 2>"$D/err"
    rc=$?
    set -e
    [ "$rc" = "$want" ] || fail "$what: exit $rc, want $want ($(cat "$D/err"))"
}

PORT=$(free_port)
DAEMON_ARGS=(--db "$D/db.sqlite" --svc-request-url "$REQ" --svc-notify-url "$NOT")

# ---- safety and usage checks (nothing starts) ----------------------------
expect_rc 2 "remote monitor URL" "$BIN/cfgrecvd" "${DAEMON_ARGS[@]}" \
    --monitor-url "tcp://0.0.0.0:$PORT"
grep -q -- "--monitor-allow-remote" "$D/err" || fail "no hint: $(cat "$D/err")"
expect_rc 2 "remote events URL" "$BIN/cfgrecvd" "${DAEMON_ARGS[@]}" \
    --monitor-url "$MON" --events-url "tcp://10.1.2.3:$PORT"
expect_rc 2 "remote metrics" "$BIN/cfgrecvd" "${DAEMON_ARGS[@]}" \
    --monitor-url "$MON" --metrics-listen "0.0.0.0:$PORT"
expect_rc 2 "bad ipc mode" "$BIN/cfgrecvd" --monitor-ipc-mode 999
[ ! -e "$D/mon.ipc" ] || fail "a refused daemon left a socket file"
expect_rc 2 "no command" "$BIN/cfgrecv-monitor"
expect_rc 2 "unknown command" "$BIN/cfgrecv-monitor" frobnicate
expect_rc 2 "bad option" "$BIN/cfgrecv-monitor" --nope status
expect_rc 2 "bad URL" "$BIN/cfgrecv-monitor" --url "nope://x" status
expect_rc 3 "unreachable query" "$BIN/cfgrecv-monitor" --url "ipc://$D/none.ipc" \
    --timeout 0.5 status
expect_rc 3 "unreachable events" "$BIN/cfgrecv-monitor" --events-url "ipc://$D/none.ipc" \
    --timeout 0.5 events
expect_rc 3 "unreachable top" "$BIN/cfgrecv-monitor" --url "ipc://$D/none.ipc" \
    --timeout 0.5 top

# ---- the daemon -------------------------------------------------------------
"$BIN/cfgrecvd" "${DAEMON_ARGS[@]}" --monitor-url "$MON" --events-url "$EV" \
    --metrics-listen "127.0.0.1:$PORT" --log-level info 2>>"$D/daemon.log" &
DPID=$!
for _ in $(seq 100); do
    if mon --timeout 0.5 status --json >/dev/null 2>&1; then break; fi
    sleep 0.1
done
out=$(mon status --json) || fail "daemon not up"
jcheck "$out" 'j["config_service"]["synced"] or True'

# ipc socket files are 0600 by default
[ "$(stat -c %a "$D/mon.ipc")" = 600 ] || fail "mon.ipc mode $(stat -c %a "$D/mon.ipc")"
[ "$(stat -c %a "$D/ev.ipc")" = 600 ] || fail "ev.ipc mode $(stat -c %a "$D/ev.ipc")"

# ---- subscribers: stock nngcat and ours ----------------------------------
stdbuf -o0 nngcat --sub --dial "$EV" --raw >"$D/nngcat-ev.txt" 2>/dev/null &
BG_PIDS+=($!)
disown $!
"$BIN/cfgrecv-monitor" --events-url "$EV" events --json >"$D/mon-ev.jsonl" 2>&1 &
BG_PIDS+=($!)
disown $!
"$BIN/cfgrecv-monitor" --events-url "$EV" events >"$D/mon-ev.txt" 2>&1 &
BG_PIDS+=($!)
disown $!
# a SUB's connection is asynchronous: resync (SIGHUP) until all three see
# a fetch.ok
for i in $(seq 60); do
    kill -HUP "$DPID"
    sleep 0.2
    if grep -q '"fetch.ok"' "$D/nngcat-ev.txt" && grep -q '"fetch.ok"' "$D/mon-ev.jsonl" \
        && grep -q ' fetch.ok ' "$D/mon-ev.txt"; then
        break
    fi
    [ "$i" = 60 ] || continue
    fail "subscribers saw no event"
done

# ---- flows start, fail and stop ---------------------------------------------
echo '{"description": "one", "blueprint-name": "bp1", "interfaces": {}, "parameters": {}}' >"$D/f1.json"
echo '{"description": "two", "blueprint-name": "bp2", "interfaces": {}, "parameters": {}}' >"$D/f2.json"
ctl put-flow default f1 "$D/f1.json" >/dev/null
ctl put-flow default f2 "$D/f2.json" >/dev/null
ctl put ws2 flow bad 'this is not json' >/dev/null
for _ in $(seq 100); do
    out=$(mon flows --json)
    if "$PY" -c 'import json,sys; w=json.loads(sys.argv[1])["workspaces"]; sys.exit(0 if w.get("default",{}).get("f1",{}).get("state")=="running" and w.get("ws2",{}).get("bad",{}).get("state")=="failed" and "f2" in w.get("default",{}) else 1)' "$out"; then
        break
    fi
    sleep 0.1
done
ctl delete-flow default f1 >/dev/null
for _ in $(seq 100); do
    out=$(mon flows --json)
    if "$PY" -c 'import json,sys; sys.exit(0 if "f1" not in json.loads(sys.argv[1])["workspaces"]["default"] else 1)' "$out"; then
        break
    fi
    sleep 0.1
done

# ---- query shapes (cfgrecv-monitor --json) ------------------------------------
out=$(mon flows --json)
jcheck "$out" 'set(j) == {"version", "workspaces"} and j["version"] == 4'
jcheck "$out" 'set(j["workspaces"]) == {"default", "ws2"} and set(j["workspaces"]["default"]) == {"f2"}'
jcheck "$out" 'all(set(f) == {"state","blueprint","restarts","since","error","handlers"} for w in j["workspaces"].values() for f in w.values())'
jcheck "$out" 'j["workspaces"]["default"]["f2"]["state"] == "running" and j["workspaces"]["default"]["f2"]["blueprint"] == "bp2"'
jcheck "$out" 'j["workspaces"]["default"]["f2"]["handlers"] == {"flows": "running"} and j["workspaces"]["default"]["f2"]["error"] is None'
jcheck "$out" 're.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", j["workspaces"]["default"]["f2"]["since"])'
jcheck "$out" 'j["workspaces"]["ws2"]["bad"]["state"] == "failed" and "JSON" in j["workspaces"]["ws2"]["bad"]["error"]'

out=$(mon status --json)
jcheck "$out" 'set(j) == {"version","uptime_s","counts","config_service","counters","fetcher"} and j["version"] == 4'
jcheck "$out" 'set(j["fetcher"]) == {"requested","coalesced","sent","inflight","inflight_max","queued"} and j["fetcher"]["sent"] >= 4'
jcheck "$out" 'j["counts"]["workspaces"] >= 2 and j["counts"]["flows"] == 2 and j["counts"]["actors"] >= 9'
jcheck "$out" 'j["config_service"]["notify_connected"] is True and j["config_service"]["synced"] is True'
jcheck "$out" 'j["config_service"]["request_url"].endswith("req.ipc") and j["config_service"]["notify_url"].endswith("not.ipc")'
jcheck "$out" 'all(isinstance(j["counters"][k], int) for k in ("notifies","notifies_applied","notifies_ignored","fetches_ok","fetches_failed","fetches_pending","resyncs","events_dropped"))'
jcheck "$out" 'j["counters"]["notifies"] >= 4 and j["counters"]["fetches_ok"] >= 4'

out=$(mon actors --json)
jcheck "$out" 'j["tree"]["name"] == "receiver" and j["tree"]["kind"] == "supervisor" and j["tree"]["state"] == "running"'
jcheck "$out" '[c["name"] for c in j["tree"]["children"]] == ["monitor","events","handlers","fetcher","flow-manager","notify"]'
jcheck "$out" 'all({"name","id","kind","state","restarts","depth","high_water","capacity","msgs_in","msgs_out","last_exit","next_delay_ms"} <= set(c) for c in j["tree"]["children"])'
jcheck "$out" '[c["name"] for c in j["tree"]["children"][2]["children"]] == ["handler:flows"]'
jcheck "$out" 'all(c["state"] == "running" and c["restarts"] == 0 for c in j["tree"]["children"])'
jcheck "$out" '{"cfgsvc-store","flow-manager"} <= {a["name"] for a in j["actors"]}'

out=$(mon workspaces --json)
jcheck "$out" 'j["version"] == 4 and j["workspaces"]["default"]["states"] == {"running": 1} and j["workspaces"]["ws2"]["states"] == {"failed": 1}'
jcheck "$out" 'j["workspaces"]["default"]["version"] == 4 and j["workspaces"]["ws2"]["flows"] == 1 and j["workspaces"]["default"]["fetching"] is False'

# ---- the same through stock nngcat ----------------------------------------------
out=$(req --data status) || fail "nngcat status"
jcheck "$out" 'j["version"] == 4 and "counts" in j'
out=$(req --data flows)
jcheck "$out" 'j["workspaces"]["default"]["f2"]["state"] == "running"'
out=$(req --data actors)
jcheck "$out" 'j["tree"]["name"] == "receiver"'
out=$(req --data workspaces)
jcheck "$out" 'j["workspaces"]["ws2"]["states"] == {"failed": 1}'
out=$(req --data help)
jcheck "$out" 'set(j["commands"]) >= {"status","actors","flows","workspaces","metrics"}'
req --data status | tail -c 1 | od -c | grep -q '\\n' || fail "reply does not end in a newline"
req --data metrics >"$D/metrics.txt"
grep -qx 'tg_gateway_active_flow_count 1' "$D/metrics.txt" || fail "metrics: $(head -5 "$D/metrics.txt")"
grep -qx 'cfgrecv_flows{state="failed"} 1' "$D/metrics.txt" || fail "failed-flow gauge"
grep -q '^cfgrecv_actor_restarts_total{supervisor="handlers",actor="handler:flows"} 0$' "$D/metrics.txt" \
    || fail "restart counter missing"

# ---- garbage and oversized requests: an error reply, then business as usual ---
out=$(req --data "$(printf 'garbage\001\002\377')")
jcheck "$out" 'list(j) == ["error"]'
out=$(req --data "")
jcheck "$out" 'list(j) == ["error"]'
head -c 200000 /dev/zero | tr '\0' 'x' >"$D/big.txt"
out=$(req --file "$D/big.txt")
jcheck "$out" 'list(j) == ["error"] and "too long" in j["error"]'
# larger than the 1 MiB request limit: nng drops that connection
head -c 2000000 /dev/zero | tr '\0' 'y' >"$D/huge.txt"
nngcat --req --dial "$MON" --raw --recv-timeout 1 --file "$D/huge.txt" >/dev/null 2>&1 || true
out=$(req --data status)
jcheck "$out" 'j["version"] == 4'
expect_rc 1 "daemon error" mon query bogus
grep -q unknown "$D/err" || fail "query bogus: $(cat "$D/err")"
# clients that hang up while connecting (they wedge an nng 1.5.2 listener
# for good; the listener guard restarts it, with its file mode)
"$PY" "$(dirname "$0")/hang_up.py" "$D/mon.ipc"
served=
for _ in $(seq 15); do # the guard's period (3 s) and probe wait (5 s)
    if "$BIN/cfgrecv-monitor" --url "$MON" --timeout 2 status >/dev/null 2>&1; then
        served=1
        break
    fi
done
[ -n "$served" ] || fail "monitor queries not served after clients hung up while connecting"
[ "$(stat -c %a "$D/mon.ipc")" = 600 ] || fail "mon.ipc mode after the guard: $(stat -c %a "$D/mon.ipc")"

# ---- HTTP /metrics (cache refreshed every second) ---------------------------------
for _ in $(seq 50); do
    if curl -sf "http://127.0.0.1:$PORT/metrics" >"$D/http.txt" \
        && grep -qx 'tg_gateway_active_flow_count 1' "$D/http.txt"; then
        break
    fi
    sleep 0.2
done
grep -qx 'tg_gateway_active_flow_count 1' "$D/http.txt" || fail "HTTP metrics: $(head -3 "$D/http.txt")"
grep -q '^# TYPE cfgrecv_actor_restarts_total counter$' "$D/http.txt" || fail "HTTP metrics types"
curl -s -D "$D/hdr.txt" -o /dev/null "http://127.0.0.1:$PORT/metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$D/hdr.txt" || fail "content type: $(cat "$D/hdr.txt")"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/other")
[ "$code" = 404 ] || fail "GET /other: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "http://127.0.0.1:$PORT/metrics")
[ "$code" = 405 ] || fail "POST /metrics: $code"

# ---- the events seen ------------------------------------------------------------
sleep 0.5
for f in "$D/nngcat-ev.txt" "$D/mon-ev.jsonl"; do
    "$PY" - "$f" <<'EOF' || fail "events in $f"
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
evs = [json.loads(l) for l in lines]
ts = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
assert all(list(e)[:2] == ["event", "ts"] and ts.fullmatch(e["ts"]) for e in evs), "event/ts"
def has(name, **kw):
    return any(e["event"] == name and all(e.get(k) == v for k, v in kw.items()) for e in evs)
for name, kw in [
    ("notify.received", {}), ("notify.applied", {}), ("fetch.ok", {"workspace": "default"}),
    ("flow.starting", {"flow": "f1", "workspace": "default", "handler": "flows"}),
    ("flow.running", {"flow": "f1"}), ("flow.running", {"flow": "f2"}),
    ("flow.failed", {"flow": "bad", "workspace": "ws2"}),
    ("flow.stopped", {"flow": "f1"}),
]:
    assert has(name, **kw), (name, kw)
assert any(e["event"] == "flow.failed" and "JSON" in e.get("error", "") for e in evs), "failed error"
EOF
done
grep -Eq '^[0-9T:.-]+Z  flow\.running +handler=flows workspace=default flow=f2$' "$D/mon-ev.txt" \
    || fail "readable events: $(head -5 "$D/mon-ev.txt")"
if grep -q $'\e' "$D/mon-ev.txt"; then fail "escape characters in readable events"; fi

# ---- readable output ---------------------------------------------------------------
mon status >"$D/status.txt"
grep -q '^config version  4$' "$D/status.txt" || fail "status view: $(cat "$D/status.txt")"
grep -q '^config service  connected, synced$' "$D/status.txt" || fail "status view link"
mon actors >"$D/actors.txt"
grep -Eq '^    handler:flows +flow-handler +running +0 ' "$D/actors.txt" || fail "actors view: $(cat "$D/actors.txt")"
mon flows >"$D/flows.txt"
grep -Eq '^ws2 +bad +failed ' "$D/flows.txt" || fail "flows view: $(cat "$D/flows.txt")"
mon workspaces >"$D/ws.txt"
grep -Eq '^default +4 +1 +1 ' "$D/ws.txt" || fail "workspaces view: $(cat "$D/ws.txt")"

# ---- top without a terminal: plain snapshots -----------------------------------------
mon top --iterations 2 --interval 200ms >"$D/top.txt"
[ "$(grep -c '^SUPERVISION TREE$' "$D/top.txt")" = 2 ] || fail "top snapshots: $(cat "$D/top.txt")"
if grep -q $'\e' "$D/top.txt"; then fail "escape characters in plain top"; fi
grep -q '^rates/s: notifies ' "$D/top.txt" || fail "top rates"

# ---- top under tmux --------------------------------------------------------------------
top_session() { # top_session NAME: runs top in a 120x40 pane, records its exit
    tmux -S "$TMUX_SOCK" new-session -d -s "$1" -x 120 -y 40 \
        "$BIN/cfgrecv-monitor --url $MON top; echo TOP-EXIT=\$?; sleep 30"
}
capture() { tmux -S "$TMUX_SOCK" capture-pane -p -t "$1"; }
wait_exit() {
    for _ in $(seq 50); do
        if capture "$1" | grep -q '^TOP-EXIT='; then return 0; fi
        sleep 0.1
    done
    fail "top did not exit: $(capture "$1")"
}
top_session t1
sleep 3 # a few refreshes
capture t1 >"$D/cap1.txt"
tmux -S "$TMUX_SOCK" capture-pane -p -e -t t1 >"$D/cap1e.txt"
for h in '^cfgrecv top - ' '^SUPERVISION TREE$' '^FLOWS$' '^receiver ' '^    handler:flows ' '^default +f2 +running ' '^ws2 +bad +failed '; do
    grep -Eq "$h" "$D/cap1.txt" || fail "top screen lacks '$h': $(cat "$D/cap1.txt")"
done
if grep -Eq '\[\?|\[[0-9;]*[HJK]|\^\[' "$D/cap1.txt"; then fail "escape garbage on screen: $(cat "$D/cap1.txt")"; fi
if grep -q $'\e' "$D/cap1e.txt"; then fail "top left colour/escape state in cells"; fi
awk 'length > 120 { exit 1 }' "$D/cap1.txt" || fail "a line is wider than the pane"
sleep 1.2
capture t1 >"$D/cap2.txt"
grep -q '^SUPERVISION TREE$' "$D/cap2.txt" || fail "top screen lost after a refresh"
tmux -S "$TMUX_SOCK" send-keys -t t1 q
wait_exit t1
capture t1 | grep -q '^TOP-EXIT=0$' || fail "q: $(capture t1)"
if capture t1 | grep -q 'SUPERVISION TREE'; then fail "the alternate screen was not left"; fi
top_session t2
sleep 1.5
tmux -S "$TMUX_SOCK" send-keys -t t2 C-c
wait_exit t2
capture t2 | grep -q '^TOP-EXIT=0$' || fail "Ctrl-C: $(capture t2)"
tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true

# ---- a tcp loopback monitor, another ipc mode -----------------------------------------
PORT2=$(free_port)
mkdir "$D/b"
BMON=tcp://127.0.0.1:$PORT2
BEV=ipc://$D/b/ev.ipc
start_b() {
    "$BIN/cfgrecvd" --db "$D/b/db.sqlite" --svc-request-url "ipc://$D/b/req.ipc" \
        --svc-notify-url "ipc://$D/b/not.ipc" --monitor-url "$BMON" \
        --events-url "$BEV" --monitor-ipc-mode 0640 2>>"$D/daemon-b.log" &
    BPID=$!
    BG_PIDS+=($BPID)
    local ok=
    for _ in $(seq 100); do
        if out=$("$BIN/cfgrecv-monitor" --url "$BMON" --timeout 0.5 status --json 2>/dev/null); then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ -n "$ok" ] || fail "tcp loopback monitor: $(tail -5 "$D/daemon-b.log")"
}
start_b
jcheck "$out" '"version" in j'
[ "$(stat -c %a "$D/b/ev.ipc")" = 640 ] || fail "--monitor-ipc-mode: $(stat -c %a "$D/b/ev.ipc")"

# ---- events and top follow the daemon across a restart -------------------------------
"$BIN/cfgrecv-monitor" --events-url "$BEV" events --json >"$D/b-ev.jsonl" 2>"$D/b-ev.err" &
BEVPID=$!
BG_PIDS+=($BEVPID)
"$BIN/cfgrecv-monitor" --url "$BMON" top --interval 200ms >"$D/b-top.txt" 2>&1 &
BTOPPID=$!
BG_PIDS+=($BTOPPID)
bctl() { "$BIN/cfgctl" --url "ipc://$D/b/req.ipc" --timeout 5 "$@"; }
# put_until_seen NAME FILE: a SUB connects asynchronously (PUB drops what
# no subscriber takes), so a new flow per try until the watcher sees one
put_until_seen() {
    local i
    for i in $(seq 40); do
        bctl put-flow default "$1$i" "$2" >/dev/null
        sleep 0.25
        if grep -q "\"flow.running\".*\"flow\":\"$1[0-9]*\"" "$D/b-ev.jsonl"; then
            return 0
        fi
    done
    fail "cfgrecv-monitor events saw no $1 flow run: $(tail -3 "$D/b-ev.jsonl") $(cat "$D/b-ev.err")"
}
put_until_seen before "$D/f1.json"
kill -TERM "$BPID"
wait "$BPID" || fail "second daemon exit $?"
sleep 0.5 # top shows the daemon away
start_b
put_until_seen after "$D/f2.json"
for _ in $(seq 50); do
    if grep -Eq '^default +after1 +running' "$D/b-top.txt"; then break; fi
    sleep 0.1
done
grep -q '(retrying)' "$D/b-top.txt" || fail "top never showed the daemon away"
grep -Eq '^default +after1 +running' "$D/b-top.txt" \
    || fail "top did not come back after the restart: $(tail -20 "$D/b-top.txt")"
kill -TERM "$BEVPID" "$BTOPPID"
wait "$BEVPID" || fail "events watcher exit $? after SIGTERM"
wait "$BTOPPID" || fail "top exit $? after SIGTERM"
kill -TERM "$BPID"
wait "$BPID" || fail "second daemon exit $? after the restart"

# ---- clean shutdown ----------------------------------------------------------------------
kill -TERM "$DPID"
set +e
wait "$DPID"
rc=$?
set -e
DPID=
[ "$rc" = 0 ] || fail "daemon exit $rc after SIGTERM"
[ ! -e "$D/mon.ipc" ] && [ ! -e "$D/ev.ipc" ] || fail "socket files left behind"
# the shutdown's stops are events too, published before the socket closes
sleep 0.3
for f in "$D/nngcat-ev.txt" "$D/mon-ev.jsonl"; do
    "$PY" - "$f" <<'EOF' || fail "shutdown events in $f: $(tail -4 "$f")"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
last = [e for e in evs if e["event"] == "flow.stopped" and e["flow"] == "f2"]
assert last and last[-1]["workspace"] == "default", "f2 stopped"
names = [e.get("child") for e in evs if e["event"] == "actor.exited"]
assert "handler:flows" in names, names
EOF
done
echo "monitor e2e: ok"
