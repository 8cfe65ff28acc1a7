/*
 * cfgrecv/log.h - process-wide logging, text or JSON lines.
 *
 * One line per call, written with a single write(2) so lines from many
 * threads never interleave. Thread-safe; configuration is set once at
 * start-up (cr_log_setup) before threads run. The names avoid
 * criterion's (it exports cr_log and defines CR_LOG_INFO, CR_LOG_ERROR),
 * so tests may include both headers.
 */
#ifndef CFGRECV_LOG_H
#define CFGRECV_LOG_H

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CR_LEVEL_DEBUG = 0,
    CR_LEVEL_INFO = 1,
    CR_LEVEL_WARN = 2,
    CR_LEVEL_ERROR = 3,
    CR_LEVEL_OFF = 4,
} cr_log_level;

typedef enum { CR_LOG_TEXT = 0, CR_LOG_JSON = 1 } cr_log_format;

/* cr_log_setup sets the minimum level, the format and the file descriptor
 * (2 = stderr by default). */
void cr_log_setup(cr_log_level level, cr_log_format fmt, int fd);

/* cr_log_set_fd changes only the output descriptor (daemon log file). */
void cr_log_set_fd(int fd);

/* cr_log_parse_level parses "debug|info|warn|error|off"; returns 0 and
 * sets *out, or -1 for an unknown name. */
int cr_log_parse_level(const char *s, cr_log_level *out);

/* cr_log_parse_format parses "text|json"; 0 or -1. */
int cr_log_parse_format(const char *s, cr_log_format *out);

/* cr_log_enabled reports whether a line at `level` would be written. */
int cr_log_enabled(cr_log_level level);

/* cr_logmsg writes one line: time, level, component, message. The message is
 * escaped in JSON mode; control characters are escaped in text mode so a
 * hostile name can never forge a log line. */
void cr_logmsg(cr_log_level level, const char *component, const char *fmt,
               ...) __attribute__((format(printf, 3, 4)));

#define CR_DEBUG(comp, ...)                                                    \
    do {                                                                       \
        if (cr_log_enabled(CR_LEVEL_DEBUG))                                    \
            cr_logmsg(CR_LEVEL_DEBUG, comp, __VA_ARGS__);                      \
    } while (0)
#define CR_INFO(comp, ...)  cr_logmsg(CR_LEVEL_INFO, comp, __VA_ARGS__)
#define CR_WARN(comp, ...)  cr_logmsg(CR_LEVEL_WARN, comp, __VA_ARGS__)
#define CR_ERROR(comp, ...) cr_logmsg(CR_LEVEL_ERROR, comp, __VA_ARGS__)

#ifdef __cplusplus
}
#endif
#endif
