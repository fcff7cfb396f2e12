# install.sh: pip-installs archives into a virtualenv (Install). The
# archives arrive on stdin as one tar, unpacked into a temporary
# directory beside the virtualenv, installed with one command and removed
# again on every exit.
#
# When the install command's first word is "pip", the virtualenv's own pip
# runs it, or when the virtualenv has none, the host's python3 -m pip
# --python <venv>/bin/python. Any other command runs as it is. Either
# runs with VIRTUAL_ENV set and the virtualenv first on PATH.
#
# Inputs (environment):
#   MF_VENV      the virtualenv (a relative path is taken from the login
#                directory)
#   MF_TMP_DIR   where the temporary directory goes: the virtualenv's
#                parent
#   MF_ARCHIVES  the archives' paths in the tar, one a line
#   MF_PIP       the install command, one word a line (pip, install)
# Prints: the command's output, and its own errors, on stderr ("pypkg:
# ..."). Exits: the command's status; 2 when the virtualenv has no
# bin/python, or no pip to run; 1 when the archives cannot be unpacked.
set -u
venv=$MF_VENV
[ -x "$venv/bin/python" ] || { echo "pypkg: $venv is not a virtualenv: it has no bin/python" >&2; exit 2; }
t=$(mktemp -d "$MF_TMP_DIR/.pypkg-XXXXXX") || exit 1
trap 'rm -rf "$t"' EXIT
trap 'exit 143' HUP INT TERM
tar -xf - -C "$t" || { echo "pypkg: cannot unpack the archives in $t" >&2; exit 1; }
cat >/dev/null
hostpy=$(command -v python3) || hostpy=''
VIRTUAL_ENV=$venv PATH="$venv/bin:$PATH"
export VIRTUAL_ENV PATH

# The command's words, then the archives.
ifs0=$IFS
IFS='
'
set -f
# shellcheck disable=SC2086 # one value a line
set -- $MF_PIP
for a in $MF_ARCHIVES; do set -- "$@" "$t/$a"; done
IFS=$ifs0; set +f

if [ "$1" != pip ]; then
  "$@" 1>&2
else
  shift
  if [ -x "$venv/bin/pip" ]; then "$venv/bin/pip" "$@"
  elif [ -n "$hostpy" ]; then "$hostpy" -m pip --python "$venv/bin/python" "$@"
  else echo "pypkg: $venv has no pip, and the host has no python3 to run pip --python with" >&2; exit 2
  fi 1>&2
fi
