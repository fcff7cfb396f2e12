# live.sh: the live release and the app's restart. Defines functions;
# runs nothing.
# After: slot.sh
#
# Inputs (environment):
#   MF_CURRENT  the name of the symlink to the live release dir (every phase)
#   MF_RESTART  shell command that restarts the app; "" restarts nothing
#   MF_SUDO     1: the restart runs with sudo -n (every phase)
#   MF_SLOT_START and slot.sh's other inputs: with slots, restart_app
#               restarts through a slot
# Prints: steps; magefab:error (exit 1) when something fails.

# enter_live enters the live release dir, whose name it leaves in live, or
# fails saying nothing is deployed.
enter_live() {
  live=$(readlink "$root/$MF_CURRENT" 2>/dev/null) || die "nothing is deployed: $root/$MF_CURRENT does not exist"
  live=${live##*/}
  cd "$root/$live" || die "cannot enter the live release $root/$live"
}

# restart_app runs the restart command from the login directory, as a
# deploy's switch does, so that relative paths in it mean the same thing
# everywhere.
restart_app() {
  if [ -n "$MF_SLOT_START" ]; then
    slot_restart
    return
  fi
  if [ -z "$MF_RESTART" ]; then
    step "no restart command configured"
    return
  fi
  step "restarting"
  (cd "$HOME" 2>/dev/null || cd /; as_root /bin/sh -c "$MF_RESTART") 2>&1 || die "the restart command failed"
}
