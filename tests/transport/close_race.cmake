# nng_close never overlaps a context call (transport/gate.h). The
# transport library's calls into nng are wrapped by the test (--wrap) to
# widen the race window; nng's own calls are not affected.
cr_test(transport_close_race
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_close_race.c
  LIBS cfgrecv_transport)
if(TARGET transport_close_race)
  target_link_options(transport_close_race PRIVATE
    "LINKER:--wrap=nng_ctx_open,--wrap=nng_ctx_recv"
    "LINKER:--wrap=nng_ctx_send,--wrap=nng_close")
endif()
