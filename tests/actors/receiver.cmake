# Receiver actors: unit tests with the real runtime, no network.
cr_test(test_handler_actor SOURCES test_handler_actor.c
        LIBS cfgrecv_actors cfgrecv_runtime PkgConfig::JANSSON)
cr_test(test_fetcher SOURCES test_fetcher.c
        LIBS cfgrecv_actors cfgrecv_runtime)
cr_test(test_receiver SOURCES test_receiver.c
        LIBS cfgrecv_actors cfgrecv_runtime PkgConfig::JANSSON TIMEOUT 600)
cr_test(test_json_scan SOURCES test_json_scan.c
        LIBS cfgrecv_actors PkgConfig::JANSSON)
if(TARGET test_json_scan)
  target_compile_definitions(test_json_scan PRIVATE
    SHARED_DIR="${PROJECT_SOURCE_DIR}/../shared")
endif()
cr_test(test_flow_dir SOURCES test_flow_dir.c
        LIBS cfgrecv_actors PkgConfig::JANSSON)
