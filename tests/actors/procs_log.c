/*
 * procs_log.c - log set-up for the hooks and workers tests, in a file of
 * its own because criterion's <criterion/logging.h> and cfgrecv/log.h
 * both define cr_log and CR_LOG_* and cannot meet in one translation unit.
 */
#include "cfgrecv/log.h"

void procs_log_to(int fd);

/* procs_log_to sends debug-level text logs to fd. */
void
procs_log_to(int fd) {
    cr_log_setup(CR_LEVEL_DEBUG, CR_LOG_TEXT, fd);
}
