# virtualenv.sh: the SetupVirtualenv phase. Makes a virtualenv and
# installs requirement files into it unless their stamp matches, as
# prepare.sh does for a release, for a project's own virtualenv.
# After: talk.sh venv.sh
#
# Inputs (environment):
#   MF_PROJECT_DIR  the dir the requirement files are relative to
#   MF_VENV_PATH    the virtualenv, an absolute path
#   venv_install's inputs (venv.sh)
# Prints: steps, then magefab:installed 1 if it installed (else 0), or
# magefab:error and exit 1.
cd "$MF_PROJECT_DIR" || die "cannot enter $MF_PROJECT_DIR"
venv_install "$MF_VENV_PATH"
res "installed	$installed"
