package release

import (
	"strings"

	"github.com/magefab/magefab/sshx"
)

// prelude is lib.sh: the helpers every script uses, and $root (from
// MF_ROOT, which run sets).
func prelude(Layout) string { return hostScript() }

// inspectScript reports, in one go, where current points and what each
// release dir holds: its commit, its release name and the virtualenv's
// stamp. It reads files with the shell's own read rather than starting git:
// a release dir's HEAD is a detached commit (see chooseScript), and the
// name is that of the last switch to the dir with that commit among the
// last 500 lines of revisions.log (the log grows by a line a switch). git
// runs only for a dir whose HEAD is a branch (a fresh clone, or a dir
// deployed by hand) and, for a dir the log does not name, git describe
// when describe says so: "all" for every dir, "current" for the live one
// only.
//
// It also tells, from the whole of revisions.log, whether each dir's
// commit went live there (see liveAwk): a dir prepared by a deploy that
// never switched, or whose switch was undone, holds a release that never
// served.
//
// It leaves $cur (the live dir's name) and $h0, $h1 (the dirs' commits)
// for the scripts that follow.
func inspectScript(l Layout, describe string) string {
	var b strings.Builder
	b.WriteString(`cur=$(readlink "$root/"` + sshx.Quote(l.Current) + ` 2>/dev/null || true); cur=${cur##*/}
res "current	$cur"
i=0
for d in ` + sshx.Join(l.Dirs[0], l.Dirs[1]) + `; do
  h= n= s=
  if [ -d "$root/$d/.git" ]; then
    [ -f "$root/$d/.git/HEAD" ] && read -r h < "$root/$d/.git/HEAD"
    case $h in ''|'ref: '*) h=$(git -C "$root/$d" rev-parse -q --verify HEAD 2>/dev/null || true) ;; esac
    if [ -n "$h" ] && [ -f "$root/revisions.log" ]; then
      n=$(tail -n 500 "$root/revisions.log" 2>/dev/null | D=$d H=$h awk -F '\t' '$5 == ENVIRON["D"] && $4 == ENVIRON["H"] { n = $3 } END { print n }')
    fi
    if [ -z "$n" ] && [ -n "$h" ] && { [ ` + sshx.Quote(describe) + ` = all ] || { [ ` + sshx.Quote(describe) + ` = current ] && [ "$d" = "$cur" ]; }; }; then
      n=$(git -C "$root/$d" describe --tags --always 2>/dev/null || true)
    fi
    [ -f "$root/$d/"` + sshx.Quote(l.Virtualenv) + `/.magefab-stamp ] && read -r s < "$root/$d/"` + sshx.Quote(l.Virtualenv) + `/.magefab-stamp
    printf 'magefab:dir\t%s\t%s\t%s\t%s\n' "$d" "$h" "$n" "$s"
  fi
  eval "h$i=\$h"; i=$((i + 1))
done
if [ -f "$root/revisions.log" ]; then
  D0=` + sshx.Quote(l.Dirs[0]) + ` H0=$h0 D1=` + sshx.Quote(l.Dirs[1]) + ` H1=$h1 awk -F '\t' '` + liveAwk + `' "$root/revisions.log" 2>/dev/null || true
fi
`)
	return b.String()
}

// liveAwk reads revisions.log and prints a "live" result: each release
// dir (D0, D1) whose commit (H0, H1) went live there ("" for one whose
// commit did not), and the release (name, commit) that was live before the last one
// with another commit. A line of the log went live unless the next line
// is a switch back: the switch it logs was undone (its restart or an
// after-switch step failed, or another host failed and every host was
// switched back).
const liveAwk = `function went(d, h, n) {
  if (h == "") return
  if (d == ENVIRON["D0"] && h == ENVIRON["H0"]) l0 = 1
  if (d == ENVIRON["D1"] && h == ENVIRON["H1"]) l1 = 1
  if (h != lh) { bn = ln; bh = lh }
  ln = n; lh = h
}
NR > 1 && $6 !~ /^switched back/ { went(pd, ph, pn) }
{ pd = $5; ph = $4; pn = $3 }
END { if (NR > 0) went(pd, ph, pn); printf "magefab:live\t%s\t%s\t%s\t%s\n", l0 ? ENVIRON["D0"] : "", l1 ? ENVIRON["D1"] : "", bn, bh }`
