/*
 * bench_list.h - the benchmark scenarios, an X-macro list (as libuv's
 * test/benchmark-list.h). To add one: write
 *     int bench_<name>(int argc, char **argv)
 * in bench/bench_<name>.c (return 0, or non-zero if it could not run) and
 * add a line here. argv[0] is the scenario name, then the key=value
 * arguments given after it on the command line. Scenarios print their
 * own numbers (helpers in bench.h). `help` is what --help shows: what is
 * measured against what, and the key=value arguments taken.
 *
 *   BENCH(name, function, help)
 */
BENCH(mailbox, bench_mailbox,
      "1,000,000 envelopes actor -> actor vs raw nng inproc")
BENCH(pingpong, bench_pingpong,
      "one message in flight: round trips vs raw nng PAIR1")
BENCH(supervisor, bench_supervisor,
      "1,000 children failing together: restart spread and churn")
BENCH(receiver, bench_receiver,
      "start-up, change latency vs raw nng, notify storm, against cfgsvcd\n"
      "              workspaces=1000 flows=10 changes=1000 baseline=1\n"
      "              monitor=1 (0: no monitor endpoints) watch=0 (1: a\n"
      "              subscriber drains the event stream)")
