# manage.sh: the Manage phase. Runs Django's manage.py commands, in order,
# in a release dir with its virtualenv's python; the first that fails
# stops the rest.
#
# Inputs (environment):
#   MF_DIR     the release dir
#   MF_MANAGE  the commands, one a line, each its words separated by tabs
#              ("migrate<TAB>--noinput")
#   MF_VENV    the name of the virtualenv dir (every phase)
# Prints: a step per command; magefab:error and exit 1 on a failure.
cd "$root/$MF_DIR" || die "cannot enter $root/$MF_DIR"
[ -f manage.py ] || die "manage.py is missing from release $MF_DIR"
py="$root/$MF_DIR/$MF_VENV/bin/python"

# manage WORDS runs manage.py with WORDS, tab-separated.
manage() {
  IFS='	'; set -f
  # shellcheck disable=SC2086 # one word a field
  set -- $1
  IFS=$ifs0; set +f
  step "manage.py $*"
  "$py" manage.py "$@" 2>&1 || die "manage.py $1 failed"
}

IFS=$nl; set -f
# shellcheck disable=SC2086 # one value a line
set -- $MF_MANAGE
IFS=$ifs0; set +f
for c; do manage "$c"; done
