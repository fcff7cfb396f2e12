# venv.sh: a virtualenv and its requirements. Defines venv_install; runs
# nothing.
#
# venv_install VENV makes the virtualenv VENV and installs the
# requirements unless their stamp (a hash of the interpreter's path, size
# and mtime, the install command and the requirement files' names and
# content) matches the one stored in the virtualenv. Computing it starts
# no Python. It runs in the dir the requirement files are relative to,
# and sets installed to 1 when it installed, else 0.
#
# When the install command is "pip ..." and the virtualenv has no pip of
# its own, the host interpreter's pip runs for it if it can (pip >= 22.3
# has __pip-runner__.py): the virtualenv is then made without pip (python
# -m venv --without-pip takes a tenth of the time). Any other command runs
# as it is, with the virtualenv first on PATH.
#
# The install runs in a download slot (gate_take, talk.sh): it may
# download from a package index the whole fleet shares.
# After: talk.sh
#
# Inputs (environment):
#   MF_PYTHON        the interpreter that makes virtualenvs, e.g. python3
#   MF_PIP           the install command, one word a line (pip, install)
#   MF_REQUIREMENTS  the requirement files, one a line
#   MF_EXTRA_STAMP   mixed into the stamp
#   MF_REINSTALL     1: install even when the stamp matches
# Prints: steps; magefab:error (exit 1) when something fails.
venv_install() {
  installed=0 venv=$1 pipdir=-
  hostpy=$(command -v "$MF_PYTHON") || die "$MF_PYTHON not found on the host: install it, or set Python"
  IFS=$nl; set -f
  # shellcheck disable=SC2086 # one value a line
  set -- $MF_REQUIREMENTS
  IFS=$ifs0; set +f
  for f; do [ -f "$f" ] || die "requirements file $f is missing from $PWD"; done
  stamp=$({ stat -L -c '%n %s %Y' "$hostpy"; printf '%s\n' "$(pip_line)" "$MF_EXTRA_STAMP"; for f; do printf '%s\n' "$f"; cat "$f"; done; } | sha256sum); stamp=${stamp%% *}
  if [ ! -x "$venv/bin/python" ]; then
    step "creating the virtualenv $venv"
    rm -rf "$venv"
    findpip; if [ -n "$pipdir" ]; then nopip=--without-pip; else nopip=; fi
    "$MF_PYTHON" -m venv ${nopip:+"$nopip"} "$venv" 2>&1 || { rm -rf "$venv"; die "creating the virtualenv with $MF_PYTHON -m venv failed (Debian: apt-get install python3-venv)"; }
  fi
  old=
  [ -f "$venv/.magefab-stamp" ] && read -r old < "$venv/.magefab-stamp"
  if [ "${MF_REINSTALL:-}" = 1 ] || [ "$old" != "$stamp" ]; then
    rm -f "$venv/.magefab-stamp"
    # shellcheck disable=SC2034 # read by the caller
    installed=1
    if [ -n "$MF_REQUIREMENTS" ]; then
      gate_take
      step "installing requirements"
      ( VIRTUAL_ENV=$venv PATH="$venv/bin:$PATH" PIP_DISABLE_PIP_VERSION_CHECK=1; export VIRTUAL_ENV PATH PIP_DISABLE_PIP_VERSION_CHECK
        pip_install ) 2>&1 || die "installing requirements failed"
      gate_give
    fi
    printf '%s\n' "$stamp" > "$venv/.magefab-stamp" || die "cannot write $venv/.magefab-stamp"
  else
    step "requirements unchanged: nothing to install"
  fi
}

# findpip sets pipdir to the host interpreter's pip package if it can
# install into another environment, else to "".
findpip() {
  [ "$pipdir" = - ] || return 0
  pipdir=$("$hostpy" -c 'import importlib.util as u; s = u.find_spec("pip"); print(s.submodule_search_locations[0] if s else "")' 2>/dev/null) || pipdir=
  [ -f "$pipdir/__pip-runner__.py" ] || pipdir=
}

# pip_line prints the install command's words joined by spaces.
pip_line() {
  IFS=$nl; set -f
  # shellcheck disable=SC2086 # one value a line
  set -- $MF_PIP
  IFS=' '; printf '%s' "$*"
  IFS=$ifs0; set +f
}

# pip_install runs the install command with -r FILE for each requirements
# file.
pip_install() {
  IFS=$nl; set -f
  # shellcheck disable=SC2086 # one value a line
  set -- $MF_PIP
  for r in $MF_REQUIREMENTS; do set -- "$@" -r "$r"; done
  IFS=$ifs0; set +f
  if [ "${1-}" != pip ]; then "$@"; return; fi
  shift
  if [ -x "$venv/bin/pip" ]; then pip "$@"
  else
    findpip; [ -n "$pipdir" ] || die "$venv has no pip, and $MF_PYTHON on the host has no pip >= 22.3 to install into it: install python3-pip"
    "$venv/bin/python" "$pipdir/__pip-runner__.py" "$@"
  fi
}
