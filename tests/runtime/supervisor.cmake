# Supervisor and backoff tests (issue 3). Included by tests/runtime/CMakeLists.txt.
cr_test(test_backoff
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_backoff.c
  LIBS cfgrecv_runtime m)
cr_test(test_supervisor
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_supervisor.c
          ${CMAKE_CURRENT_LIST_DIR}/test_supervisor_log.c
  LIBS cfgrecv_runtime)
cr_driver(stress_supervisor
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/stress_supervisor.c
  LIBS cfgrecv_runtime Threads::Threads
  ARGS 3)
