# cfgrecvd end to end with the real cfgsvcd, cfgctl and nngcat.
if(NOT CFGRECV_TSAN)
  add_test(NAME receiver_e2e
           COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/receiver_e2e.py)
  set_tests_properties(receiver_e2e PROPERTIES TIMEOUT 300 LABELS e2e
    ENVIRONMENT "CFGRECV_BIN=${PROJECT_BINARY_DIR}/tools;CFGRECV_SHARED=${PROJECT_SOURCE_DIR}/../shared;CFGRECV_PLUGIN=${PROJECT_BINARY_DIR}/tests/plugins/crash_plugin_ok.so")
endif()
