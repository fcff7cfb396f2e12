# status.sh: the Status phase. Inspects the host: where current points,
# what each release dir holds, the lock, and the last lines of
# revisions.log.
# After: lock.sh inspect.sh slot.sh
#
# Inputs (environment):
#   MF_LOG_LINES  how many lines of revisions.log to report
#   MF_SLOT_START "" without slots; slot.sh's inputs
#   MF_DIR0, MF_DIR1 (every phase)
# Prints: magefab:missing when the releases root does not exist; else
# inspect's and lock_state's results, then magefab:log LINE for each line
# of the log's tail; with slots, slot_state's for each release dir.
[ -d "$root" ] || { res "missing"; exit 0; }
inspect all
lock_state
tail -n "$MF_LOG_LINES" "$root/revisions.log" 2>/dev/null | while IFS= read -r l; do printf 'magefab:log\t%s\n' "$l"; done
if [ -n "$MF_SLOT_START" ]; then
  for d in "$MF_DIR0" "$MF_DIR1"; do
    [ ! -d "$root/$d" ] || slot_state "$d"
  done
fi
