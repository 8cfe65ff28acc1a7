add_executable(cfgrecvd ${CMAKE_CURRENT_LIST_DIR}/cfgrecvd.c)
target_link_libraries(cfgrecvd PRIVATE cfgrecv_actors cfgrecv_toolutil)
# ENABLE_EXPORTS: plugins (--plugin) call cra_handler_done and friends,
# which live in the executable (actors/flow_handler.h, "plugins")
set_target_properties(cfgrecvd PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tools
  ENABLE_EXPORTS ON)
install(TARGETS cfgrecvd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
