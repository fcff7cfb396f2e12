# after.sh: the app's restart and the after-switch steps (crontab, staged
# files, services), done and undone, and the checks of what they need.
# Defines functions; runs nothing.
#
# The steps set a flag once they changed something, so that a switch back
# undoes only what was done:
#   did_cron   1 once the crontab was installed
#   did_files  the staged files put in place, by index from 0 ("0 2"),
#              or "all"
#   did_svcs   the services restarted, or tried to, by index, or "all"
#
# Inputs (environment):
#   MF_RESTART       shell command that restarts the app; "" restarts nothing
#   MF_CRONTAB       the crontab file in the release dir; "" for none
#   MF_CRONTAB_USER  whose crontab it is
#   MF_STAGED        the staged files, three lines each: the file, where
#                    its new version waits (StagedPath), where the version
#                    it replaces is kept for a switch back
#   MF_SERVICES      init scripts restarted after the app, one a line
#   MF_SUDO          1: the restarts, the crontab and the staged files run
#                    with sudo -n (every phase)
#   MF_DIR0, MF_DIR1 the release dirs' names, for check_rollback (every
#                    phase)
# Prints: steps; what after_switch's back and undo_after_switch's FAIL
# print; check_rollback prints magefab:refused REASON for each problem.

# restart restarts the app.
restart() {
  [ -z "$MF_RESTART" ] || as_root /bin/sh -c "$MF_RESTART"
}

# crontab_install FILE installs FILE as the crontab of MF_CRONTAB_USER.
crontab_install() {
  if [ "${MF_SUDO:-}" = 1 ]; then sudo -n crontab -u "$MF_CRONTAB_USER" "$1"; else crontab "$1"; fi
}

# did FLAG I succeeds when the flag did_files or did_svcs (FLAG) holds the
# index I.
did() {
  [ "$1" = all ] && return 0
  case " $1 " in *" $2 "*) return 0 ;; esac
  return 1
}

# after_switch DIR installs the crontab of DIR, now live, puts the staged
# files in place (keeping the versions they replace) and restarts the
# services, after the app restarted. A failure calls back REASON NOTE
# (defined by the script that runs it), which puts the host back on its
# previous release.
after_switch() {
  if [ -n "$MF_CRONTAB" ]; then
    [ -f "$root/$1/$MF_CRONTAB" ] || back "crontab file $MF_CRONTAB is missing from release $1" 'switched back: crontab file missing'
    crontab_install "$root/$1/$MF_CRONTAB" 2>&1 || back "installing the crontab for $MF_CRONTAB_USER failed" 'switched back: crontab install failed'
    did_cron=1
    step "crontab installed for $MF_CRONTAB_USER"
  fi
  IFS=$nl; set -f
  # shellcheck disable=SC2086 # one value a line
  set -- $MF_STAGED
  IFS=$ifs0; set +f
  a_i=0
  while [ $# -ge 3 ]; do
    if [ -f "$2" ]; then
      { if [ -f "$1" ]; then as_root cp -p "$1" "$3"; else as_root rm -f "$3"; fi && as_root mv -f "$2" "$1"; } 2>&1 || back "cannot put the new $1 in place" 'switched back: staged file failed'
      did_files="$did_files $a_i"
      step "new $1 in place"
    fi
    a_i=$((a_i + 1))
    shift 3
  done
  IFS=$nl; set -f
  # shellcheck disable=SC2086 # one value a line
  set -- $MF_SERVICES
  IFS=$ifs0; set +f
  a_i=0
  for svc; do
    did_svcs="$did_svcs $a_i"
    as_root "$svc" restart 2>&1 || back "restarting $svc failed" 'switched back: service restart failed'
    step "restarted $svc"
    a_i=$((a_i + 1))
  done
}

# undo_after_switch DIR FAIL undoes the after-switch steps whose flag is
# set, once current points to DIR again: the crontab of DIR, the staged
# files' previous versions put back, the services restarted. A crontab
# file missing from DIR leaves the crontab as it is. A step that fails runs
# FAIL MESSAGE, and the undo goes on.
undo_after_switch() {
  u_dir=$1 u_fail=$2
  if [ -n "$MF_CRONTAB" ] && [ "${did_cron:-}" = 1 ]; then
    if [ -f "$root/$u_dir/$MF_CRONTAB" ]; then
      if crontab_install "$root/$u_dir/$MF_CRONTAB" 2>&1; then step "crontab of $u_dir installed for $MF_CRONTAB_USER"
      else "$u_fail" "reinstalling the crontab of $u_dir for $MF_CRONTAB_USER failed"; fi
    else
      step "$u_dir has no $MF_CRONTAB: the crontab is left as it is"
    fi
  fi
  IFS=$nl; set -f
  # shellcheck disable=SC2086 # one value a line
  set -- $MF_STAGED
  IFS=$ifs0; set +f
  u_i=0
  while [ $# -ge 3 ]; do
    if did "$did_files" "$u_i" && [ -f "$3" ]; then
      if as_root mv -f "$3" "$1" 2>&1; then step "previous $1 back in place"
      else "$u_fail" "cannot put the previous $1 back"; fi
    fi
    u_i=$((u_i + 1))
    shift 3
  done
  IFS=$nl; set -f
  # shellcheck disable=SC2086 # one value a line
  set -- $MF_SERVICES
  IFS=$ifs0; set +f
  u_i=0
  for svc; do
    if did "$did_svcs" "$u_i"; then
      if as_root "$svc" restart 2>&1; then step "restarted $svc"
      else "$u_fail" "restarting $svc with $u_dir failed"; fi
    fi
    u_i=$((u_i + 1))
  done
}

# check_crontab DIR ADVICE FAIL checks, before any host switches, what the
# after-switch steps need to go live with the release dir DIR: the crontab
# file and the crontab command (a switch that fails there would have to be
# undone on every host). A problem runs FAIL MESSAGE; ADVICE ends the
# message of a missing file.
check_crontab() {
  [ -n "$MF_CRONTAB" ] || return 0
  [ -f "$root/$1/$MF_CRONTAB" ] || "$3" "crontab file $MF_CRONTAB is missing from release $1 ($root/$1/$MF_CRONTAB): $2"
  command -v crontab >/dev/null 2>&1 || "$3" "the crontab command is not installed on this host (needed to install $MF_CRONTAB): install cron"
}

# check_rollback CUR checks what the after-switch steps of a rollback need
# in the release dir current does not point to (CUR is the one it points
# to), and reports each problem as a "refused" result.
check_rollback() {
  [ -n "$MF_CRONTAB" ] || return 0
  case $1 in "$MF_DIR0") other=$MF_DIR1 ;; "$MF_DIR1") other=$MF_DIR0 ;; *) other= ;; esac
  if [ -n "$other" ] && [ -d "$root/$other/.git" ]; then
    check_crontab "$other" "a rollback to it could not install its crontab; deploy a release that has it instead" refuse
  fi
}

refuse() { printf 'magefab:refused\t%s\n' "$1"; }
