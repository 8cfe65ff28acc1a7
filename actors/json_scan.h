/*
 * json_scan.h - validate a JSON text without building a tree.
 *
 * A handler that does not need the parsed flow (the flow directory:
 * cra_flow_handler.no_json_tree) only needs to know that the value is a
 * JSON object, and its "blueprint-name". (The hook and worker handlers
 * still take the jansson tree: they run one process per flow, which
 * costs far more than the parse.) Building a
 * jansson tree costs ~40 us for a 2 KB flow, which is 0.4 s of one core
 * for 10,000 flows; this scanner checks the same grammar (RFC 8259,
 * UTF-8 included) in a single pass, allocating nothing.
 */
#ifndef CRA_JSON_SCAN_H
#define CRA_JSON_SCAN_H

#include <stddef.h>

/* The deepest nesting accepted, counted as jansson 2.14 counts it
 * (JSON_PARSER_MAX_DEPTH): every value, scalars included, is one level
 * below its container and the outermost object is level 1, so 2048
 * nested arrays are accepted, 2048 holding a number are not. The scanner
 * is iterative: its cost is CRA_JSON_MAX_DEPTH / 8 bytes of stack. */
#define CRA_JSON_MAX_DEPTH 2048

/* cra_json_scan_object checks that p[0..n) is exactly one JSON object
 * (surrounding whitespace allowed) that jansson's json_loadb(p, n, 0)
 * would accept, numbers included: an integer outside long long or a real
 * that overflows a double is an error there, so here too.
 *
 * Returns 0 and, when bp is not NULL and bplen > 0, writes into bp what
 * json_string_value(json_object_get(root, "blueprint-name")) gives: keys
 * compared once unescaped, the last of duplicate keys wins, "" if absent
 * or not a string. The value is unescaped UTF-8 (never a NUL inside: the
 * grammar refuses "\u0000"); if it is longer than bplen - 1 bytes, bp
 * gets its longest prefix of whole UTF-8 characters that fits, so bp is
 * always valid UTF-8 and a prefix of the real value.
 *
 * Returns -1 otherwise, bp set to "", with a reason in err[0..errlen)
 * ("flow value is not valid JSON: ... at byte N" or "flow value is not a
 * JSON object"). */
int cra_json_scan_object(const char *p, size_t n, char *bp, size_t bplen,
                         char *err, size_t errlen);

#endif
