# rollback.sh: the first phase of a rollback. Takes the lock (held for the
# switch that follows; its heartbeat runs while it works), adopts the
# release dirs of a host deployed before magefab (adopt, inspect.sh),
# inspects the host, and checks what the after-switch steps need in the
# release dir current does not point to.
# After: lock.sh inspect.sh after.sh
#
# Inputs (environment): take_lock's (lock.sh) and check_rollback's
# (after.sh: MF_CRONTAB).
# Prints: magefab:lock, inspect's results, and magefab:refused REASON for
# each problem the rollback would meet; 75 if the lock is held.
take_lock
adopt write
inspect all
check_rollback "$cur"
