# unlock_orphan.sh: removes an orphaned lock, one whose run's process on
# the deploying machine has exited, if it still has that run's id, unless
# the detached part of an interrupted switch holds it; checked once the
# lock is renamed aside (lock_claim).
# After: lock.sh
#
# Inputs (environment):
#   MF_ORPHAN_ID  the id of the orphaned lock
# Prints: a step once it removed the lock.
if lock_claim "$MF_ORPHAN_ID" "" 1; then rm -rf "$aside" && step "removed an orphaned lock"; fi
