# cfgrecvd's process life as a daemon: pidfile, --daemon start-up
# failures, SIGTERM during start-up, JSON log lines, flag bounds.
if(NOT CFGRECV_TSAN)
  add_test(NAME daemon_e2e
           COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/daemon_e2e.py)
  set_tests_properties(daemon_e2e PROPERTIES TIMEOUT 120 LABELS e2e
    ENVIRONMENT "CFGRECV_BIN=${PROJECT_BINARY_DIR}/tools;${CR_TEST_ENV}")
endif()
