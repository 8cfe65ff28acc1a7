# cfgctl: command-line client of the config service.
add_executable(cfgctl ${CMAKE_CURRENT_LIST_DIR}/cfgctl.c)
target_link_libraries(cfgctl PRIVATE cfgrecv_toolutil cfgrecv_transport cfgrecv_runtime
                      PkgConfig::JANSSON)
set_target_properties(cfgctl PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tools)
install(TARGETS cfgctl RUNTIME DESTINATION bin)
