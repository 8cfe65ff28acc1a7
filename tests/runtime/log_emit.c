/*
 * log_emit.c - writes log lines for test_runtime_log.c, which cannot
 * include cfgrecv/log.h next to criterion (both define cr_log and
 * CR_LOG_*).
 */
#include "cfgrecv/log.h"

void log_emit_json(int fd, const char *component, const char *msg);

/* log_emit_json writes one JSON log line of msg to fd. */
void
log_emit_json(int fd, const char *component, const char *msg)
{
    cr_log_setup(CR_LEVEL_DEBUG, CR_LOG_JSON, fd);
    CR_INFO(component, "%s", msg);
    cr_log_setup(CR_LEVEL_ERROR, CR_LOG_TEXT, 2);
}
