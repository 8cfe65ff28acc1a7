/*
 * cfgrecv-monitor - attaches to a running cfgrecvd's monitor endpoints.
 *
 * A thin client: every query is one REQ/REP round trip of a text command
 * (the same one `nngcat --req --data CMD` sends), printed as a table by
 * default or as the daemon's JSON with --json; `events` follows the PUB
 * stream; `top` redraws a summary every --interval. Both dial through the
 * transport's watchdog (redial.h), so they come back after the daemon
 * restarts. Everything the daemon sends is sanitised before it reaches a
 * terminal (a flow id may hold escape sequences; they are shown as '?').
 *
 * Exit status (as cfgctl): 0 ok, 1 the daemon answered an error (message
 * on stderr) or an unreadable reply, 2 usage error, 3 the daemon could not
 * be reached within --timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cfgrecv/log.h"
#include "redial.h"
#include "tool_util.h"

enum { EX_OK = 0, EX_DAEMON = 1, EX_USAGE = 2, EX_UNREACHABLE = 3 };

typedef struct opts {
    const char *url, *events_url;
    int timeout_ms;
    bool json;
    uint64_t interval_ms;
    uint64_t iterations; /* top: 0 = until quit */
    uint64_t count;      /* events: 0 = until interrupted */
} opts;

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void
usage(FILE *f) {
    fprintf(
        f,
        "usage: cfgrecv-monitor [OPTIONS] COMMAND\n"
        "Shows what a running cfgrecvd is doing (its --monitor-url and\n"
        "--events-url endpoints; read-only).\n"
        "\n"
        "Commands:\n"
        "  status       config version, uptime, counts, config-service link\n"
        "  actors       the supervision tree: state, restarts, mailboxes\n"
        "  flows        every flow per workspace with its state\n"
        "  workspaces   per workspace: version and flows per state\n"
        "  metrics      the Prometheus text the daemon exports\n"
        "  events       follow the event stream, one line per event\n"
        "  top          full-screen view refreshed every --interval; q or "
        "Ctrl-C\n"
        "               quits; when stdout is not a terminal it prints plain\n"
        "               snapshots instead\n"
        "  query CMD    send CMD as is and print the answer\n"
        "\n"
        "Options:\n"
        "  --url URL          monitor query endpoint [%s]\n"
        "  --events-url URL   event stream [%s]\n"
        "  --timeout SECONDS  give up reaching the daemon after this long [5]\n"
        "  --json             print the daemon's JSON (events: raw lines)\n"
        "  --interval DUR     top: refresh period [1s]\n"
        "  --iterations N     top: stop after N refreshes [until quit]\n"
        "  --count N          events: stop after N events [until interrupted]\n"
        "  -h, --help         this help\n"
        "  --version          print the version and exit\n"
        "\n"
        "Exit status: 0 ok, 1 the daemon returned an error, 2 usage error,\n"
        "3 daemon unreachable within --timeout.\n",
        CFGRECV_DEFAULT_MONITOR_URL, CFGRECV_DEFAULT_EVENTS_URL);
}

static int
usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "cfgrecv-monitor: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'cfgrecv-monitor --help'.\n");
    return EX_USAGE;
}

/* ---- text helpers ---------------------------------------------------- */

/* clean returns a malloc'd copy of s with control characters (and DEL)
 * replaced by '?', so nothing the daemon relays can drive the terminal. */
static char *
clean(const char *s) {
    char *c = strdup(s != NULL ? s : "");
    if (c == NULL) {
        fprintf(stderr, "cfgrecv-monitor: out of memory\n");
        exit(EX_DAEMON);
    }
    for (unsigned char *p = (unsigned char *)c; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    return c;
}

/* width counts display columns (UTF-8 code points) of a clean string */
static size_t
width(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        n += (*p & 0xC0) != 0x80;
    }
    return n;
}

/* A list of output lines (plain text, no newline). */
typedef struct lines {
    char **v;
    size_t n, cap;
} lines;

static void addf(lines *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
addf(lines *l, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, nc * sizeof(*nv));
        if (nv == NULL) {
            free(s);
            return;
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = s;
}

static void
lines_free(lines *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    *l = (lines){0};
}

static void
lines_print(const lines *l) {
    for (size_t i = 0; i < l->n; i++) {
        printf("%s\n", l->v[i]);
    }
}

/* A table: cells are clean strings; columns are padded to the widest
 * cell (capped at 48 columns except for the last one). */
#define MAXCOLS 10
typedef struct table {
    size_t ncols;
    char **cells; /* row-major */
    size_t nrows, cap;
    bool right[MAXCOLS]; /* right-align (numbers) */
} table;

static void
trow(table *t, ...) {
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 32;
        char **nv = realloc(t->cells, nc * t->ncols * sizeof(*nv));
        if (nv == NULL) {
            return;
        }
        t->cells = nv;
        t->cap = nc;
    }
    va_list ap;
    va_start(ap, t);
    for (size_t c = 0; c < t->ncols; c++) {
        t->cells[t->nrows * t->ncols + c] = clean(va_arg(ap, const char *));
    }
    va_end(ap);
    t->nrows++;
}

static void
tput(table *t, lines *out) {
    size_t w[MAXCOLS] = {0};
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            size_t x = width(t->cells[r * t->ncols + c]);
            if (c + 1 < t->ncols && x > 48) {
                x = 48;
            }
            if (x > w[c]) {
                w[c] = x;
            }
        }
    }
    for (size_t r = 0; r < t->nrows; r++) {
        char buf[2048];
        size_t len = 0;
        for (size_t c = 0; c < t->ncols && len < sizeof(buf) - 1; c++) {
            const char *s = t->cells[r * t->ncols + c];
            size_t sw = width(s);
            size_t pad = sw < w[c] ? w[c] - sw : 0;
            bool last = c + 1 == t->ncols;
            int k;
            if (t->right[c]) {
                k = snprintf(buf + len, sizeof(buf) - len, "%*s%s%s", (int)pad,
                             "", s, last ? "" : "  ");
            } else {
                k = snprintf(buf + len, sizeof(buf) - len, "%s%*s", s,
                             last ? 0 : (int)pad + 2, "");
            }
            if (k < 0) {
                break;
            }
            len += (size_t)k;
            if (len >= sizeof(buf)) {
                len = sizeof(buf) - 1;
            }
        }
        while (len > 0 && buf[len - 1] == ' ') {
            len--;
        }
        buf[len] = '\0';
        addf(out, "%s", buf);
    }
    for (size_t i = 0; i < t->nrows * t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

static json_int_t
geti(const json_t *o, const char *k) {
    return json_integer_value(json_object_get(o, k));
}

static const char *
gets_(const json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

static const char *
num(char *buf, json_int_t v) {
    sprintf(buf, "%lld", (long long)v);
    return buf;
}

static void
fmt_duration(char *buf, size_t len, double secs) {
    unsigned long s = secs > 0 ? (unsigned long)secs : 0;
    if (s >= 86400) {
        snprintf(buf, len, "%lud%02luh%02lum", s / 86400, s / 3600 % 24,
                 s / 60 % 60);
    } else if (s >= 3600) {
        snprintf(buf, len, "%luh%02lum%02lus", s / 3600, s / 60 % 60, s % 60);
    } else if (s >= 60) {
        snprintf(buf, len, "%lum%02lus", s / 60, s % 60);
    } else {
        snprintf(buf, len, "%.1fs", secs);
    }
}

/* ---- dialing: a watched dialer, as the daemon's own sockets ----------- */

/* A socket and the watchdog that dials again when nng's dialer gives up
 * (transport/redial.h: it happens about once per 100 restarts of the
 * peer), so `events` and `top` come back after a daemon restart. */
typedef struct watched {
    nng_socket s;
    crt_redial *redial; /* set before the dial; read by the pipe callback */
} watched;

/* Pipe events only feed the watchdog (nng holds the socket lock). */
static void
watched_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg) {
    (void)p;
    const watched *l = arg;
    crt_redial_pipe_event(l->redial, ev);
}

/* watched_dial starts dialing url in the background on the open socket l->s.
 * Returns an exit status (the socket is closed unless EX_OK). */
static int
watched_dial(watched *l, const char *url, const char *what) {
    int rv;
    l->redial = NULL;
    if ((rv = nng_pipe_notify(l->s, NNG_PIPE_EV_ADD_POST, watched_pipe_cb, l)) !=
            0 ||
        (rv = nng_pipe_notify(l->s, NNG_PIPE_EV_REM_POST, watched_pipe_cb, l)) !=
            0 ||
        (rv = crt_redial_new(l->s, url, 0, what, &l->redial)) != 0 ||
        (rv = crt_redial_start(l->redial)) != 0) {
        crt_redial_stop(l->redial);
        nng_close(l->s);
        crt_redial_free(l->redial);
        if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL) {
            fprintf(stderr, "cfgrecv-monitor: bad URL '%s': %s\n", url,
                    nng_strerror(rv));
            return EX_USAGE;
        }
        fprintf(stderr, "cfgrecv-monitor: cannot dial %s: %s\n", url,
                nng_strerror(rv));
        return EX_UNREACHABLE;
    }
    return EX_OK;
}

/* watched_close: the watchdog stops before the close (it dials) and is freed
 * after it (the close still runs pipe callbacks). */
static void
watched_close(watched *l) {
    crt_redial_stop(l->redial);
    nng_close(l->s);
    crt_redial_free(l->redial);
}

/* ---- the query endpoint ---------------------------------------------- */

typedef struct client {
    watched l;
    const char *url;
} client;

static int
client_open(client *c, const char *url, int timeout_ms) {
    int rv;
    c->url = url;
    if ((rv = nng_req0_open(&c->l.s)) != 0) {
        fprintf(stderr, "cfgrecv-monitor: %s\n", nng_strerror(rv));
        return EX_DAEMON;
    }
    nng_socket_set_ms(c->l.s, NNG_OPT_SENDTIMEO, timeout_ms);
    nng_socket_set_ms(c->l.s, NNG_OPT_RECVTIMEO, timeout_ms);
    nng_socket_set_ms(c->l.s, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(c->l.s, NNG_OPT_RECONNMAXT, 500);
    nng_socket_set_size(c->l.s, NNG_OPT_RECVMAXSZ, 0); /* the flow list */
    return watched_dial(&c->l, url, "monitor");
}

/* ask sends cmd and sets *reply (malloc'd, NUL-terminated). Returns an
 * exit status; err (may be NULL) gets a reason on failure. */
static int
ask(client *c, const char *cmd, char **reply, char *err, size_t errlen) {
    int rv;
    char *buf = NULL;
    size_t len = 0;
    *reply = NULL;
    if ((rv = nng_send(c->l.s, (void *)cmd, strlen(cmd), 0)) != 0 ||
        (rv = nng_recv(c->l.s, &buf, &len, NNG_FLAG_ALLOC)) != 0) {
        if (err != NULL) {
            snprintf(err, errlen, "no answer from %s: %s", c->url,
                     rv == NNG_ETIMEDOUT ? "timed out" : nng_strerror(rv));
        }
        return EX_UNREACHABLE;
    }
    *reply = malloc(len + 1);
    if (*reply == NULL) {
        nng_free(buf, len);
        return EX_DAEMON;
    }
    memcpy(*reply, buf, len);
    (*reply)[len] = '\0';
    nng_free(buf, len);
    return EX_OK;
}

/* ask_json asks and parses; a reply {"error": ...} is EX_DAEMON. */
static int
ask_json(client *c, const char *cmd, json_t **doc, char *err, size_t errlen) {
    char *text;
    int ex = ask(c, cmd, &text, err, errlen);
    *doc = NULL;
    if (ex != EX_OK) {
        return ex;
    }
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    free(text);
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, errlen, "unreadable reply to '%s'", cmd);
        return EX_DAEMON;
    }
    const char *e = json_string_value(json_object_get(j, "error"));
    if (e != NULL) {
        char *ce = clean(e);
        snprintf(err, errlen, "daemon: %s", ce);
        free(ce);
        json_decref(j);
        return EX_DAEMON;
    }
    *doc = j;
    return EX_OK;
}

/* ---- readable views ---------------------------------------------------- */

static void
view_status(const json_t *st, lines *out) {
    const json_t *cs = json_object_get(st, "config_service");
    const json_t *n = json_object_get(st, "counts");
    const json_t *c = json_object_get(st, "counters");
    char up[64];
    fmt_duration(up, sizeof(up),
                 json_number_value(json_object_get(st, "uptime_s")));
    char *req = clean(gets_(cs, "request_url"));
    char *not = clean(gets_(cs, "notify_url"));
    addf(out, "config version  %lld", (long long)geti(st, "version"));
    addf(out, "uptime          %s", up);
    addf(out, "config service  %s, %s",
         json_is_true(json_object_get(cs, "notify_connected")) ? "connected"
                                                               : "DISCONNECTED",
         json_is_true(json_object_get(cs, "synced")) ? "synced"
                                                     : "not synced yet");
    addf(out, "  requests      %s", req);
    addf(out, "  notifies      %s", not );
    addf(out, "workspaces      %lld", (long long)geti(n, "workspaces"));
    addf(out, "flows           %lld", (long long)geti(n, "flows"));
    addf(out, "actors          %lld", (long long)geti(n, "actors"));
    addf(out, "notifies        %lld received, %lld applied, %lld ignored",
         (long long)geti(c, "notifies"), (long long)geti(c, "notifies_applied"),
         (long long)geti(c, "notifies_ignored"));
    addf(out, "fetches         %lld ok, %lld failed, %lld pending",
         (long long)geti(c, "fetches_ok"), (long long)geti(c, "fetches_failed"),
         (long long)geti(c, "fetches_pending"));
    const json_t *f = json_object_get(st, "fetcher");
    if (json_is_object(f)) {
        addf(out,
             "fetcher         %lld sent, %lld in flight (max %lld), "
             "%lld queued, %lld coalesced",
             (long long)geti(f, "sent"), (long long)geti(f, "inflight"),
             (long long)geti(f, "inflight_max"), (long long)geti(f, "queued"),
             (long long)geti(f, "coalesced"));
    }
    addf(out, "resyncs         %lld", (long long)geti(c, "resyncs"));
    addf(out, "events dropped  %lld", (long long)geti(c, "events_dropped"));
    free(req);
    free(not );
}

static void
tree_rows(table *t, const json_t *node, int depth, json_int_t *restarts) {
    char name[160], r[24], d[24], h[24], in[24], o[24];
    snprintf(name, sizeof(name), "%*s%s", depth * 2, "", gets_(node, "name"));
    const char *state = gets_(node, "state");
    char st[64];
    json_int_t delay = geti(node, "next_delay_ms");
    if (strcmp(state, "restarting") == 0 && delay > 0) {
        snprintf(st, sizeof(st), "restarting in %lldms", (long long)delay);
    } else {
        snprintf(st, sizeof(st), "%s", state);
    }
    *restarts += geti(node, "restarts");
    trow(t, name, gets_(node, "kind"), st, num(r, geti(node, "restarts")),
         num(d, geti(node, "depth")), num(h, geti(node, "high_water")),
         num(in, geti(node, "msgs_in")), num(o, geti(node, "msgs_out")));
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(node, "children"), i, ch) {
        tree_rows(t, ch, depth + 1, restarts);
    }
}

static bool
in_tree(const json_t *node, json_int_t id) {
    if (geti(node, "id") == id) {
        return true;
    }
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(node, "children"), i, ch) {
        if (in_tree(ch, id)) {
            return true;
        }
    }
    return false;
}

static void
view_actors(const json_t *doc, lines *out, json_int_t *restarts) {
    table t = {.ncols = 8};
    for (int i = 3; i < 8; i++) {
        t.right[i] = true;
    }
    json_int_t sum = 0;
    trow(&t, "ACTOR", "KIND", "STATE", "RESTARTS", "DEPTH", "HIGH", "IN",
         "OUT");
    const json_t *tree = json_object_get(doc, "tree");
    if (json_is_object(tree)) {
        tree_rows(&t, tree, 0, &sum);
    }
    size_t i;
    json_t *a;
    bool other = false;
    json_array_foreach(json_object_get(doc, "actors"), i, a) {
        if (json_is_object(tree) && in_tree(tree, geti(a, "id"))) {
            continue;
        }
        if (!other) {
            trow(&t, "(outside the tree)", "", "", "", "", "", "", "");
            other = true;
        }
        char name[96], d[24], h[24], in[24], o[24];
        snprintf(name, sizeof(name), "  %s",
                 gets_(a, "name")[0] ? gets_(a, "name") : "(anonymous)");
        trow(&t, name, gets_(a, "kind"), gets_(a, "state"), "-",
             num(d, geti(a, "depth")), num(h, geti(a, "high_water")),
             num(in, geti(a, "msgs_in")), num(o, geti(a, "msgs_out")));
    }
    tput(&t, out);
    if (restarts != NULL) {
        *restarts = sum;
    }
}

/* flows_rows adds the flow table; max_rows limits the data rows (0 = no
 * limit) and says how many were left out. */
static void
view_flows(const json_t *doc, lines *out, size_t max_rows) {
    table t = {.ncols = 7};
    t.right[4] = true;
    trow(&t, "WORKSPACE", "FLOW", "STATE", "BLUEPRINT", "RESTARTS", "SINCE",
         "ERROR");
    size_t shown = 0, total = 0;
    const char *wk, *fk;
    json_t *wv, *fv;
    json_object_foreach((json_t *)json_object_get(doc, "workspaces"), wk, wv) {
        json_object_foreach(wv, fk, fv) {
            total++;
            if (max_rows != 0 && shown >= max_rows) {
                continue;
            }
            char r[24];
            trow(&t, wk, fk, gets_(fv, "state"), gets_(fv, "blueprint"),
                 num(r, geti(fv, "restarts")), gets_(fv, "since"),
                 gets_(fv, "error"));
            shown++;
        }
    }
    if (json_object_get(doc, "total") != NULL) { /* a bounded list */
        total = (size_t)geti(doc, "total");
    }
    if (total == 0) {
        trow(&t, "(no flows)", "", "", "", "", "", "");
    }
    tput(&t, out);
    if (shown < total) {
        addf(out, "... %zu more flows", total - shown);
    }
}



static const char *const states[] = {"running", "starting", "backoff", "failed",
                                     "stopping"};

/* top off a terminal: how many flows a snapshot lists (the least
 * advanced first; the counts cover them all) */
#define TOP_PLAIN_FLOWS 200

static void
view_workspaces(const json_t *doc, lines *out) {
    table t = {.ncols = 9};
    for (int i = 1; i < 8; i++) {
        t.right[i] = true;
    }
    trow(&t, "WORKSPACE", "VERSION", "FLOWS", "RUNNING", "STARTING", "BACKOFF",
         "FAILED", "STOPPING", "FETCHING");
    const char *wk;
    json_t *wv;
    json_object_foreach((json_t *)json_object_get(doc, "workspaces"), wk, wv) {
        char v[24], f[24], c[5][24];
        const json_t *st = json_object_get(wv, "states");
        for (int i = 0; i < 5; i++) {
            num(c[i], geti(st, states[i]));
        }
        const json_t *ver = json_object_get(wv, "version");
        trow(&t, wk,
             json_is_integer(ver) ? num(v, json_integer_value(ver)) : "-",
             num(f, geti(wv, "flows")), c[0], c[1], c[2], c[3], c[4],
             json_is_true(json_object_get(wv, "fetching")) ? "yes" : "no");
    }
    tput(&t, out);
}

/* ---- one-shot commands ------------------------------------------------- */

static int
run_query(const opts *o, const char *cmd, const char *view) {
    client c;
    int ex = client_open(&c, o->url, o->timeout_ms);
    if (ex != EX_OK) {
        return ex;
    }
    char err[512] = "";
    if (strcmp(view, "metrics") == 0 || strcmp(view, "query") == 0) {
        char *text;
        ex = ask(&c, cmd, &text, err, sizeof(err));
        watched_close(&c.l);
        if (ex != EX_OK) {
            fprintf(stderr, "cfgrecv-monitor: %s\n", err);
            return ex;
        }
        /* a JSON error reply still exits 1 */
        json_t *j = json_loads(text, 0, NULL);
        bool is_err = json_is_object(j) && json_object_get(j, "error");
        json_decref(j);
        fputs(text, is_err ? stderr : stdout);
        free(text);
        return is_err ? EX_DAEMON : EX_OK;
    }
    json_t *doc;
    ex = ask_json(&c, cmd, &doc, err, sizeof(err));
    watched_close(&c.l);
    if (ex != EX_OK) {
        fprintf(stderr, "cfgrecv-monitor: %s\n", err);
        return ex;
    }
    if (o->json) {
        char *s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        if (s != NULL) {
            printf("%s\n", s);
        }
        free(s);
    } else {
        lines out = {0};
        if (strcmp(view, "status") == 0) {
            view_status(doc, &out);
        } else if (strcmp(view, "actors") == 0) {
            view_actors(doc, &out, NULL);
        } else if (strcmp(view, "flows") == 0) {
            addf(&out, "config version %lld", (long long)geti(doc, "version"));
            view_flows(doc, &out, 0);
        } else {
            view_workspaces(doc, &out);
        }
        lines_print(&out);
        lines_free(&out);
    }
    json_decref(doc);
    return fflush(stdout) == 0 ? EX_OK : EX_DAEMON;
}

/* ---- events -------------------------------------------------------------- */

static void
print_event(const char *line, size_t len, bool raw) {
    if (raw) {
        fwrite(line, 1, len, stdout);
        if (len == 0 || line[len - 1] != '\n') {
            putchar('\n');
        }
        return;
    }
    json_t *j = json_loadb(line, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        char *c = clean("(unreadable event)");
        printf("%s\n", c);
        free(c);
        return;
    }
    char *ts = clean(gets_(j, "ts"));
    char *ev = clean(gets_(j, "event"));
    printf("%s  %-24s", ts, ev);
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        if (strcmp(k, "ts") == 0 || strcmp(k, "event") == 0) {
            continue;
        }
        char *val;
        if (json_is_string(v)) {
            val = clean(json_string_value(v));
            if (strchr(val, ' ') != NULL || val[0] == '\0') {
                char *q = json_dumps(v, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
                free(val);
                val = clean(q);
                free(q);
            }
        } else {
            char *q = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            val = clean(q);
            free(q);
        }
        char *ck = clean(k);
        printf(" %s=%s", ck, val);
        free(ck);
        free(val);
    }
    printf("\n");
    free(ts);
    free(ev);
    json_decref(j);
}

static int
run_events(const opts *o) {
    watched l;
    int rv, ex;
    if ((rv = nng_sub0_open(&l.s)) != 0) {
        fprintf(stderr, "cfgrecv-monitor: %s\n", nng_strerror(rv));
        return EX_DAEMON;
    }
    nng_socket_set(l.s, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    nng_socket_set_ms(l.s, NNG_OPT_RECONNMINT, 50);
    nng_socket_set_ms(l.s, NNG_OPT_RECONNMAXT, 1000);
    nng_socket_set_size(l.s, NNG_OPT_RECVMAXSZ, 0);
    if ((ex = watched_dial(&l, o->events_url, "events")) != EX_OK) {
        return ex;
    }
    /* the first connection must come within --timeout; after it the
     * dialer (and its watchdog) reconnects on its own if the daemon
     * restarts */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!crt_redial_connected(l.redial)) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - t0.tv_sec) * 1000 +
                  (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= o->timeout_ms || stop_flag) {
            watched_close(&l);
            fprintf(stderr, "cfgrecv-monitor: cannot reach %s\n",
                    o->events_url);
            return EX_UNREACHABLE;
        }
        usleep(10 * 1000);
    }
    /* wait with poll on the receive fd, never a receive timeout on SUB
     * (nng 1.5.2 bug, NOTES.md) */
    int fd;
    if ((rv = nng_socket_get_int(l.s, NNG_OPT_RECVFD, &fd)) != 0) {
        watched_close(&l);
        fprintf(stderr, "cfgrecv-monitor: %s\n", nng_strerror(rv));
        return EX_DAEMON;
    }
    uint64_t seen = 0;
    bool done = false;
    while (!stop_flag && !done) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, 200);
        if (n <= 0) {
            continue;
        }
        char *buf;
        size_t len;
        while (!done &&
               (rv = nng_recv(l.s, &buf, &len,
                              NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK)) == 0) {
            /* one message holds one event per line (a batch when busy) */
            for (size_t at = 0; at < len && !done;) {
                const char *nl = memchr(buf + at, '\n', len - at);
                size_t ll = nl != NULL ? (size_t)(nl - (buf + at)) : len - at;
                if (ll > 0) {
                    print_event(buf + at, ll, o->json);
                    seen++;
                    done = o->count != 0 && seen >= o->count;
                }
                at += ll + 1;
            }
            nng_free(buf, len);
        }
        fflush(stdout);
    }
    watched_close(&l);
    return fflush(stdout) == 0 ? EX_OK : EX_DAEMON;
}

/* ---- top ------------------------------------------------------------------
 */

typedef struct rates {
    bool have;
    double t;
    json_int_t notifies, fetches, restarts;
} rates;

static double
mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* frame builds one snapshot into out. Returns EX_OK, or the error of the
 * first query that failed (err set). */
static int
frame(client *c, const opts *o, rates *rt, lines *out, size_t rows, char *err,
      size_t errlen) {
    json_t *st = NULL, *ac = NULL, *fl = NULL;
    int ex;
    if ((ex = ask_json(c, "status", &st, err, errlen)) != EX_OK ||
        (ex = ask_json(c, "actors", &ac, err, errlen)) != EX_OK) {
        json_decref(st);
        return ex;
    }
    const json_t *cs = json_object_get(st, "config_service");
    const json_t *cnt = json_object_get(st, "counters");
    json_int_t notifies = geti(cnt, "notifies");
    json_int_t fetches = geti(cnt, "fetches_ok") + geti(cnt, "fetches_failed");
    lines tree = {0};
    json_int_t restarts = 0;
    view_actors(ac, &tree, &restarts);

    double now = mono_s();
    double rn = 0, rf = 0, rr = 0;
    if (rt->have && now > rt->t) {
        double dt = now - rt->t;
        rn = notifies >= rt->notifies ? (double)(notifies - rt->notifies) / dt
                                      : 0;
        rf = fetches >= rt->fetches ? (double)(fetches - rt->fetches) / dt : 0;
        rr = restarts >= rt->restarts ? (double)(restarts - rt->restarts) / dt
                                      : 0;
    }
    *rt = (rates){true, now, notifies, fetches, restarts};

    char up[64], when[64];
    fmt_duration(up, sizeof(up),
                 json_number_value(json_object_get(st, "uptime_s")));
    time_t wall = time(NULL);
    struct tm tm;
    localtime_r(&wall, &tm);
    strftime(when, sizeof(when), "%H:%M:%S", &tm);
    char *url = clean(o->url);
    addf(out, "cfgrecv top - %s - %s - refresh %.1fs, q quits", url, when,
         (double)o->interval_ms / 1000.0);
    free(url);
    addf(out, "config version %lld   uptime %s   config service %s%s",
         (long long)geti(st, "version"), up,
         json_is_true(json_object_get(cs, "notify_connected")) ? "connected"
                                                               : "DISCONNECTED",
         json_is_true(json_object_get(cs, "synced")) ? ", synced" : "");

    /* the daemon lists only the flows there is room for, the least
     * advanced first, and counts them all: at 100,000 flows the whole
     * directory takes seconds to build and ~18 MB to send */
    /* lines that are not flow rows: those so far, six more above the
     * table, the tree, the table's header and a "more" line */
    size_t used = out->n + 6 + tree.n + 2;
    size_t room = rows == 0 ? TOP_PLAIN_FLOWS
                            : (rows > used + 1 ? rows - used : 1);
    char q[32];
    snprintf(q, sizeof(q), "flows %zu", room);
    if ((ex = ask_json(c, q, &fl, err, errlen)) != EX_OK) {
        lines_free(&tree);
        json_decref(st);
        json_decref(ac);
        return ex;
    }
    json_int_t by[5] = {0};
    const json_t *bys = json_object_get(fl, "states");
    for (int i = 0; i < 5; i++) {
        by[i] = geti(bys, states[i]);
    }
    json_int_t total = geti(fl, "total");
    size_t nws = (size_t)geti(fl, "workspace_count");
    addf(out,
         "flows %lld in %zu workspaces: %lld running, %lld starting, "
         "%lld backoff, %lld failed, %lld stopping",
         (long long)total, nws, (long long)by[0], (long long)by[1],
         (long long)by[2], (long long)by[3], (long long)by[4]);
    addf(out,
         "rates/s: notifies %.1f  fetches %.1f  restarts %.1f   "
         "(totals %lld, %lld, %lld)",
         rn, rf, rr, (long long)notifies, (long long)fetches,
         (long long)restarts);
    addf(out, "%s", "");
    addf(out, "SUPERVISION TREE");
    for (size_t i = 0; i < tree.n; i++) {
        addf(out, "%s", tree.v[i]);
    }
    lines_free(&tree);
    addf(out, "%s", "");
    addf(out, "FLOWS");
    view_flows(fl, out, 0);
    json_decref(st);
    json_decref(ac);
    json_decref(fl);
    return EX_OK;
}

static struct termios saved_tio;
static bool tio_saved;

static void
term_restore(void) {
    if (tio_saved) {
        tcsetattr(0, TCSANOW, &saved_tio);
        tio_saved = false;
    }
    const char *s = "\033[?25h\033[?1049l";
    ssize_t w = write(1, s, strlen(s));
    (void)w;
}

/* draw writes the frame over the screen, each line cut to the width,
 * with one write so nothing flickers. */
static void
draw(const lines *l, size_t rows, size_t cols) {
    size_t cap = (cols * 4 + 16) * (rows + 1) + 64;
    char *buf = malloc(cap);
    if (buf == NULL) {
        return;
    }
    size_t len = 0;
    len += (size_t)snprintf(buf, cap, "\033[H");
    for (size_t i = 0; i < l->n && i < rows; i++) {
        const char *s = l->v[i];
        size_t col = 0;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
            if ((*p & 0xC0) != 0x80) {
                if (col == cols) {
                    break;
                }
                col++;
            }
            buf[len++] = (char)*p;
        }
        len += (size_t)snprintf(buf + len, cap - len, "\033[K%s",
                                i + 1 < rows && i + 1 < l->n ? "\r\n" : "");
    }
    len += (size_t)snprintf(buf + len, cap - len, "\033[J");
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(1, buf + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break;
        }
        off += (size_t)w;
    }
    free(buf);
}

static int
run_top(const opts *o) {
    client c;
    int ex = client_open(&c, o->url, o->timeout_ms);
    if (ex != EX_OK) {
        return ex;
    }
    bool tty = isatty(1);
    bool keys = tty && isatty(0);
    rates rt = {0};
    char err[512] = "";
    lines l = {0};
    /* the first snapshot decides the exit status when the daemon is
     * unreachable or answers an error */
    ex = frame(&c, o, &rt, &l, 0, err, sizeof(err));
    lines_free(&l);
    if (ex != EX_OK) {
        watched_close(&c.l);
        fprintf(stderr, "cfgrecv-monitor: %s\n", err);
        return ex;
    }
    /* later queries wait at most one refresh period for an answer, so
     * the screen stays live while the daemon is away */
    int qms = o->interval_ms < (uint64_t)o->timeout_ms ? (int)o->interval_ms
                                                       : o->timeout_ms;
    nng_socket_set_ms(c.l.s, NNG_OPT_SENDTIMEO, qms);
    nng_socket_set_ms(c.l.s, NNG_OPT_RECVTIMEO, qms);
    if (tty) {
        if (keys && tcgetattr(0, &saved_tio) == 0) {
            struct termios t = saved_tio;
            t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
            t.c_cc[VMIN] = 0;
            t.c_cc[VTIME] = 0;
            tio_saved = true;
            tcsetattr(0, TCSANOW, &t);
        }
        const char *s = "\033[?1049h\033[?25l\033[H\033[2J";
        ssize_t w = write(1, s, strlen(s));
        (void)w;
    }
    uint64_t done = 0;
    while (!stop_flag) {
        size_t rows = 0, cols = 0;
        if (tty) {
            struct winsize ws;
            if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
                rows = ws.ws_row;
                cols = ws.ws_col;
            } else {
                rows = 24;
                cols = 80;
            }
        }
        lines fr = {0};
        if (frame(&c, o, &rt, &fr, rows, err, sizeof(err)) != EX_OK) {
            lines_free(&fr);
            char *ce = clean(err);
            char *u = clean(o->url);
            addf(&fr, "cfgrecv top - %s", u);
            addf(&fr, "%s (retrying)", ce);
            free(ce);
            free(u);
            rt.have = false;
        }
        if (tty) {
            draw(&fr, rows, cols);
        } else {
            lines_print(&fr);
            printf("\n");
            fflush(stdout);
        }
        lines_free(&fr);
        done++;
        if (o->iterations != 0 && done >= o->iterations) {
            break;
        }
        /* wait for the next refresh, reading keys meanwhile */
        double until = mono_s() + (double)o->interval_ms / 1000.0;
        while (!stop_flag) {
            double left = until - mono_s();
            if (left <= 0) {
                break;
            }
            struct pollfd p = {.fd = 0, .events = POLLIN};
            int n = poll(&p, keys ? 1 : 0, (int)(left * 1000) + 1);
            if (n > 0) {
                char kb[64];
                ssize_t k = read(0, kb, sizeof(kb));
                for (ssize_t i = 0; i < k; i++) {
                    if (kb[i] == 'q' || kb[i] == 'Q' || kb[i] == 3) {
                        stop_flag = 1;
                    }
                }
                if (k == 0) {
                    keys = false; /* EOF on stdin: only signals now */
                }
            }
        }
    }
    if (tty) {
        term_restore();
    }
    watched_close(&c.l);
    return EX_OK;
}

/* ---- main ------------------------------------------------------------------
 */

int
main(int argc, char **argv) {
    enum {
        O_URL = 256,
        O_EVURL,
        O_TIMEOUT,
        O_JSON,
        O_INTERVAL,
        O_ITER,
        O_COUNT
    };
    static const struct option lo[] = {
        {"url", required_argument, NULL, O_URL},
        {"events-url", required_argument, NULL, O_EVURL},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"json", no_argument, NULL, O_JSON},
        {"interval", required_argument, NULL, O_INTERVAL},
        {"iterations", required_argument, NULL, O_ITER},
        {"count", required_argument, NULL, O_COUNT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    /* the watchdogs' log lines: warnings only (an INFO line would land in
     * the middle of `top`'s screen) */
    cr_log_setup(CR_LEVEL_WARN, CR_LOG_TEXT, 2);
    opts o = {
        .url = CFGRECV_DEFAULT_MONITOR_URL,
        .events_url = CFGRECV_DEFAULT_EVENTS_URL,
        .timeout_ms = 5000,
        .interval_ms = 1000,
    };
    int c;
    uint64_t n;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case O_URL:
            o.url = optarg;
            break;
        case O_EVURL:
            o.events_url = optarg;
            break;
        case O_JSON:
            o.json = true;
            break;
        case O_TIMEOUT: {
            char *end;
            double s = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(s > 0) || s > 86400) {
                return usage_error("bad --timeout '%s' (seconds)", optarg);
            }
            o.timeout_ms = (int)(s * 1000);
            if (o.timeout_ms == 0) {
                o.timeout_ms = 1;
            }
            break;
        }
        case O_INTERVAL:
            if (cr_tool_parse_duration(optarg, &o.interval_ms) != 0 ||
                o.interval_ms < 100 || o.interval_ms > 3600000) {
                return usage_error("bad --interval '%s' (100ms..1h)", optarg);
            }
            break;
        case O_ITER:
            if (cr_tool_parse_uint(optarg, &n) != 0 || n == 0) {
                return usage_error("bad --iterations '%s'", optarg);
            }
            o.iterations = n;
            break;
        case O_COUNT:
            if (cr_tool_parse_uint(optarg, &n) != 0 || n == 0) {
                return usage_error("bad --count '%s'", optarg);
            }
            o.count = n;
            break;
        case 'h':
            usage(stdout);
            return EX_OK;
        case 'V':
            cr_tool_version("cfgrecv-monitor");
            return EX_OK;
        default:
            fprintf(stderr, "Try 'cfgrecv-monitor --help'.\n");
            return EX_USAGE;
        }
    }
    if (optind >= argc) {
        return usage_error("%s", "missing COMMAND");
    }
    const char *cmd = argv[optind++];
    const char *arg = NULL;
    if (strcmp(cmd, "query") == 0) {
        if (optind >= argc) {
            return usage_error("%s", "query needs a command text");
        }
        arg = argv[optind++];
    }
    if (optind < argc) {
        return usage_error("unexpected argument '%s'", argv[optind]);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    static const char *const simple[] = {"status", "actors", "flows",
                                         "workspaces", "metrics"};
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        if (strcmp(cmd, simple[i]) == 0) {
            return run_query(&o, cmd, cmd);
        }
    }
    if (strcmp(cmd, "query") == 0) {
        return run_query(&o, arg, "query");
    }
    if (strcmp(cmd, "events") == 0) {
        return run_events(&o);
    }
    if (strcmp(cmd, "top") == 0) {
        return run_top(&o);
    }
    return usage_error("unknown command '%s'", cmd);
}
