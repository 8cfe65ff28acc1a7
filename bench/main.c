/*
 * main.c - cfgrecv-bench: runs the scenarios of bench_list.h.
 * Usage: cfgrecv-bench [--list] [SCENARIO [key=value...]]...
 * No scenario = all of them, with their defaults. Arguments containing
 * '=' after a scenario name are handed to that scenario.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cfgrecv/log.h"

typedef struct scenario {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} scenario;

static const scenario scenarios[] = {
#define BENCH(name, fn, help) {#name, fn, help},
#include "bench_list.h"
#undef BENCH
};

#define NSCEN (sizeof(scenarios) / sizeof(scenarios[0]))

static int
run(const scenario *s, int argc, char **argv)
{
    printf("== %s\n", s->name);
    fflush(stdout);
    char *self[] = {(char *)s->name, NULL};
    int rv = argc > 0 ? s->fn(argc, argv) : s->fn(1, self);
    if (rv != 0) {
        fprintf(stderr, "cfgrecv-bench: %s failed (%d)\n", s->name, rv);
    }
    return rv;
}

int
main(int argc, char **argv)
{
    int failed = 0;
    /* errors only: scenarios make actors fail on purpose, and the
     * numbers are what matters here */
    cr_log_setup(CR_LEVEL_ERROR, CR_LOG_TEXT, 2);
    if (argc == 1) {
        for (size_t i = 0; i < NSCEN; i++) {
            failed |= run(&scenarios[i], 0, NULL) != 0;
        }
        return failed;
    }
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--list") == 0) {
            for (size_t i = 0; i < NSCEN; i++) {
                printf("%s\n", scenarios[i].name);
            }
            continue;
        }
        if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
            printf("usage: %s [--list] [SCENARIO [key=value...]]...\n"
                   "Runs the scenarios named (all without arguments), each "
                   "against a baseline\nmeasured in the same run.\n\n"
                   "Scenarios:\n",
                   argv[0]);
            for (size_t i = 0; i < NSCEN; i++) {
                printf("  %-11s %s\n", scenarios[i].name, scenarios[i].help);
            }
            return 0;
        }
        size_t i;
        for (i = 0; i < NSCEN; i++) {
            if (strcmp(argv[a], scenarios[i].name) == 0) {
                int n = 1;
                while (a + n < argc && strchr(argv[a + n], '=') != NULL) {
                    n++;
                }
                failed |= run(&scenarios[i], n, argv + a) != 0;
                a += n - 1;
                break;
            }
        }
        if (i == NSCEN) {
            fprintf(stderr, "cfgrecv-bench: unknown scenario '%s' (--list)\n",
                    argv[a]);
            failed = 1;
        }
    }
    return failed;
}
