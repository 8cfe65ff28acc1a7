/*
 * log.c - one write(2) per line; text or JSON. Control characters in the
 * message are escaped so untrusted names cannot forge extra lines.
 */
#include "cfgrecv/log.h"
#include "cfgrecv/utf8.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = CR_LEVEL_INFO;
static _Atomic int g_format = CR_LOG_TEXT;
static _Atomic int g_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

void
cr_log_setup(cr_log_level level, cr_log_format fmt, int fd)
{
    atomic_store(&g_level, (int)level);
    atomic_store(&g_format, (int)fmt);
    atomic_store(&g_fd, fd);
}

void
cr_log_set_fd(int fd)
{
    atomic_store(&g_fd, fd);
}

int
cr_log_parse_level(const char *s, cr_log_level *out)
{
    for (int i = 0; i <= CR_LEVEL_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (cr_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = CR_LEVEL_WARN;
        return 0;
    }
    return -1;
}

int
cr_log_parse_format(const char *s, cr_log_format *out)
{
    if (strcmp(s, "text") == 0) {
        *out = CR_LOG_TEXT;
    } else if (strcmp(s, "json") == 0) {
        *out = CR_LOG_JSON;
    } else {
        return -1;
    }
    return 0;
}

int
cr_log_enabled(cr_log_level level)
{
    return (int)level >= atomic_load(&g_level) && level < CR_LEVEL_OFF;
}

/* put appends escaped text of src into dst[*n..cap), whole escapes and
 * characters only. For JSON, a byte that is not part of valid UTF-8 (a
 * name given to cfgctl, a message cut by its buffer) becomes \ufffd, so
 * every line stays a JSON document. */
static void
put_escaped(char *dst, size_t *n, size_t cap, const char *src, int json)
{
    static const char hex[] = "0123456789abcdef";
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char esc[7];
        size_t len = 0;
        unsigned char c = *p;
        /* NUL-terminated: a sequence cut by the NUL is invalid */
        int seq = json && c >= 0x80
                      ? cr_utf8_seq(p, strnlen((const char *)p, 4))
                      : 0;
        if (seq > 0) {
            if (*n + (size_t)seq >= cap) {
                return;
            }
            memcpy(dst + *n, p, (size_t)seq);
            *n += (size_t)seq;
            p += seq - 1;
            continue;
        } else if (json && c >= 0x80) {
            memcpy(esc, "\\ufffd", 6);
            len = 6;
        } else if (c == '"' && json) {
            esc[len++] = '\\';
            esc[len++] = '"';
        } else if (c == '\\' && json) {
            esc[len++] = '\\';
            esc[len++] = '\\';
        } else if (c == '\n') {
            esc[len++] = '\\';
            esc[len++] = 'n';
        } else if (c == '\r') {
            esc[len++] = '\\';
            esc[len++] = 'r';
        } else if (c == '\t') {
            esc[len++] = '\\';
            esc[len++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            esc[len++] = '\\';
            if (json) {
                esc[len++] = 'u';
                esc[len++] = '0';
                esc[len++] = '0';
            } else {
                esc[len++] = 'x';
            }
            esc[len++] = hex[c >> 4];
            esc[len++] = hex[c & 15];
        } else {
            esc[len++] = (char)c;
        }
        if (*n + len >= cap) {
            return;
        }
        memcpy(dst + *n, esc, len);
        *n += len;
    }
}

static void
put_raw(char *dst, size_t *n, size_t cap, const char *src)
{
    size_t len = strlen(src);
    if (*n + len >= cap) {
        len = cap - *n - 1;
    }
    memcpy(dst + *n, src, len);
    *n += len;
}

void
cr_logmsg(cr_log_level level, const char *component, const char *fmt, ...)
{
    if (!cr_log_enabled(level)) {
        return;
    }
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64]; /* room for any int values: -Wformat-truncation */
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);

    char line[4096 + 256];
    size_t n = 0;
    const size_t cap = sizeof(line) - 2;
    if (atomic_load(&g_format) == CR_LOG_JSON) {
        put_raw(line, &n, cap, "{\"ts\":\"");
        put_raw(line, &n, cap, when);
        put_raw(line, &n, cap, "\",\"level\":\"");
        put_raw(line, &n, cap, level_names[level]);
        put_raw(line, &n, cap, "\",\"component\":\"");
        put_escaped(line, &n, cap, component ? component : "", 1);
        put_raw(line, &n, cap, "\",\"msg\":\"");
        /* a long message is cut, never its closing: room is kept */
        put_escaped(line, &n, cap - 2, msg, 1);
        put_raw(line, &n, cap, "\"}");
    } else {
        put_raw(line, &n, cap, when);
        put_raw(line, &n, cap, " ");
        put_raw(line, &n, cap, level_names[level]);
        put_raw(line, &n, cap, " [");
        put_escaped(line, &n, cap, component ? component : "", 0);
        put_raw(line, &n, cap, "] ");
        put_escaped(line, &n, cap, msg, 0);
    }
    line[n++] = '\n';
    ssize_t rc = write(atomic_load(&g_fd), line, n);
    (void)rc;
}
