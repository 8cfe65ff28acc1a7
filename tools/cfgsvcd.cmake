# cfgsvcd: the config service daemon (actors/cfgsvc.h on the runtime).
add_executable(cfgsvcd ${CMAKE_CURRENT_LIST_DIR}/cfgsvcd.c)
target_link_libraries(cfgsvcd PRIVATE cfgrecv_toolutil cfgrecv_actors cfgrecv_transport
                      cfgrecv_runtime)
set_target_properties(cfgsvcd PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tools)
install(TARGETS cfgsvcd RUNTIME DESTINATION bin)
