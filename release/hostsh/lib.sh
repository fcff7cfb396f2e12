# lib.sh: the helpers every phase script begins with.
#
# Inputs (environment), set for every phase (see runWith):
#   MF_ROOT     the releases root (Layout.Root); a relative path is taken
#               from the login directory
#   MF_SUDO     1: privileged commands run with sudo -n (as_root); else
#               they run as the login user
#   MF_RUN_ID   the run's id (Options.RunID): a run removes only a lock
#               that holds it
#   MF_CURRENT  the name of the symlink to the live release dir
#   MF_DIR0, MF_DIR1
#               the names of the two release dirs
#   MF_VENV     the name of the virtualenv dir inside a release dir
#   MF_LOCK_LEASE
#               the lock's lease in seconds (lock.sh)
#   MF_LOCK_USER, MF_LOCK_MACHINE, MF_LOCK_PID, MF_LOCK_JOB
#               who deploys, for the lock a phase takes (lock.sh)
# A list is one variable with one value a line (a value cannot hold a
# newline).
# Sets: root, the absolute releases root; nl, a newline; ifs0, the
# shell's own IFS.
# Prints (stdout), the reply protocol read by protocol.go:
#   magefab:step TEXT     a step begins (shown to the operator)
#   magefab:KEY VALUES    a result, tab-separated values
#   magefab:error TEXT    the phase fails with TEXT (then exit 1)
set -u
umask 002
root=$MF_ROOT
case $root in /*) ;; *) root="$HOME/$root" ;; esac
# shellcheck disable=SC2034 # used by the files that follow
nl='
' ifs0=$IFS
step() { printf 'magefab:step %s\n' "$*"; }
res() { printf 'magefab:%s\n' "$*"; }
die() { printf 'magefab:error %s\n' "$*"; exit 1; }

# as_root CMD ARG...: runs CMD as root with sudo -n when MF_SUDO is 1 (a
# password prompt fails rather than hangs), else as the login user.
as_root() {
  if [ "${MF_SUDO:-}" = 1 ]; then sudo -n "$@"; else "$@"; fi
}
