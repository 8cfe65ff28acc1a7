/*
 * json_scan.h - validate a JSON text without building a tree.
 *
 * Handlers that do not need the parsed flow (the flow directory, the hook
 * runner and the worker supervisor pass the text on) only need to know
 * that the value is a JSON object, and its "blueprint-name". Building a
 * jansson tree costs ~40 us for a 2 KB flow, which is 0.4 s of one core
 * for 10,000 flows; this scanner checks the same grammar (RFC 8259,
 * UTF-8 included) in a single pass, allocating nothing.
 */
#ifndef CRA_JSON_SCAN_H
#define CRA_JSON_SCAN_H

#include <stddef.h>

#define CRA_JSON_MAX_DEPTH 512

/* cra_json_scan_object checks that p[0..n) is exactly one JSON object
 * (surrounding whitespace allowed). Returns 0 and, when bp is not NULL,
 * copies the top-level "blueprint-name" string (unescaped, truncated to
 * bplen - 1; "" if absent or not a string) into bp. Returns -1 with a
 * reason in err[0..errlen) otherwise ("not valid JSON: ... at byte N" or
 * "not a JSON object"). */
int cra_json_scan_object(const char *p, size_t n, char *bp, size_t bplen,
                         char *err, size_t errlen);

#endif
