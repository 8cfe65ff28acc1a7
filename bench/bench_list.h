/*
 * bench_list.h - the benchmark scenarios, an X-macro list (as libuv's
 * test/benchmark-list.h). To add one: write
 *     int bench_<name>(int argc, char **argv)
 * in bench/bench_<name>.c (return 0, or non-zero if it could not run) and
 * add a line here. argv[0] is the scenario name, then the key=value
 * arguments given after it on the command line. Scenarios print their
 * own numbers (helpers in bench.h).
 *
 *   BENCH(name, function)
 */
BENCH(mailbox, bench_mailbox)
BENCH(pingpong, bench_pingpong)
BENCH(supervisor, bench_supervisor)
BENCH(receiver, bench_receiver)
