"""What the end-to-end scripts (receiver_e2e.py, daemon_e2e.py) share: a
scenario runner that reports each scenario and goes on with the next, a
wait for a condition, and a log's tail."""
import json
import sys
import time


def log_tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


def wait_for(pred, timeout=15.0, what="condition", poll=0.05):
    """pred() until it is true, returning its value. An assertion, JSON or
    key error (a daemon not answering yet, a document not yet holding the
    key) counts as not yet."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = pred()
            if last:
                return last
        except (AssertionError, json.JSONDecodeError, KeyError) as e:
            last = e
        time.sleep(poll)
    raise AssertionError(f"timed out ({timeout} s) waiting for {what} "
                         f"(last: {last})")


class Scenarios:
    """A decorator that runs each scenario as it is defined, prints
    `ok NAME` or `FAIL NAME: why` (then calls on_fail, to show logs), and
    counts; finish() prints the tally and exits 1 if any failed."""

    def __init__(self, on_fail=None):
        self.passed = 0
        self.failures = []
        self.on_fail = on_fail

    def __call__(self, fn):
        try:
            fn()
            self.passed += 1
            print(f"ok   {fn.__name__}", flush=True)
        except Exception as e:  # report and go on with the next scenario
            self.failures.append(fn.__name__)
            print(f"FAIL {fn.__name__}: {e}", flush=True)
            if self.on_fail is not None:
                self.on_fail()
        return fn

    def finish(self):
        print(f"{self.passed} passed, {len(self.failures)} failed")
        sys.exit(1 if self.failures else 0)
