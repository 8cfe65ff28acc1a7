/*
 * proc_flow.h - what a flow's program is told, and the names it may be
 * told: argv and environment built for one flow, and the id rule.
 *
 * Workspace and flow ids reach programs only as argv elements and
 * environment values (execve, never a shell, never a path built from
 * them). They must still be safe for the programs' own use - as a file
 * name, in a shell script that forgets to quote, as an option - so an id
 * is accepted only if it is 1..128 bytes of [A-Za-z0-9._:@-] and does not
 * start with '-' or '.'. TrustGraph's ids ("default", "flow-00",
 * "tg_flow.v2", "team:alice@example.com") pass; spaces, quotes, ';', '$',
 * backticks, '/', control characters and non-ASCII bytes do not.
 *
 * The environment is built, not inherited: CFGRECV_WORKSPACE,
 * CFGRECV_FLOW, CFGRECV_BLUEPRINT ("" when the flow has none),
 * CFGRECV_VERSION, PATH (the daemon's, or /usr/local/bin:/usr/bin:/bin),
 * and HOME, LANG, LC_ALL, LC_CTYPE, TZ, TMPDIR, USER, LOGNAME when the
 * daemon has them. Nothing else of the daemon's environment leaks.
 */
#ifndef CRA_PROC_FLOW_H
#define CRA_PROC_FLOW_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CRA_PROC_ID_MAX 128
#define CRA_PROC_ID_RULE                                                       \
    "1-128 characters from [A-Za-z0-9._:@-], not starting with '-' or '.'"

/* cra_proc_id_check returns 0 if s is an acceptable id; otherwise -1 with
 * "<what> id "<s, escaped>" refused: ids passed to programs must be ..."
 * in err. */
int cra_proc_id_check(const char *what, const char *s, char *err,
                      size_t errlen);

/* A program invocation for one flow: owned argv/envp arrays. */
typedef struct cra_proc_cmd {
    char **argv;
    char **envp;
    char *prefix; /* "WORKSPACE/FLOW" (plus " (OP)" for hooks) */
} cra_proc_cmd;

/* cra_proc_cmd_build builds argv = [path, mid[0..nmid), workspace, flow]
 * and the environment above into *c; tag (may be NULL) is appended to the
 * log prefix as " (tag)". Returns 0 or CR_ENOMEM (*c is then empty). */
int cra_proc_cmd_build(cra_proc_cmd *c, const char *path,
                       const char *const *mid, size_t nmid,
                       const char *workspace, const char *flow,
                       const char *blueprint, uint64_t version,
                       const char *tag);

/* cra_proc_cmd_free frees what cra_proc_cmd_build made. */
void cra_proc_cmd_free(cra_proc_cmd *c);

/* cra_proc_blueprint returns the flow's "blueprint-name" string, or "".
 * The pointer is borrowed from flow. */
const char *cra_proc_blueprint(const json_t *flow);

#endif
