/*
 * flow_dir.c - the merged flow directory (flow_dir.h).
 *
 * Merge: one `dflow` per distinct (workspace, id), found through a hash
 * map of "WS\0ID", holding each handler's report. Text: the flows to list
 * are sorted by workspace, then id (strcmp, the order of jansson's
 * JSON_SORT_KEYS), and written straight into one growing buffer.
 */
#include "flow_dir.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/utf8.h"

#include "events.h" /* cra_rfc3339_ms */
#include "strmap.h"

#define NRANKS 5

/* Flow states, least advanced first: a flow's merged state is the lowest
 * rank any handler reports. */
static const char *const rank_names[NRANKS] = {"failed", "backoff",
                                               "starting", "stopping",
                                               "running"};
#define RANK_STARTING 2

/* The same names in strcmp order, for the "states" object. */
static const int ranks_sorted[NRANKS] = {1, 0, 4, 2, 3};

typedef struct dflow {
    const cra_flow_info *h[CRA_FLOW_DIR_MAX_HANDLERS]; /* NULL: not heard */
    /* the names as shown: the first report's (borrowed), or, for a name
     * that is not UTF-8, a copy with U+FFFD for each bad byte (owned:
     * own_ws / own_id). Merged, sorted and counted as shown, so two
     * names that show alike are one flow, as in a jansson document. */
    const char *workspace, *id;
    bool own_ws, own_id;
    int rank;
} dflow;

struct cra_flow_dir {
    const char *names[CRA_FLOW_DIR_MAX_HANDLERS]; /* as shown (dflow) */
    bool own_name[CRA_FLOW_DIR_MAX_HANDLERS];
    size_t nh;
    size_t hsorted[CRA_FLOW_DIR_MAX_HANDLERS]; /* handler indexes by name */
    dflow *flows; /* in first-report order */
    size_t nflows;
    size_t counts[NRANKS];
};

static int
state_rank(const char *s)
{
    for (int i = 0; i < NRANKS; i++) {
        if (strcmp(s, rank_names[i]) == 0) {
            return i;
        }
    }
    return 0; /* unknown: shown as failed, the state that asks a look */
}

/* utf8_len: the length of the valid UTF-8 sequence at s, 0 if none. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    int len = cr_utf8_seq(s, n);
    return len > 0 ? (size_t)len : 0;
}

/* utf8_ok tells whether the n bytes at s are all valid UTF-8. */
static bool
utf8_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t ul = utf8_len((const unsigned char *)s + i, n - i);
        if (ul == 0) {
            return false;
        }
        i += ul;
    }
    return true;
}

/* utf8_clean returns a malloc'd copy of s with every byte that is not
 * part of valid UTF-8 replaced by U+FFFD, as cra_flow_dir_text shows it. */
static char *
utf8_clean(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(3 * n + 1), *o = out;
    if (out == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n;) {
        size_t ul = utf8_len((const unsigned char *)s + i, n - i);
        if (ul == 0) {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(o, s + i, ul);
            o += ul;
            i += ul;
        }
    }
    *o = '\0';
    return out;
}

const char *
cra_flow_dir_shown(const char *name, bool *owned)
{
    *owned = !utf8_ok(name, strlen(name));
    return *owned ? utf8_clean(name) : name;
}

/* flow_key returns "WS\0ID" in buf if it fits in cap bytes, else in a
 * malloc'd buffer (free it when it is not buf); NULL without memory. */
static char *
flow_key(const char *ws, const char *id, char *buf, size_t cap, size_t *len)
{
    size_t wl = strlen(ws), il = strlen(id);
    char *k = wl + 1 + il <= cap ? buf : malloc(wl + 1 + il);
    if (k != NULL) {
        memcpy(k, ws, wl);
        k[wl] = '\0';
        memcpy(k + wl + 1, id, il);
        *len = wl + 1 + il;
    }
    return k;
}

cra_flow_dir *
cra_flow_dir_merge(const char *const *names, cra_flow_info *const *v,
                   const size_t *n, size_t nh)
{
    if (nh > CRA_FLOW_DIR_MAX_HANDLERS) {
        return NULL;
    }
    size_t total = 0;
    for (size_t i = 0; i < nh; i++) {
        total += n[i];
    }
    cra_flow_dir *d = calloc(1, sizeof(*d));
    cra_strmap *idx = cra_strmap_new();
    if (d == NULL || idx == NULL ||
        (d->flows = calloc(total ? total : 1, sizeof(*d->flows))) == NULL) {
        goto fail;
    }
    d->nh = nh;
    for (size_t i = 0; i < nh; i++) {
        if ((d->names[i] = cra_flow_dir_shown(names[i], &d->own_name[i])) ==
            NULL) {
            goto fail;
        }
    }
    for (size_t i = 0; i < nh; i++) { /* insertion sort: nh <= 16 */
        size_t j = i;
        while (j > 0 &&
               strcmp(d->names[d->hsorted[j - 1]], d->names[i]) > 0) {
            d->hsorted[j] = d->hsorted[j - 1];
            j--;
        }
        d->hsorted[j] = i;
    }
    char buf[512];
    for (size_t i = 0; i < nh; i++) {
        for (size_t j = 0; j < n[i]; j++) {
            const cra_flow_info *f = &v[i][j];
            bool own_ws, own_id;
            const char *ws = cra_flow_dir_shown(f->workspace, &own_ws);
            const char *id = cra_flow_dir_shown(f->id, &own_id);
            size_t kl = 0;
            char *key = ws && id ? flow_key(ws, id, buf, sizeof(buf), &kl)
                                 : NULL;
            dflow *df = key ? cra_strmap_get(idx, key, kl) : NULL;
            if (key != NULL && df == NULL) {
                df = &d->flows[d->nflows];
                if (cra_strmap_put(idx, key, kl, df, NULL) == 0) {
                    *df = (dflow){.workspace = ws, .id = id,
                                  .own_ws = own_ws, .own_id = own_id,
                                  .rank = state_rank(f->state)};
                    own_ws = own_id = false; /* the entry's now */
                    d->nflows++;
                } else {
                    df = NULL;
                }
            } else if (df != NULL && state_rank(f->state) < df->rank) {
                df->rank = state_rank(f->state);
            }
            if (own_ws) {
                free((char *)ws);
            }
            if (own_id) {
                free((char *)id);
            }
            if (key != buf) {
                free(key);
            }
            if (df == NULL) {
                goto fail; /* out of memory */
            }
            /* a handler reports a flow once, but two of its flows can
             * show alike (names that are not UTF-8): it keeps the least
             * advanced, as the entry's state does, so the two agree */
            if (df->h[i] == NULL ||
                state_rank(f->state) < state_rank(df->h[i]->state)) {
                df->h[i] = f;
            }
        }
    }
    for (size_t k = 0; k < d->nflows; k++) {
        dflow *df = &d->flows[k];
        for (size_t i = 0; i < nh; i++) {
            if (df->h[i] == NULL && RANK_STARTING < df->rank) {
                df->rank = RANK_STARTING; /* a handler yet to hear of it */
            }
        }
        d->counts[df->rank]++;
    }
    cra_strmap_free(idx, NULL);
    return d;
fail:
    cra_strmap_free(idx, NULL);
    cra_flow_dir_free(d);
    return NULL;
}

size_t
cra_flow_dir_flows(const cra_flow_dir *d)
{
    return d->nflows;
}

void
cra_flow_dir_free(cra_flow_dir *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t k = 0; d->flows != NULL && k < d->nflows; k++) {
        if (d->flows[k].own_ws) {
            free((char *)d->flows[k].workspace);
        }
        if (d->flows[k].own_id) {
            free((char *)d->flows[k].id);
        }
    }
    for (size_t i = 0; i < d->nh; i++) {
        if (d->own_name[i]) {
            free((char *)d->names[i]);
        }
    }
    free(d->flows);
    free(d);
}

/* ---- writing --------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static bool
sb_room(sbuf *b, size_t more)
{
    if (b->oom) {
        return false;
    }
    if (b->len + more + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void
sb_put(sbuf *b, const char *s, size_t n)
{
    if (sb_room(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
    }
}

static void
sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void
sb_uint(sbuf *b, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    sb_put(b, num, (size_t)n);
}

/* sb_esc writes the inside of a JSON string for s, the way jansson dumps
 * one (compact, UTF-8 kept, '/' not escaped, other control characters as
 * \u00XX, bytes that are not UTF-8 as U+FFFD). */
static void
sb_esc(sbuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            i++;
            continue;
        }
        size_t ul = c >= 0x80 ? utf8_len(p + i, n - i) : 1;
        if (c >= 0x80 && ul > 0) {
            run += ul;
            i += ul;
            continue;
        }
        sb_put(b, s + i - run, run);
        run = 0;
        char esc[8];
        const char *e = esc;
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04X", c);
            } else {
                e = "\xEF\xBF\xBD"; /* not UTF-8: U+FFFD */
            }
        }
        sb_puts(b, e);
        i++;
    }
    sb_put(b, s + n - run, run);
}

/* sb_str writes s as a JSON string (sb_esc). */
static void
sb_str(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    sb_esc(b, s);
    sb_put(b, "\"", 1);
}

static int
cmp_flows(const void *a, const void *b)
{
    const dflow *x = *(const dflow *const *)a, *y = *(const dflow *const *)b;
    int c = strcmp(x->workspace, y->workspace);
    return c != 0 ? c : strcmp(x->id, y->id);
}

/* write_flow writes one flow's entry, merged over the handlers: the first
 * non-empty blueprint and error (prefixed with its handler's name), in
 * handler order; restarts summed; the latest change. */
static void
write_flow(sbuf *b, const cra_flow_dir *d, const dflow *f)
{
    const char *blueprint = "";
    const cra_flow_info *err = NULL;
    size_t errh = 0;
    uint64_t restarts = 0, since = 0;
    for (size_t i = 0; i < d->nh; i++) {
        const cra_flow_info *h = f->h[i];
        if (h == NULL) {
            continue;
        }
        if (blueprint[0] == '\0') {
            blueprint = h->blueprint;
        }
        if (err == NULL && h->error[0] != '\0') {
            err = h;
            errh = i;
        }
        restarts += h->restarts;
        if (h->since_ms > since) {
            since = h->since_ms;
        }
    }
    sb_puts(b, "{\"blueprint\":");
    sb_str(b, blueprint);
    sb_puts(b, ",\"error\":");
    if (err == NULL) {
        sb_puts(b, "null");
    } else { /* "HANDLER: ERROR" */
        sb_put(b, "\"", 1);
        sb_esc(b, d->names[errh]);
        sb_put(b, ": ", 2);
        sb_esc(b, err->error);
        sb_put(b, "\"", 1);
    }
    sb_puts(b, ",\"handlers\":{");
    for (size_t k = 0; k < d->nh; k++) {
        size_t i = d->hsorted[k];
        if (k > 0) {
            sb_put(b, ",", 1);
        }
        sb_str(b, d->names[i]);
        sb_put(b, ":", 1);
        sb_str(b, f->h[i] != NULL ? f->h[i]->state : "starting");
    }
    sb_puts(b, "},\"restarts\":");
    sb_uint(b, restarts);
    char when[64];
    cra_rfc3339_ms(since, when, sizeof(when));
    sb_puts(b, ",\"since\":\"");
    sb_puts(b, when);
    sb_puts(b, "\",\"state\":\"");
    sb_puts(b, rank_names[f->rank]);
    sb_puts(b, "\"}");
}

char *
cra_flow_dir_text(const cra_flow_dir *d, uint64_t version, size_t limit,
                  size_t *len)
{
    /* the flows to list: all, or the `limit` least advanced */
    size_t nsel = limit == 0 || limit > d->nflows ? d->nflows : limit;
    const dflow **sel = malloc((d->nflows ? d->nflows : 1) * sizeof(*sel));
    if (sel == NULL) {
        return NULL;
    }
    size_t listed = 0;
    for (int rank = 0; rank < NRANKS && listed < nsel; rank++) {
        for (size_t k = 0; k < d->nflows && listed < nsel; k++) {
            if (d->flows[k].rank == rank) {
                sel[listed++] = &d->flows[k];
            }
        }
    }
    qsort(sel, listed, sizeof(*sel), cmp_flows);

    sbuf b = {0};
    sb_room(&b, 64 + listed * 256);
    sb_put(&b, "{", 1);
    if (limit != 0) {
        /* every workspace, counted over all flows */
        size_t nws = 0;
        cra_strmap *ws = cra_strmap_new();
        for (size_t k = 0; ws != NULL && k < d->nflows; k++) {
            const char *w = d->flows[k].workspace;
            if (cra_strmap_put(ws, w, strlen(w), (void *)w, NULL) != 0) {
                b.oom = true;
                break;
            }
        }
        if (ws == NULL) {
            b.oom = true;
        } else {
            nws = cra_strmap_count(ws);
        }
        cra_strmap_free(ws, NULL);
        sb_puts(&b, "\"states\":{");
        for (int i = 0; i < NRANKS; i++) {
            int r = ranks_sorted[i];
            sb_puts(&b, i ? ",\"" : "\"");
            sb_puts(&b, rank_names[r]);
            sb_puts(&b, "\":");
            sb_uint(&b, d->counts[r]);
        }
        sb_puts(&b, "},\"total\":");
        sb_uint(&b, d->nflows);
        sb_puts(&b, listed < d->nflows ? ",\"truncated\":true"
                                       : ",\"truncated\":false");
        sb_puts(&b, ",\"version\":");
        sb_uint(&b, version);
        sb_puts(&b, ",\"workspace_count\":");
        sb_uint(&b, nws);
    } else {
        sb_puts(&b, "\"version\":");
        sb_uint(&b, version);
    }
    sb_puts(&b, ",\"workspaces\":{");
    for (size_t k = 0; k < listed; k++) {
        const dflow *f = sel[k];
        bool new_ws = k == 0 || strcmp(sel[k - 1]->workspace, f->workspace);
        if (new_ws) {
            if (k > 0) {
                sb_puts(&b, "},");
            }
            sb_str(&b, f->workspace);
            sb_puts(&b, ":{");
        } else {
            sb_put(&b, ",", 1);
        }
        sb_str(&b, f->id);
        sb_put(&b, ":", 1);
        write_flow(&b, d, f);
    }
    sb_puts(&b, listed > 0 ? "}}}" : "}}");
    free(sel);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len != NULL) {
        *len = b.len;
    }
    return b.p;
}

/* ws_states returns the {STATE: count} object of workspace ws (a name
 * as shown: UTF-8) in out, added if new; NULL without memory. */
static json_t *
ws_states(json_t *out, const char *ws)
{
    json_t *states = json_object_get(out, ws);
    if (states == NULL &&
        json_object_set_new(out, ws, states = json_object()) != 0) {
        return NULL; /* set_new released the new object */
    }
    return states;
}

json_t *
cra_flow_dir_workspaces(const cra_flow_dir *d)
{
    json_t *out = json_object();
    for (size_t k = 0; out != NULL && k < d->nflows; k++) {
        const dflow *f = &d->flows[k];
        json_t *states = ws_states(out, f->workspace);
        if (states == NULL) {
            json_decref(out);
            return NULL;
        }
        const char *st = rank_names[f->rank];
        json_int_t c = json_integer_value(json_object_get(states, st));
        json_object_set_new(states, st, json_integer(c + 1));
    }
    return out;
}
