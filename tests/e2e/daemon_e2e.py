#!/usr/bin/env python3
"""End-to-end tests of cfgrecvd as a daemon: its process life, as an
operator meets it. Every daemon runs with its embedded config service (or
URLs leading nowhere) on ipc:// paths in a temporary directory, and is
torn down at the end. Seconds, not minutes.

- A pidfile held by a running daemon makes a second one refuse, on the
  terminal, exit 1, leaving the first one's pidfile alone (it used to be
  overwritten, and then unlinked by the second daemon's exit); a stale
  pidfile (its daemon gone) is taken over; the pidfile goes at exit.
- --daemon whose start-up fails exits 1 saying where the reason went.
- SIGTERM just after start-up exits 0 at once (the events actor waited
  10 s in a call to its root supervisor, which was stopping it).
- SIGTERM while the config service cannot be reached logs no ERROR.
- --log-format json: every line is JSON, whatever bytes the names hold
  (invalid UTF-8, control characters, a message cut at its buffer).
- --resync-interval past its bound is a usage error.
- SIGUSR1 reopens --log-file (logrotate renames it, then signals).
- --daemon keeps no descriptor its launcher passed down (a pipe's reader
  sees EOF once the launcher is done).
"""
import json
import select
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import e2e_lib
from e2e_lib import Scenarios, log_tail

BIN = os.environ.get("CFGRECV_BIN") or sys.exit("CFGRECV_BIN not set")
D = tempfile.mkdtemp(prefix="cfgrecv-daemon-e2e.")
pids = []  # every daemon started, killed at the end if still there
scenario = Scenarios()


def wait_for(pred, timeout, what):
    """e2e_lib.wait_for polling every 2 ms: SIGTERM right after start-up
    must come right after the start-up line"""
    return e2e_lib.wait_for(pred, timeout, what, poll=0.002)


def gone(pid):
    """pid has exited (a zombie left to a slow init counts as gone)"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def embedded(name):
    """the arguments of a daemon with its own embedded service in D/name"""
    d = os.path.join(D, name)
    os.makedirs(d, exist_ok=True)
    return d, ["--db", f"{d}/db", "--svc-request-url", f"ipc://{d}/req.ipc",
               "--svc-notify-url", f"ipc://{d}/not.ipc",
               "--monitor-url", f"ipc://{d}/mon.ipc",
               "--events-url", f"ipc://{d}/ev.ipc"]


def daemon(args, timeout=20):
    """cfgrecvd --daemon ARGS; returns the original process's result"""
    return subprocess.run([f"{BIN}/cfgrecvd", "--daemon", *args],
                          capture_output=True, text=True, timeout=timeout)


def read_pid(path):
    with open(path) as f:
        return int(f.read())


def term_and_wait(pid, timeout):
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: gone(pid), timeout, f"pid {pid} to exit")


def run_all():
    @scenario
    def pidfile_of_a_running_daemon_is_left_alone():
        pidfile = f"{D}/shared.pid"
        d1, a1 = embedded("p1")
        r = daemon([*a1, "--pidfile", pidfile, "--log-file", f"{d1}/log"])
        assert r.returncode == 0, (r.returncode, r.stderr)
        first = read_pid(pidfile)
        pids.append(first)
        # a second daemon, other URLs: only the pidfile is shared
        d2, a2 = embedded("p2")
        r = daemon([*a2, "--pidfile", pidfile, "--log-file", f"{d2}/log"])
        if r.returncode == 0:  # it started: stop it at the end
            pids.append(read_pid(pidfile))
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert f"held by a running daemon (pid {first})" in r.stderr, r.stderr
        # the same in the foreground
        r = subprocess.run([f"{BIN}/cfgrecvd", *a2, "--pidfile", pidfile],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1, (r.returncode, r.stderr)
        time.sleep(0.3)  # a second daemon that did start would be up
        assert read_pid(pidfile) == first, "the pidfile was overwritten"
        assert not gone(first), "the first daemon died:\n" + \
            log_tail(f"{d1}/log")
        term_and_wait(first, 10)
        assert not os.path.exists(pidfile), "pidfile left at exit"
        # a stale pidfile: a pid that is gone (or reused) holds no lock
        p = subprocess.Popen(["true"])
        p.wait()
        with open(pidfile, "w") as f:
            f.write(f"{p.pid}\n")
        r = daemon([*a2, "--pidfile", pidfile, "--log-file", f"{d2}/log"])
        assert r.returncode == 0, (r.returncode, r.stderr)
        third = read_pid(pidfile)
        pids.append(third)
        assert third != p.pid, (third, p.pid)
        term_and_wait(third, 10)
        assert not os.path.exists(pidfile), "pidfile left at exit"
        assert "exit 0" in log_tail(f"{d2}/log"), log_tail(f"{d2}/log")

    @scenario
    def failed_daemon_start_says_where_to_look():
        d, a = embedded("fail")
        a[a.index("--monitor-url") + 1] = f"ipc://{d}/no-such-dir/mon.ipc"
        r = daemon([*a, "--pidfile", f"{d}/pid", "--log-file", f"{d}/log"])
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert f"did not start; see {d}/log" in r.stderr, r.stderr
        assert "cannot listen for monitor queries" in log_tail(f"{d}/log")
        wait_for(lambda: not os.path.exists(f"{d}/pid"), 20,
                 "the failed daemon's pidfile to go")

    @scenario
    def sigterm_right_after_start_up_exits_at_once():
        # Stopped this early, the daemon's SUB may still be dialing its
        # service, and nng 1.5.2 never frees a dialer whose socket closes
        # mid-connect (objects allocated under nng_dial and on nng's own
        # threads). Under LeakSanitizer this scenario alone adds nng's
        # objects to the suppressions: it is about how fast the stop is.
        env = dict(os.environ)
        opts = env.get("LSAN_OPTIONS", "")
        if "suppressions=" in opts:
            base = opts.split("suppressions=", 1)[1].split(":", 1)[0]
            supp = f"{D}/lsan-early-stop.supp"
            with open(base) as f, open(supp, "w") as out:
                out.write(f.read() + "\nleak:libnng.so\n")
            env["LSAN_OPTIONS"] = opts.replace(base, supp)
        for i in range(4):
            d, a = embedded(f"early{i}")
            log = f"{d}/log"
            with open(log, "wb") as out:
                p = subprocess.Popen([f"{BIN}/cfgrecvd", *a], stdout=out,
                                     stderr=subprocess.STDOUT, env=env)
            pids.append(p.pid)
            wait_for(lambda: "running (pid" in log_tail(log), 10,
                     "the daemon to start")
            t0 = time.time()
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(5)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"run {i}: SIGTERM took over 5 s:\n"
                                     + log_tail(log))
            assert rc == 0, (i, rc, log_tail(log))
            took = time.time() - t0
            text = log_tail(log, 100)
            assert "cannot follow" not in text and " error " not in text, \
                text
            print(f"     run {i}: exit 0 in {took:.2f} s", flush=True)

    @scenario
    def stop_while_the_service_is_unreachable_logs_no_error():
        d = os.path.join(D, "nosvc")
        os.makedirs(d)
        log = f"{d}/log"
        with open(log, "wb") as out:
            p = subprocess.Popen(
                [f"{BIN}/cfgrecvd", "--config-request-url",
                 f"ipc://{d}/req.ipc", "--config-notify-url",
                 f"ipc://{d}/not.ipc", "--monitor-url", "none",
                 "--events-url", "none"], stdout=out, stderr=subprocess.STDOUT)
        pids.append(p.pid)
        # discovery goes out (and waits for the service) after 2 s
        wait_for(lambda: "syncing anyway" in log_tail(log), 10,
                 "the daemon to sync without a service")
        time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        text = log_tail(log, 100)
        assert " error " not in text, text

    @scenario
    def json_log_lines_stay_json_whatever_the_names():
        d, a = embedded("json")
        log = f"{d}/log"
        with open(log, "wb") as out:
            p = subprocess.Popen([f"{BIN}/cfgrecvd", *a, "--log-format",
                                  "json", "--log-level", "debug"],
                                 stdout=out, stderr=subprocess.STDOUT)
        pids.append(p.pid)
        req = f"ipc://{d}/req.ipc"
        wait_for(lambda: "running (pid" in log_tail(log), 10, "the daemon")
        names = [
            (b'w"s\\', b'f\x01\x1b[31m\\"'),          # quotes, escapes
            (b"w\xff\xfe", b"f\xc3\x28\xed\xa0\x80"),  # not UTF-8
            (b"wu", "\u00e9".encode() * 1500),        # cut mid-character
            (b"wm", b"\x01" * 700 + b"a" * 1300),     # cut at the closing
            (b"wok", "\u00fcn\u20ac\U0001d11e".encode()),
        ]
        for ws, flow in names:
            r = subprocess.run([f"{BIN}/cfgctl", "--url", req, "--timeout",
                                "5", "put", ws, "flow", flow, "not json"],
                               capture_output=True)
            assert r.returncode == 0, (ws, r.returncode, r.stderr)
        # handled in order: the last name's failure comes last (the long
        # ones' messages are cut before their reason)
        wait_for(lambda: "not valid JSON" in "".join(
            x for x in log_tail(log, 400).splitlines(True) if "wok/" in x),
            10, "the last flow's failure logged")
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
        with open(log, "rb") as f:
            lines = f.read().splitlines()
        msgs = []
        for i, line in enumerate(lines):
            try:
                msgs.append(json.loads(line)["msg"])
            except (ValueError, KeyError) as e:
                raise AssertionError(f"line {i} is not JSON ({e}): "
                                     f"{line[:60]!r}...{line[-30:]!r}")
        assert any("wok/\u00fcn\u20ac\U0001d11e" in m for m in msgs), \
            "valid UTF-8 kept as it is"
        assert any("w\ufffd\ufffd" in m for m in msgs), "bad bytes: U+FFFD"

    @scenario
    def daemon_keeps_no_descriptor_of_its_launcher():
        # a pipe passed down as fd 3, as a script's $(...) or a service
        # manager would: once the launcher is done, its reader sees EOF
        d, a = embedded("fds")
        r_fd, w_fd = os.pipe()
        try:
            p = subprocess.Popen([f"{BIN}/cfgrecvd", "--daemon", *a,
                                  "--pidfile", f"{d}/pid", "--log-file",
                                  f"{d}/log"], pass_fds=(w_fd,),
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            os.close(w_fd)
            w_fd = -1
            assert p.wait(20) == 0
            pid = read_pid(f"{d}/pid")
            pids.append(pid)
            r, _, _ = select.select([r_fd], [], [], 5)
            assert r and os.read(r_fd, 1) == b"", \
                "the daemon holds the launcher's pipe open"
            term_and_wait(pid, 10)
        finally:
            os.close(r_fd)
            if w_fd >= 0:
                os.close(w_fd)

    @scenario
    def sigusr1_reopens_the_log_file():
        # logrotate's way: rename the file, then `kill -USR1`
        d, a = embedded("rotate")
        log = f"{d}/log"
        r = daemon([*a, "--pidfile", f"{d}/pid", "--log-file", log])
        assert r.returncode == 0, (r.returncode, r.stderr)
        pid = read_pid(f"{d}/pid")
        pids.append(pid)
        os.rename(log, f"{log}.1")
        os.kill(pid, signal.SIGUSR1)
        wait_for(lambda: "log file" in log_tail(log), 10,
                 "the reopened log's first line")
        os.kill(pid, signal.SIGHUP)  # a line written after the reopen
        wait_for(lambda: "SIGHUP: full resync" in log_tail(log), 10,
                 "SIGHUP's line in the new file")
        assert "SIGHUP" not in log_tail(f"{log}.1", 1000), \
            "the old file still written"
        assert "reopened" in log_tail(log)
        os.kill(pid, signal.SIGUSR1)  # and again, in place
        wait_for(lambda: log_tail(log).count("reopened") == 2, 10,
                 "a second reopen")
        term_and_wait(pid, 10)
        assert "exit 0" in log_tail(log)

    @scenario
    def resync_interval_past_its_bound_is_a_usage_error():
        _, a = embedded("bounds")  # never the default URLs, even if run
        for v in ("18446744073709551615ms", "721h"):
            r = subprocess.run([f"{BIN}/cfgrecvd", *a, "--resync-interval",
                                v], capture_output=True, text=True, timeout=10)
            assert r.returncode == 2, (v, r.returncode, r.stderr)
            assert "--resync-interval" in r.stderr, r.stderr
        # port 0 would listen somewhere no scraper can find: said so
        r = subprocess.run([f"{BIN}/cfgrecvd", *a, "--metrics-listen",
                            "127.0.0.1:0"], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2 and "give a port" in r.stderr, \
            (r.returncode, r.stderr)


def main():
    try:
        run_all()
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(D, ignore_errors=True)
    scenario.finish()


if __name__ == "__main__":
    main()
