# unlock_orphan.sh: removes an orphaned lock, one whose run's process on
# the deploying machine has exited, if it still has that run's id, unless
# the detached part of an interrupted switch holds it.
# After: lock.sh
#
# Inputs (environment):
#   MF_ORPHAN_ID  the id of the orphaned lock
# Prints: a step once it removed the lock.
if [ "$(cat "$lock/id" 2>/dev/null)" = "$MF_ORPHAN_ID" ] && ! detached_alive; then rm -rf "$lock" && step "removed an orphaned lock"; fi
