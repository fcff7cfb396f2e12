# slotup.sh: the Start phase of front mode. Starts a new slot of the
# prepared dir beside the one serving, and waits until it answers: it
# gets traffic only once the switch points current at the dir. The lock
# is held since prepare.
# After: lock.sh slot.sh
#
# Inputs (environment):
#   MF_DIR   the prepared release dir
#   MF_PREV  the live release dir; "" for none
#   slot.sh's, MF_RUN_ID (every phase)
# Prints: steps; magefab:slot NEW OLD, the slot started for MF_DIR and the
# one serving for MF_PREV ("" for none); magefab:error lines and exit 1
# when the slot does not start or answer (then it was stopped again).
lock_read
[ "$lid" = "$MF_RUN_ID" ] || die "the deploy lock is no longer held by this run"
start_heartbeat
new=$(slot_pick "$MF_DIR") old=
[ -z "$MF_PREV" ] || old=$(slot_linked "$MF_PREV")
slot_start "$MF_DIR" "$new"
printf 'magefab:slot\t%s\t%s\n' "$new" "$old"
