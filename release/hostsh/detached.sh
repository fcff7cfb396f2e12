# detached.sh: the detached part of an interrupted switch (see switch.sh),
# run by its trap with setsid /bin/sh -c, after lib.sh and after.sh. It
# restarts the app and undoes the after-switch steps that ran, then
# releases the lock; meanwhile the file detached in the lock holds its
# process id.
# After: after.sh
#
# Inputs (environment):
#   MF_UNDO_DIR   the release dir live once it is done
#   MF_DID_CRON, MF_DID_FILES, MF_DID_SVCS
#                 the switch's flags did_cron, did_files, did_svcs
#   MF_RUN_ID     the run's id (every phase)
#   after.sh's inputs
# Prints: nothing (its output goes nowhere).
did_cron=$MF_DID_CRON did_files=$MF_DID_FILES did_svcs=$MF_DID_SVCS
id=; [ -f "$root/.lock/id" ] && read -r id < "$root/.lock/id"
[ "$id" = "$MF_RUN_ID" ] && echo $$ > "$root/.lock/detached"
restart
undo_after_switch "$MF_UNDO_DIR" :
[ "$id" = "$MF_RUN_ID" ] && rm -rf "$root/.lock"
