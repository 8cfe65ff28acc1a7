/*
 * plugin.h - flow handlers loaded from shared objects (cfgrecvd
 * --plugin). The ABI a plugin implements is in flow_handler.h ("plugins").
 *
 * Loading checks what can be checked before the daemon starts: the file
 * loads (dlopen, RTLD_NOW: every symbol resolved now), exports
 * `cfgrecv_plugin`, was built for this ABI, names its handler with 1-32
 * characters of [a-z0-9_-] other than the built-in "flows", and gives a
 * retry policy that cr_backoff_policy_check accepts. Anything else is a
 * clear error message and no plugin.
 */
#ifndef CRA_PLUGIN_H
#define CRA_PLUGIN_H

#include <stddef.h>

#include "flow_handler.h"

typedef struct cra_loaded_plugin cra_loaded_plugin;

/* cra_plugin_load loads the plugin at path; arg (may be NULL; borrowed,
 * must outlive the plugin) becomes its handler's init argument. Returns
 * the plugin (the caller's, cra_plugin_unload), or NULL with the reason
 * in err[0..errlen). */
cra_loaded_plugin *cra_plugin_load(const char *path, const char *arg,
                                   char *err, size_t errlen);

/* cra_plugin_handler returns the plugin's handler table, the plugin's
 * (valid until cra_plugin_unload). */
const cra_flow_handler *cra_plugin_handler(const cra_loaded_plugin *p);

/* cra_plugin_unload closes the shared object and frees p: only once its
 * handler actor has stopped (cra_receiver_stop). NULL is a no-op. */
void cra_plugin_unload(cra_loaded_plugin *p);

#endif
