# cfgsvcd + cfgctl end to end (real processes on ipc:// in a temp dir).
cr_e2e(cfgsvc_e2e ${CMAKE_CURRENT_LIST_DIR}/cfgsvc_e2e.sh)
