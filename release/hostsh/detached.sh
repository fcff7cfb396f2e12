# detached.sh: the detached part of an interrupted switch (see switch.sh),
# run by its trap with setsid /bin/sh -c, after lib.sh, lock.sh and
# after.sh. It restarts the app and undoes the after-switch steps that
# ran, then releases the lock if it is still this run's (checked once
# renamed aside: a lock another run took meanwhile stays); meanwhile the
# file detached in the lock holds its process id, and its heartbeat keeps
# the lease.
# After: lock.sh after.sh
#
# Inputs (environment):
#   MF_UNDO_DIR   the release dir live once it is done
#   MF_DID_CRON, MF_DID_FILES, MF_DID_SVCS
#                 the switch's flags did_cron, did_files, did_svcs
#   MF_RUN_ID     the run's id (every phase)
#   after.sh's inputs
# Prints: nothing (its output goes nowhere).
did_cron=$MF_DID_CRON did_files=$MF_DID_FILES did_svcs=$MF_DID_SVCS
lock_read
mine=
if [ "$lid" = "$MF_RUN_ID" ] && echo $$ > "$lock/detached"; then
  mine=1
  start_heartbeat
fi
restart
undo_after_switch "$MF_UNDO_DIR" :
stop_heartbeat
[ -z "$mine" ] || unlock_own
