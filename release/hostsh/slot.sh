# slot.sh: the slots, each release dir's own processes. Defines
# functions; runs nothing.
#
# A slot is one process of the app running from a release dir, named for
# the dir (a) or, for a second process of the same dir started beside the
# first by a restart in place, the dir and .1 (a.1). It listens on its own
# socket, DIR/run/SLOT.sock, where magefab checks it; DIR/run/app.sock is
# a symlink to the socket of the slot that serves for DIR, so that a front
# server proxying to current/run/app.sock reaches the live release's
# serving slot: pointing current, or app.sock, elsewhere moves the
# traffic at once (connect() resolves the links each time). In shared
# port mode (MF_SLOT_PORT > 0) the slots also listen together on one TCP
# port (SO_REUSEPORT), and the one that drains leaves it to the others.
#
# The project's commands start a slot in the background (MF_SLOT_START)
# and drain one (MF_SLOT_STOP: it stops accepting, finishes the requests
# in flight within MAGEFAB_DRAIN_TIMEOUT seconds, and exits), run as root
# (as_root) from the login directory, with the slot's description in
# their environment: MAGEFAB_SLOT, MAGEFAB_SLOT_RELEASE, MAGEFAB_SLOT_DIR,
# MAGEFAB_SLOT_SOCKET, MAGEFAB_SLOT_PORT, MAGEFAB_DRAIN_TIMEOUT.
#
# Inputs (environment):
#   MF_SLOT_START, MF_SLOT_STOP, MF_SLOT_LOGS
#                   the commands that start, drain and show the log of a
#                   slot; MF_SLOT_START "" means no slots (the classic
#                   restart)
#   MF_SLOT_CHECK   the HTTP path asked on a started slot's socket
#   MF_SLOT_PORT    the shared port; 0 in front mode
#   MF_SLOT_TIMEOUT seconds a started slot has to answer
#   MF_SLOT_DRAIN   seconds a slot has to drain
#   MF_SLOT_PY      the check (slotcheck.py), run with python
#   MF_SUDO, MF_VENV, MF_CURRENT (every phase)
# Prints: steps; magefab:error for each line of a failure.

# slot_cmd CMD DIR SLOT runs the project's command CMD for SLOT of the
# release dir DIR.
slot_cmd() {
  (cd "$HOME" 2>/dev/null || cd /
   as_root env "MAGEFAB_SLOT=$3" "MAGEFAB_SLOT_RELEASE=$2" "MAGEFAB_SLOT_DIR=$root/$2" \
     "MAGEFAB_SLOT_SOCKET=$root/$2/run/$3.sock" "MAGEFAB_SLOT_PORT=$MF_SLOT_PORT" \
     "MAGEFAB_DRAIN_TIMEOUT=$MF_SLOT_DRAIN" /bin/sh -c "$1")
}

# slot_linked DIR prints the slot that serves for DIR (app.sock's
# target), or nothing.
slot_linked() {
  sl_t=$(readlink "$root/$1/run/app.sock" 2>/dev/null) || return 0
  sl_t=${sl_t##*/}
  printf '%s\n' "${sl_t%.sock}"
}

# slot_pick DIR prints the name for a new slot of DIR: DIR, unless that
# slot runs (its socket is there) and serves for DIR; then DIR.1.
slot_pick() {
  if [ -S "$root/$1/run/$1.sock" ] && [ "$(slot_linked "$1")" = "$1" ]; then printf '%s.1\n' "$1"; else printf '%s\n' "$1"; fi
}

# slot_link DIR SLOT makes SLOT the one that serves for DIR, atomically
# (a new link renamed over the old).
slot_link() {
  ln -sfn "$2.sock" "$root/$1/run/app.sock.tmp" 2>&1 && mv -T "$root/$1/run/app.sock.tmp" "$root/$1/run/app.sock" 2>&1
}

# slot_python DIR prints the python that checks a slot of DIR: its
# virtualenv's, else python3.
slot_python() {
  if [ -x "$root/$1/$MF_VENV/bin/python" ]; then printf '%s\n' "$root/$1/$MF_VENV/bin/python"; else printf 'python3\n'; fi
}

# slot_answers DIR SLOT SECONDS waits up to SECONDS for SLOT of DIR to
# answer MF_SLOT_CHECK on its socket; on failure it prints why.
slot_answers() {
  "$(slot_python "$1")" -c "$MF_SLOT_PY" "$root/$1/run/$2.sock" "$MF_SLOT_CHECK" "$3"
}

# slot_stop DIR SLOT drains SLOT of DIR and removes its socket; a failure
# is reported as a step, and returns 1.
slot_stop() {
  if slot_cmd "$MF_SLOT_STOP" "$1" "$2" 2>&1; then
    as_root rm -f "$root/$1/run/$2.sock" 2>/dev/null
    return 0
  fi
  step "stopping slot $2 of $1 failed"
  return 1
}

# slot_start DIR SLOT starts SLOT of DIR, stopping first what may be left
# of an earlier process of that name, and waits until it answers. If it
# does not, it prints the slot's last log lines, stops it and exits 1.
# The start command's output goes to a file (DIR/run/.SLOT.start): a
# process it leaves running may keep its output open.
slot_start() {
  mkdir -p "$root/$1/run" || die "cannot create $1/run"
  if [ -e "$root/$1/run/$2.sock" ]; then slot_stop "$1" "$2" >/dev/null 2>&1; fi
  step "starting slot $2 of $1"
  ss_out="$root/$1/run/.$2.start"
  if ! slot_cmd "$MF_SLOT_START" "$1" "$2" >"$ss_out" 2>&1 </dev/null; then
    printf 'magefab:error slot %s of %s did not start\n' "$2" "$1"
    slot_failed "$1" "$2" "$ss_out"
  fi
  if ! ss_why=$(slot_answers "$1" "$2" "$MF_SLOT_TIMEOUT" 2>&1); then
    printf 'magefab:error slot %s of %s did not answer %s on its socket within %ss: %s\n' "$2" "$1" "$MF_SLOT_CHECK" "$MF_SLOT_TIMEOUT" "$ss_why"
    slot_failed "$1" "$2" "$ss_out"
  fi
  rm -f "$ss_out"
  step "slot $2 of $1 answers $MF_SLOT_CHECK"
}

# slot_failed DIR SLOT FILE reports a slot that failed to start with the
# output of its start command (in FILE) and its last log lines, stops it
# and exits 1.
slot_failed() {
  sf_log=$(slot_cmd "$MF_SLOT_LOGS" "$1" "$2" 2>&1 | tail -n 10)
  tail -n 5 "$3" 2>/dev/null | while IFS= read -r l; do [ -z "$l" ] || printf 'magefab:error   %s\n' "$l"; done
  rm -f "$3"
  if [ -n "$sf_log" ]; then
    printf 'magefab:error its last log lines:\n'
    printf '%s\n' "$sf_log" | while IFS= read -r l; do printf 'magefab:error   %s\n' "$l"; done
  fi
  slot_stop "$1" "$2" >/dev/null 2>&1
  exit 1
}

# slot_settle waits until a second has passed since the traffic moved,
# that is since current, or the app.sock of the dir DIR, last changed: the
# connections that reached the old slot's socket just before are queued
# there, and a listener that closes drops what is queued. The old slot
# accepts them meanwhile; only then may it drain.
slot_settle() {
  se_now=$(date +%s)
  for se_l in "$root/$MF_CURRENT" "$root/$1/run/app.sock"; do
    se_t=$(stat -c %Y "$se_l" 2>/dev/null) || continue
    if [ $((se_now - se_t)) -le 1 ]; then sleep 1; return 0; fi
  done
  return 0
}

# slot_restart restarts the live release through a slot: a new slot of
# it starts beside the one serving and, once it answers, serves in its
# place (app.sock points at it); then the other drains.
slot_restart() {
  sr_live=$(readlink "$root/$MF_CURRENT" 2>/dev/null) || die "nothing is deployed: $root/$MF_CURRENT does not exist"
  sr_live=${sr_live##*/}
  sr_old=$(slot_linked "$sr_live") sr_new=$(slot_pick "$sr_live")
  slot_start "$sr_live" "$sr_new"
  if ! slot_link "$sr_live" "$sr_new"; then
    slot_stop "$sr_live" "$sr_new" >/dev/null 2>&1
    die "cannot point $sr_live/run/app.sock at slot $sr_new"
  fi
  step "slot $sr_new of $sr_live serves"
  [ -n "$sr_old" ] || return 0
  slot_settle "$sr_live"
  slot_stop "$sr_live" "$sr_old" || die "slot $sr_old of $sr_live did not drain"
  step "slot $sr_old of $sr_live drained"
}

# slot_state DIR prints, for the status, magefab:slots DIR SERVING
# RUNNING...: the slot app.sock points to, and each slot of DIR whose
# socket answers.
slot_state() {
  st_run=
  for st_s in "$root/$1"/run/*.sock; do
    [ -S "$st_s" ] || continue
    st_n=${st_s##*/} st_n=${st_n%.sock}
    [ "$st_n" != app ] || continue
    slot_answers "$1" "$st_n" 0 >/dev/null 2>&1 && st_run="$st_run	$st_n"
  done
  printf 'magefab:slots\t%s\t%s%s\n' "$1" "$(slot_linked "$1")" "$st_run"
}
