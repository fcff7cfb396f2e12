# reinstall.sh: the ReinstallLive phase. Takes the lock and installs the
# requirements into the live release's virtualenv whatever its stamp says
# (MF_REINSTALL=1), then restarts the app and releases the lock; or, with
# MF_KEEP_LOCK=1, keeps the lock and reports the live release dir, for the
# run to install more there before it restarts and unlocks.
# After: lock.sh slot.sh live.sh talk.sh venv.sh
#
# Inputs (environment):
#   MF_KEEP_LOCK  1: keep the lock, report the live dir, do not restart
#   MF_VENV       the name of the virtualenv dir (every phase)
#   take_lock's (lock.sh), enter_live's and restart_app's (live.sh) and
#   venv_install's (venv.sh) inputs
# Prints: magefab:lock, steps, with MF_KEEP_LOCK magefab:live DIR (the
# live release dir, absolute); magefab:error and exit 1 on a failure; 75
# if the lock is held. Its heartbeat runs while it works (lock.sh).
take_lock
release_on_exit=1
enter_live
venv_install "$root/$live/$MF_VENV"
if [ "${MF_KEEP_LOCK:-}" = 1 ]; then
  release_on_exit=
  res "live	$root/$live"
else
  restart_app
fi
