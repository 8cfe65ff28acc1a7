/*
 * test_supervisor_log.c - sets the log level for the supervisor tests.
 * A separate file because criterion's <criterion/logging.h> and
 * cfgrecv/log.h both define cr_log and CR_LOG_* and cannot meet in one
 * translation unit.
 */
#include "cfgrecv/log.h"

#include <stdlib.h>

void sup_test_quiet_logs(void);

/* sup_test_quiet_logs keeps only errors (CFGRECV_TEST_LOG=debug|info|warn
 * turns more on). */
void
sup_test_quiet_logs(void)
{
    cr_log_level lv = CR_LEVEL_ERROR;
    const char *env = getenv("CFGRECV_TEST_LOG");
    if (env != NULL) {
        (void)cr_log_parse_level(env, &lv);
    }
    cr_log_setup(lv, CR_LOG_TEXT, 2);
}
