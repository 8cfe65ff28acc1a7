/*
 * test_plugin.c - loading flow handlers from shared objects (plugin.h):
 * the working plugin loads with its --plugin-arg as the init argument;
 * each broken variant of crash_plugin.c is refused with a reason that
 * names the problem.
 */
#include "plugin.h"

#include <criterion/criterion.h>
#include <string.h>

#define P(v) PLUGIN_DIR "/crash_plugin_" v ".so"

/* The plugins call cra_handler_done, which cfgrecvd exports; so does this
 * program (ENABLE_EXPORTS), once the function is linked in. */
void *const keep_handler_done = (void *)&cra_handler_done;

Test(plugin, loads_with_its_argument)
{
    char err[512] = "";
    cra_loaded_plugin *p = cra_plugin_load(P("ok"), "/some/dir", err,
                                           sizeof(err));
    cr_assert_not_null(p, "%s", err);
    const cra_flow_handler *h = cra_plugin_handler(p);
    cr_expect_str_eq(h->name, "crashy");
    cr_expect_str_eq((const char *)h->arg, "/some/dir");
    cr_expect_not_null(h->start);
    cr_expect_not_null(h->stop);
    cr_expect(h->no_json_tree);
    cra_plugin_unload(p);
    /* and again without an argument */
    p = cra_plugin_load(P("ok"), NULL, err, sizeof(err));
    cr_assert_not_null(p, "%s", err);
    cr_expect_null(cra_plugin_handler(p)->arg);
    cra_plugin_unload(p);
}

static void
refused(const char *path, const char *why)
{
    char err[512] = "";
    cra_loaded_plugin *p = cra_plugin_load(path, NULL, err, sizeof(err));
    cr_expect_null(p, "%s loaded", path);
    cra_plugin_unload(p);
    cr_expect(strstr(err, why) != NULL, "%s: '%s' lacks '%s'", path, err,
              why);
    cr_expect(strstr(err, path) != NULL, "the message names the file: %s",
              err);
}

Test(plugin, broken_ones_are_refused_with_the_reason)
{
    refused(P("nosym"), "no `cfgrecv_plugin` symbol");
    refused(P("abi"), "built for plugin ABI 2");
    refused(P("badname"), "handler name must be");
    refused(P("flows"), "not \"flows\"");
    refused(P("retry"), "bad retry policy");
    refused(PLUGIN_DIR "/missing.so", "missing.so");
    refused(PLUGIN_DIR, "plugin"); /* a directory: dlopen says why */
    refused("crash_plugin_ok.so", "give a path");
}
