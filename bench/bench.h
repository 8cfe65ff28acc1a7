/*
 * bench.h - helpers shared by the benchmark scenarios.
 */
#ifndef CR_BENCH_H
#define CR_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* Every scenario function. */
#define BENCH(name, fn, help) int fn(int argc, char **argv);
#include "bench_list.h"
#undef BENCH

/* bench_now_ns returns CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* bench_rate prints one result line and returns the rate (per second). */
static inline double
bench_rate(const char *scenario, const char *what, uint64_t n, uint64_t ns)
{
    double rate = ns > 0 ? (double)n * 1e9 / (double)ns : 0.0;
    printf("%-10s %-44s %10llu msgs %8.3f s %12.0f msgs/s\n", scenario, what,
           (unsigned long long)n, (double)ns / 1e9, rate);
    fflush(stdout);
    return rate;
}

#endif
