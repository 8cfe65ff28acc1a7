/*
 * cfgrecvd - the config receiver daemon. Parses options, wires the
 * receiver's actors (actors/receiver.h) and, without a config-service URL,
 * an embedded config service (actors/cfgsvc.h); then waits for signals.
 *
 * Exit codes: 0 after SIGTERM/SIGINT (every flow stopped), 1 when start-up
 * fails, the root supervisor gives up, or a second SIGTERM/SIGINT cut the
 * stop short, 2 on usage errors.
 */
#define _GNU_SOURCE /* dup3, close_range */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "cfgrecv/actor.h"
#include "cfgrecv/log.h"
#include "cfgrecv/supervisor.h"
#include "cfgsvc.h"
#include "hook_handler.h"   /* hooks and workers */
#include "worker_handler.h" /* hooks and workers */
#include "monitor.h"
#include "plugin.h"
#include "receiver.h"
#include "tool_util.h"

#define COMP "cfgrecvd"

static void
usage(FILE *f)
{
    fprintf(f,
"usage: cfgrecvd [OPTIONS]\n"
"\n"
"Keeps this process's flows in line with a config service: subscribes to\n"
"its change notifies, fetches changed workspaces, and starts, updates or\n"
"stops flows through its flow handlers.\n"
"\n"
"Config service (give both URLs, or neither to run one embedded):\n"
"  --config-request-url URL  the service's REQ/REP endpoint\n"
"  --config-notify-url URL   the service's PUB/SUB endpoint\n"
"  --db PATH                 embedded service's SQLite file [%s]\n"
"  --svc-request-url URL     embedded service's request URL [%s]\n"
"  --svc-notify-url URL      embedded service's notify URL [%s]\n"
"\n"
"Receiver:\n"
"  --fetch-timeout DUR       per-fetch timeout [10s]\n"
"  --fetch-concurrency N     fetches in flight [8]\n"
"  --resync-interval DUR     periodic version check, 0 = off, at most\n"
"                            720h [300s]\n"
"  --max-message BYTES       largest reply or notify accepted [16777216]\n"
"\n"
"Monitoring (read-only; cfgrecv-monitor and nngcat attach to these):\n"
"  --monitor-url URL         REP query endpoint, \"none\" = off\n"
"                            [%s]\n"
"  --events-url URL          PUB event stream, \"none\" = off\n"
"                            [%s]\n"
"  --metrics-listen HOST:PORT  serve HTTP GET /metrics (Prometheus)\n"
"  --monitor-ipc-mode OCTAL  mode of the ipc socket files [0600]\n"
"  --monitor-allow-remote    allow tcp:// monitor/events URLs and\n"
"                            --metrics-listen on non-loopback addresses\n"
"\n"
"Hooks and workers (README \"Hooks and workers\"; never run by a shell):\n"
"  --hook PATH               run PATH start|update|stop WORKSPACE FLOW on\n"
"                            every transition (flow JSON on stdin)\n"
"  --hook-concurrency N      hooks running at once [4]\n"
"  --hook-timeout DUR        a hook running longer is killed [30s]\n"
"  --worker PATH             keep PATH [ARG...] WORKSPACE FLOW running per\n"
"                            flow, restarted with backoff when it exits\n"
"  --worker-arg ARG          an argument for the worker (repeatable)\n"
"  --worker-grace DUR        SIGTERM -> SIGKILL when a worker stops [10s]\n"
"  Ids given to programs must be 1-128 characters of [A-Za-z0-9._:@-], not\n"
"  starting with '-' or '.'; other flows are refused (state failed).\n"
"\n"
"Plugins (README \"Plugins\"; handlers in shared objects):\n"
"  --plugin PATH             load a flow handler from PATH (repeatable, 8)\n"
"  --plugin-arg STRING       the argument of the --plugin just before\n"
"\n"
"Process:\n"
"  --log-level LEVEL         debug|info|warn|error|off [info]\n"
"  --log-format FMT          text|json [text]\n"
"  --daemon                  detach (double fork, setsid)\n"
"  --pidfile PATH            write the daemon's pid here\n"
"  --log-file PATH           log here (required with --daemon)\n"
"  -h, --help                this help\n"
"  --version                 print the version and exit\n"
"\n"
"DUR is a number with an optional unit: ms, s (default), m, h.\n"
"Signals: SIGTERM/SIGINT stop every flow and exit 0 (a second one while\n"
"stopping exits 1 at once); SIGHUP resyncs; SIGUSR1 reopens --log-file.\n",
            CFGRECV_DEFAULT_DB, CFGRECV_DEFAULT_REQUEST_URL,
            CFGRECV_DEFAULT_NOTIFY_URL, CFGRECV_DEFAULT_MONITOR_URL,
            CFGRECV_DEFAULT_EVENTS_URL);
}

#define MAX_PLUGINS 8

typedef struct opts {
    const char *req_url, *notify_url;
    const char *db, *svc_req, *svc_notify;
    const char *monitor_url, *events_url;
    /* monitoring (monitor.h) */
    const char *metrics_listen;
    int monitor_ipc_mode;
    int monitor_allow_remote;
    int monitor_default, events_default; /* the URL is the default one */
    uint64_t fetch_timeout_ms, resync_ms;
    unsigned concurrency;
    size_t max_message;
    cr_log_level level;
    cr_log_format format;
    int daemonize;
    const char *pidfile, *logfile;
    /* hooks and workers */
    const char *hook, *worker;
    unsigned hook_concurrency;
    uint64_t hook_timeout_ms, worker_grace_ms;
    const char **worker_args; /* up to 256 */
    size_t nworker_args;
    /* plugins */
    const char *plugins[MAX_PLUGINS], *plugin_args[MAX_PLUGINS];
    size_t nplugins;
} opts;

static int
parse(int argc, char **argv, opts *o)
{
    enum {
        O_REQ = 256, O_NOTIFY, O_DB, O_SVC_REQ, O_SVC_NOTIFY, O_FETCH_TO,
        O_CONC, O_RESYNC, O_MAXMSG, O_MON, O_EVENTS, O_LEVEL, O_FORMAT,
        O_DAEMON, O_PID, O_LOGFILE,
    };
    enum { O_METRICS = 400, O_IPC_MODE, O_ALLOW_REMOTE }; /* monitoring */
    enum {
        O_HOOK = 500, O_HOOK_CONC, O_HOOK_TIMEOUT, O_WORKER, O_WORKER_ARG,
        O_WORKER_GRACE,
    }; /* hooks and workers */
    enum { O_PLUGIN = 600, O_PLUGIN_ARG }; /* plugins */
    static const struct option lo[] = {
        {"config-request-url", required_argument, NULL, O_REQ},
        {"config-notify-url", required_argument, NULL, O_NOTIFY},
        {"db", required_argument, NULL, O_DB},
        {"svc-request-url", required_argument, NULL, O_SVC_REQ},
        {"svc-notify-url", required_argument, NULL, O_SVC_NOTIFY},
        {"fetch-timeout", required_argument, NULL, O_FETCH_TO},
        {"fetch-concurrency", required_argument, NULL, O_CONC},
        {"resync-interval", required_argument, NULL, O_RESYNC},
        {"max-message", required_argument, NULL, O_MAXMSG},
        {"monitor-url", required_argument, NULL, O_MON},
        {"events-url", required_argument, NULL, O_EVENTS},
        {"log-level", required_argument, NULL, O_LEVEL},
        {"log-format", required_argument, NULL, O_FORMAT},
        {"daemon", no_argument, NULL, O_DAEMON},
        {"pidfile", required_argument, NULL, O_PID},
        {"log-file", required_argument, NULL, O_LOGFILE},
        /* monitoring */
        {"metrics-listen", required_argument, NULL, O_METRICS},
        {"monitor-ipc-mode", required_argument, NULL, O_IPC_MODE},
        {"monitor-allow-remote", no_argument, NULL, O_ALLOW_REMOTE},
        /* hooks and workers */
        {"hook", required_argument, NULL, O_HOOK},
        {"hook-concurrency", required_argument, NULL, O_HOOK_CONC},
        {"hook-timeout", required_argument, NULL, O_HOOK_TIMEOUT},
        {"worker", required_argument, NULL, O_WORKER},
        {"worker-arg", required_argument, NULL, O_WORKER_ARG},
        {"worker-grace", required_argument, NULL, O_WORKER_GRACE},
        /* plugins */
        {"plugin", required_argument, NULL, O_PLUGIN},
        {"plugin-arg", required_argument, NULL, O_PLUGIN_ARG},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    *o = (opts){
        .db = CFGRECV_DEFAULT_DB,
        .svc_req = CFGRECV_DEFAULT_REQUEST_URL,
        .svc_notify = CFGRECV_DEFAULT_NOTIFY_URL,
        .fetch_timeout_ms = 10000,
        .resync_ms = 300000,
        .concurrency = 8,
        .level = CR_LEVEL_INFO,
        .format = CR_LOG_TEXT,
        .monitor_url = CFGRECV_DEFAULT_MONITOR_URL,
        .events_url = CFGRECV_DEFAULT_EVENTS_URL,
        .monitor_default = 1,
        .events_default = 1,
        /* hooks and workers */
        .hook_concurrency = 4,
        .hook_timeout_ms = 30000,
        .worker_grace_ms = 10000,
    };
    static const char *worker_args[256];
    o->worker_args = worker_args;
    int c;
    uint64_t n;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_REQ: o->req_url = optarg; break;
        case O_NOTIFY: o->notify_url = optarg; break;
        case O_DB: o->db = optarg; break;
        case O_SVC_REQ: o->svc_req = optarg; break;
        case O_SVC_NOTIFY: o->svc_notify = optarg; break;
        case O_MON:
            o->monitor_url = optarg;
            o->monitor_default = 0;
            break;
        case O_EVENTS:
            o->events_url = optarg;
            o->events_default = 0;
            break;
        case O_PID: o->pidfile = optarg; break;
        case O_LOGFILE: o->logfile = optarg; break;
        case O_DAEMON: o->daemonize = 1; break;
        case O_FETCH_TO:
            if (cr_tool_parse_duration(optarg, &o->fetch_timeout_ms) != 0 ||
                o->fetch_timeout_ms == 0 || o->fetch_timeout_ms > INT_MAX) {
                fprintf(stderr, "cfgrecvd: bad --fetch-timeout '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case O_RESYNC:
            /* bounded: a period near UINT64_MAX wrapped the timer's
             * deadline into the past and the timer thread spun */
            if (cr_tool_parse_duration(optarg, &o->resync_ms) != 0 ||
                o->resync_ms > 720 * 3600000ull) {
                fprintf(stderr, "cfgrecvd: --resync-interval must be 0 "
                                "(off) or up to 720h, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case O_CONC:
            if (cr_tool_parse_uint(optarg, &n) != 0 || n == 0 || n > 1024) {
                fprintf(stderr,
                        "cfgrecvd: --fetch-concurrency must be 1..1024\n");
                return 2;
            }
            o->concurrency = (unsigned)n;
            break;
        case O_MAXMSG:
            if (cr_tool_parse_uint(optarg, &n) != 0 || n < 1024 ||
                n > ((uint64_t)1 << 31)) {
                fprintf(stderr, "cfgrecvd: --max-message must be "
                                "1024..2147483648\n");
                return 2;
            }
            o->max_message = (size_t)n;
            break;
        case O_LEVEL:
            if (cr_log_parse_level(optarg, &o->level) != 0) {
                fprintf(stderr, "cfgrecvd: bad --log-level '%s'\n", optarg);
                return 2;
            }
            break;
        case O_FORMAT:
            if (cr_log_parse_format(optarg, &o->format) != 0) {
                fprintf(stderr, "cfgrecvd: bad --log-format '%s'\n", optarg);
                return 2;
            }
            break;
        /* monitoring */
        case O_METRICS: o->metrics_listen = optarg; break;
        case O_ALLOW_REMOTE: o->monitor_allow_remote = 1; break;
        case O_IPC_MODE: {
            char *end;
            long mode = strtol(optarg, &end, 8);
            if (*optarg == '\0' || *end != '\0' || mode < 1 || mode > 0777) {
                fprintf(stderr, "cfgrecvd: --monitor-ipc-mode must be an "
                                "octal mode 1..0777\n");
                return 2;
            }
            o->monitor_ipc_mode = (int)mode;
            break;
        }
        /* hooks and workers */
        case O_HOOK: o->hook = optarg; break;
        case O_WORKER: o->worker = optarg; break;
        case O_WORKER_ARG:
            if (o->nworker_args == 256) {
                fprintf(stderr, "cfgrecvd: at most 256 --worker-arg\n");
                return 2;
            }
            o->worker_args[o->nworker_args++] = optarg;
            break;
        case O_HOOK_CONC:
            if (cr_tool_parse_uint(optarg, &n) != 0 || n == 0 || n > 1024) {
                fprintf(stderr,
                        "cfgrecvd: --hook-concurrency must be 1..1024\n");
                return 2;
            }
            o->hook_concurrency = (unsigned)n;
            break;
        case O_HOOK_TIMEOUT:
            if (cr_tool_parse_duration(optarg, &o->hook_timeout_ms) != 0 ||
                o->hook_timeout_ms == 0 || o->hook_timeout_ms > 3600000) {
                fprintf(stderr, "cfgrecvd: --hook-timeout must be "
                                "1ms..1h\n");
                return 2;
            }
            break;
        case O_WORKER_GRACE:
            /* the handler supervisor gives a handler 60 s to stop */
            if (cr_tool_parse_duration(optarg, &o->worker_grace_ms) != 0 ||
                o->worker_grace_ms == 0 || o->worker_grace_ms > 50000) {
                fprintf(stderr, "cfgrecvd: --worker-grace must be "
                                "1ms..50s\n");
                return 2;
            }
            break;
        case O_PLUGIN:
            if (o->nplugins == MAX_PLUGINS) {
                fprintf(stderr, "cfgrecvd: at most %d --plugin\n",
                        MAX_PLUGINS);
                return 2;
            }
            o->plugins[o->nplugins++] = optarg;
            break;
        case O_PLUGIN_ARG:
            if (o->nplugins == 0 || o->plugin_args[o->nplugins - 1]) {
                fprintf(stderr, "cfgrecvd: --plugin-arg goes after its "
                                "--plugin, once\n");
                return 2;
            }
            o->plugin_args[o->nplugins - 1] = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            cr_tool_version("cfgrecvd");
            exit(0);
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cfgrecvd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if ((o->req_url == NULL) != (o->notify_url == NULL)) {
        fprintf(stderr, "cfgrecvd: give both --config-request-url and "
                        "--config-notify-url, or neither\n");
        return 2;
    }
    if (o->daemonize && o->logfile == NULL) {
        fprintf(stderr, "cfgrecvd: --daemon needs --log-file\n");
        return 2;
    }
    /* hooks and workers: executable regular files, given absolute */
    const char **progs[2] = {&o->hook, &o->worker};
    static char progabs[2][PATH_MAX];
    for (int i = 0; i < 2; i++) {
        const char *what = i == 0 ? "--hook" : "--worker";
        struct stat sb;
        if (*progs[i] == NULL) {
            continue;
        }
        const char *why = NULL;
        if (realpath(*progs[i], progabs[i]) == NULL ||
            stat(progabs[i], &sb) != 0 || access(progabs[i], X_OK) != 0) {
            why = strerror(errno);
        } else if (!S_ISREG(sb.st_mode)) {
            why = "not a regular file";
        }
        if (why != NULL) {
            fprintf(stderr, "cfgrecvd: %s %s is not an executable file: "
                            "%s\n",
                    what, *progs[i], why);
            return 2;
        }
        *progs[i] = progabs[i];
    }
    if (o->worker == NULL && o->nworker_args > 0) {
        fprintf(stderr, "cfgrecvd: --worker-arg needs --worker\n");
        return 2;
    }
    /* monitoring: "none" (or "") turns an endpoint off; remote exposure
     * must be asked for */
    if (o->monitor_url != NULL && (o->monitor_url[0] == '\0' ||
                                   strcmp(o->monitor_url, "none") == 0)) {
        o->monitor_url = NULL;
    }
    if (o->events_url != NULL && (o->events_url[0] == '\0' ||
                                  strcmp(o->events_url, "none") == 0)) {
        o->events_url = NULL;
    }
    const char *urls[2] = {o->monitor_url, o->events_url};
    for (int i = 0; i < 2 && !o->monitor_allow_remote; i++) {
        if (urls[i] != NULL && !cra_url_is_loopback(urls[i])) {
            fprintf(stderr, "cfgrecvd: %s %s is not ipc:// or a loopback "
                            "address; add --monitor-allow-remote to "
                            "expose it\n",
                    i == 0 ? "--monitor-url" : "--events-url", urls[i]);
            return 2;
        }
    }
    const char *mport =
        o->metrics_listen != NULL ? strrchr(o->metrics_listen, ':') : NULL;
    if (mport != NULL && strtoul(mport + 1, NULL, 10) == 0) {
        fprintf(stderr, "cfgrecvd: --metrics-listen %s: give a port to "
                        "scrape (1-65535), e.g. 127.0.0.1:9100\n",
                o->metrics_listen);
        return 2;
    }
    if (o->metrics_listen != NULL && !o->monitor_allow_remote &&
        !cra_hostport_is_loopback(o->metrics_listen)) {
        fprintf(stderr, "cfgrecvd: --metrics-listen %s is not a loopback "
                        "HOST:PORT (127.0.0.1:9100, [::1]:9100); add "
                        "--monitor-allow-remote to expose it\n",
                o->metrics_listen);
        return 2;
    }
    return 0;
}

/* reopen_log opens --log-file again and puts it in place of logfd (and
 * of stderr, which a daemon points there), for logrotate's postrotate
 * `kill -USR1`: every later line goes to the new file. A line written
 * meanwhile lands whole in one file or the other (dup3 is atomic). If
 * the file cannot be opened, logging goes on to the old one. */
static void
reopen_log(const opts *o, int logfd)
{
    if (o->logfile == NULL) {
        CR_INFO(COMP, "SIGUSR1: no --log-file to reopen");
        return;
    }
    int fd = open(o->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                  0640);
    if (fd < 0) {
        CR_ERROR(COMP, "SIGUSR1: cannot reopen log file %s: %s; logging "
                       "on to the old one",
                 o->logfile, strerror(errno));
        return;
    }
    if (dup3(fd, logfd, O_CLOEXEC) < 0 ||
        (o->daemonize && dup2(fd, 2) < 0)) {
        CR_ERROR(COMP, "SIGUSR1: cannot reopen log file %s: %s",
                 o->logfile, strerror(errno));
    } else {
        CR_INFO(COMP, "SIGUSR1: log file %s reopened", o->logfile);
    }
    close(fd);
}

/* daemonize double-forks; the returned fd (in the grandchild) is written
 * once start-up is done so the original process can exit with the right
 * status, after pointing at logfile (where the reason went) on failure.
 * Returns -1 on failure (in the original process). */
static int
daemonize(const char *logfile)
{
    int p[2];
    if (pipe(p) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid > 0) { /* original: wait for the grandchild's word */
        close(p[1]);
        char c = 1;
        ssize_t n;
        do {
            n = read(p[0], &c, 1);
        } while (n < 0 && errno == EINTR);
        if (n != 1 || c != 0) {
            fprintf(stderr, "cfgrecvd: the daemon did not start; see %s\n",
                    logfile);
            _exit(1);
        }
        _exit(0);
    }
    close(p[0]);
    if (setsid() < 0) {
        _exit(1);
    }
    pid = fork();
    if (pid < 0) {
        _exit(1);
    }
    if (pid > 0) {
        _exit(0);
    }
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        if (fd > 1) {
            close(fd);
        }
    }
    umask(022);
    return p[1];
}

static void
ready(int fd, int ok)
{
    if (fd >= 0) {
        char c = ok ? 0 : 1;
        ssize_t rc = write(fd, &c, 1);
        (void)rc;
        close(fd);
    }
}

int
main(int argc, char **argv)
{
    opts o;
    int rv = parse(argc, argv, &o);
    if (rv != 0) {
        return rv;
    }
    if (o.daemonize) {
        /* A daemon keeps nothing its launcher left open past stderr
         * (nothing of ours is open yet): an inherited pipe, a script's
         * $(...) or a supervisor's, would never see EOF while it runs. */
        if (close_range(3, ~0U, 0) != 0) {
            long max = sysconf(_SC_OPEN_MAX);
            for (long fd = 3; fd < (max > 0 && max < 65536 ? max : 65536);
                 fd++) {
                close((int)fd);
            }
        }
    }
    /* the signals this process takes with sigtimedwait: blocked before
     * any thread exists (a plugin's library could start one when loaded),
     * inherited by every thread and across daemonize's forks */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    char dbabs[PATH_MAX];
    if (o.req_url == NULL && realpath(o.db, dbabs) == NULL) {
        /* the file may not exist yet: resolve its directory instead */
        if (o.db[0] == '/') {
            snprintf(dbabs, sizeof(dbabs), "%s", o.db);
        } else {
            char cwd[PATH_MAX];
            if (getcwd(cwd, sizeof(cwd)) == NULL) {
                perror("cfgrecvd: getcwd");
                return 1;
            }
            if (strlen(cwd) + 1 + strlen(o.db) >= sizeof(dbabs)) {
                fprintf(stderr, "cfgrecvd: --db path too long\n");
                return 2;
            }
            strcpy(dbabs, cwd);
            strcat(dbabs, "/");
            strcat(dbabs, o.db);
        }
    }
    int logfd = 2;
    if (o.logfile != NULL) {
        logfd = open(o.logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                     0640);
        if (logfd < 0) {
            fprintf(stderr, "cfgrecvd: cannot open log file %s: %s\n",
                    o.logfile, strerror(errno));
            return 1;
        }
    }
    /* plugins: loaded before anything starts, so a bad one is a usage
     * error on stderr (exit 2), not a daemon that half starts */
    cra_loaded_plugin *plugins[MAX_PLUGINS] = {0};
    /* "flows", the built-in one, the loader refuses itself */
    const char *taken[MAX_PLUGINS + 2] = {"hook", "worker"};
    for (size_t i = 0; i < o.nplugins; i++) {
        char err[512];
        plugins[i] = cra_plugin_load(o.plugins[i], o.plugin_args[i], err,
                                     sizeof(err));
        const char *name =
            plugins[i] ? cra_plugin_handler(plugins[i])->name : NULL;
        for (size_t j = 0; name != NULL && j < i + 2; j++) {
            if (strcmp(name, taken[j]) == 0) {
                snprintf(err, sizeof(err),
                         "plugin %s: handler name \"%s\" is taken",
                         o.plugins[i], name);
                name = NULL;
            }
        }
        if (name == NULL) {
            fprintf(stderr, "cfgrecvd: %s\n", err);
            for (size_t j = 0; j <= i; j++) {
                cra_plugin_unload(plugins[j]);
            }
            if (logfd != 2) {
                close(logfd);
            }
            return 2;
        }
        taken[i + 2] = name;
    }
    /* from here every exit goes through `out`, which unloads the plugins */
    cr_rt *rt = NULL;
    cra_cfgsvc *svc = NULL;
    cra_receiver *recv = NULL;
    int status = 1;
    const char *pidfile = NULL; /* ours to unlink once written */
    int readyfd = -1;
    /* the pidfile is locked before daemonize, so that a daemon already
     * running with it is reported here, on the terminal; the lock goes
     * with the descriptor to the grandchild, which writes its pid */
    int pidfd = -1;
    cr_log_setup(o.level, o.format, logfd);
    if (o.pidfile != NULL) {
        long holder;
        pidfd = cr_tool_pidfile_lock(o.pidfile, &holder);
        if (pidfd < 0 && errno == EWOULDBLOCK) {
            fprintf(stderr, "cfgrecvd: pidfile %s is held by a running "
                            "daemon (pid %ld); not starting\n",
                    o.pidfile, holder);
            goto out;
        } else if (pidfd < 0) {
            fprintf(stderr, "cfgrecvd: cannot use pidfile %s: %s\n",
                    o.pidfile, strerror(errno));
            goto out;
        }
    }
    if (o.daemonize) {
        readyfd = daemonize(o.logfile);
        if (readyfd < 0) {
            perror("cfgrecvd: fork");
            goto out;
        }
        dup2(logfd, 2);
    }
    if (pidfd >= 0 && cr_tool_pidfile_write(pidfd) != 0) {
        CR_ERROR(COMP, "cannot write pidfile %s: %s", o.pidfile,
                 strerror(errno));
        goto out;
    }
    pidfile = o.pidfile;
    if ((rv = cr_rt_new(NULL, &rt)) != 0) {
        CR_ERROR(COMP, "cannot create the runtime: %s", cr_strerror(rv));
        goto out;
    }
    const char *req = o.req_url, *notify = o.notify_url;
    if (req == NULL) {
        cra_cfgsvc_opts so = {
            .request_url = o.svc_req,
            .notify_url = o.svc_notify,
            .db_path = dbabs,
        };
        if ((rv = cra_cfgsvc_start(rt, &so, &svc)) != 0) {
            CR_ERROR(COMP, "cannot start the embedded config service: %s",
                     cr_strerror(rv));
            goto out;
        }
        req = o.svc_req;
        notify = o.svc_notify;
        CR_INFO(COMP, "embedded config service: db %s, request %s, "
                      "notify %s (cfgctl --url %s)",
                dbabs, req, notify, req);
    }
    /* hooks and workers: their handler tables */
    cra_hook_opts hook_opts = {
        .path = o.hook,
        .concurrency = o.hook_concurrency,
        .timeout_ms = o.hook_timeout_ms,
    };
    cra_worker_opts worker_opts = {
        .path = o.worker,
        .args = o.worker_args,
        .nargs = o.nworker_args,
        .grace_ms = o.worker_grace_ms,
    };
    cra_flow_handler hook_table, worker_table;
    const cra_flow_handler *handlers[2 + MAX_PLUGINS];
    size_t nhandlers = 0;
    if (o.hook != NULL) {
        cra_hook_handler(&hook_table, &hook_opts);
        handlers[nhandlers++] = &hook_table;
    }
    if (o.worker != NULL) {
        cra_worker_handler(&worker_table, &worker_opts);
        handlers[nhandlers++] = &worker_table;
        /* 3-4 descriptors per worker: use the hard limit */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    for (size_t i = 0; i < o.nplugins; i++) {
        handlers[nhandlers++] = cra_plugin_handler(plugins[i]);
        CR_INFO(COMP, "plugin %s: handler %s", o.plugins[i],
                cra_plugin_handler(plugins[i])->name);
    }
    cra_receiver_opts ro = {
        .request_url = req,
        .notify_url = notify,
        .fetch_timeout_ms = (int)o.fetch_timeout_ms,
        .fetch_concurrency = o.concurrency,
        .resync_interval_ms = o.resync_ms,
        .max_message = o.max_message,
        .monitor_url = o.monitor_url,
        /* monitoring */
        .monitor_ipc_mode = o.monitor_ipc_mode,
        .events_url = o.events_url,
        .metrics_listen = o.metrics_listen,
        .monitor_allow_remote = o.monitor_allow_remote,
        .monitor_optional = o.monitor_default,
        .events_optional = o.events_default,
        /* hooks, workers and plugins */
        .handlers = handlers,
        .nhandlers = nhandlers,
    };
    if ((rv = cra_receiver_start(rt, &ro, &recv)) != 0) {
        CR_ERROR(COMP, "cannot start the receiver: %s", cr_strerror(rv));
        goto out;
    }
    CR_INFO(COMP, "cfgrecvd %s running (pid %ld)", CFGRECV_VERSION,
            (long)getpid());
    ready(readyfd, 1);
    readyfd = -1;

    cr_id root = cra_receiver_root(recv);
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
    for (;;) {
        int sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGHUP) {
            CR_INFO(COMP, "SIGHUP: full resync");
            cra_receiver_resync(recv, "SIGHUP");
        } else if (sig == SIGUSR1) {
            reopen_log(&o, logfd);
        } else if (sig == SIGTERM || sig == SIGINT) {
            CR_INFO(COMP, "%s: stopping every flow",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT");
            status = 0;
            break;
        } else if (!cr_alive(rt, root)) {
            CR_ERROR(COMP, "the root supervisor gave up; exiting");
            status = 1;
            break;
        } else if (svc != NULL && !cra_cfgsvc_alive(svc)) {
            /* as cfgsvcd does: its actors are not supervised (README) */
            CR_ERROR(COMP, "the embedded config service stopped; exiting");
            status = 1;
            break;
        }
    }
out:
    ready(readyfd, 0);
    /* a second signal exits at once; teardown after the flows are
     * stopped is bounded (tool_util.h, the shutdown guard) */
    cr_tool_guard *g =
        recv != NULL || svc != NULL ? cr_tool_guard_start(pidfile) : NULL;
    if (recv != NULL && cra_receiver_stop(recv, 120000) != 0) {
        CR_WARN(COMP, "some actors did not stop in time");
    }
    cr_tool_guard_teardown(g, status, CR_TOOL_GUARD_TEARDOWN_MS);
    if (svc != NULL) {
        cra_cfgsvc_stop(svc);
    }
    if (rt != NULL) {
        cr_rt_destroy(rt);
    }
    for (size_t i = 0; i < o.nplugins; i++) {
        cra_plugin_unload(plugins[i]); /* their actors are gone */
    }
    cr_tool_guard_stop(g);
    if (pidfile != NULL) {
        unlink(pidfile);
    }
    CR_INFO(COMP, "exit %d", status);
    return status;
}
