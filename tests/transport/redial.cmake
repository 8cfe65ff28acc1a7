# A dialer that stopped redialing is replaced (transport/redial.h): the
# test learns the transport's dialer through --wrap=nng_dial and closes it.
cr_test(transport_redial
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_redial.c
  LIBS cfgrecv_transport)
if(TARGET transport_redial)
  target_link_options(transport_redial PRIVATE "LINKER:--wrap=nng_dial")
endif()
