# lock.sh: the deploy lock, $root/.lock. Defines functions; runs nothing.
#
# The lock is a directory holding:
#   since     when it was taken (seconds since the epoch: a directory's
#             mtime changes with what is written in it, or with a copy)
#   beat      the holder's last heartbeat (seconds since the epoch),
#             replaced atomically (a new file renamed over it)
#   owner     who took it and for what ("alice@laptop deploying v2")
#   id        the run's id (MF_RUN_ID): a run only ever removes its own
#   holder    the deploying process, "<hostname> <pid>"
#   user, machine, pid, job
#             the deploying user, machine, process and CI job URL
#   release   the release being deployed (a deploy's lock only)
#   detached  the process id of a switch's detached part (see switch.sh)
#
# A lock is taken whole: built under a temporary name, then renamed to
# .lock, which fails while another lock is there. It is changed only after
# an atomic rename aside (lock_claim): the lock then found under the new
# name is checked, and put back if it is not the one expected. Nothing
# removes a lock on the strength of an earlier reading.
#
# A lease: while a phase holds the lock, a background loop refreshes beat
# (start_heartbeat); a lock whose beat (or since, for a lock without one)
# is older than the lease, MF_LOCK_LEASE seconds, is taken over by the
# next run.
#
# Inputs (environment):
#   MF_RUN_ID        the run's id (every phase)
#   MF_LOCK_LEASE    the lease in seconds (every phase)
#   take_lock reads:
#   MF_LOCK_OWNER    what the owner file says
#   MF_LOCK_HOLDER   what the holder file says
#   MF_LOCK_USER, MF_LOCK_MACHINE, MF_LOCK_PID, MF_LOCK_JOB
#                    what the user, machine, pid and job files say
#   MF_LOCK_RELEASE  what the release file says; "" writes none
#   MF_LOCK_WAIT     seconds to wait for a lock held by someone else
#   MF_LOCK_TAKEOVER 1: a lock of this same run is taken over (its script
#                    ended in an unknown state), unless a detached part
#                    holds it: that is waited for like any held lock
# Prints:
#   take_lock:  magefab:takeover OWNER USER MACHINE PID RELEASE SILENT JOB
#               when it took over a lock whose lease expired (SILENT:
#               seconds since its last heartbeat); magefab:lock once it
#               holds the lock; magefab:locked and lock_desc's fields, and
#               exits with 75 when the lock stayed held by someone else for
#               MF_LOCK_WAIT seconds
#   lock_state: magefab:lock and lock_desc's fields when there is a lock
#   unlock_own: magefab:unlocked once it removed this run's lock
lock="$root/.lock"
lease=${MF_LOCK_LEASE:-120}
case $lease in ''|0|*[!0-9]*) lease=120 ;; esac

# detached_alive [DIR] succeeds while the lock (DIR, default $lock)
# belongs to a switch's detached part: the file detached in it holds its
# process id, and that process runs. An empty file is the mark the
# switch's trap leaves before the detached part writes its id: it counts
# for a minute.
detached_alive() {
  d_lock=${1:-$lock}
  dp=; [ -f "$d_lock/detached" ] || return 1
  read -r dp < "$d_lock/detached" || true
  if [ -z "$dp" ]; then [ -n "$(find "$d_lock/detached" -mmin -1 2>/dev/null)" ]; else kill -0 "$dp" 2>/dev/null; fi
}

# lock_read [DIR] reads the lock DIR (default $lock): since, when it was
# taken (its directory's mtime for a lock without the time), beat, its
# last heartbeat (since for a lock without one), and lid, its run's id.
lock_read() {
  r_lock=${1:-$lock}
  since=; [ -f "$r_lock/since" ] && read -r since < "$r_lock/since"
  case $since in ''|*[!0-9]*) since=$(stat -c %Y "$r_lock" 2>/dev/null || echo 0) ;; esac
  beat=; [ -f "$r_lock/beat" ] && read -r beat < "$r_lock/beat"
  case $beat in ''|*[!0-9]*) beat=$since ;; esac
  lid=; [ -f "$r_lock/id" ] && read -r lid < "$r_lock/id"
  return 0
}

# lock_field NAME N [DIR] prints the first N bytes of the file NAME of the
# lock DIR (default $lock) on one line, tabs and newlines made spaces.
lock_field() {
  f_v=$(head -c "$2" "${3:-$lock}/$1" 2>/dev/null | tr '\t\n' '  ')
  printf '%s' "${f_v% }"
}

# lock_desc [DIR] prints the lock DIR (default $lock), tab-separated:
# SINCE OWNER HOLDER ID RELEASE USER MACHINE PID JOB BEAT SILENT STALE
# (SILENT: seconds since its last heartbeat; STALE: 1 when that is more
# than the lease).
lock_desc() {
  lock_read "${1:-$lock}"
  silent=$(( $(date +%s) - beat )); stale=0
  [ "$silent" -le "$lease" ] || stale=1
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$since" "$(lock_field owner 500 "$1")" "$(lock_field holder 200 "$1")" \
    "$(lock_field id 100 "$1")" "$(lock_field release 200 "$1")" "$(lock_field user 100 "$1")" "$(lock_field machine 200 "$1")" \
    "$(lock_field pid 20 "$1")" "$(lock_field job 500 "$1")" "$beat" "$silent" "$stale"
}

# lock_claim ID [BEAT [LIVE]] renames the lock aside, to a name of its own
# (aside), if it is the lock of run ID (with the heartbeat BEAT, when
# given; and, with LIVE set, unless a detached part holds it): the rename
# is atomic, and what it checks is the lock renamed, so that no other
# lock is ever removed. A lock that is not the one expected is put back;
# if a new lock took its place meanwhile, it is left aside as
# .lock.lost.<...> and a step says so. Succeeds once the lock is aside:
# the caller removes it.
lock_claim() {
  aside="$root/.lock.claim.$$.$(date +%s)"
  rm -rf "$aside"
  mv -T "$lock" "$aside" 2>/dev/null || return 1
  c_ok=1
  lock_read "$aside"
  [ "$lid" = "$1" ] || c_ok=
  if [ -n "$c_ok" ] && [ -n "${2:-}" ] && [ "$beat" != "$2" ]; then c_ok=; fi
  if [ -n "$c_ok" ] && [ -n "${3:-}" ] && detached_alive "$aside"; then c_ok=; fi
  [ -z "$c_ok" ] || return 0
  if ! mv -T "$aside" "$lock" 2>/dev/null; then
    c_lost="$root/.lock.lost.$$.$(date +%s)"
    mv -T "$aside" "$c_lost" 2>/dev/null || c_lost=$aside
    step "a lock changed while it was checked; it is kept in $c_lost"
  fi
  return 1
}

# beat_now writes the time into the lock's beat if the lock is still this
# run's; fails if it is not.
beat_now() {
  b_id=; [ -f "$lock/id" ] && read -r b_id < "$lock/id"
  [ "$b_id" = "$MF_RUN_ID" ] || return 1
  date +%s > "$lock/.beat.$$" 2>/dev/null && mv -f "$lock/.beat.$$" "$lock/beat" 2>/dev/null
}

# start_heartbeat refreshes the lock's beat in the background, every
# quarter of the lease (at most 30 seconds), while this script runs and
# the lock is its run's; stop_heartbeat ends that (lock_exit does).
start_heartbeat() {
  [ -z "${hb_pid:-}" ] || return 0
  hb_every=$((lease / 4)); [ "$hb_every" -ge 1 ] || hb_every=1; [ "$hb_every" -le 30 ] || hb_every=30
  hb_parent=$$
  (
    trap 'kill "$hb_sleep" 2>/dev/null; exit 0' TERM INT HUP
    hb_sleep=
    while :; do
      sleep "$hb_every" & hb_sleep=$!
      wait "$hb_sleep"
      kill -0 "$hb_parent" 2>/dev/null || exit 0
      beat_now || exit 0
    done
  ) </dev/null >/dev/null 2>&1 &
  hb_pid=$!
}
stop_heartbeat() {
  if [ -n "${hb_pid:-}" ]; then kill "$hb_pid" 2>/dev/null; hb_pid=; fi
  return 0
}

# lock_exit, the scripts' EXIT trap: stops the heartbeat, and releases
# this run's lock when release_on_exit is 1 (a phase that failed before
# it could hand the lock on).
release_on_exit=
lock_exit() {
  stop_heartbeat
  [ "$release_on_exit" != 1 ] || unlock_own >/dev/null
}
trap lock_exit EXIT

# sweep_dead removes what a script killed with KILL (so that no trap ran)
# left beside the lock: a lock it was building (.lock.new.PID) or one it
# had renamed aside to check (.lock.claim.PID.TIME), once process PID is
# gone from this host.
sweep_dead() {
  for s_dir in "$root"/.lock.new.* "$root"/.lock.claim.*; do
    [ -d "$s_dir" ] || continue
    s_pid=${s_dir##*/.lock.new.}
    s_pid=${s_pid##*/.lock.claim.}
    s_pid=${s_pid%%.*}
    case $s_pid in '' | *[!0-9]*) continue ;; esac
    [ -d "/proc/$s_pid" ] || rm -rf "$s_dir"
  done
}

# take_lock takes the lock, waiting up to MF_LOCK_WAIT seconds for one
# held by someone else, then reports it (exits with 75); a lock whose
# lease expired is taken over. Once it holds the lock, its heartbeat
# runs, and an interruption removes it.
take_lock() {
  [ -d "$root" ] || die "$root does not exist"
  sweep_dead
  new="$root/.lock.new.$$"
  rm -rf "$new"
  trap 'rm -rf "$new"; exit 143' TERM INT HUP
  if ! { mkdir "$new" && date +%s > "$new/since" && date +%s > "$new/beat" && printf '%s\n' "$MF_LOCK_OWNER" > "$new/owner" &&
    printf '%s\n' "$MF_RUN_ID" > "$new/id" && printf '%s\n' "$MF_LOCK_HOLDER" > "$new/holder" &&
    printf '%s\n' "${MF_LOCK_USER:-}" > "$new/user" && printf '%s\n' "${MF_LOCK_MACHINE:-}" > "$new/machine" &&
    printf '%s\n' "${MF_LOCK_PID:-}" > "$new/pid" && printf '%s\n' "${MF_LOCK_JOB:-}" > "$new/job" &&
    { [ -z "${MF_LOCK_RELEASE:-}" ] || printf '%s\n' "$MF_LOCK_RELEASE" > "$new/release"; }; }; then
    rm -rf "$new"; die "cannot write the lock in $root"
  fi
  deadline=
  while ! mv -T "$new" "$lock" 2>/dev/null; do
    [ -d "$root" ] || { rm -rf "$new"; die "$root does not exist"; }
    if [ -d "$lock" ]; then
      lock_read
      if [ "${MF_LOCK_TAKEOVER:-}" = 1 ] && [ "$lid" = "$MF_RUN_ID" ] && lock_claim "$MF_RUN_ID" "" 1; then
        rm -rf "$aside"; continue
      fi
      t_silent=$(( $(date +%s) - beat ))
      if [ "$t_silent" -gt "$lease" ] && lock_claim "$lid" "$beat" 1; then
        printf 'magefab:takeover\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(lock_field owner 500 "$aside")" "$(lock_field user 100 "$aside")" \
          "$(lock_field machine 200 "$aside")" "$(lock_field pid 20 "$aside")" "$(lock_field release 200 "$aside")" "$t_silent" "$(lock_field job 500 "$aside")"
        rm -rf "$aside"; continue
      fi
    fi
    [ -n "$deadline" ] || deadline=$(( $(date +%s) + MF_LOCK_WAIT ))
    if [ "$(date +%s)" -ge "$deadline" ]; then
      rm -rf "$new"
      printf 'magefab:locked\t%s\n' "$(lock_desc "$lock")"
      exit 75 # exitLocked
    fi
    sleep 1
  done
  date +%s > "$lock/since"
  beat_now
  trap 'unlock_own; exit 143' TERM INT HUP
  res "lock"
  start_heartbeat
}

# lock_state reports the lock, if any, as a "lock" result (lock_desc).
lock_state() {
  if [ -d "$lock" ]; then
    printf 'magefab:lock\t%s\n' "$(lock_desc "$lock")"
  fi
}

# unlock_own removes the lock if this run holds it, checked once it is
# renamed aside.
unlock_own() {
  if lock_claim "$MF_RUN_ID"; then rm -rf "$aside" && res "unlocked"; fi
}
