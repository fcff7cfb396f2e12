# restart.sh: the Restart phase. Restarts the app.
# After: slot.sh live.sh
#
# Inputs (environment): restart_app's (live.sh: MF_RESTART, MF_SUDO).
# Prints: a step; magefab:error and exit 1 when the restart fails.
restart_app
