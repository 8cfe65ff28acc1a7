# cfgrecvd's hooks and workers end to end (real daemon, cfgctl, nngcat).
cr_e2e(procs_e2e ${CMAKE_CURRENT_LIST_DIR}/procs_e2e.sh TIMEOUT 240)
