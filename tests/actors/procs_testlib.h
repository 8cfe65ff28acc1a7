/*
 * procs_testlib.h - helpers shared by the hook runner, worker supervisor
 * and process watcher tests: a temp dir with scripts, file reading, a
 * handler actor driven like the receiver drives it, and /proc checks for
 * zombies and leftover children. Assert only on the test thread.
 */
#ifndef PROCS_TESTLIB_H
#define PROCS_TESTLIB_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgrecv/actor.h"
#include "handler_actor.h"
#include "recv_msgs.h"

/* procs_log.c: cfgrecv/log.h cannot be included next to criterion */
void procs_log_to(int fd);

static char P_dir[256];
static cr_rt *P_rt;
static cr_id P_hid;
static int P_logfd = -1;

/* p_path writes DIR/name into buf. */
static inline const char *
p_path(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", P_dir, name);
    return buf;
}

/* p_setup makes the temp dir, sends the log to DIR/log, and a runtime. */
static inline void
p_setup(void) {
    snprintf(P_dir, sizeof(P_dir), "/tmp/cfgrecv-procs.XXXXXX");
    cr_assert_not_null(mkdtemp(P_dir));
    char p[300];
    P_logfd = open(p_path(p, sizeof(p), "log"),
                   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    cr_assert_geq(P_logfd, 0);
    procs_log_to(P_logfd);
    cr_assert_eq(cr_rt_new(NULL, &P_rt), 0);
}

static inline void
p_teardown(void) {
    if (P_rt != NULL) {
        cr_rt_destroy(P_rt);
        P_rt = NULL;
    }
    procs_log_to(2);
    if (P_logfd >= 0) {
        close(P_logfd);
        P_logfd = -1;
    }
    if (getenv("PROCS_KEEP") == NULL && P_dir[0] != '\0') {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", P_dir);
        int rc = system(cmd);
        (void)rc;
    }
}

/* p_script writes an executable script DIR/name with body (the string
 * "@D@" is replaced by the temp dir) and returns its path in buf. */
static inline const char *
p_script(char *buf, size_t len, const char *name, const char *body) {
    p_path(buf, len, name);
    FILE *f = fopen(buf, "w");
    cr_assert_not_null(f);
    for (const char *s = body; *s;) {
        if (strncmp(s, "@D@", 3) == 0) {
            fputs(P_dir, f);
            s += 3;
        } else {
            fputc(*s++, f);
        }
    }
    fclose(f);
    cr_assert_eq(chmod(buf, 0755), 0);
    return buf;
}

/* p_read returns the malloc'd contents of DIR/name ("" if missing). */
static inline char *
p_read(const char *name) {
    char p[300];
    FILE *f = fopen(p_path(p, sizeof(p), name), "r");
    if (f == NULL) {
        return strdup("");
    }
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    size_t r;
    while ((r = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            cap *= 2;
            s = realloc(s, cap);
        }
    }
    s[n] = '\0';
    fclose(f);
    return s;
}

/* p_count counts occurrences of needle in DIR/name. */
static inline int
p_count(const char *name, const char *needle) {
    char *s = p_read(name);
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++) {
        n++;
    }
    free(s);
    return n;
}

static inline bool
p_wait_count(const char *name, const char *needle, int want, int ms) {
    for (int t = 0; t <= ms; t += 20) {
        if (p_count(name, needle) >= want) {
            return true;
        }
        usleep(20000);
    }
    return false;
}

/* p_spawn_handler runs handler table h in a handler actor. */
static inline void
p_spawn_handler(const cra_flow_handler *h) {
    char name[80];
    cra_handler_actor_name(h, name, sizeof(name));
    cr_spawn_opts so = {.name = name};
    cr_assert_eq(cr_spawn(P_rt, &cra_handler_behaviour, (void *)h, &so, &P_hid),
                 0);
}

typedef struct p_op {
    int op;
    const char *id;
    const char *text;
} p_op;

static inline void
p_send(const char *ws, uint64_t version, const p_op *ops, size_t n) {
    rm_flows_builder b;
    cr_assert_eq(rm_flows_begin(&b), 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(rm_flows_add(&b, ops[i].op, ops[i].id, strlen(ops[i].id),
                                  ops[i].text,
                                  ops[i].text ? strlen(ops[i].text) : 0),
                     0);
    }
    cr_msg *m;
    cr_assert_eq(rm_flows_finish(&b, ws, strlen(ws), version, false, &m), 0);
    cr_assert_eq(cr_send(P_rt, CR_NOBODY, P_hid, m), 0);
}

static inline void
p_send1(const char *ws, uint64_t version, int op, const char *id,
        const char *text) {
    p_op o = {op, id, text};
    p_send(ws, version, &o, 1);
}

/* p_start_numbered starts the n flows <prefix>0 .. <prefix>n-1 of ws in
 * one diff, each with "{}" as its definition, and leaves their ids in ids
 * for the checks that follow. */
static inline void
p_start_numbered(const char *ws, uint64_t version, const char *prefix,
                 char (*ids)[16], int n) {
    p_op *ops = calloc((size_t)n, sizeof(*ops));
    cr_assert_not_null(ops);
    for (int i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s%d", prefix, i);
        ops[i] = (p_op){RM_OP_START, ids[i], "{}"};
    }
    p_send(ws, version, ops, (size_t)n);
    free(ops);
}

/* p_state returns ws/id's state ("absent" if not listed), its error and
 * restarts. */
static inline const char *
p_state(const char *ws, const char *id, char *err, size_t errlen,
        uint32_t *restarts) {
    cra_flow_info *v;
    size_t n;
    const char *st = "absent";
    cr_assert_eq(cra_handler_query(P_rt, P_hid, 10000, &v, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].workspace, ws) == 0 && strcmp(v[i].id, id) == 0) {
            st = v[i].state;
            if (err != NULL) {
                snprintf(err, errlen, "%s", v[i].error);
            }
            if (restarts != NULL) {
                *restarts = v[i].restarts;
            }
        }
    }
    cra_flow_info_free(v, n);
    return st;
}

static inline bool
p_wait_state(const char *ws, const char *id, const char *want, int ms) {
    for (int t = 0; t <= ms; t += 20) {
        if (strcmp(p_state(ws, id, NULL, 0, NULL), want) == 0) {
            return true;
        }
        usleep(20000);
    }
    return false;
}

/* p_catch_state polls ws/id every poll_ms for up to ms until it is in
 * state want, leaving its error in err: for a state a flow only passes
 * through (backoff), which wants a finer poll than p_wait_state's. */
static inline bool
p_catch_state(const char *ws, const char *id, const char *want, char *err,
              size_t errlen, int ms, int poll_ms) {
    uint64_t t0 = cr_now_ms();
    for (;;) {
        if (strcmp(p_state(ws, id, err, errlen, NULL), want) == 0) {
            return true;
        }
        if (cr_now_ms() - t0 >= (uint64_t)ms) {
            return false;
        }
        usleep((useconds_t)poll_ms * 1000);
    }
}

/* p_count_state counts flows in state `want`. */
static inline size_t
p_count_state(const char *want) {
    cra_flow_info *v;
    size_t n, k = 0;
    cr_assert_eq(cra_handler_query(P_rt, P_hid, 10000, &v, &n), 0);
    for (size_t i = 0; i < n; i++) {
        k += strcmp(v[i].state, want) == 0;
    }
    cra_flow_info_free(v, n);
    return k;
}

static inline size_t
p_count_flows(void) {
    cra_flow_info *v;
    size_t n;
    cr_assert_eq(cra_handler_query(P_rt, P_hid, 10000, &v, &n), 0);
    cra_flow_info_free(v, n);
    return n;
}

/* p_children counts processes whose parent is this one; *zombies gets
 * how many of them are zombies (state Z). */
static inline int
p_children(int *zombies) {
    DIR *d = opendir("/proc");
    int n = 0, z = 0;
    struct dirent *e;
    pid_t me = getpid();
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        char p[300], buf[512];
        snprintf(p, sizeof(p), "/proc/%s/stat", e->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        ssize_t r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r <= 0) {
            continue;
        }
        buf[r] = '\0';
        char *rp = strrchr(buf, ')');
        char state;
        long ppid;
        if (rp == NULL || sscanf(rp + 1, " %c %ld", &state, &ppid) != 2) {
            continue;
        }
        if (ppid == (long)me) {
            n++;
            z += state == 'Z';
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    if (zombies != NULL) {
        *zombies = z;
    }
    return n;
}

/* p_threads returns this process's thread count. */
static inline int
p_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "Threads: %d", &n) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

/* p_alive reports whether pid exists and is not a zombie. */
static inline bool
p_alive(long pid) {
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%ld/stat", pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t r = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (r <= 0) {
        return false;
    }
    buf[r] = '\0';
    char *rp = strrchr(buf, ')');
    return rp != NULL && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

/* p_teardown_checked stops the runtime (every handler actor stops its
 * flows), cleans up, and asserts that no child process is left behind,
 * zombie or not. The suites' .fini. */
static inline void
p_teardown_checked(void) {
    int z;
    if (P_rt != NULL) {
        cr_rt_destroy(P_rt);
        P_rt = NULL;
    }
    int n = p_children(&z);
    p_teardown();
    cr_assert_eq(n, 0, "children left: %d (zombies %d)", n, z);
}

#endif
