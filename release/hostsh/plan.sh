# plan.sh: the inspection of a dry run (DryRun, RollbackPlan): what the
# host serves and its lock, changing nothing (the release dirs a first
# deploy or rollback would adopt are seen as adopted: adopt dry).
# After: lock.sh inspect.sh after.sh
#
# Inputs (environment):
#   MF_CHECK_ROLLBACK  1: also check what a rollback's after-switch steps
#                      need (check_rollback, after.sh: MF_CRONTAB)
# Prints: inspect's results, magefab:refused REASON for each problem a
# rollback would meet, and lock_state's result.
adopt dry
inspect all
[ "${MF_CHECK_ROLLBACK:-}" != 1 ] || check_rollback "$cur"
lock_state
