# prepare.sh: the prepare phase. Takes the lock and makes a release dir
# ready for the release MF_TARGET_SHA: creates the releases root if
# missing, bootstraps the clones if needed, adopts the release dirs of a
# host deployed before magefab (adopt, inspect.sh), inspects, reuses the dir that
# already holds the release or updates the dir current does not point to
# (fetch, checkout, submodules), checks what the after-switch steps need,
# then makes the virtualenv and installs the requirements unless their
# stamp matches. A failure releases the lock. Its heartbeat runs while it
# works (lock.sh).
#
# The release's commits come from MF_SCM (pull), the clone and the fetch
# each in a download slot (gate_take, talk.sh); or, with MF_PUSH=1, from
# the deploying machine (push_fetch, talk.sh), and MF_SCM is only the
# clones' origin.
# After: lock.sh talk.sh inspect.sh after.sh venv.sh
#
# Inputs (environment):
#   MF_PATH          the deploy root (Layout.Path), made group-shared with
#                    the releases root when they are created with sudo
#   MF_GROUP         the group owning them
#   MF_SCM           the git URL the hosts clone from
#   MF_PUSH          1: the deploying machine sends the commits (push)
#   MF_TARGET_NAME   the release's name, for messages
#   MF_TARGET_SHA    its commit
#   MF_TARGET_SHORT  its short commit, for messages
#   MF_SUDO, MF_CURRENT, MF_DIR0, MF_DIR1, MF_VENV  (every phase)
#   take_lock's (lock.sh), check_crontab's (after.sh: MF_CRONTAB),
#   venv_install's (venv.sh) and talk.sh's inputs
# Prints: magefab:lock, steps, inspect's results, talk.sh's questions,
# then
#   magefab:prepared DIR PREV REUSED INSTALLED ROOT
# (the dir made ready, the dir current points to, 1 if the dir already
# held the release, 1 if requirements were installed, the absolute
# releases root), or magefab:error and exit 1; 75 if the lock is held.

# The releases root, when missing: as the login user if it can, else with
# sudo, owned by the login user and the deploy group, group-writable and
# setgid so that a team can share it.
if [ ! -d "$root" ]; then
  step "creating $root"
  p=$MF_PATH; case $p in /*) ;; *) p="$HOME/$p" ;; esac
  if ! mkdir -p "$root" 2>/dev/null; then
    even=; [ "${MF_SUDO:-}" != 1 ] || even=' even with sudo -n'
    { as_root mkdir -p "$root" && as_root chown "$(id -un):$MF_GROUP" "$p" "$root" && as_root chmod 2775 "$p" "$root"; } ||
      die "cannot create $root as $(id -un)$even: create it, owned by $(id -un) and group $MF_GROUP"
  fi
fi

take_lock
release_on_exit=1

# Bootstrap: the repository cloned into the first release dir and copied
# to the second (without its virtualenv), each through a temporary name
# so that a failure leaves no half dir. The clone's HEAD is detached at
# once, so that inspect reads it without git.
# With MF_PUSH, the clone is a new repository whose origin is MF_SCM,
# holding what the deploying machine sent, its HEAD detached at the
# release.
cloned=0
if [ ! -d "$root/$MF_DIR0/.git" ] && [ ! -d "$root/$MF_DIR1/.git" ]; then
  rm -rf "$root/.clone.tmp"; cloned=1
  if [ "${MF_PUSH:-}" = 1 ]; then
    step "receiving $MF_TARGET_NAME from the deploying machine into $MF_DIR0"
    { git init -q --shared=group "$root/.clone.tmp" && git -C "$root/.clone.tmp" remote add origin "$MF_SCM"; } ||
      { rm -rf "$root/.clone.tmp"; die "git init of $root/.clone.tmp failed"; }
    cd "$root/.clone.tmp" || die "cannot enter $root/.clone.tmp"
    push_fetch
    git checkout -q --detach "$MF_TARGET_SHA" 2>&1 || { rm -rf "$root/.clone.tmp"; die "git checkout of $MF_TARGET_SHORT in $root/.clone.tmp failed"; }
    cd "$root" || die "cannot enter $root"
    mv "$root/.clone.tmp" "$root/$MF_DIR0" || { rm -rf "$root/.clone.tmp"; die "cannot move $root/.clone.tmp to $MF_DIR0"; }
  else
    gate_take
    step "cloning $MF_SCM into $MF_DIR0"
    { git clone -q --config core.sharedRepository=group "$MF_SCM" "$root/.clone.tmp" && git -C "$root/.clone.tmp" checkout -q --detach 2>&1 && mv "$root/.clone.tmp" "$root/$MF_DIR0"; } ||
      { rm -rf "$root/.clone.tmp"; die "git clone of $MF_SCM failed"; }
    gate_give
  fi
fi
# copy FROM TO copies the release dir FROM to TO if TO is missing.
copy() {
  if [ -d "$root/$1/.git" ] && [ ! -d "$root/$2/.git" ]; then
    step "copying $1 to $2"
    rm -rf "$root/.copy.tmp" "$root/${2:?}"
    { cp -a "$root/$1" "$root/.copy.tmp" && rm -rf "$root/.copy.tmp/$MF_VENV" && mv "$root/.copy.tmp" "$root/$2"; } ||
      { rm -rf "$root/.copy.tmp"; die "copying $1 to $2 failed"; }
  fi
}
copy "$MF_DIR0" "$MF_DIR1"
copy "$MF_DIR1" "$MF_DIR0"

adopt write
inspect current

# The release dir: the one already holding the commit (used as it is: a
# maintenance flag set there survives), else the one current does not
# point to, brought to the commit: fetched (unless it was cloned in this
# run and has the commit), checked out detached, its submodules updated if
# it has any. A current that points anywhere but a release dir is refused:
# only a release dir is ever switched back to.
case $cur in ''|"$MF_DIR0"|"$MF_DIR1") ;;
  *) die "$root/$MF_CURRENT points to $cur, which is not one of the release dirs $MF_DIR0 and $MF_DIR1: point it at one of them (or remove it), then deploy again" ;;
esac
prev=$cur use=
# holds DIR COMMIT picks DIR if it holds the release (the live one first).
holds() {
  [ "$2" = "$MF_TARGET_SHA" ] || return 0
  if [ -z "$use" ] || [ "$1" = "$cur" ]; then use=$1; fi
}
holds "$MF_DIR0" "$h0"
holds "$MF_DIR1" "$h1"
reused=0
if [ -n "$use" ] && [ $cloned = 1 ]; then
  step "$use holds $MF_TARGET_NAME as cloned"
elif [ -n "$use" ]; then
  reused=1
  step "$MF_TARGET_NAME is already in $use: using it as it is"
else
  if [ "$cur" = "$MF_DIR0" ]; then use=$MF_DIR1; else use=$MF_DIR0; fi
  step "updating $use to $MF_TARGET_NAME ($MF_TARGET_SHORT)"
  cd "$root/$use" || die "cannot enter $root/$use"
  [ "$(git config --get remote.origin.url)" = "$MF_SCM" ] || git remote set-url origin "$MF_SCM" || die "cannot set the origin of $use"
  if [ "${MF_PUSH:-}" = 1 ]; then
    git cat-file -e "$MF_TARGET_SHA^{commit}" 2>/dev/null || push_fetch
  elif [ $cloned = 0 ] || ! git cat-file -e "$MF_TARGET_SHA^{commit}" 2>/dev/null; then
    gate_take
    git fetch -q --tags origin 2>&1 || die "git fetch in $root/$use failed"
  fi
  git checkout -q -f --detach "$MF_TARGET_SHA" 2>&1 || die "git checkout of $MF_TARGET_SHORT in $root/$use failed: is the commit on the remote?"
  if [ -f .gitmodules ]; then
    gate_take
    git submodule -q update --init --recursive 2>&1 || die "git submodule update in $root/$use failed"
  fi
  gate_give
fi
cd "$root/$use" || die "cannot enter $root/$use"

check_crontab "$use" "add it to the release, or change the environment's Crontab" die
venv_install "$root/$use/$MF_VENV"

release_on_exit=
res "prepared	$use	$prev	$reused	$installed	$root"
