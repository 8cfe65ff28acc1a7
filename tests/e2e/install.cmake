# make install: programs, the runtime library, headers and a pkg-config
# file that a separate program can build against.
if(NOT CFGRECV_TSAN AND NOT CFGRECV_ASAN)
  add_test(NAME install_e2e COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install_e2e.sh)
  set_tests_properties(install_e2e PROPERTIES TIMEOUT 120 LABELS e2e
    ENVIRONMENT "CFGRECV_BUILD=${PROJECT_BINARY_DIR}")
endif()
