# lib.sh: the helpers every phase script begins with.
#
# Inputs (environment):
#   MF_ROOT  the releases root (Layout.Root); a relative path is taken
#            from the login directory
# Sets: root, the absolute releases root.
# Prints (stdout), the reply protocol read by protocol.go:
#   magefab:step TEXT     a step begins (shown to the operator)
#   magefab:KEY VALUES    a result, tab-separated values
#   magefab:error TEXT    the phase fails with TEXT (then exit 1)
set -u
umask 002
root=$MF_ROOT
case $root in /*) ;; *) root="$HOME/$root" ;; esac
step() { printf 'magefab:step %s\n' "$*"; }
res() { printf 'magefab:%s\n' "$*"; }
die() { printf 'magefab:error %s\n' "$*"; exit 1; }
