/*
 * test_runtime_log.c - every --log-format json line is one JSON object,
 * whatever bytes the message holds: a workspace or flow name given to
 * cfgctl may be any bytes, and a long message is cut at the line buffer.
 * Checked with jansson, as a log shipper would read them.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void log_emit_json(int fd, const char *component, const char *msg);

/* line_of logs msg and returns the line read back (malloc'd). */
static char *
line_of(const char *component, const char *msg)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    log_emit_json(fileno(f), component, msg);
    rewind(f);
    char *line = NULL;
    size_t cap = 0;
    cr_assert_gt(getline(&line, &cap, f), 0);
    char *rest = NULL;
    size_t rcap = 0;
    cr_assert_eq(getline(&rest, &rcap, f), -1, "one line per message");
    free(rest);
    fclose(f);
    return line;
}

/* parsed returns the "msg" of a line that must be a JSON object. */
static char *
parsed(const char *line, const char *component)
{
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    cr_assert_not_null(o, "not JSON (%s): %.80s", err.text, line);
    cr_assert_str_eq(json_string_value(json_object_get(o, "component")),
                     component);
    cr_assert_str_eq(json_string_value(json_object_get(o, "level")), "info");
    char *msg = strdup(json_string_value(json_object_get(o, "msg")));
    json_decref(o);
    return msg;
}

Test(runtime_log, json_lines_escape_quotes_and_controls)
{
    const char *m = "ws \"a\\b\" \x01\x1b[31m tab\there\nnext";
    char *line = line_of("comp\"x", m);
    char *msg = parsed(line, "comp\"x");
    cr_assert_str_eq(msg, m, "the message comes back as it was");
    free(msg);
    free(line);
}

Test(runtime_log, json_lines_keep_utf8_and_replace_the_rest)
{
    /* valid 2, 3 and 4 byte characters stay; a stray continuation byte,
     * a bad lead byte, an overlong form, a surrogate and a sequence cut
     * by the end each become U+FFFD */
    char *line = line_of("c", "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e|"
                              "\x80|\xff|\xc0\xaf|\xed\xa0\x80|\xe2\x82");
    char *msg = parsed(line, "c");
    cr_assert_str_eq(msg, "\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e|"
                          "\xef\xbf\xbd|\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
                          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
                          "\xef\xbf\xbd\xef\xbf\xbd",
                     "got %s", msg);
    free(msg);
    free(line);
}

Test(runtime_log, long_json_lines_are_cut_and_stay_json)
{
    /* longer than the line buffer, in each shape that could break it: a
     * multi-byte character at the cut, escapes at the cut */
    static const char *const unit[] = {"\xc3\xa9", "\x01", "\"", "a"};
    for (size_t u = 0; u < sizeof(unit) / sizeof(unit[0]); u++) {
        for (size_t pad = 0; pad < 8; pad++) {
            char big[16384];
            size_t n = 0;
            for (; n < pad; n++) {
                big[n] = 'x';
            }
            while (n + strlen(unit[u]) < sizeof(big) - 1) {
                memcpy(big + n, unit[u], strlen(unit[u]));
                n += strlen(unit[u]);
            }
            big[n] = '\0';
            char *line = line_of("c", big);
            char *msg = parsed(line, "c");
            cr_assert_gt(strlen(msg), 100, "unit %zu pad %zu: cut to nothing",
                         u, pad);
            cr_assert_lt(strlen(msg), n, "cut");
            /* the message's own buffer may cut a character: its first
             * bytes then show as one U+FFFD */
            size_t keep = strlen(msg);
            if (keep >= 3 && strcmp(msg + keep - 3, "\xef\xbf\xbd") == 0 &&
                u == 0) {
                msg[keep - 3] = '\0';
            }
            cr_assert(strncmp(msg, big, strlen(msg)) == 0,
                      "unit %zu pad %zu: the kept part is the message's "
                      "start",
                      u, pad);
            free(msg);
            free(line);
        }
    }
}
