package release

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/magefab/magefab/sshx"
)

// LockedError reports a deploy lock held by someone else.
type LockedError struct {
	Host    string
	Owner   string    // what the holder wrote: who, what, from where
	Release string    // the release the holder deploys, "" if it did not say
	Since   time.Time // when the lock was taken
	Stale   bool      // older than Options.LockStale
	Hint    string    // the command that clears it, e.g. "mage env:production deploy:unlock"

	holder, id string // the holding process ("host pid") and the lock's run id
}

func (e *LockedError) Error() string {
	age := time.Since(e.Since).Round(time.Second)
	if e.Stale {
		return fmt.Sprintf("release: %s: stale lock: held by %s since %s (%s ago); if no deploy is running there, clear it with: %s",
			e.Host, e.Owner, e.Since.Format(time.RFC3339), age, e.Hint)
	}
	return fmt.Sprintf("release: %s: locked by %s since %s (%s ago); wait for that deploy, set MAGEFAB_LOCK_WAIT=90s to wait for it, or if it died: %s",
		e.Host, e.Owner, e.Since.Format(time.RFC3339), age, e.Hint)
}

func (e *SwitchError) Error() string {
	switch {
	case e.Serving == "unknown":
		return fmt.Sprintf("switch: %s (what %s serves is unknown: check with deploy:status)", e.Reason, e.Host)
	case e.Down:
		return fmt.Sprintf("switch: %s; current points to %s again, but the app did not restart", e.Reason, e.Serving)
	case e.Incomplete:
		return fmt.Sprintf("switch: %s; %s serves the release in %s again, but not every after-switch step was undone", e.Reason, e.Host, e.Serving)
	}
	return fmt.Sprintf("switch: %s; %s serves the release in %s again", e.Reason, e.Host, e.Serving)
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

func (e *SwitchError) Unwrap() error { return e.Err }

// scriptError turns a failed script into an error with its reason.
func scriptError(h sshx.Host, what string, out *scriptOutput, err error, o *Options) error {
	var ee *sshx.ExitError
	if errors.As(err, &ee) && ee.Status == exitLocked {
		f := out.result("locked")
		le := &LockedError{Host: h.Name(), Owner: "unknown", Hint: o.command("deploy:unlock")}
		if len(f) >= 2 {
			le.Since = parseLockTime(f[0])
			if strings.TrimSpace(f[1]) != "" {
				le.Owner = strings.TrimSpace(f[1])
			}
		}
		if len(f) >= 4 {
			le.holder, le.id = strings.TrimSpace(f[2]), strings.TrimSpace(f[3])
		}
		if len(f) >= 5 {
			le.Release = strings.TrimSpace(f[4])
		}
		le.Stale = time.Since(le.Since) > o.lockStale()
		return le
	}
	if ee == nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %s", what, out.failure(err))
}
