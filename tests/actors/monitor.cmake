# Monitor: loopback checks, Prometheus text, event text, and the monitor
# and events actors in a receiver tree (ipc sockets in a temp dir).
cr_test(test_monitor SOURCES test_monitor.c
        LIBS cfgrecv_actors cfgrecv_runtime nng::nng PkgConfig::JANSSON)
