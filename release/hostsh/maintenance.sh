# maintenance.sh: the Maintenance phase. Sets MAINTENANCE_MODE in the live
# release's settings file, then restarts. Only an assignment at the start
# of a line whose value is a literal (True, False, 1 or 0, a comment may
# follow) changes; a file missing, without such an assignment, or with one
# whose value is anything else (os.environ.get(...), a name) is left as it
# is, with a warning, and the app is not restarted.
# After: slot.sh live.sh
#
# Inputs (environment):
#   MF_SETTINGS     the settings file, relative to the release dir
#   MF_MAINTENANCE  the value to set: True or False
#   enter_live's and restart_app's inputs (live.sh)
# Prints: magefab:warn TEXT when the file is left as it is; steps;
# magefab:error and exit 1 on a failure.
enter_live
assign='^MAINTENANCE_MODE[[:space:]]*='
literal='(True|False|1|0)([[:space:]]*(#.*)?)$'
f=$MF_SETTINGS
if [ ! -f "$f" ]; then
  printf 'magefab:warn\t%s\n' "$PWD/$f does not exist"
elif ! grep -Eq "$assign" "$f"; then
  printf 'magefab:warn\t%s\n' "$PWD/$f has no MAINTENANCE_MODE assignment"
elif other=$(grep -E "$assign" "$f" | grep -Ev "${assign}[[:space:]]*$literal" | head -n 1 | head -c 200 | tr '\t\r' '  '); [ -n "$other" ]; then
  printf 'magefab:warn\t%s\n' "$PWD/$f sets MAINTENANCE_MODE to something other than True or False ($other): left unchanged; set it there by hand"
else
  sed -E -i "s/(${assign}[[:space:]]*)$literal/\\1$MF_MAINTENANCE\\3/" "$f" || die "cannot edit $PWD/$f"
  step "MAINTENANCE_MODE = $MF_MAINTENANCE in $live/$f"
  restart_app
fi
