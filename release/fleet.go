package release

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/magefab/magefab/sshx"
)

// Fleet runs the release operations on many hosts, all or nothing.
type Fleet struct {
	Hosts    []sshx.Host
	Options  *Options
	Parallel int // hosts worked on at once; zero means all

	PrepareTimeout time.Duration // per host; zero means 15 minutes
	SwitchTimeout  time.Duration // per host, switch and restart; zero means 2 minutes

	// PerHost runs on each host right after it prepared, while it holds
	// the lock (private packages, uploads, ExtraDeployTasks). An error
	// fails that host, and so the deploy: nothing switches.
	PerHost func(ctx context.Context, p *Prepared) error

	// AfterPrepare runs once every host has prepared and before any
	// switches (Django migrations on the first host). An error stops the
	// deploy: nothing switches.
	AfterPrepare func(ctx context.Context, prepared []*Prepared) error

	// Verify runs after every host switched and restarted, e.g. to check
	// that each serves the new release. An error switches every host back
	// (unless KeepOnVerifyFailure), and the deploy fails.
	Verify func(ctx context.Context, results []HostResult) error

	// KeepOnVerifyFailure keeps the new release live when Verify fails.
	KeepOnVerifyFailure bool

	// Switching, if not nil, is called as the hosts begin to switch, and
	// the func it returns once every host has switched (and verified) or,
	// on a failure, been switched back. The switch itself goes on when the
	// context is cancelled, since stopping half way would split the fleet;
	// but a process that exits on an interrupt (as mage does, 5 seconds
	// after Ctrl-C) would stop it all the same. Such a process holds its
	// interrupts in between: Switching is where it does, and the Fleet
	// itself never touches the process's signal handling.
	Switching func() (done func())

	// Warn, if not nil, is told of a failure that leaves something for
	// the user to do without changing the operation's result: this run's
	// locks that could not be released after a failure (an *UnlockError
	// for each host, under *sshx.HostError). Nil prints it on
	// Options.Console.
	Warn func(err error)
}

// HostResult is one host's part of a deploy or rollback.
type HostResult struct {
	Host      string
	Dir       string // the dir current points to now
	Release   string
	Reused    bool
	Installed bool
	Previous  Target // what the host served before
	Elapsed   time.Duration
}

// cleanupTimeout bounds lock release after a failure or an interrupt: it
// must fit in mage's 5 second grace after Ctrl-C.
const cleanupTimeout = 4 * time.Second

func (f *Fleet) prepareTimeout() time.Duration {
	if f.PrepareTimeout > 0 {
		return f.PrepareTimeout
	}
	return 15 * time.Minute
}

func (f *Fleet) switchTimeout() time.Duration {
	if f.SwitchTimeout > 0 {
		return f.SwitchTimeout
	}
	return 2 * time.Minute
}

func (f *Fleet) say(format string, args ...any) {
	if f.Options.Console != nil {
		f.Options.Console.Println("magefab", time.Now().Format("15:04:05")+" "+fmt.Sprintf(format, args...))
	}
}

// Deploy makes t live on every host, or on none. Every host prepares in
// parallel; only when all have prepared (and AfterPrepare succeeded) does
// any switch. A failure before the switch releases every lock and leaves
// every host serving what it served. If a switch or restart fails on some
// host after others switched, those are switched back and restarted. The
// context's cancellation (Ctrl-C) stops remote commands and releases the
// locks; hosts switch only if every host has prepared before it.
func (f *Fleet) Deploy(ctx context.Context, t Target) ([]HostResult, error) {
	if len(f.Hosts) == 0 {
		return nil, errors.New("release: no hosts to deploy to")
	}
	f.say("preparing %s (%s) on %d host(s)", t.Name, t.Short(), len(f.Hosts))
	res, err := f.lockingFirst(ctx, func(ctx context.Context, h sshx.Host, o *Options) (*Prepared, error) {
		ctx, cancel := context.WithTimeout(ctx, f.prepareTimeout())
		defer cancel()
		p, err := prepareHost(ctx, h, o, t)
		if err == nil && f.PerHost != nil {
			err = f.PerHost(ctx, p)
		}
		if err != nil && ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("prepare timed out after %s: %w", f.prepareTimeout(), err)
		}
		return p, err
	})
	var prepared []*Prepared
	for _, r := range res {
		if r.Err == nil {
			prepared = append(prepared, r.Value)
		}
	}
	if err == nil && ctx.Err() == nil && f.AfterPrepare != nil {
		err = f.AfterPrepare(ctx, prepared)
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		// Every host, not only those that prepared: a host interrupted
		// mid-way may still hold this run's lock.
		f.unlockAll(f.Hosts)
		return nil, fmt.Errorf("no host was switched: %w", err)
	}
	return f.switchAll(ctx, prepared, "deploy")
}

// lockingFirst runs fn on every host, but starts the others only once the
// first host's lock is taken (or fn failed there). Two runs started at the
// same moment thus meet at the first host: one proceeds, the other is
// refused there (or, with a lock wait, waits) before it locks anything
// else, so they never split the fleet's locks between them. Only a held
// lock there keeps the others from starting; after any other failure of
// the first host they run, so that the error names every host that fails.
func (f *Fleet) lockingFirst(ctx context.Context, fn func(ctx context.Context, h sshx.Host, o *Options) (*Prepared, error)) ([]sshx.Result[*Prepared], error) {
	if len(f.Hosts) == 1 {
		return sshx.Each(ctx, f.Hosts, 1, func(ctx context.Context, h sshx.Host) (*Prepared, error) { return fn(ctx, h, f.Options) })
	}
	first := f.Hosts[0]
	locked := make(chan struct{})
	var once sync.Once
	o := *f.Options
	o.onLock = func(host string) {
		if host == first.Name() {
			once.Do(func() { close(locked) })
		}
	}
	firstDone := make(chan sshx.Result[*Prepared], 1)
	go func() {
		start := time.Now()
		p, err := fn(ctx, first, &o)
		firstDone <- sshx.Result[*Prepared]{Host: first, Value: p, Err: err, Elapsed: time.Since(start)}
	}()
	var r0 *sshx.Result[*Prepared]
	select {
	case <-locked:
	case r := <-firstDone:
		r0 = &r
	}
	rest := f.Hosts[1:]
	var results []sshx.Result[*Prepared]
	var le *LockedError
	if r0 != nil && errors.As(r0.Err, &le) {
		// The first host's lock is held by another run: the others are
		// left alone (they would only take locks that run then meets),
		// and the error says why.
		results = append(results, *r0)
		for _, h := range rest {
			results = append(results, sshx.Result[*Prepared]{Host: h, Err: fmt.Errorf("not started: %s is locked", first.Name())})
		}
		return results, sshx.Errors(results[:1])
	}
	// Any other failure of the first host does not stop the others: the
	// error names every host that fails, so that one run shows them all.
	others, _ := sshx.Each(ctx, rest, max(f.Parallel-1, 1), func(ctx context.Context, h sshx.Host) (*Prepared, error) {
		return fn(ctx, h, &o)
	})
	if r0 == nil {
		r := <-firstDone
		r0 = &r
	}
	results = append([]sshx.Result[*Prepared]{*r0}, others...)
	return results, sshx.Errors(results)
}

// switchAll switches every prepared host; on any failure it switches the
// others back.
func (f *Fleet) switchAll(ctx context.Context, prepared []*Prepared, what string) ([]HostResult, error) {
	f.say("all %d host(s) prepared; switching", len(prepared))
	if f.Switching != nil {
		defer f.Switching()()
	}
	hosts := make([]sshx.Host, len(prepared))
	byHost := map[string]*Prepared{}
	for i, p := range prepared {
		hosts[i] = p.Host
		byHost[p.Host.Name()] = p
	}
	// The switch runs even if ctx was cancelled after every host prepared:
	// stopping half way would split the fleet. It has its own timeout.
	sctx := context.WithoutCancel(ctx)
	res, err := sshx.Each(sctx, hosts, f.Parallel, func(_ context.Context, h sshx.Host) (time.Duration, error) {
		c, cancel := context.WithTimeout(sctx, f.switchTimeout())
		defer cancel()
		start := time.Now()
		err := switchHost(c, byHost[h.Name()], f.Options, what)
		if err != nil && c.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("switch timed out after %s: %w", f.switchTimeout(), err)
		}
		return time.Since(start), err
	})
	if err == nil {
		out := make([]HostResult, len(res))
		for i, r := range res {
			p := byHost[r.Host.Name()]
			out[i] = HostResult{Host: r.Host.Name(), Dir: p.Dir, Release: p.Target.Name, Reused: p.Reused, Installed: p.Installed, Previous: p.Was, Elapsed: p.Elapsed + r.Value}
		}
		if f.Verify == nil {
			return out, nil
		}
		verr := f.Verify(sctx, out)
		if verr == nil {
			return out, nil
		}
		if f.KeepOnVerifyFailure {
			return out, fmt.Errorf("the new release is live everywhere but failed its check (kept: automatic rollback is off): %w", verr)
		}
		f.say("the check failed; switching every host back: %v", verr)
		if cerr := f.compensate(prepared, nil); cerr != nil {
			return nil, f.splitReport("the new release failed its check", verr, cerr, prepared, nil, nil)
		}
		return nil, fmt.Errorf("the new release failed its check, so every host was switched back to its previous release: %w", verr)
	}
	// Some host failed to switch or restart: put back the ones that did,
	// and the ones whose switch ended in an unknown state (the connection
	// dropped, the run stopped waiting, or the script died half way):
	// switching back is idempotent.
	var switched, failed, lost []*Prepared
	var known []sshx.Host
	for _, r := range res {
		p := byHost[r.Host.Name()]
		switch {
		case r.Err == nil:
			switched = append(switched, p)
		case servesUnknown(r.Err):
			failed, lost = append(failed, p), append(lost, p)
		default:
			failed, known = append(failed, p), append(known, p.Host)
		}
	}
	f.unlockAll(known)
	if len(switched) == 0 && len(lost) == 0 {
		whole := true
		for _, p := range failed {
			_, w, _ := hostServing(err, p)
			whole = whole && w
		}
		if whole {
			return nil, fmt.Errorf("the switch failed on every host; each was switched back where it could be: %w", err)
		}
		return nil, f.splitReport("the switch failed on every host", err, nil, nil, failed, nil)
	}
	f.say("switch failed on %d host(s); switching %d host(s) back", len(failed), len(switched)+len(lost))
	comp := f.compensate(switched, lost)
	// A lost host that could not be switched back may still hold this
	// run's lock (Unlock leaves a lock that a detached switch holds).
	compFailed := hostErrors(comp)
	var stuck []sshx.Host
	for _, p := range lost {
		if _, bad := compFailed[p.Host.Name()]; bad {
			stuck = append(stuck, p.Host)
		}
	}
	f.unlockAll(stuck)
	return nil, f.splitReport("the switch failed", err, comp, switched, failed, lost)
}

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
	sp := switchParams{Mode: mode, Host: h.Name(), Dir: p.Previous, Prev: p.Dir, Target: p.Was, Was: p.Target, What: "switched back: " + p.Target.Name + " failed"}
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

func (e *SplitError) Error() string {
	var b strings.Builder
	b.WriteString(e.What + "; ")
	if e.Split {
		b.WriteString("THE FLEET IS SPLIT: some hosts could not be switched back.\n")
	} else {
		b.WriteString("THE FLEET IS NOT WHOLE: every host serves the previous release, but on some not every after-switch step (crontab, staged files, services) was undone.\n")
	}
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

// unlockAll releases this run's locks on hosts, within cleanupTimeout even
// if the run's context was cancelled. A lock it cannot release is told to
// Warn.
func (f *Fleet) unlockAll(hosts []sshx.Host) {
	if len(hosts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	_, err := sshx.Each(ctx, hosts, 0, func(ctx context.Context, h sshx.Host) (struct{}, error) {
		if err := unlockHost(ctx, h, f.Options); err != nil {
			return struct{}{}, &UnlockError{Host: h.Name(), Err: err}
		}
		return struct{}{}, nil
	})
	if err == nil {
		return
	}
	err = fmt.Errorf("could not release every lock: %w", err)
	if f.Warn != nil {
		f.Warn(err)
		return
	}
	f.say("%v", err)
}
