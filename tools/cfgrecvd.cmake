add_executable(cfgrecvd ${CMAKE_CURRENT_LIST_DIR}/cfgrecvd.c)
target_link_libraries(cfgrecvd PRIVATE cfgrecv_actors cfgrecv_toolutil)
set_target_properties(cfgrecvd PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tools)
install(TARGETS cfgrecvd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
