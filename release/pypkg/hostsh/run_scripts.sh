# run_scripts.sh: runs install scripts (RunInstallScripts) in a directory,
# one after the other, each with the virtualenv as its first argument,
# VIRTUAL_ENV set and the virtualenv first on PATH. The first that fails
# stops the rest.
#
# Inputs (environment):
#   MF_VENV     the virtualenv
#   MF_DIR      the directory the scripts run in
#   MF_SCRIPTS  the scripts, two lines each: the name as given (for
#               messages), and the path run ("./scripts/x.sh")
# Prints: the scripts' output; its own errors on stderr ("pypkg: ...").
# Exits: 2 for a script missing or not executable, else the status of the
# script that failed; 1 when the directory cannot be entered.
set -u
venv=$MF_VENV
VIRTUAL_ENV=$venv PATH="$venv/bin:$PATH"
export VIRTUAL_ENV PATH
cd "$MF_DIR" || exit 1
ifs0=$IFS
IFS='
'
set -f
# shellcheck disable=SC2086 # one value a line
set -- $MF_SCRIPTS
IFS=$ifs0; set +f
while [ $# -ge 2 ]; do
  [ -f "$2" ] || { echo "pypkg: install script $1 is missing from $PWD" >&2; exit 2; }
  [ -x "$2" ] || { echo "pypkg: install script $1 is not executable: chmod +x it and give it a #! line" >&2; exit 2; }
  "$2" "$venv" || { s=$?; echo "pypkg: install script $1 failed with status $s" >&2; exit $s; }
  shift 2
done
