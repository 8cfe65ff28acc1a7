# A listener wedged by a client that hung up while connecting (nng 1.5.2)
# is restarted by the listener guard (transport/lguard.h).
cr_test(transport_lguard
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_lguard.c
  LIBS cfgrecv_transport)
if(TARGET transport_lguard)
  set_tests_properties(transport_lguard PROPERTIES ENVIRONMENT
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lguard.supp")
endif()
# The same under TSan: guards started and stopped while others probe.
cr_driver(stress_transport_lguard
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/stress_lguard.c
  LIBS cfgrecv_transport)
