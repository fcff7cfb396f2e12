# lock.sh: the deploy lock, $root/.lock. Defines functions; runs nothing.
#
# The lock is a directory (mkdir is atomic) holding:
#   since     when it was taken (seconds since the epoch: a directory's
#             mtime changes with what is written in it, or with a copy)
#   owner     who took it and for what ("alice@laptop deploying v2")
#   id        the run's id (MF_RUN_ID): a run only ever removes its own
#   holder    the deploying process, "<hostname> <pid>"
#   release   the release being deployed (a deploy's lock only)
#   detached  the process id of a switch's detached part (see switch.sh)
#
# Inputs (environment):
#   MF_RUN_ID        the run's id (every phase)
#   take_lock reads:
#   MF_LOCK_OWNER    what the owner file says
#   MF_LOCK_HOLDER   what the holder file says
#   MF_LOCK_RELEASE  what the release file says; "" writes none
#   MF_LOCK_WAIT     seconds to wait for a lock held by someone else
#   MF_LOCK_TAKEOVER 1: a lock of this same run is taken over (its script
#                    ended in an unknown state), unless a detached part
#                    holds it: that is waited for like any held lock
# Prints:
#   take_lock:  magefab:lock once it holds the lock; magefab:locked SINCE
#               OWNER HOLDER ID RELEASE and exits with 75 when the lock stayed
#               held by someone else for MF_LOCK_WAIT seconds
#   lock_state: magefab:lock SINCE OWNER when there is a lock
#   unlock_own: magefab:unlocked once it removed this run's lock
lock="$root/.lock"

# detached_alive succeeds while the lock belongs to a switch's detached
# part: the file detached in the lock holds its process id, and that
# process runs. An empty file is the mark the switch's trap leaves before
# the detached part writes its id: it counts for a minute.
detached_alive() {
  dp=; [ -f "$lock/detached" ] || return 1
  read -r dp < "$lock/detached" || true
  if [ -z "$dp" ]; then [ -n "$(find "$lock/detached" -mmin -1 2>/dev/null)" ]; else kill -0 "$dp" 2>/dev/null; fi
}

# lock_since sets since to when the lock was taken: the time the lock
# holds, or its directory's mtime for a lock without one.
lock_since() {
  since=; [ -f "$lock/since" ] && read -r since < "$lock/since"
  case $since in ''|*[!0-9]*) since=$(stat -c %Y "$lock" 2>/dev/null || echo 0) ;; esac
}

# lock_field NAME N prints the first N bytes of the lock's file NAME on
# one line, tabs and newlines made spaces.
lock_field() { head -c "$2" "$lock/$1" 2>/dev/null | tr '\t\n' '  '; }

# take_lock takes the lock, waiting up to MF_LOCK_WAIT seconds for one
# held by someone else, then reports it (exits with 75). Once it holds the lock,
# an interruption removes it.
take_lock() {
  deadline=
  while ! mkdir "$lock" 2>/dev/null; do
    [ -d "$root" ] || die "$root does not exist"
    if [ "${MF_LOCK_TAKEOVER:-}" = 1 ]; then
      id=; [ -f "$lock/id" ] && read -r id < "$lock/id"
      if [ "$id" = "$MF_RUN_ID" ] && ! detached_alive; then rm -rf "$lock" && continue; fi
    fi
    [ -n "$deadline" ] || deadline=$(( $(date +%s) + MF_LOCK_WAIT ))
    if [ "$(date +%s)" -ge "$deadline" ]; then
      lock_since
      printf 'magefab:locked\t%s\t%s\t%s\t%s\t%s\n' "$since" "$(lock_field owner 500)" "$(lock_field holder 200)" "$(lock_field id 100)" "$(lock_field release 200)"
      exit 75 # exitLocked
    fi
    sleep 1
  done
  if ! { date +%s > "$lock/since" && printf '%s\n' "$MF_LOCK_OWNER" > "$lock/owner" && printf '%s\n' "$MF_RUN_ID" > "$lock/id" &&
    printf '%s\n' "$MF_LOCK_HOLDER" > "$lock/holder" &&
    { [ -z "${MF_LOCK_RELEASE:-}" ] || printf '%s\n' "$MF_LOCK_RELEASE" > "$lock/release"; }; }; then
    rm -rf "$lock"; die "cannot write the lock in $root"
  fi
  trap 'rm -rf "$lock"; exit 143' TERM INT HUP
  res "lock"
}

# lock_state reports the lock, if any, as a "lock" result: when it was
# taken and what its owner file says.
lock_state() {
  if [ -d "$lock" ]; then
    lock_since
    printf 'magefab:lock\t%s\t%s\n' "$since" "$(lock_field owner 500)"
  fi
}

# unlock_own removes the lock if this run holds it.
unlock_own() {
  id=
  [ -f "$lock/id" ] && read -r id < "$lock/id"
  if [ "$id" = "$MF_RUN_ID" ]; then rm -rf "$lock" && res "unlocked"; fi
}
