/*
 * proc_flow.c - argv, environment and the id rule for flows' programs
 * (see proc_flow.h for the rule and what is inherited).
 */
#include "proc_flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/actor.h"

static const char *const inherited[] = {"HOME", "LANG",   "LC_ALL", "LC_CTYPE",
                                        "TZ",   "TMPDIR", "USER",   "LOGNAME"};
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

static int
id_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
           c == '@' || c == '-';
}

/* escape writes s with non-printable and non-ASCII bytes as \xNN */
static void
escape(char *dst, size_t cap, const char *s) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (n + 5 >= cap) {
            if (n + 4 < cap) {
                memcpy(dst + n, "...", 3);
                n += 3;
            }
            break;
        }
        if (*p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '"') {
            dst[n++] = (char)*p;
        } else {
            dst[n++] = '\\';
            dst[n++] = 'x';
            dst[n++] = hex[*p >> 4];
            dst[n++] = hex[*p & 15];
        }
    }
    dst[n] = '\0';
}

int
cra_proc_id_check(const char *what, const char *s, char *err, size_t errlen) {
    size_t n = strlen(s);
    const char *why = NULL;
    if (n == 0) {
        why = "empty";
    } else if (n > CRA_PROC_ID_MAX) {
        why = "too long";
    } else if (s[0] == '-' || s[0] == '.') {
        why = "starts with '-' or '.'";
    } else {
        for (size_t i = 0; i < n; i++) {
            if (!id_char((unsigned char)s[i])) {
                why = "character not allowed";
                break;
            }
        }
    }
    if (why == NULL) {
        return 0;
    }
    char shown[160];
    escape(shown, sizeof(shown), s);
    snprintf(err, errlen,
             "%s id \"%s\" refused (%s): ids passed to programs must be "
             "%s",
             what, shown, why, CRA_PROC_ID_RULE);
    return -1;
}

static char *
kv(const char *k, const char *v) {
    size_t a = strlen(k), b = strlen(v);
    char *s = malloc(a + b + 2);
    if (s != NULL) {
        memcpy(s, k, a);
        s[a] = '=';
        memcpy(s + a + 1, v, b + 1);
    }
    return s;
}

void
cra_proc_cmd_free(cra_proc_cmd *c) {
    for (char **p = c->argv; p && *p; p++) {
        free(*p);
    }
    for (char **p = c->envp; p && *p; p++) {
        free(*p);
    }
    free(c->argv);
    free(c->envp);
    free(c->prefix);
    memset(c, 0, sizeof(*c));
}

int
cra_proc_cmd_build(cra_proc_cmd *c, const char *path, const char *const *mid,
                   size_t nmid, const char *workspace, const char *flow,
                   const char *blueprint, uint64_t version, const char *tag) {
    memset(c, 0, sizeof(*c));
    size_t na = nmid + 4, ne = 5 + sizeof(inherited) / sizeof(*inherited);
    c->argv = calloc(na, sizeof(char *));
    c->envp = calloc(ne, sizeof(char *));
    if (c->argv == NULL || c->envp == NULL) {
        cra_proc_cmd_free(c);
        return CR_ENOMEM;
    }
    bool ok = true;
    size_t i = 0;
    ok &= (c->argv[i++] = strdup(path)) != NULL;
    for (size_t k = 0; ok && k < nmid; k++) {
        ok &= (c->argv[i++] = strdup(mid[k])) != NULL;
    }
    ok = ok && (c->argv[i++] = strdup(workspace)) != NULL;
    ok = ok && (c->argv[i++] = strdup(flow)) != NULL;
    char ver[32];
    snprintf(ver, sizeof(ver), "%llu", (unsigned long long)version);
    const char *path_env = getenv("PATH");
    size_t e = 0;
    ok = ok && (c->envp[e++] = kv("CFGRECV_WORKSPACE", workspace)) != NULL;
    ok = ok && (c->envp[e++] = kv("CFGRECV_FLOW", flow)) != NULL;
    ok = ok && (c->envp[e++] = kv("CFGRECV_BLUEPRINT",
                                  blueprint ? blueprint : "")) != NULL;
    ok = ok && (c->envp[e++] = kv("CFGRECV_VERSION", ver)) != NULL;
    ok = ok && (c->envp[e++] =
                    kv("PATH", path_env && path_env[0] ? path_env
                                                       : DEFAULT_PATH)) != NULL;
    for (size_t k = 0; ok && k < sizeof(inherited) / sizeof(*inherited); k++) {
        const char *v = getenv(inherited[k]);
        if (v != NULL) {
            ok = (c->envp[e++] = kv(inherited[k], v)) != NULL;
        }
    }
    size_t pl = strlen(workspace) + strlen(flow) + (tag ? strlen(tag) : 0) + 8;
    c->prefix = ok ? malloc(pl) : NULL;
    if (c->prefix == NULL) {
        cra_proc_cmd_free(c);
        return CR_ENOMEM;
    }
    if (tag != NULL) {
        snprintf(c->prefix, pl, "%s/%s (%s)", workspace, flow, tag);
    } else {
        snprintf(c->prefix, pl, "%s/%s", workspace, flow);
    }
    return 0;
}

const char *
cra_proc_blueprint(const json_t *flow) {
    json_t *bp = flow ? json_object_get(flow, "blueprint-name") : NULL;
    return json_is_string(bp) ? json_string_value(bp) : "";
}
