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
	var in vars
	in.set("MF_ORPHAN_ID", le.id)
	if out, uerr := (part{files: []string{"lock", "unlock_orphan"}, in: in}).run(ctx, h, o, false); uerr != nil {
		return v, fmt.Errorf("%w (removing it as an orphan failed: %v)", err, scriptError(h, "unlock", out, uerr, o))
	}
	return fn()
}

// unlockHost releases this run's lock on h, if it still holds it, and removes
// the staged files (Options.Staged) that no switch put in place. A lock
// that the detached part of an interrupted switch holds stays: that
// script releases it when it is done.
func unlockHost(ctx context.Context, h sshx.Host, o *Options) error {
	var in vars
	in.list("MF_STAGED", stagedList(o, h.Name()))
	out, err := (part{files: []string{"lock", "unlock"}, in: in}).run(ctx, h, o, false)
	if err != nil {
		return scriptError(h, "unlock", out, err, o)
	}
	return nil
}

// ForceUnlock removes the lock on h whoever holds it, and returns what the
// lock said about its holder ("" if there was no lock, "unknown" if it
// said nothing).
func ForceUnlock(ctx context.Context, h sshx.Host, o *Options) (string, error) {
	out, err := (part{files: []string{"lock", "force_unlock"}}).run(ctx, h, o, false)
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

// lockParams say how a script takes the deploy lock (take_lock in
// hostsh/lock.sh): mkdir is atomic. The lock holds who took it and for
// what, when, the deploying process and the run's id, so that a run only
// ever removes its own lock. A held lock is waited for up to Wait, then
// reported.
type lockParams struct {
	Owner   string // who takes it and for what: "alice@laptop deploying v2"
	Release string // the release deployed, for a deploy's lock; "" for none
	Wait    time.Duration
	// TakeOver is for a run that may still hold the lock from a script
	// that ended in an unknown state: a lock of this run is taken over,
	// unless the detached part of an interrupted switch holds it (see
	// detached_alive); that is waited for like any held lock.
	TakeOver bool
}

// part gives take_lock's inputs, with lock.sh; a script of the phase
// calls take_lock.
func (l lockParams) part() part {
	var in vars
	in.set("MF_LOCK_OWNER", l.Owner)
	in.set("MF_LOCK_HOLDER", localHolder())
	in.set("MF_LOCK_RELEASE", l.Release)
	in.set("MF_LOCK_WAIT", strconv.Itoa(int(l.Wait.Seconds())))
	in.flag("MF_LOCK_TAKEOVER", l.TakeOver)
	return part{files: []string{"lock"}, in: in}
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

// lockInfo is a lock as lock_desc (hostsh/lock.sh) describes it: the
// fields after the result's key.
type lockInfo struct {
	since, beat    time.Time
	owner, holder  string
	id, release    string
	user, machine  string
	pid, job       string
	stale, present bool
}

func parseLockInfo(f []string) lockInfo {
	var l lockInfo
	if len(f) < 2 {
		return l
	}
	get := func(i int) string {
		if i < len(f) {
			return strings.TrimSpace(f[i])
		}
		return ""
	}
	l.present = true
	l.since = parseLockTime(get(0))
	l.owner, l.holder, l.id, l.release = get(1), get(2), get(3), get(4)
	l.user, l.machine, l.pid, l.job = get(5), get(6), get(7), get(8)
	l.beat = parseLockTime(get(9))
	l.stale = get(11) == "1"
	if l.owner == "" {
		l.owner = "unknown"
	}
	return l
}

// parseLocked makes the LockedError of a script that found the lock held
// (its "locked" result).
func parseLocked(host string, f []string, o *Options) *LockedError {
	l := parseLockInfo(f)
	le := &LockedError{Host: host, Owner: "unknown", Lease: o.lockLease()}
	if !l.present {
		return le
	}
	le.Owner, le.Since, le.Release = l.owner, l.since, l.release
	le.holder, le.id = l.holder, l.id
	le.User, le.Machine, le.PID, le.Job, le.Beat = l.user, l.machine, l.pid, l.job, l.beat
	if le.Machine == "" && le.PID == "" {
		// A lock of an older magefab: its holder file says "host pid".
		le.Machine, le.PID, _ = strings.Cut(l.holder, " ")
	}
	if len(f) >= 12 {
		le.Stale = l.stale
	} else {
		le.Stale = time.Since(le.Since) > le.Lease
	}
	return le
}

// parseLock reads the result of lock_state (hostsh/lock.sh).
func parseLock(out *scriptOutput) (owner string, at time.Time) {
	l := parseLockInfo(out.result("lock"))
	if !l.present {
		return "", time.Time{}
	}
	return l.owner, l.since
}

// takeoverLine is the console line of a script that took over a lock
// whose lease expired: its "takeover" result, OWNER USER MACHINE PID
// RELEASE SILENT JOB.
func takeoverLine(f []string) string {
	get := func(i int) string {
		if i < len(f) {
			return strings.TrimSpace(f[i])
		}
		return ""
	}
	who := get(1) + "@" + get(2)
	if get(1) == "" && get(2) == "" {
		who = get(0)
		if who == "" {
			who = "unknown"
		}
	}
	var what []string
	if p := get(3); p != "" {
		what = append(what, "pid "+p)
	}
	if r := get(4); r != "" {
		what = append(what, "deploying "+r)
	}
	if j := get(6); j != "" {
		what = append(what, "job "+j)
	}
	line := "took over the lock of " + who
	if len(what) > 0 {
		line += " (" + strings.Join(what, ", ") + ")"
	}
	if n, err := strconv.Atoi(get(5)); err == nil {
		line += ", silent for " + (time.Duration(n) * time.Second).String()
	}
	return line
}

// refreshLease refreshes the lease of this run's lock on h (hostsh/
// heartbeat.sh): one session, for a host the run holds but works on in no
// phase. It fails if the lock is no longer this run's.
func refreshLease(ctx context.Context, h sshx.Host, o *Options) error {
	out, err := (part{files: []string{"lock", "heartbeat"}}).run(ctx, h, o, false)
	if err != nil {
		return scriptError(h, "lease", out, err, o)
	}
	return nil
}

func parseLockTime(secs string) time.Time {
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(n, 0)
}
