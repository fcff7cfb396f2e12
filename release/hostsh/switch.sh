# switch.sh: the switch phase, in three modes (MF_MODE).
# After: lock.sh after.sh slot.sh
#
# It points current at MF_DIR atomically (a new link renamed over the old:
# there is never a moment without one), logs the switch in revisions.log,
# restarts the app, runs the after-switch steps (after.sh) and releases
# the lock.
#
# forward: makes a prepared release live, the lock held since prepare. If
# the restart or an after-switch step fails, it points current back at
# MF_PREV, undoes the after-switch steps that ran and restarts before
# failing, so the host keeps serving MF_PREV: a host never stays on a
# release that failed. With no MF_PREV (a first deploy) it just fails.
#
# backward: puts a host whose switch went through back on its previous
# release, MF_DIR (MF_PREV is the release it switched to): it takes the
# lock again, and the after-switch steps are undone (the crontab of
# MF_DIR, the files kept aside put back, the services restarted). If the
# app does not restart with MF_DIR, the host returns to MF_PREV, whose
# after-switch steps are still in place. A step that cannot be undone does
# not move the host again: the other steps are still undone, and the
# script exits with 78, MF_DIR live. With MF_PREV equal to MF_DIR (a
# redeploy switched back) a failed restart also leaves MF_DIR live: the
# undo goes on, and the script exits with 77.
#
# recovery: like backward, for a host whose switch ended in an unknown
# state, whatever the switch got to: the lock of this run is taken over,
# current is never pointed at MF_PREV, a failed restart leaves MF_DIR live
# (exits with 77), and the staged files' kept versions are put back only if
# current points at MF_PREV when it starts (then the switch to it went
# through, and they are the versions it replaced).
#
# Stopped between the switch and the end of the after-switch steps (the
# run timed out on this host, or its connection died), the host ends the
# job by itself (detached.sh), detached so that the session's end cannot
# kill it half way: forward, it goes back to MF_PREV (the run treats the
# host as failed and switches the other hosts back too), restarts and
# undoes what the after-switch steps did; backward and recovery, it goes
# on switching back to MF_DIR: it restarts and undoes the after-switch
# steps. The restart under way when the switch is stopped is ended first
# (restart_bg, stop_restart), so that the switch back begins at once.
# Then it releases the lock, which it marks as its own meanwhile (see
# detached_alive) and whose lease it keeps: no other script removes it
# while it runs. The trap
# waits until the detached part has written its mark, and so has left the
# session's process group, which may be killed once the script exits.
#
# With slots (MF_SLOT_START set) nothing restarts: the slot MF_SLOT_NEW
# serves for MF_DIR once current points there (in shared port mode a
# forward switch starts it first, and fails before the switch if it does
# not answer). A forward switch leaves the slot that served, MF_SLOT_OLD,
# running: the run drains it once every host passed the check; going back,
# it serves again and the new slot stops. Backward and recovery stop the
# slot MF_SLOT_OLD of MF_PREV, the release switched back from.
#
# Inputs (environment):
#   MF_MODE         forward, backward or recovery
#   MF_DIR          the release dir to make live
#   MF_PREV         the release dir current pointed to before; "" for none
#   MF_OWNER        who switches, for revisions.log
#   MF_TARGET_NAME, MF_TARGET_SHA
#                   the release MF_DIR holds, for revisions.log
#   MF_WAS_NAME, MF_WAS_SHA
#                   the release MF_PREV holds, for revisions.log
#   MF_WHAT         the note of the switch in revisions.log ("deploy")
#   MF_SLOT_NEW     the slot that serves for MF_DIR; "" for none (and,
#                   forward in shared port mode, the switch picks it)
#   MF_SLOT_OLD     the slot that serves for MF_PREV; "" for none
#   MF_SLOT_PORT and slot.sh's other inputs
#   MF_DETACHED     the text of the detached part (lib.sh, lock.sh,
#                   after.sh and detached.sh), run with sh -c on an interruption
#   MF_RESTART      the app's restart command (after.sh), which restart_bg
#                   runs in the background
#   MF_RUN_ID, MF_CURRENT, MF_SUDO  (every phase)
#   backward and recovery, take_lock's inputs (lock.sh)
#   after.sh's inputs, MF_STAGED among them
# The detached part gets them too, and from the switch MF_UNDO_DIR,
# MF_DID_CRON, MF_DID_FILES and MF_DID_SVCS (see detached.sh).
# Prints: steps; magefab:error for each failure, magefab:unlocked; with
# slots, forward, magefab:slot NEW OLD (MF_SLOT_NEW, MF_SLOT_OLD).
# Exits: 0 switched (and, backward, every step undone); 1 failed before
# the switch; 76 the restart or an after-switch step failed, and the host
# is back on MF_PREV (forward) or stays on it (backward); 77 the app did
# not restart there either; 78 an after-switch step could not be undone.
mode=$MF_MODE dir=$MF_DIR prev=$MF_PREV

if [ "$mode" != forward ]; then
  take_lock
  release_on_exit=1
fi
lock_read
[ "$lid" = "$MF_RUN_ID" ] || die "the deploy lock is no longer held by this run"
start_heartbeat
[ -d "$root/$dir/.git" ] || die "release dir $dir is missing"
undo_failed='' down=''

# flip: a failed restart (or, forward, a failed after-switch step) points
# current at prev (forward, prev may be dir: a redeploy of the live dir
# stays there and undoes its steps). Otherwise a switch back (or a
# recovery) keeps dir live whatever fails, and a forward switch with
# nowhere to go (a first deploy) fails.
flip=
if [ -n "$prev" ] && { [ "$prev" != "$dir" ] || [ "$mode" = forward ]; } && [ "$mode" != recovery ]; then flip=1; fi
# The dir whose after-switch steps an undo restores.
undo_dir=$dir
[ "$mode" != forward ] || undo_dir=$prev

case $mode in
forward)
  did_cron='' did_files='' did_svcs=''
  # A version of a staged file kept aside by an earlier switch goes now:
  # a kept file is then always the one this switch replaced.
  IFS=$nl; set -f
  # shellcheck disable=SC2086 # one value a line
  set -- $MF_STAGED
  IFS=$ifs0; set +f
  while [ $# -ge 3 ]; do
    if [ -e "$3" ]; then as_root rm -f "$3" || die "cannot remove $3, kept by an earlier switch"; fi
    shift 3
  done
  ;;
backward)
  did_cron=1 did_files=all did_svcs=all
  ;;
recovery)
  full=
  if [ -n "$prev" ] && [ "$prev" != "$dir" ]; then
    cur0=$(readlink "$root/$MF_CURRENT" 2>/dev/null || true); [ "${cur0##*/}" = "$prev" ] && full=1
  fi
  did_cron=1 did_files='' did_svcs=all
  [ -z "$full" ] || did_files=all
  ;;
*)
  die "unknown switch mode $mode"
  ;;
esac

# point_current TO NAME COMMIT NOTE points current at TO and logs it.
point_current() {
  { ln -sfn "$1" "$root/$MF_CURRENT.tmp" && mv -T "$root/$MF_CURRENT.tmp" "$root/$MF_CURRENT"; } || die "cannot switch $MF_CURRENT to $1"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$MF_OWNER" "$2" "$3" "$1" "$4" >> "$root/revisions.log"
}

# record_failure reports a step that could not be undone, and goes on.
record_failure() { printf 'magefab:error %s\n' "$1"; undo_failed=1; }

# back REASON NOTE: the restart or an after-switch step failed.
back() {
  if [ -n "$flip" ] && [ "$mode" = forward ]; then
    # Back to prev. The undo goes on past a step that fails; the exit
    # status says whether the app restarted with prev, and then whether
    # every step was undone.
    if [ "$prev" = "$dir" ]; then
      printf 'magefab:error %s; %s\n' "$1" "$prev stays live"
    else
      printf 'magefab:error %s; %s\n' "$1" "switched back to $prev"
    fi
    point_current "$prev" "$MF_WAS_NAME" "$MF_WAS_SHA" "$2"
    slot_back
    if ! restart 2>&1; then printf 'magefab:error %s\n' "restarting with $prev failed too"; down=1; fi
    undo_after_switch "$prev" record_failure
    [ -z "$down" ] || exit 77 # exitCompFail
    [ -z "$undo_failed" ] || exit 78 # exitUndoFail
    exit 76 # exitRestartFail
  elif [ -n "$flip" ]; then
    # A switch back whose restart fails returns to the release the host
    # switched to: nothing of its after-switch steps was undone yet, so
    # nothing is left to undo on an interruption either.
    printf 'magefab:error %s; switched back to %s\n' "$1" "$prev"
    did_cron='' did_files='' did_svcs=''
    point_current "$prev" "$MF_WAS_NAME" "$MF_WAS_SHA" "$2"
    if ! restart 2>&1; then printf 'magefab:error %s\n' "restarting with $prev failed too"; trap - TERM INT HUP PIPE; exit 77; fi # exitCompFail
    trap - TERM INT HUP PIPE
    exit 76 # exitRestartFail
  elif [ "$mode" = forward ]; then
    die "$1"
  else
    # Switching back in place: a failed restart leaves dir live, and the
    # undo goes on.
    printf 'magefab:error %s\n' "$1"; down=1
  fi
}

# slot_back, when a forward switch goes back: the slot that served for
# prev serves again (a redeploy points app.sock back at it), and the new
# slot stops.
slot_back() {
  [ -n "$MF_SLOT_START" ] || return 0
  if [ "$prev" = "$dir" ] && [ -n "$sold" ]; then
    slot_link "$prev" "$sold" || record_failure "cannot point $prev/run/app.sock back at slot $sold"
  fi
  if [ -n "$snew" ] && [ "$snew" != "$sold" ]; then
    slot_settle "$prev"
    slot_stop "$dir" "$snew" || record_failure "the new slot $snew of $dir did not stop"
  fi
}

# restart_bg restarts the app (like restart) in the background and waits
# for it, so that a signal the script traps interrupts the wait at once:
# the restart runs in a process group of its own (setsid) under a small
# shell that, on TERM, ends that whole group. sudo relays TERM to the
# command it runs, also with use_pty. rpid is the background job while it
# runs (see stop_restart).
rpid=
# shellcheck disable=SC2016 # expanded by the shell that runs it
rwrap='trap '\''[ -z "$p" ] || kill -TERM "-$p" 2>/dev/null; exit 143'\'' TERM INT HUP; p=; setsid /bin/sh -c "$1" & p=$!; wait "$p"'
restart_bg() {
  [ -n "$MF_RESTART" ] || return 0
  if [ "${MF_SUDO:-}" = 1 ]; then
    sudo -n /bin/sh -c "$rwrap" restart "$MF_RESTART" 2>&1 &
  else
    /bin/sh -c "$rwrap" restart "$MF_RESTART" 2>&1 &
  fi
  rpid=$!
  wait "$rpid"; r_rc=$?
  rpid=
  return "$r_rc"
}

# stop_restart ends the restart that restart_bg runs, if any, and waits
# for it to end (for a few seconds at most).
stop_restart() {
  [ -n "$rpid" ] || return 0
  kill -TERM "$rpid" 2>/dev/null
  ( sleep 5; kill -KILL "$rpid" 2>/dev/null ) </dev/null >/dev/null 2>&1 &
  s_dog=$!
  wait "$rpid" 2>/dev/null
  kill "$s_dog" 2>/dev/null
  rpid=
}

# interrupted ends the restart under way, starts the detached part (see
# above) and exits.
interrupted() {
  trap - TERM INT HUP PIPE EXIT
  stop_restart >/dev/null 2>&1
  stop_heartbeat
  {
    if [ "$mode" = forward ]; then point_current "$prev" "$MF_WAS_NAME" "$MF_WAS_SHA" 'switched back: interrupted during the restart'; fi
    lock_read
    [ "$lid" != "$MF_RUN_ID" ] || : > "$lock/detached"
    MF_UNDO_DIR=$undo_dir MF_DID_CRON=$did_cron MF_DID_FILES=$did_files MF_DID_SVCS=$did_svcs setsid /bin/sh -c "$MF_DETACHED" </dev/null &
  } >/dev/null 2>&1
  n=0; while [ -d "$lock" ] && [ -f "$lock/detached" ] && [ ! -s "$lock/detached" ] && [ $n -lt 20 ]; do sleep 0.1 2>/dev/null || sleep 1; n=$((n + 1)); done
  exit 143
}

# The slots: snew serves for dir, sold served for prev.
snew=$MF_SLOT_NEW sold=$MF_SLOT_OLD
if [ -n "$MF_SLOT_START" ]; then
  if [ "$mode" = forward ] && [ "$MF_SLOT_PORT" != 0 ]; then
    snew=$(slot_pick "$dir") sold=
    [ -z "$prev" ] || sold=$(slot_linked "$prev")
    slot_start "$dir" "$snew"
  fi
  [ "$mode" != forward ] || printf 'magefab:slot\t%s\t%s\n' "$snew" "$sold"
  if [ -n "$snew" ] && ! slot_link "$dir" "$snew"; then
    [ "$mode" != forward ] || [ "$MF_SLOT_PORT" = 0 ] || slot_stop "$dir" "$snew" >/dev/null 2>&1
    die "cannot point $dir/run/app.sock at slot $snew"
  fi
fi
point_current "$dir" "$MF_TARGET_NAME" "$MF_TARGET_SHA" "$MF_WHAT"
if [ -n "$flip" ] || [ "$mode" != forward ]; then trap interrupted TERM INT HUP PIPE; fi
if [ -n "$MF_SLOT_START" ]; then step "$MF_CURRENT -> $dir ($MF_TARGET_NAME), slot ${snew:-none}"
else step "$MF_CURRENT -> $dir ($MF_TARGET_NAME); restarting"; fi
restart_bg || back "restart failed with $MF_CURRENT -> $dir" 'switched back: restart failed'
if [ "$mode" = forward ]; then
  after_switch "$dir"
else
  undo_after_switch "$dir" record_failure
  if [ -n "$MF_SLOT_START" ] && [ -n "$sold" ] && { [ "$prev" != "$dir" ] || [ "$sold" != "$snew" ]; }; then
    slot_settle "$dir"
    slot_stop "$prev" "$sold" || record_failure "the slot $sold of $prev did not stop"
  fi
fi
trap - TERM INT HUP PIPE
if [ "$mode" = forward ]; then
  unlock_own
else
  unlock_own
  release_on_exit=
  [ -z "$down" ] || exit 77 # exitCompFail
  [ -z "$undo_failed" ] || exit 78 # exitUndoFail
fi
