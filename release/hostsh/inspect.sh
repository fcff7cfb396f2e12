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
# Inputs (environment):
#   MF_CURRENT, MF_DIR0, MF_DIR1, MF_VENV  the layout's names (every phase)
# Prints:
#   magefab:current DIR                  the dir current points to, "" if none
#   magefab:dir NAME COMMIT NAME STAMP   for each release dir that exists
#   magefab:live DIR0 DIR1 NAME COMMIT   each dir whose commit went live
#                                        there ("" if not), and the release
#                                        live before the last one with
#                                        another commit
inspect() {
  cur=$(readlink "$root/$MF_CURRENT" 2>/dev/null || true); cur=${cur##*/}
  res "current	$cur"
  inspect_dir "$1" "$MF_DIR0"; h0=$h
  inspect_dir "$1" "$MF_DIR1"; h1=$h
  if [ -f "$root/revisions.log" ]; then
    D0=$MF_DIR0 H0=$h0 D1=$MF_DIR1 H1=$h1 awk -F '\t' "$live_awk" "$root/revisions.log" 2>/dev/null || true
  fi
}

# inspect_dir DESCRIBE DIR reports DIR (a "dir" result) if it exists, and
# sets h to its commit.
inspect_dir() {
  d=$2 h='' n='' s=''
  if [ -d "$root/$d/.git" ]; then
    [ -f "$root/$d/.git/HEAD" ] && read -r h < "$root/$d/.git/HEAD"
    case $h in ''|'ref: '*) h=$(git -C "$root/$d" rev-parse -q --verify HEAD 2>/dev/null || true) ;; esac
    if [ -n "$h" ] && [ -f "$root/revisions.log" ]; then
      n=$(tail -n 500 "$root/revisions.log" 2>/dev/null | D=$d H=$h awk -F '\t' '$5 == ENVIRON["D"] && $4 == ENVIRON["H"] { n = $3 } END { print n }')
    fi
    if [ -z "$n" ] && [ -n "$h" ] && { [ "$1" = all ] || { [ "$1" = current ] && [ "$d" = "$cur" ]; }; }; then
      n=$(git -C "$root/$d" describe --tags --always 2>/dev/null || true)
    fi
    [ -f "$root/$d/$MF_VENV/.magefab-stamp" ] && read -r s < "$root/$d/$MF_VENV/.magefab-stamp"
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
