package release

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/magefab/magefab/sshx"
)

// When a switch fails on some host, the hosts that switched are put back
// on the release they served (compensate), and what the fleet is left
// serving is reported; a fleet that could not be made whole again is a
// *SplitError.

// servesUnknown says whether a failed switch left its host in an unknown
// state.
func servesUnknown(err error) bool {
	var se *SwitchError
	return !errors.As(err, &se) || se.Serving == "unknown"
}

// compensate switches hosts back to their previous dir and restarts them:
// switched are hosts whose switch went through, lost those whose switch
// ended in an unknown state.
func (f *Fleet) compensate(switched, lost []*Prepared) error {
	ctx := context.Background()
	var hs []sshx.Host
	byHost := map[string]*Prepared{}
	recover := map[string]bool{}
	for _, p := range switched {
		hs = append(hs, p.Host)
		byHost[p.Host.Name()] = p
	}
	for _, p := range lost {
		hs = append(hs, p.Host)
		byHost[p.Host.Name()] = p
		recover[p.Host.Name()] = true
	}
	_, err := sshx.Each(ctx, hs, f.Parallel, func(ctx context.Context, h sshx.Host) (struct{}, error) {
		p := byHost[h.Name()]
		if p.Previous == "" {
			return struct{}{}, fmt.Errorf("nothing to switch back to: this was its first release")
		}
		// A lost host may have a detached part of its switch still going
		// back by itself: that is waited for, as long as a switch may take.
		var wait time.Duration
		if recover[h.Name()] {
			wait = f.switchTimeout()
		}
		ctx, cancel := context.WithTimeout(ctx, wait+f.switchTimeout())
		defer cancel()
		return struct{}{}, switchBack(ctx, h, f.Options, p, recover[h.Name()], wait)
	})
	return err
}

// switchBack takes the lock again, points current back at the previous
// dir, restarts, undoes the after-switch steps and unlocks: the undo of a
// switch. With recover, the host's switch ended in an unknown state: this
// run's lock is taken over (a detached part of that switch is waited for,
// up to wait), and current is never pointed at the new release (see
// recovery). Its error is a *SwitchError when the script said what the
// host serves.
func switchBack(ctx context.Context, h sshx.Host, o *Options, p *Prepared, recover bool, wait time.Duration) error {
	mode, lock := backward, lockParams{Owner: o.Owner + " switching back from " + p.Target.Name}
	if recover {
		mode, lock = recovery, lockParams{Owner: lock.Owner, Wait: wait, TakeOver: true}
	}
	sp := switchParams{Mode: mode, Host: h.Name(), Dir: p.Previous, Prev: p.Dir, Target: p.Was, Was: p.Target, What: "switched back: " + p.Target.Name + " failed", Slot: p.PrevSlot, PrevSlot: p.Slot}
	out, err := phase(lock.part(), sp.part(o)).run(ctx, h, o, false)
	if err == nil {
		return nil
	}
	var ee *sshx.ExitError
	if errors.As(err, &ee) && ee.Status == exitLocked {
		return scriptError(h, "switching back", out, err, o)
	}
	// Where a failed restart leaves the host.
	after := p.Dir
	if recover || p.Dir == p.Previous {
		after = p.Previous
	}
	return switchError(h, out, err, after, p.Previous)
}

// afterBack says what the host of p serves once it was switched back (err
// is what switching back returned), whether it is whole (on its previous
// release with every after-switch step undone, or at worst with its app
// down), and whether it is on another release than its previous one (or
// on an unknown one). lost says that its own switch had failed, leaving it
// in an unknown state; runID is the run's (see Options.RunID).
func afterBack(p *Prepared, err error, lost bool, runID string) (s HostServing, whole, off bool) {
	host := p.Host.Name()
	how := "the previous release: switched back"
	if lost {
		how = "the previous release: its switch failed and it was switched back"
	}
	previous := func(note string) HostServing {
		return HostServing{Host: host, Release: p.Was.Name, Dir: p.Previous, Note: note}
	}
	if err == nil {
		return previous(how), true, false
	}
	var se *SwitchError
	if errors.As(err, &se) {
		switch {
		case se.Serving == "unknown":
			return HostServing{Host: host, Note: "unknown: switching back failed: " + se.Reason}, false, true
		case se.Serving == p.Previous && se.Incomplete:
			return previous(how + ", but not every after-switch step was undone: " + se.Reason), false, false
		case se.Serving == p.Previous && se.Down:
			return previous(how + ", but the app did not restart: " + se.Reason), true, false
		case se.Serving == p.Previous:
			return previous(how), true, false
		}
		return HostServing{Host: host, Release: p.Target.Name, Dir: p.Dir, Note: "the new release: switching back failed: " + se.Reason}, false, true
	}
	var le *LockedError
	if lost && errors.As(err, &le) && le.id == runID {
		return HostServing{Host: host, Note: "unknown: its switch was stopped, and it is still switching back by itself"}, false, true
	}
	if lost {
		return HostServing{Host: host, Note: fmt.Sprintf("unknown: switching back failed: %v", err)}, false, true
	}
	return HostServing{Host: host, Release: p.Target.Name, Dir: p.Dir, Note: fmt.Sprintf("the new release: switching back failed: %v", err)}, false, true
}

// splitReport says exactly which host serves what after a failed switch
// (what: "the switch failed"): switched are the hosts that had switched
// (compErr tells which of them could not be switched back), failed those
// whose switch failed (cause tells what each serves), lost those of them
// whose switch ended in an unknown state and that were switched back too
// (compErr tells which could not be). If some host is not
// whole (on another release than before, or with an after-switch step not
// undone), the error is a *SplitError.
func (f *Fleet) splitReport(what string, cause, compErr error, switched, failed, lost []*Prepared) error {
	compFailed := hostErrors(compErr)
	var serving []HostServing
	whole, off := true, false
	for _, p := range switched {
		s, w, o := afterBack(p, compFailed[p.Host.Name()], false, f.Options.RunID)
		s.Err = compFailed[p.Host.Name()]
		serving = append(serving, s)
		whole, off = whole && w, off || o
	}
	for _, p := range failed {
		s, w, o := hostServing(cause, p)
		if slices.Contains(lost, p) {
			s, w, o = afterBack(p, compFailed[p.Host.Name()], true, f.Options.RunID)
			s.Err = compFailed[p.Host.Name()]
		}
		serving = append(serving, s)
		whole, off = whole && w, off || o
	}
	sort.Slice(serving, func(i, j int) bool { return serving[i].Host < serving[j].Host })
	if whole {
		var b strings.Builder
		b.WriteString(what + "; every host that had switched was switched back: the fleet serves the previous release.\nwhat each host serves now:")
		for _, s := range serving {
			b.WriteString("\n  " + s.String())
		}
		return fmt.Errorf("%s\ncause: %w", b.String(), cause)
	}
	se := &SplitError{What: what, Split: off, Serving: serving, Err: cause}
	seen := map[string]bool{}
	for _, p := range append(append([]*Prepared(nil), switched...), failed...) {
		if p.Was.SHA != "" && !seen[p.Was.SHA] {
			seen[p.Was.SHA] = true
			se.Previous = append(se.Previous, tagged(p.Was))
		}
	}
	return se
}

// hostErrors maps each host named in err (a *multierror.Error of
// *sshx.HostError) to its error.
func hostErrors(err error) map[string]error {
	m := map[string]error{}
	var me *multierror.Error
	if errors.As(err, &me) {
		for _, e := range me.Errors {
			var he *sshx.HostError
			if errors.As(e, &he) {
				m[he.Host] = he.Err
			}
		}
	}
	return m
}

// HostServing says what a host serves after a failed switch.
type HostServing struct {
	Host    string
	Release string // the release's name; "" if unknown
	Dir     string // the release dir current points to; "" if unknown (Fleet.Status inspects the host)
	Note    string // how it came to serve it
	Err     error  // what failed while switching it back, if anything did
}

func (s HostServing) String() string {
	if s.Dir == "" {
		return s.Host + ": " + s.Note
	}
	return fmt.Sprintf("%s: %s in %s (%s)", s.Host, releaseName(Target{Name: s.Release}), s.Dir, s.Note)
}

// SplitError is a switch that failed on some hosts and could not be undone
// on every other: the hosts serve different releases, or some has an
// after-switch step not undone, until someone acts. Deploying one release
// to every host reunites the fleet; see Reunite.
type SplitError struct {
	What string // what failed, e.g. "the switch failed"
	// Split says that some host serves another release than before, or an
	// unknown one. Without it, every host serves its previous release, but
	// on some not every after-switch step (crontab, staged files,
	// services) was undone.
	Split   bool
	Serving []HostServing // what each host serves now, by host name
	// Previous are the releases the hosts served before the switch, each
	// once; one whose Name is a tag has it in Tag too.
	Previous []Target
	Err      error // why the switch failed
}

// Headline is the report's first line: what failed, and whether the fleet
// is split or only not whole.
func (e *SplitError) Headline() string {
	if e.Split {
		return e.What + "; THE FLEET IS SPLIT: some hosts could not be switched back."
	}
	return e.What + "; THE FLEET IS NOT WHOLE: every host serves the previous release, but on some not every after-switch step (crontab, staged files, services) was undone."
}

func (e *SplitError) Error() string {
	var b strings.Builder
	b.WriteString(e.Headline() + "\n")
	b.WriteString("what each host serves now:")
	for _, s := range e.Serving {
		b.WriteString("\n  " + s.String())
	}
	switch t, ok := e.Reunite(); {
	case ok:
		fmt.Fprintf(&b, "\nto bring every host back to %s, mend what failed above, then deploy it again (each host reuses the dir that holds it)", releaseName(t))
	case len(e.Previous) > 1:
		names := make([]string, len(e.Previous))
		for i, t := range e.Previous {
			names[i] = releaseName(t)
		}
		b.WriteString("\nthe hosts served different releases before (" + strings.Join(names, ", ") + "); to reunite the fleet, mend what failed above, then deploy one release to every host")
	default:
		b.WriteString("\nto reunite the fleet, mend what failed above, then deploy one release to every host")
	}
	fmt.Fprintf(&b, "\ncause: %v", e.Err)
	return b.String()
}

// Reunite returns the release that every host served before the switch,
// if they all served one: deploying it again brings each back to it, and
// each reuses the dir that holds it.
func (e *SplitError) Reunite() (Target, bool) {
	if len(e.Previous) != 1 {
		return Target{}, false
	}
	return e.Previous[0], true
}

func (e *SplitError) Unwrap() error { return e.Err }

// ExitStatus is 77, the status with which a host's own switch back fails,
// for a caller that exits with it.
func (e *SplitError) ExitStatus() int { return exitCompFail }

// describeSuffix matches what git describe adds to a tag for a commit
// after it: -<commits>-g<abbreviated id>.
var describeSuffix = regexp.MustCompile(`-[0-9]+-g[0-9a-f]{4,}$`)

// tagged returns t with Tag set to its Name when that names a tag: not
// git describe's name of a commit after a tag, nor an abbreviated id.
func tagged(t Target) Target {
	if t.Tag == "" && t.Name != "" && !describeSuffix.MatchString(t.Name) && !strings.HasPrefix(t.SHA, t.Name) {
		t.Tag = t.Name
	}
	return t
}

func releaseName(t Target) string {
	if t.Name != "" {
		return t.Name
	}
	if t.SHA != "" {
		return t.Short()
	}
	return "an unknown release"
}

// hostServing finds the SwitchError of p's host in err and says what the
// host serves, whether it is whole and whether it is off its previous
// release (see afterBack).
func hostServing(err error, p *Prepared) (s HostServing, whole, off bool) {
	host := p.Host.Name()
	herr, ok := hostErrors(err)[host]
	if !ok {
		return HostServing{Host: host, Note: "unknown"}, false, true
	}
	var se *SwitchError
	if !errors.As(herr, &se) {
		return HostServing{Host: host, Note: "unknown: " + herr.Error()}, false, true
	}
	switch {
	case se.Serving == "unknown":
		return HostServing{Host: host, Note: "unknown"}, false, true
	case se.Down:
		return HostServing{Host: host, Release: p.Was.Name, Dir: se.Serving, Note: "the previous release: its switch failed and it was switched back, but the app did not restart"}, true, false
	case se.Incomplete:
		return HostServing{Host: host, Release: p.Was.Name, Dir: se.Serving, Note: "the previous release: its switch failed and it was switched back, but not every after-switch step was undone: " + se.Reason}, false, false
	}
	return HostServing{Host: host, Release: p.Was.Name, Dir: se.Serving, Note: "the previous release: its switch failed and it was switched back"}, true, false
}
