package release

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/magefab/magefab/sshx"
)

// The errors here carry what a caller needs to act on them; their text
// names the functions of this package that do. A command-line front end
// (magetargets) finds them with errors.As and words its own advice.

// LockedError reports a deploy lock held by someone else. The lock clears
// when the run holding it ends (Options.LockWait waits for that); a lock
// whose lease expired (its holder stopped refreshing it: its run died, or
// lost its network) is taken over by the next run; ForceUnlock removes a
// lock at once.
type LockedError struct {
	Host    string
	Owner   string    // what the holder wrote: who, what, from where
	Release string    // the release the holder deploys, "" if it did not say
	Since   time.Time // when the lock was taken
	Stale   bool      // its lease expired: its run stopped refreshing it

	User    string        // who holds it: the holder's login name, "" if the lock does not say
	Machine string        // the holder's machine (its hostname)
	PID     string        // the holding process on Machine
	Job     string        // the CI job URL of the holder, "" if none
	Beat    time.Time     // the holder's last heartbeat; zero if the lock has none
	Lease   time.Duration // the lease it was judged by (Options.LockLease)

	holder, id string // the holding process ("host pid") and the lock's run id
}

// Silent is how long the holder has not refreshed the lock (since Beat,
// else since Since), as of now.
func (e *LockedError) Silent() time.Duration {
	t := e.Beat
	if t.IsZero() {
		t = e.Since
	}
	if t.IsZero() {
		return 0
	}
	return time.Since(t).Round(time.Second)
}

func (e *LockedError) Error() string {
	if e.Stale {
		return fmt.Sprintf("release: %s: stale lock: held by %s since %s%s; if no run holds it any more, remove it with ForceUnlock",
			e.Host, e.Owner, e.Since.Format(time.RFC3339), e.details())
	}
	return fmt.Sprintf("release: %s: locked by %s since %s%s; it clears when that run ends (Options.LockWait waits for it), or remove it with ForceUnlock if that run died",
		e.Host, e.Owner, e.Since.Format(time.RFC3339), e.details())
}

// details says, in parentheses, what the lock says of its holder beyond
// its owner line: user, machine, process, CI job, last heartbeat.
func (e *LockedError) details() string {
	var d []string
	if e.User != "" || e.Machine != "" {
		d = append(d, e.User+"@"+e.Machine)
	}
	if e.PID != "" {
		d = append(d, "pid "+e.PID)
	}
	if e.Job != "" {
		d = append(d, "job "+e.Job)
	}
	if !e.Beat.IsZero() {
		d = append(d, "last heartbeat "+e.Silent().String()+" ago")
	}
	if len(d) == 0 {
		return ""
	}
	return " (" + strings.Join(d, ", ") + ")"
}

// SwitchError is a failed switch or restart on one host, and what the host
// serves afterwards.
type SwitchError struct {
	Host    string
	Reason  string
	Serving string // the release dir current points to now, or "unknown"
	Down    bool   // the restart with Serving failed too: the app may be down
	// Incomplete says that current points to Serving and the app
	// restarted, but an after-switch step (crontab, staged file, service)
	// could not be undone: Reason says which.
	Incomplete bool
	Err        error
}

func (e *SwitchError) Error() string {
	switch {
	case e.Serving == "unknown":
		return fmt.Sprintf("switch: %s (what %s serves is unknown: Fleet.Status inspects it)", e.Reason, e.Host)
	case e.Down:
		return fmt.Sprintf("switch: %s; current points to %s again, but the app did not restart", e.Reason, e.Serving)
	case e.Incomplete:
		return fmt.Sprintf("switch: %s; %s serves the release in %s again, but not every after-switch step was undone", e.Reason, e.Host, e.Serving)
	}
	return fmt.Sprintf("switch: %s; %s serves the release in %s again", e.Reason, e.Host, e.Serving)
}

func (e *SwitchError) Unwrap() error { return e.Err }

// switchError reads where a failed switch script left its host from its
// exit status: after is the dir a failed restart leaves it in, previous
// the dir a failed undo leaves it in; any other failure leaves it unknown.
func switchError(h sshx.Host, out *scriptOutput, err error, after, previous string) *SwitchError {
	se := &SwitchError{Host: h.Name(), Reason: out.failure(err), Serving: "unknown", Err: err}
	var ee *sshx.ExitError
	if errors.As(err, &ee) {
		switch ee.Status {
		case exitRestartFail:
			se.Serving = after
		case exitCompFail:
			se.Serving, se.Down = after, true
		case exitUndoFail:
			se.Serving, se.Incomplete = previous, true
		}
	}
	return se
}

// NeverLiveError refuses a rollback to a release dir whose release never
// went live on its host: a deploy that did not go through (it failed on
// another host, in its migrations or at a check before the switch, or its
// switch was undone) left it prepared. It matches ErrNoPreviousRelease.
// To go back, deploy Before, or whichever release is wanted, instead.
type NeverLiveError struct {
	Dir     string // the release dir, under the deploy root: /var/webapps/five/releases/b
	Release Target // what the dir holds
	Before  Target // the release that was live before the current one; zero if the log does not say
}

func (e *NeverLiveError) Error() string {
	return fmt.Sprintf("%v: %s holds %s, which never went live there (revisions.log has no switch to it that was not undone: a deploy that did not go through left it prepared); %s",
		ErrNoPreviousRelease, e.Dir, releaseName(e.Release), e.instead())
}

// instead ends the error's text: what to do instead of the rollback.
func (e *NeverLiveError) instead() string {
	if e.Before.SHA != "" {
		return fmt.Sprintf("to go back to %s, the release live before, deploy it instead", releaseName(e.Before))
	}
	return "deploy the release to go back to instead"
}

func (e *NeverLiveError) Is(target error) bool { return target == ErrNoPreviousRelease }

// UnlockError is this run's deploy lock left on a host after the run's
// work there: removing it failed. The lock stays until Unlock (with the
// same Options.RunID) or ForceUnlock removes it.
type UnlockError struct {
	Host string
	Err  error // why it could not be removed
}

func (e *UnlockError) Error() string {
	return fmt.Sprintf("%v (the deploy lock on %s stays: ForceUnlock removes it)", e.Err, e.Host)
}

func (e *UnlockError) Unwrap() error { return e.Err }

// scriptError turns a failed script into an error with its reason.
func scriptError(h sshx.Host, what string, out *scriptOutput, err error, o *Options) error {
	var ee *sshx.ExitError
	if errors.As(err, &ee) && ee.Status == exitLocked {
		return parseLocked(h.Name(), out.result("locked"), o)
	}
	if ee == nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %s", what, out.failure(err))
}
