/*
 * cfgsvcd - the config service daemon: SQLite store, versioning, notifies.
 *
 * A thin main: parse options, start the embedded service's actors
 * (actors/cfgsvc.h) on a runtime, wait for SIGTERM/SIGINT, stop cleanly.
 * Exit status: 0 after a signal, 1 when the service cannot start, 2 on a
 * usage error.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cfgrecv/actor.h>
#include <cfgrecv/log.h>

#include "cfgsvc.h"
#include "tool_util.h"

#define COMP "cfgsvcd"
#define DEF_REQUEST CFGRECV_DEFAULT_REQUEST_URL
#define DEF_NOTIFY  CFGRECV_DEFAULT_NOTIFY_URL
#define DEF_DB      "cfgsvc.db"

static void
usage(FILE *f)
{
    fprintf(f,
            "Usage: cfgsvcd [OPTIONS]\n"
            "Run the config service: a SQLite-backed store of (workspace,\n"
            "type, key, value) rows with a version counter, answering\n"
            "TrustGraph ConfigRequests (msgpack over nng REQ/REP) and\n"
            "publishing a ConfigPush (nng PUB) after every change.\n"
            "\n"
            "  --request-url URL   REP listen address [%s]\n"
            "  --notify-url URL    PUB listen address [%s]\n"
            "  --db PATH           SQLite database file [%s]\n"
            "  --contexts N        requests held at once (REP contexts) [8]\n"
            "  --max-message N     largest request accepted, bytes [%zu]\n"
            "  --startup-push-delay MS\n"
            "                      wait before the start-up push (empty\n"
            "                      changes = everything) so that waiting\n"
            "                      subscribers are connected [300]\n"
            "  --log-level LEVEL   debug|info|warn|error|off [info]\n"
            "  --log-format FMT    text|json [text]\n"
            "  -h, --help          show this help\n"
            "  --version           print the version and exit\n"
            "\n"
            "URLs may be ipc://PATH or tcp://HOST:PORT. SIGTERM or SIGINT\n"
            "stops the service cleanly (exit 0). Exit 1: cannot start\n"
            "(database or address problem); exit 2: usage error.\n",
            DEF_REQUEST, DEF_NOTIFY, DEF_DB, CRT_DEFAULT_MAX_SIZE);
}

static int
parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v;
    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    v = strtoull(s, &end, 10);
    if (*end != '\0' || v == 0) {
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

int
main(int argc, char **argv)
{
    enum { O_REQ = 256, O_NOTIFY, O_DB, O_CTX, O_MAX, O_LEVEL, O_FMT, O_DELAY };
    static const struct option longopts[] = {
        {"request-url", required_argument, NULL, O_REQ},
        {"notify-url", required_argument, NULL, O_NOTIFY},
        {"db", required_argument, NULL, O_DB},
        {"contexts", required_argument, NULL, O_CTX},
        {"max-message", required_argument, NULL, O_MAX},
        {"log-level", required_argument, NULL, O_LEVEL},
        {"startup-push-delay", required_argument, NULL, O_DELAY},
        {"log-format", required_argument, NULL, O_FMT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    cra_cfgsvc_opts so;
    cr_log_level level = CR_LEVEL_INFO;
    cr_log_format fmt = CR_LOG_TEXT;
    size_t n;
    int c, rv, sig;

    memset(&so, 0, sizeof(so));
    so.request_url = DEF_REQUEST;
    so.notify_url = DEF_NOTIFY;
    so.db_path = DEF_DB;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_REQ:
            so.request_url = optarg;
            break;
        case O_NOTIFY:
            so.notify_url = optarg;
            break;
        case O_DB:
            so.db_path = optarg;
            break;
        case O_CTX:
            if (parse_size(optarg, &n) != 0 || n > 1024) {
                fprintf(stderr, "cfgsvcd: bad --contexts '%s'\n", optarg);
                return 2;
            }
            so.server_ctx = (unsigned)n;
            break;
        case O_MAX:
            if (parse_size(optarg, &n) != 0) {
                fprintf(stderr, "cfgsvcd: bad --max-message '%s'\n", optarg);
                return 2;
            }
            so.limits.max_size = n;
            break;
        case O_DELAY:
            if (strcmp(optarg, "0") == 0) {
                so.startup_push_delay_ms = -1;
            } else if (parse_size(optarg, &n) != 0 || n > 600000) {
                fprintf(stderr, "cfgsvcd: bad --startup-push-delay '%s'\n",
                        optarg);
                return 2;
            } else {
                so.startup_push_delay_ms = (int)n;
            }
            break;
        case O_LEVEL:
            if (cr_log_parse_level(optarg, &level) != 0) {
                fprintf(stderr, "cfgsvcd: bad --log-level '%s'\n", optarg);
                return 2;
            }
            break;
        case O_FMT:
            if (cr_log_parse_format(optarg, &fmt) != 0) {
                fprintf(stderr, "cfgsvcd: bad --log-format '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            cr_tool_version("cfgsvcd");
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cfgsvcd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    cr_log_setup(level, fmt, 2);

    /* Block the stop signals in every thread (set before any thread
     * exists, inherited by all), and take them with sigwait below. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    cr_rt *rt = NULL;
    cra_cfgsvc *svc = NULL;
    if ((rv = cr_rt_new(NULL, &rt)) != 0) {
        CR_ERROR(COMP, "cannot create the runtime: %s", cr_strerror(rv));
        return 1;
    }
    if ((rv = cra_cfgsvc_start(rt, &so, &svc)) != 0) {
        CR_ERROR(COMP, "cannot start: %s", cr_strerror(rv));
        cr_rt_destroy(rt);
        return 1;
    }
    CR_INFO(COMP, "running (pid %ld): request %s, notify %s, db %s",
            (long)getpid(), so.request_url, so.notify_url, so.db_path);
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 500 * 1000000L};
    int status = 0;
    for (;;) {
        sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            CR_INFO(COMP, "%s: stopping", sig == SIGINT ? "SIGINT"
                                                        : "SIGTERM");
            break;
        }
        if (!cra_cfgsvc_alive(svc)) {
            CR_ERROR(COMP, "a service actor died; exiting");
            status = 1;
            break;
        }
    }
    /* the whole stop is teardown here: bounded, and a second signal
     * exits at once (tool_util.h, the shutdown guard) */
    cr_tool_guard *g = cr_tool_guard_start(NULL);
    cr_tool_guard_teardown(g, status, CR_TOOL_GUARD_TEARDOWN_MS);
    cra_cfgsvc_stop(svc);
    cr_rt_destroy(rt);
    cr_tool_guard_stop(g);
    CR_INFO(COMP, "stopped");
    return status;
}
