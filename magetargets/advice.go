package magetargets

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
)

// Package release words its errors for any program: a held lock "clears
// when that run ends", a split fleet is reunited by "deploying one release
// to every host". A mage user needs the commands that do it; advise puts
// them in.

// advise returns err with the text of each of release's typed errors in it
// replaced by the advice a mage user needs: the targets and settings that
// act on it. mage is how the user runs a target in this environment,
// "mage env:production" (see mageCommand). The result wraps err, so
// errors.As and errors.Is see what they saw before; a nil err stays nil.
func advise(err error, mage string) error {
	if err == nil {
		return nil
	}
	orig := err.Error()
	msg := orig
	done := map[string]bool{}
	walkErrors(err, func(e error) {
		text, ok := mageText(e, mage)
		if !ok {
			return
		}
		old := e.Error()
		if old == text || done[old] {
			return
		}
		done[old] = true
		msg = strings.ReplaceAll(msg, old, text)
	})
	if msg == orig {
		return err
	}
	return &advisedError{msg: msg, err: err}
}

// advisedError is an error with advice for a mage user in its text.
type advisedError struct {
	msg string
	err error
}

func (e *advisedError) Error() string { return e.msg }
func (e *advisedError) Unwrap() error { return e.err }

// walkErrors calls fn with err and then every error it wraps, outermost
// first: each error's text holds those of the errors it wraps, so an
// outer one is rewritten before the inner ones within its new text. A
// split fleet's hosts that could not be switched back have their errors
// in the report, outside the chain: those are walked too.
func walkErrors(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	if se, ok := err.(*release.SplitError); ok {
		for _, s := range se.Serving {
			walkErrors(s.Err, fn)
		}
	}
	switch e := err.(type) {
	case interface{ WrappedErrors() []error }: // *multierror.Error
		for _, x := range e.WrappedErrors() {
			walkErrors(x, fn)
		}
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			walkErrors(x, fn)
		}
	case interface{ Unwrap() error }:
		walkErrors(e.Unwrap(), fn)
	}
}

// mageText is the text of one of release's typed errors for a mage user,
// and false for any other error.
func mageText(err error, mage string) (string, bool) {
	unlock := mage + " deploy:unlock"
	switch e := err.(type) {
	case *release.LockedError:
		return lockedText(e, unlock), true
	case *release.SwitchError:
		if e.Serving == "unknown" {
			return fmt.Sprintf("switch: %s (what %s serves is unknown: check with deploy:status)", e.Reason, e.Host), true
		}
	case *release.SplitError:
		return splitText(e, mage), true
	case *release.NeverLiveError:
		if e.Before.SHA != "" {
			return e.Error() + ": " + mage + " " + redeployTarget(e.Before), true
		}
		return fmt.Sprintf("%v (%s deploy:tag <tag> or %s deploy:commit <commit>)", e, mage, mage), true
	case *release.UnlockError:
		return fmt.Sprintf("%v (%s clears the lock)", e.Err, unlock), true
	}
	return "", false
}

// lockedText is a held lock's error for a mage user: who holds it (the
// owner line, then the holder's user, machine, process, release and CI
// job, for a lock that says them), since when, its last heartbeat and its
// lease, and what to do.
func lockedText(e *release.LockedError, unlock string) string {
	since := e.Since.Format(time.RFC3339)
	age := time.Since(e.Since).Round(time.Second)
	holder := ""
	if h := holderText(e.User, e.Machine, e.PID, e.Release, e.Job); h != "" {
		holder = "; holder: " + h
	}
	if e.Stale {
		return fmt.Sprintf("release: %s: stale lock: held by %s since %s (%s ago)%s; silent for %s (lease expired: the next deploy takes it over); if no deploy is running there, clear it with: %s",
			e.Host, e.Owner, since, age, holder, e.Silent(), unlock)
	}
	lease := ""
	switch {
	case !e.Beat.IsZero() && e.Lease > 0:
		lease = fmt.Sprintf("; last heartbeat %s ago, lease expires in %s", e.Silent(), max(e.Lease-e.Silent(), 0))
	case !e.Beat.IsZero():
		lease = fmt.Sprintf("; last heartbeat %s ago", e.Silent())
	case e.Lease > 0:
		lease = fmt.Sprintf("; no heartbeat, lease expires in %s", max(e.Lease-e.Silent(), 0))
	}
	text := fmt.Sprintf("release: %s: locked by %s since %s (%s ago)%s%s; wait for that deploy, set %s=90s to wait for it, or if it died: %s",
		e.Host, e.Owner, since, age, holder, lease, LockWaitVar, unlock)
	if e.Lease > 0 {
		text += " (or let the next deploy take it over once its lease has expired)"
	}
	return text
}

// holderText says who holds a lock, from what the lock says: "alice on
// ci-7, pid 123, deploying v1.2, CI job https://ci.example/jobs/9". Empty
// when the lock says none of it (a lock of an older magefab).
func holderText(user, machine, pid, rel, job string) string {
	var parts []string
	switch {
	case user != "" && machine != "":
		parts = append(parts, user+" on "+machine)
	case user != "":
		parts = append(parts, user)
	case machine != "":
		parts = append(parts, "on "+machine)
	}
	if pid != "" && pid != "0" {
		parts = append(parts, "pid "+pid)
	}
	if len(parts) == 0 && job == "" {
		return ""
	}
	if rel != "" {
		parts = append(parts, "deploying "+rel)
	}
	if job != "" {
		parts = append(parts, "CI job "+job)
	}
	return strings.Join(parts, ", ")
}

// splitText is a split fleet's report with the command that reunites it.
func splitText(e *release.SplitError, mage string) string {
	var b strings.Builder
	b.WriteString(e.Headline() + "\n")
	b.WriteString("what each host serves now:")
	for _, s := range e.Serving {
		b.WriteString("\n  " + s.String())
		if s.Dir == "" {
			b.WriteString(" (check with deploy:status)")
		}
	}
	switch t, ok := e.Reunite(); {
	case ok:
		fmt.Fprintf(&b, "\nto bring every host back to %s, mend what failed above, then run (each host reuses the dir that holds it):\n  %s %s\ndeploy:status shows each host",
			releaseName(t), mage, redeployTarget(t))
	case len(e.Previous) > 1:
		b.WriteString("\nthe hosts served different releases before; to reunite the fleet, mend what failed above, then deploy one release to every host, e.g.:")
		for _, t := range e.Previous {
			b.WriteString("\n  " + mage + " " + redeployTarget(t))
		}
		b.WriteString("\ndeploy:status shows each host")
	default:
		b.WriteString("\nto reunite the fleet, mend what failed above, then deploy one release to every host; deploy:status shows each host")
	}
	fmt.Fprintf(&b, "\ncause: %v", e.Err)
	return b.String()
}

// redeployTarget is the target, with its argument, that deploys t again:
// deploy:tag for a tag, deploy:commit for any other commit.
func redeployTarget(t release.Target) string {
	if t.Tag != "" {
		return "deploy:tag " + sshx.Quote(t.Tag)
	}
	return "deploy:commit " + sshx.Quote(t.SHA)
}

// releaseName is what a message calls t.
func releaseName(t release.Target) string {
	if t.Name != "" {
		return t.Name
	}
	return t.Short()
}

// nothingDeployed reports whether err, from release's Status of a host,
// says that nothing was deployed there yet (its deploy root does not
// exist): a state to report, not a failure. what is the rest of its text,
// e.g. "/var/webapps/five/releases does not exist".
func nothingDeployed(err error) (what string, ok bool) {
	if !errors.Is(err, release.ErrNothingDeployed) {
		return "", false
	}
	return strings.TrimPrefix(err.Error(), release.ErrNothingDeployed.Error()+": "), true
}

// stampLen is how much of a requirements stamp (64 hex digits) status
// shows: enough to tell two apart.
const stampLen = 12

// shortStamp abbreviates a requirements stamp for display.
func shortStamp(s string) string {
	if len(s) > stampLen {
		return s[:stampLen]
	}
	return s
}
