# unlock.sh: the Unlock phase. Releases this run's lock, if it still holds
# it, and removes this host's staged files that no switch put in place
# (never failing for them: it runs while the locks are released). A lock
# that the detached part of an interrupted switch holds stays: that part
# releases it when it is done. The lock is checked once renamed aside
# (lock_claim): a lock that another run took meanwhile stays.
# After: lock.sh
#
# Inputs (environment):
#   MF_RUN_ID   the run's id (every phase)
#   MF_STAGED   the staged files, three lines each: the file, where its
#               new version waits (StagedPath), where the version it
#               replaces is kept (unused here)
#   MF_SUDO     1: the staged files are removed with sudo -n (every phase)
# Prints: magefab:unlocked once it removed the lock; a step for a staged
# file it could not remove, and for a lock left to a detached part.
lock_read
if [ "$lid" = "$MF_RUN_ID" ] && detached_alive; then
  step "a switch interrupted here is still finishing by itself: it releases the lock when done"
elif [ "$lid" = "$MF_RUN_ID" ]; then
  if lock_claim "$MF_RUN_ID" "" 1; then
    IFS=$nl; set -f
    # shellcheck disable=SC2086 # one value a line
    set -- $MF_STAGED
    IFS=$ifs0; set +f
    while [ $# -ge 3 ]; do
      if [ -e "$2" ]; then as_root rm -f "$2" || step "could not remove $2"; fi
      shift 3
    done
    rm -rf "$aside" && res "unlocked"
  elif detached_alive; then
    step "a switch interrupted here is still finishing by itself: it releases the lock when done"
  fi
fi
