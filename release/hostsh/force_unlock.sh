# force_unlock.sh: the ForceUnlock phase. Removes the lock whoever holds
# it.
# After: lock.sh
#
# Inputs (environment): only lib.sh's.
# Prints: magefab:held OWNER (what the lock's owner file says, "" if it
# says nothing) when there was a lock; magefab:error and exit 1 when it
# cannot be removed.
if [ -d "$lock" ]; then
  printf 'magefab:held\t%s\n' "$(head -c 500 "$lock/owner" 2>/dev/null | tr '\t\n' '  ' || true)"
  rm -rf "$lock" || die "cannot remove $lock"
fi
