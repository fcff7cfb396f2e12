# force_unlock.sh: the ForceUnlock phase. Removes the lock whoever holds
# it: renamed aside at once (atomic), so that a lock taken after that
# stays, then removed.
# After: lock.sh
#
# Inputs (environment): only lib.sh's.
# Prints: magefab:held OWNER (what the lock's owner file says, "" if it
# says nothing) when there was a lock; magefab:error and exit 1 when it
# cannot be removed.
if [ -d "$lock" ]; then
  aside="$root/.lock.force.$$.$(date +%s)"
  mv -T "$lock" "$aside" 2>/dev/null || { [ ! -d "$lock" ] || die "cannot remove $lock"; }
  if [ -d "$aside" ]; then
    printf 'magefab:held\t%s\n' "$(lock_field owner 500 "$aside" || true)"
    rm -rf "$aside" || die "cannot remove $aside"
  fi
fi
