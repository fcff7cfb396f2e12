# inspect.sh: what a host serves. Defines inspect; runs nothing.
#
# inspect DESCRIBE reports, in one go, where current points and what each
# release dir holds: its commit, its release name and the virtualenv's
# stamp. It reads files with the shell's own read rather than starting
# git: a release dir's HEAD is a detached commit (see prepare.sh), and the
# name is that of the last switch to the dir with that commit among the
# last 500 lines of revisions.log (the log grows by a line a switch). git
# runs only for a dir whose HEAD is a branch (a fresh clone, or a dir
# deployed by hand) and, for a dir the log does not name, git describe
# when DESCRIBE says so: "all" for every dir, "current" for the live one
# only.
#
# It also tells, from the whole of revisions.log, whether each dir's
# commit went live there: a dir prepared by a deploy that never switched,
# or whose switch was undone, holds a release that never served.
#
# It leaves cur (the live dir's name) and h0, h1 (the dirs' commits) for
# what follows.
#
# adopt write|dry|quiet, run before inspect, adopts the release dirs of a host
# deployed before magefab (by buedafab: the same a/b dirs holding git
# checkouts, current pointing to one, a virtualenv in each, but no
# revisions.log and no stamps): see adopt below. inspect then sees them
# as releases that went live.
#
# Inputs (environment):
#   MF_CURRENT, MF_DIR0, MF_DIR1, MF_VENV  the layout's names (every phase)
#   MF_LOCK_OWNER    who adopts, for revisions.log (adopt, lock.sh)
# Prints:
#   magefab:current DIR                  the dir current points to, "" if none
#   magefab:dir NAME COMMIT NAME STAMP   for each release dir that exists
#   magefab:live DIR0 DIR1 NAME COMMIT   each dir whose commit went live
#                                        there ("" if not), and the release
#                                        live before the last one with
#                                        another commit
#   magefab:adopted DIR NAME COMMIT VENV for each dir adopt records (VENV:
#                                        "ok", or why its virtualenv does
#                                        not count), and a step that says so
#   magefab:notadopted DIR NAME COMMIT WHY
#                                        the other dir, when adopt leaves it
inspect() {
  cur=$(readlink "$root/$MF_CURRENT" 2>/dev/null || true); cur=${cur##*/}
  res "current	$cur"
  inspect_dir "$1" "$MF_DIR0"; h0=$h
  inspect_dir "$1" "$MF_DIR1"; h1=$h
  if [ -f "$root/revisions.log" ] || [ -n "${adopt_log:-}" ]; then
    revlog | D0=$MF_DIR0 H0=$h0 D1=$MF_DIR1 H1=$h1 awk -F '\t' "$live_awk" 2>/dev/null || true
  fi
}

# revlog prints revisions.log, and after it the lines a dry adopt would
# have added.
revlog() {
  cat "$root/revisions.log" 2>/dev/null
  printf '%s' "${adopt_log:-}"
}

# inspect_dir DESCRIBE DIR reports DIR (a "dir" result) if it exists, and
# sets h to its commit.
inspect_dir() {
  d=$2 h='' n='' s=''
  if [ -d "$root/$d/.git" ]; then
    [ -f "$root/$d/.git/HEAD" ] && read -r h < "$root/$d/.git/HEAD"
    case $h in ''|'ref: '*) h=$(git -C "$root/$d" rev-parse -q --verify HEAD 2>/dev/null || true) ;; esac
    if [ -n "$h" ] && { [ -f "$root/revisions.log" ] || [ -n "${adopt_log:-}" ]; }; then
      n=$(revlog | tail -n 500 | D=$d H=$h awk -F '\t' '$5 == ENVIRON["D"] && $4 == ENVIRON["H"] { n = $3 } END { print n }')
    fi
    if [ -z "$n" ] && [ -n "$h" ] && { [ "$1" = all ] || { [ "$1" = current ] && [ "$d" = "$cur" ]; }; }; then
      n=$(git -C "$root/$d" describe --tags --always 2>/dev/null || true)
    fi
    [ -f "$root/$d/$MF_VENV/.magefab-stamp" ] && read -r s < "$root/$d/$MF_VENV/.magefab-stamp"
    case " ${adopt_stamps:-} " in *" $d "*) [ -n "$s" ] || s=adopted ;; esac
    printf 'magefab:dir\t%s\t%s\t%s\t%s\n' "$d" "$h" "$n" "$s"
  fi
}

# live_awk reads revisions.log and prints the "live" result: each release
# dir (D0, D1) whose commit (H0, H1) went live there ("" for one whose
# commit did not), and the release (name, commit) that was live before the
# last one with another commit. A line of the log went live unless the
# next line is a switch back: the switch it logs was undone (its restart
# or an after-switch step failed, or another host failed and every host
# was switched back).
# shellcheck disable=SC2016 # awk's own $ fields
live_awk='function went(d, h, n) {
  if (h == "") return
  if (d == ENVIRON["D0"] && h == ENVIRON["H0"]) l0 = 1
  if (d == ENVIRON["D1"] && h == ENVIRON["H1"]) l1 = 1
  if (h != lh) { bn = ln; bh = lh }
  ln = n; lh = h
}
NR > 1 && $6 !~ /^switched back/ { went(pd, ph, pn) }
{ pd = $5; ph = $4; pn = $3 }
END { if (NR > 0) went(pd, ph, pn); printf "magefab:live\t%s\t%s\t%s\t%s\n", l0 ? ENVIRON["D0"] : "", l1 ? ENVIRON["D1"] : "", bn, bh }'

# adopt MODE adopts the release dirs of a host deployed before magefab,
# with the lock held, so that a rollback can go back to them: a host
# whose revisions.log is missing or empty, and whose current points to a
# release dir holding a git checkout. Each dir it adopts gets a line in
# revisions.log, marked adopted, with its commit and its name (the tag
# that points there, else git describe): current's dir last, so that it
# is the live release and the other the one live before. The other dir
# is adopted only if it holds a commit, no stamp of magefab's (a dir
# magefab prepared is never taken for a release that served), and a
# virtualenv whose bin/python runs. A virtualenv that runs gets the stamp
# "adopted", which counts it as complete (and which no requirements
# match: the next deploy to the dir installs them into it). It says so
# once, in a step; a host adopted has a revisions.log, and is never
# adopted again.
#
# MODE write adopts. MODE dry writes nothing: inspect then sees the lines
# and stamps as if written (adopt_log, adopt_stamps), and the step says
# what the first deploy or rollback will adopt. MODE quiet is dry without
# the step.
adopt() {
  adopt_log='' adopt_stamps=''
  [ ! -s "$root/revisions.log" ] || return 0
  a_cur=$(readlink "$root/$MF_CURRENT" 2>/dev/null) || return 0
  a_cur=${a_cur%/}; a_cur=${a_cur##*/}
  case $a_cur in "$MF_DIR0") a_other=$MF_DIR1 ;; "$MF_DIR1") a_other=$MF_DIR0 ;; *) return 0 ;; esac
  [ -d "$root/$a_cur/.git" ] || return 0
  a_mode=$1 a_lines='' a_said='' a_not='' a_now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for a_d in "$a_other" "$a_cur"; do
    [ -d "$root/$a_d/.git" ] || continue
    a_h=$(git -C "$root/$a_d" rev-parse -q --verify 'HEAD^{commit}' 2>/dev/null) || continue
    a_venv=$root/$a_d/$MF_VENV a_ok=ok
    if [ ! -e "$a_venv/bin/python" ]; then a_ok="no $MF_VENV/bin/python"
    elif ! (cd / && "$a_venv/bin/python" -c '' </dev/null >/dev/null 2>&1); then a_ok="$MF_VENV/bin/python does not run"
    fi
    a_n=$(git -C "$root/$a_d" describe --tags --exact-match HEAD 2>/dev/null || git -C "$root/$a_d" describe --tags --always 2>/dev/null) || a_n=$a_h
    if [ "$a_d" != "$a_cur" ] && { [ -f "$a_venv/.magefab-stamp" ] || [ "$a_ok" != ok ]; }; then
      [ ! -f "$a_venv/.magefab-stamp" ] || a_ok="prepared by magefab, never switched to"
      printf 'magefab:notadopted\t%s\t%s\t%s\t%s\n' "$a_d" "$a_n" "$a_h" "$a_ok"
      a_not="; not $a_d, which holds $a_n ($a_ok: a rollback to it is refused)"
      continue
    fi
    a_lines="$a_lines$a_now	(before magefab)	$a_n	$a_h	$a_d	adopted by ${MF_LOCK_OWNER:-magefab}$nl"
    a_note=
    if [ "$a_ok" = ok ] && [ ! -f "$a_venv/.magefab-stamp" ]; then
      if [ "$a_mode" != write ]; then adopt_stamps="$adopt_stamps $a_d"
      elif ! printf 'adopted\n' > "$a_venv/.magefab-stamp" 2>/dev/null; then a_ok="cannot write $MF_VENV/.magefab-stamp"
      fi
    fi
    [ "$a_ok" = ok ] || a_note=", its virtualenv not usable: $a_ok"
    a_short=$(printf '%.7s' "$a_h")
    if [ "$a_d" = "$a_cur" ]; then a_said="$a_said${a_said:+, }$a_d: $a_n ($a_short, live$a_note)"
    else a_said="$a_said${a_said:+, }$a_d: $a_n ($a_short$a_note)"; fi
    printf 'magefab:adopted\t%s\t%s\t%s\t%s\n' "$a_d" "$a_n" "$a_h" "$a_ok"
  done
  if [ "$a_mode" != write ]; then
    adopt_log=$a_lines
    [ "$a_mode" != dry ] || step "releases deployed before magefab (no revisions.log): $a_said; the first deploy or rollback adopts them$a_not"
    return 0
  fi
  printf '%s' "$a_lines" >> "$root/revisions.log" || die "cannot write $root/revisions.log"
  step "adopted the releases deployed before magefab: $a_said$a_not; recorded in revisions.log"
}
