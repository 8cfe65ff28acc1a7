/*
 * plugin.c - flow handlers from shared objects (plugin.h).
 */
#include "plugin.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgrecv/backoff.h"

struct cra_loaded_plugin {
    void *dl;
    cra_flow_handler handler; /* the plugin's table, with arg replaced */
};

static bool
good_name(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > 32) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

static cra_loaded_plugin *
refuse(void *dl, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static cra_loaded_plugin *
refuse(void *dl, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (dl != NULL) {
        dlclose(dl);
    }
    return NULL;
}

cra_loaded_plugin *
cra_plugin_load(const char *path, const char *arg, char *err, size_t errlen)
{
    /* dlopen looks a name without '/' up in the library path; a plugin
     * is a file the operator names */
    if (strchr(path, '/') == NULL) {
        return refuse(NULL, err, errlen,
                      "plugin %s: give a path (./%s for this directory)",
                      path, path);
    }
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        const char *why = dlerror();
        return refuse(NULL, err, errlen, "plugin %s: %s", path,
                      why ? why : "cannot load");
    }
    const cra_plugin *pl = dlsym(dl, CRA_PLUGIN_SYMBOL);
    if (pl == NULL) {
        return refuse(dl, err, errlen,
                      "plugin %s: no `%s` symbol (flow_handler.h, "
                      "\"plugins\")",
                      path, CRA_PLUGIN_SYMBOL);
    }
    if (pl->abi != CRA_PLUGIN_ABI || pl->size != sizeof(cra_flow_handler)) {
        return refuse(dl, err, errlen,
                      "plugin %s: built for plugin ABI %u (handler table "
                      "of %u bytes); this cfgrecvd has ABI %u (%zu bytes)",
                      path, (unsigned)pl->abi, (unsigned)pl->size,
                      (unsigned)CRA_PLUGIN_ABI, sizeof(cra_flow_handler));
    }
    const cra_flow_handler *h = &pl->handler;
    if (!good_name(h->name) || strcmp(h->name, "flows") == 0) {
        return refuse(dl, err, errlen,
                      "plugin %s: handler name must be 1-32 characters of "
                      "[a-z0-9_-] and not \"flows\"",
                      path);
    }
    if (h->retry != NULL && cr_backoff_policy_check(h->retry) != 0) {
        return refuse(dl, err, errlen, "plugin %s: bad retry policy", path);
    }
    cra_loaded_plugin *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return refuse(dl, err, errlen, "plugin %s: out of memory", path);
    }
    p->dl = dl;
    p->handler = *h;
    p->handler.arg = (void *)arg;
    return p;
}

const cra_flow_handler *
cra_plugin_handler(const cra_loaded_plugin *p)
{
    return &p->handler;
}

void
cra_plugin_unload(cra_loaded_plugin *p)
{
    if (p != NULL) {
        dlclose(p->dl);
        free(p);
    }
}
