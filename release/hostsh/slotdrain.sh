# slotdrain.sh: the Drain phase. Drains the slots it is given, each
# unless it serves at that moment (it is the slot app.sock of the live
# dir points to). It takes no lock: it touches only those slots.
# After: slot.sh
#
# Inputs (environment):
#   MF_DRAIN  the slots, two lines each: the release dir, the slot
#   slot.sh's, MF_CURRENT (every phase)
# Prints: a step for each slot; magefab:error and exit 1 if one did not
# drain.
IFS=$nl; set -f
# shellcheck disable=SC2086 # one value a line
set -- $MF_DRAIN
IFS=$ifs0; set +f
d_live=$(readlink "$root/$MF_CURRENT" 2>/dev/null) || d_live=
d_live=${d_live##*/} d_failed=
[ $# -lt 2 ] || slot_settle "$d_live"
while [ $# -ge 2 ]; do
  if [ "$1" = "$d_live" ] && [ "$(slot_linked "$1")" = "$2" ]; then
    step "slot $2 of $1 serves: left running"
  elif slot_stop "$1" "$2"; then
    step "slot $2 of $1 drained"
  else
    d_failed="$d_failed $2"
  fi
  shift 2
done
[ -z "$d_failed" ] || die "slot(s)$d_failed did not drain"
