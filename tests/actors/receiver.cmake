# Receiver actors: unit tests with the real runtime, no network.
cr_test(test_handler_actor SOURCES test_handler_actor.c
        LIBS cfgrecv_actors cfgrecv_runtime PkgConfig::JANSSON)
cr_test(test_receiver SOURCES test_receiver.c
        LIBS cfgrecv_actors cfgrecv_runtime PkgConfig::JANSSON TIMEOUT 600)
