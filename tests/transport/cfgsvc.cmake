# Transport codecs, nng client/server/notify and the config service's
# store (cfgsvc_*). Byte vectors from python3-msgpack are generated at
# build time (gen_fixtures.py) so an independent encoder is checked.
find_program(CFGSVC_PY3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT CFGSVC_PY3)
  find_program(CFGSVC_PY3 python3)
endif()
set(CFGSVC_FIXTURES ${CMAKE_CURRENT_BINARY_DIR}/cfgsvc_fixtures.h)
add_custom_command(OUTPUT ${CFGSVC_FIXTURES}
  COMMAND ${CFGSVC_PY3} ${CMAKE_CURRENT_SOURCE_DIR}/gen_fixtures.py ${CFGSVC_FIXTURES}
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/gen_fixtures.py
  COMMENT "python3-msgpack byte vectors for test_proto")

cr_test(transport_proto
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_proto.c ${CFGSVC_FIXTURES}
  LIBS cfgrecv_transport)
if(TARGET transport_proto)
  target_include_directories(transport_proto PRIVATE ${CMAKE_CURRENT_BINARY_DIR})
endif()

cr_test(transport_cfgsvc_core
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cfgsvc_core.c
  LIBS cfgrecv_actors cfgrecv_transport)

cr_test(transport_net
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_net.c
  LIBS cfgrecv_transport)

cr_test(transport_cfgsvc_service
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cfgsvc_service.c
  LIBS cfgrecv_actors cfgrecv_transport cfgrecv_runtime)
