# cfgrecvd plugins (actors/plugin.h): crash_plugin.c built as the working
# plugin the receiver e2e loads (its handler actor crashes on demand), and
# in broken variants for the loader's unit test.
set(CR_PLUGIN_VARIANTS ok nosym abi badname flows retry)
set(CR_PLUGIN_DIR ${PROJECT_BINARY_DIR}/tests/plugins)
foreach(v ${CR_PLUGIN_VARIANTS})
  list(FIND CR_PLUGIN_VARIANTS ${v} i)
  add_library(crash_plugin_${v} MODULE ${CMAKE_CURRENT_LIST_DIR}/crash_plugin.c)
  target_compile_definitions(crash_plugin_${v} PRIVATE VARIANT=${i})
  # headers only: the runtime's and the actors' symbols come from cfgrecvd
  target_include_directories(crash_plugin_${v} PRIVATE
    ${PROJECT_SOURCE_DIR}/actors ${PROJECT_SOURCE_DIR}/runtime/include)
  target_link_libraries(crash_plugin_${v} PRIVATE PkgConfig::JANSSON Threads::Threads)
  set_target_properties(crash_plugin_${v} PROPERTIES PREFIX ""
    LIBRARY_OUTPUT_DIRECTORY ${CR_PLUGIN_DIR})
endforeach()
cr_test(test_plugin SOURCES test_plugin.c
        LIBS cfgrecv_actors cfgrecv_runtime)
if(TARGET test_plugin)
  target_compile_definitions(test_plugin PRIVATE PLUGIN_DIR="${CR_PLUGIN_DIR}")
  # as cfgrecvd: plugins resolve cra_handler_done in the executable
  set_target_properties(test_plugin PROPERTIES ENABLE_EXPORTS ON)
  add_dependencies(test_plugin crash_plugin_ok crash_plugin_nosym
                   crash_plugin_abi crash_plugin_badname crash_plugin_flows
                   crash_plugin_retry)
endif()
