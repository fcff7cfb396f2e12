package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/magefab/magefab/sshx"
)

// withOrphanRetry runs fn; if it finds the lock held by a run of this
// machine whose process has exited, it removes that lock (only if it is
// still the same one) and runs fn once more.
func withOrphanRetry[T any](ctx context.Context, h sshx.Host, o *Options, fn func() (T, error)) (T, error) {
	v, err := fn()
	var le *LockedError
	if !errors.As(err, &le) || le.id == "" || !orphaned(le.holder) {
		return v, err
	}
	if out, uerr := run(ctx, h, o, prelude(o.Layout)+unlockIDScript(le.id), false); uerr != nil {
		return v, fmt.Errorf("%w (removing it as an orphan failed: %v)", err, scriptError(h, "unlock", out, uerr, o))
	}
	return fn()
}

// Unlock releases this run's lock on h, if it still holds it, and removes
// the staged files (Options.Staged) that no switch put in place. A lock
// that the detached part of an interrupted switch holds stays: that
// script releases it when it is done.
func Unlock(ctx context.Context, h sshx.Host, o *Options) error {
	script := prelude(o.Layout) + `lock="$root/.lock" id=
` + detachedAlive + `[ -f "$lock/id" ] && read -r id < "$lock/id"
if [ "$id" = ` + sshx.Quote(o.RunID) + ` ] && detached_alive; then
  step "a switch interrupted here is still finishing by itself: it releases the lock when done"
elif [ "$id" = ` + sshx.Quote(o.RunID) + ` ]; then
` + indent(discardStagedScript(o, h.Name()), "  ") + `  rm -rf "$lock" && res "unlocked"
fi
`
	out, err := run(ctx, h, o, script, false)
	if err != nil {
		return scriptError(h, "unlock", out, err, o)
	}
	return nil
}

// ForceUnlock removes the lock on h whoever holds it, and returns what the
// lock said about its holder ("" if there was no lock, "unknown" if it
// said nothing).
func ForceUnlock(ctx context.Context, h sshx.Host, o *Options) (string, error) {
	out, err := run(ctx, h, o, prelude(o.Layout)+`lock="$root/.lock"
if [ -d "$lock" ]; then
  printf 'magefab:held\t%s\n' "$(head -c 500 "$lock/owner" 2>/dev/null | tr '\t\n' '  ' || true)"
  rm -rf "$lock" || die "cannot remove $lock"
fi
`, false)
	if err != nil {
		return "", scriptError(h, "unlock", out, err, o)
	}
	if f := out.result("held"); len(f) > 0 {
		if held := strings.TrimSpace(f[0]); held != "" {
			return held, nil
		}
		return "unknown", nil
	}
	return "", nil
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

// lockStateScript reports the deploy lock, if any, as a "lock" result: when
// it was taken and what its owner file says.
const lockStateScript = `lock="$root/.lock"; if [ -d "$lock" ]; then ` + lockSince + `; printf 'magefab:lock\t%s\t%s\n' "$since" "$(head -c 500 "$lock/owner" 2>/dev/null | tr '\t\n' '  ')"; fi
`

// lockSince sets $since to when the lock at $lock was taken: the time the
// lock holds, or its directory's mtime for a lock without one.
const lockSince = `since=; [ -f "$lock/since" ] && read -r since < "$lock/since"; case $since in ''|*[!0-9]*) since=$(stat -c %Y "$lock" 2>/dev/null || echo 0) ;; esac`

// parseLock reads the result of lockStateScript.
func parseLock(out *scriptOutput) (owner string, at time.Time) {
	l := out.result("lock")
	if len(l) < 2 {
		return "", time.Time{}
	}
	at = parseLockTime(l[0])
	owner = strings.TrimSpace(l[1])
	if owner == "" {
		owner = "unknown"
	}
	return owner, at
}

func parseLockTime(secs string) time.Time {
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(n, 0)
}
