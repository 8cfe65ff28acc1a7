# cfgrecvd's monitor endpoints and cfgrecv-monitor end to end (queries via
# cfgrecv-monitor and stock nngcat, events, HTTP metrics, top under tmux).
cr_e2e(monitor_e2e ${CMAKE_CURRENT_LIST_DIR}/monitor_e2e.sh TIMEOUT 180)
