# cfgrecv-bench: one program, scenarios listed in bench_list.h, one
# bench_<name>.c per scenario (picked up by the glob below). A scenario
# that needs more libraries adds them from its own bench_<name>.cmake
# (included after this file): target_link_libraries(cfgrecv-bench ...).
file(GLOB CR_BENCH_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
add_executable(cfgrecv-bench ${CR_BENCH_SOURCES})
target_include_directories(cfgrecv-bench PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(cfgrecv-bench PRIVATE cfgrecv_runtime nng::nng msgpackc
                      Threads::Threads)
# Scenarios may use the project's other libraries (their include dirs are
# PUBLIC on the targets).
foreach(lib cfgrecv_actors cfgrecv_transport)
  if(TARGET ${lib})
    target_link_libraries(cfgrecv-bench PRIVATE ${lib})
  endif()
endforeach()
set_target_properties(cfgrecv-bench PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tools)
install(TARGETS cfgrecv-bench RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
