package release

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/magefab/magefab/sshx"
)

// A host is worked on with one shell script per phase, so that a phase
// costs one SSH session. Scripts speak back on stdout with lines that
// start with "magefab:"; everything else is the output of the tools they
// run (git, pip, the restart command).

// exit codes of the scripts, beyond 0 and 1
const (
	exitLocked      = 75 // the lock is held by someone else
	exitRestartFail = 76 // the restart failed; the host was switched back
	exitCompFail    = 77 // the restart failed, and switching back failed too
	exitUndoFail    = 78 // switched back and restarted, but an after-switch step could not be undone
)

// prelude defines the helpers every script uses, and $root.
func prelude(l Layout) string {
	return `set -u
umask 002
root=` + sshx.Quote(l.Root()) + `
case $root in /*) ;; *) root="$HOME/$root" ;; esac
step() { printf 'magefab:step %s\n' "$*"; }
res() { printf 'magefab:%s\n' "$*"; }
die() { printf 'magefab:error %s\n' "$*"; exit 1; }
`
}

// lockScript takes the deploy lock: mkdir is atomic. The lock holds who
// took it and for what, when (the time in the lock itself: a dir's mtime
// changes with what is written in it, or with a copy), and the run's id, so
// that a run only ever removes its own lock. A held lock is waited for up
// to wait, then reported.
func lockScript(runID, owner string, wait time.Duration) string {
	return lockReleaseScript(runID, owner, "", wait)
}

// lockReleaseScript is lockScript for a deploy: the lock also names the
// release being deployed.
func lockReleaseScript(runID, owner, release string, wait time.Duration) string {
	return lockScriptWith(runID, owner, release, wait, false)
}

// lockOwnScript is lockScript for a run that may still hold the lock
// from a script that ended in an unknown state: a lock of this run is
// taken over, unless the detached part of an interrupted switch holds it
// (see detachedAlive); that is waited for like any held lock.
func lockOwnScript(runID, owner string, wait time.Duration) string {
	return lockScriptWith(runID, owner, "", wait, true)
}

func lockScriptWith(runID, owner, release string, wait time.Duration, takeOver bool) string {
	holder := localHolder()
	own := ""
	if takeOver {
		own = `  id=; [ -f "$lock/id" ] && read -r id < "$lock/id"
  if [ "$id" = ` + sshx.Quote(runID) + ` ] && ! detached_alive; then rm -rf "$lock" && continue; fi
`
	}
	field := func(name string, n int) string {
		return `"$(head -c ` + fmt.Sprint(n) + ` "$lock/` + name + `" 2>/dev/null | tr '\t\n' '  ')"`
	}
	rel := ""
	if release != "" {
		rel = ` && printf '%s\n' ` + sshx.Quote(release) + ` > "$lock/release"`
	}
	return `lock="$root/.lock" deadline=
` + detachedAlive + `while ! mkdir "$lock" 2>/dev/null; do
  [ -d "$root" ] || die "$root does not exist"
` + own + `  [ -n "$deadline" ] || deadline=$(( $(date +%s) + ` + fmt.Sprint(int(wait.Seconds())) + ` ))
  if [ "$(date +%s)" -ge "$deadline" ]; then
    ` + lockSince + `
    printf 'magefab:locked\t%s\t%s\t%s\t%s\t%s\n' "$since" ` + field("owner", 500) + ` ` + field("holder", 200) + ` ` + field("id", 100) + ` ` + field("release", 200) + `
    exit ` + fmt.Sprint(exitLocked) + `
  fi
  sleep 1
done
date +%s > "$lock/since" && printf '%s\n' ` + sshx.Quote(owner) + ` > "$lock/owner" && printf '%s\n' ` + sshx.Quote(runID) + ` > "$lock/id" && printf '%s\n' ` + sshx.Quote(holder) + ` > "$lock/holder"` + rel + ` || { rm -rf "$lock"; die "cannot write the lock in $root"; }
trap 'rm -rf "$lock"; exit 143' TERM INT HUP
res "lock"
`
}

// localHolder names the deploying process: "<hostname> <pid>". A lock
// whose holder is a process of this machine that no longer runs is an
// orphan (its run was killed, or its host hung until the run gave up).
func localHolder() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	return h + " " + strconv.Itoa(os.Getpid())
}

// orphaned reports whether a lock's holder was a process of this machine
// that has exited.
func orphaned(holder string) bool {
	h, err := os.Hostname()
	host, pid, ok := strings.Cut(strings.TrimSpace(holder), " ")
	if err != nil || !ok || host != h {
		return false
	}
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 || n == os.Getpid() {
		return false
	}
	return syscall.Kill(n, 0) == syscall.ESRCH
}

// detachedAlive defines detached_alive, which succeeds while the lock at
// $lock belongs to a switch script's detached part (see switchParts): the
// file detached in the lock holds its process id, and that process runs.
// An empty file is the mark the trap leaves before the detached script
// writes its id: it counts for a minute.
const detachedAlive = `detached_alive() {
  dp=; [ -f "$lock/detached" ] || return 1
  read -r dp < "$lock/detached" || true
  if [ -z "$dp" ]; then [ -n "$(find "$lock/detached" -mmin -1 2>/dev/null)" ]; else kill -0 "$dp" 2>/dev/null; fi
}
`

// unlockIDScript removes the lock if it still has the given id, unless a
// detached switch script holds it.
func unlockIDScript(id string) string {
	return `lock="$root/.lock"
` + detachedAlive + `if [ "$(cat "$lock/id" 2>/dev/null)" = ` + sshx.Quote(id) + ` ] && ! detached_alive; then rm -rf "$lock" && step "removed an orphaned lock"; fi
`
}

// unlockScript removes the lock if this run holds it.
func unlockScript(runID string) string {
	return `lock="$root/.lock" id=
[ -f "$lock/id" ] && read -r id < "$lock/id"
if [ "$id" = ` + sshx.Quote(runID) + ` ]; then rm -rf "$lock" && res "unlocked"; fi
`
}

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

// scriptOutput parses what a script prints: magefab: lines become results
// and progress steps, the rest is tool output shown live in verbose mode.
// The tail of everything is kept for error messages.
type scriptOutput struct {
	host    string
	console *sshx.Console
	verbose bool
	onLock  func(host string) // called as soon as the script says it holds the lock

	mu      sync.Mutex
	partial []byte
	results [][]string // fields of each magefab: line other than step and error
	errors  []string
	tail    []string
}

func (o *scriptOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		o.line(string(o.partial[:i]))
		o.partial = o.partial[i+1:]
	}
	return len(p), nil
}

func (o *scriptOutput) line(l string) {
	rest, ok := strings.CutPrefix(l, "magefab:")
	if !ok {
		o.tail = append(o.tail, l)
		if len(o.tail) > 20 {
			o.tail = o.tail[1:]
		}
		if o.verbose && o.console != nil {
			o.console.Println(o.host, "  "+l)
		}
		return
	}
	switch {
	case strings.HasPrefix(rest, "step "):
		o.say(strings.TrimPrefix(rest, "step "))
	case strings.HasPrefix(rest, "error "):
		o.errors = append(o.errors, strings.TrimPrefix(rest, "error "))
	default:
		o.results = append(o.results, strings.Split(rest, "\t"))
		if rest == "lock" && o.onLock != nil {
			o.onLock(o.host)
		}
	}
}

func (o *scriptOutput) say(msg string) {
	if o.console != nil {
		o.console.Println(o.host, time.Now().Format("15:04:05")+" "+msg)
	}
}

// result returns the fields after the key of the first result line with
// that key, or nil.
func (o *scriptOutput) result(key string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.results {
		if r[0] == key {
			return r[1:]
		}
	}
	return nil
}

// all returns every result line with key.
func (o *scriptOutput) all(key string) [][]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out [][]string
	for _, r := range o.results {
		if r[0] == key {
			out = append(out, r[1:])
		}
	}
	return out
}

// failure describes why a script failed: its own error lines, else the
// tail of the tools' output.
func (o *scriptOutput) failure(err error) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	tail := o.tail
	if len(tail) > 3 {
		tail = tail[len(tail)-3:]
	}
	msg := err.Error()
	if len(o.errors) > 0 {
		msg = strings.Join(o.errors, "; ")
	}
	if len(tail) > 0 {
		return msg + ": " + strings.Join(tail, " | ")
	}
	return msg
}
