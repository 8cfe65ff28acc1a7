# Hooks and workers: the process watcher, the hook runner and the worker
# supervisor (unit tests with real child processes in a temp dir).
cr_test(test_proc_watch SOURCES test_proc_watch.c procs_log.c
        LIBS cfgrecv_actors cfgrecv_runtime PkgConfig::JANSSON)
cr_test(test_hook_handler SOURCES test_hook_handler.c procs_log.c
        LIBS cfgrecv_actors cfgrecv_runtime PkgConfig::JANSSON)
cr_test(test_worker_handler SOURCES test_worker_handler.c procs_log.c
        LIBS cfgrecv_actors cfgrecv_runtime PkgConfig::JANSSON)
