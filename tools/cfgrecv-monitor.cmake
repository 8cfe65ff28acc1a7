# cfgrecv-monitor: client of cfgrecvd's monitor endpoints (queries, events,
# top). Talks nng directly; the transport library gives it the dialer
# watchdog (redial.h) that the daemon's own sockets use.
add_executable(cfgrecv-monitor ${CMAKE_CURRENT_LIST_DIR}/cfgrecv-monitor.c)
target_link_libraries(cfgrecv-monitor PRIVATE cfgrecv_toolutil cfgrecv_transport nng::nng
                      PkgConfig::JANSSON)
set_target_properties(cfgrecv-monitor PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tools)
install(TARGETS cfgrecv-monitor RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
