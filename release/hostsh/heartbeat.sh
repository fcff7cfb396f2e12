# heartbeat.sh: the heartbeat phase (refreshLease). Refreshes the lease of
# this run's lock between phases: writes the time into its beat.
# After: lock.sh
#
# Inputs (environment): only lib.sh's and lock.sh's (MF_RUN_ID).
# Prints: magefab:error and exit 1 when the lock is not this run's any
# more.
beat_now || die "the deploy lock is no longer held by this run"
