/* tool_util.c - see tool_util.h. */
#include "tool_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>

int
cr_tool_parse_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) {
            return -1;
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return 0;
}

int
cr_tool_parse_duration(const char *s, uint64_t *ms)
{
    char num[32];
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n >= sizeof(num)) {
        return -1;
    }
    memcpy(num, s, n);
    num[n] = '\0';
    uint64_t v, mult;
    if (cr_tool_parse_uint(num, &v) != 0) {
        return -1;
    }
    const char *unit = s + n;
    if (strcmp(unit, "") == 0 || strcmp(unit, "s") == 0) {
        mult = 1000;
    } else if (strcmp(unit, "ms") == 0) {
        mult = 1;
    } else if (strcmp(unit, "m") == 0) {
        mult = 60000;
    } else if (strcmp(unit, "h") == 0) {
        mult = 3600000;
    } else {
        return -1;
    }
    if (v > UINT64_MAX / mult) {
        return -1;
    }
    *ms = v * mult;
    return 0;
}

int
cr_tool_write_pidfile(const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -1;
    }
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (write(fd, buf, (size_t)len) != len || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

void
cr_tool_version(const char *prog)
{
    printf("%s %s (nng %s)\n", prog, CFGRECV_VERSION, nng_version());
}
