package release

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/magefab/magefab/sshx"
)

// Fleet runs the release operations on many hosts, all or nothing.
type Fleet struct {
	Hosts    []sshx.Host
	Options  *Options
	Parallel int // hosts worked on at once; zero means all

	// FetchLimit is how many hosts of a Deploy download from a service
	// the whole fleet shares at once, separate from Parallel: the git
	// clone or fetch from Options.SCM (the submodules' too), and the
	// requirements install (pip, from its package index). The others
	// wait their turn, each in its prepare session, before the download.
	// With Options.PushFrom the hosts download no commits from SCM, and
	// the limit bounds only the installs. Zero means no limit beyond
	// Parallel.
	FetchLimit int

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

	// Rollout says how the switch goes through the fleet: all at once
	// (its zero value), or a canary and batches, with a load balancer or
	// without (see Rollout).
	Rollout Rollout

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

// Lock release after a failure is bounded by failureCleanupTimeout: long
// enough for a big fleet of busy hosts, short enough that a hung host
// (its lock is then reported, and its lease ends it) does not hold the
// operator long. Once the run is interrupted (its context cancelled, now
// or during the release: a Ctrl-C while it waits cuts the wait short), it
// gets interruptCleanupTimeout at most: that must fit in mage's 5 second
// grace after Ctrl-C.
const (
	failureCleanupTimeout   = 15 * time.Second
	interruptCleanupTimeout = 4 * time.Second
)

// cleanupContext returns the context for releasing locks after a run
// whose context is ctx ended: not cancelled with it, but bounded as said
// above.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), failureCleanupTimeout)
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(interruptCleanupTimeout, cancel)
		context.AfterFunc(c, func() { t.Stop() })
	})
	return c, func() {
		stop()
		cancel()
	}
}

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
	if err := f.Rollout.validate(len(f.Hosts)); err != nil {
		return nil, err
	}
	defer f.keepLeases()()
	defer f.transfers(ctx)()
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
		f.Options.progress(Event{Phase: PhaseAfterPrepare, State: EventStarted})
		err = f.AfterPrepare(ctx, prepared)
		f.Options.progress(ended("", PhaseAfterPrepare, err))
	}
	if err == nil && ctx.Err() == nil {
		err = f.startSlots(ctx, prepared)
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		// Every host, not only those that prepared: a host interrupted
		// mid-way may still hold this run's lock.
		f.unlockAll(ctx, f.Hosts)
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
	f.Options.waiting(PhasePrepare, f.Hosts)
	fn = shownPrepare(fn)
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

// shownPrepare is fn, telling Options.Progress as each host begins and
// ends PhasePrepare.
func shownPrepare(fn func(ctx context.Context, h sshx.Host, o *Options) (*Prepared, error)) func(ctx context.Context, h sshx.Host, o *Options) (*Prepared, error) {
	return func(ctx context.Context, h sshx.Host, o *Options) (*Prepared, error) {
		o.progress(Event{Host: h.Name(), Phase: PhasePrepare, State: EventStarted})
		p, err := fn(ctx, h, o)
		o.progress(ended(h.Name(), PhasePrepare, err))
		return p, err
	}
}

// switchAll switches every prepared host; on any failure it switches the
// others back. With a staged Rollout, it switches stage by stage.
func (f *Fleet) switchAll(ctx context.Context, prepared []*Prepared, what string) ([]HostResult, error) {
	f.say("all %d host(s) prepared; switching", len(prepared))
	if f.Rollout.Staged() {
		return f.rollout(ctx, prepared, what)
	}
	if f.Switching != nil {
		defer f.Switching()()
	}
	// The switch runs even if ctx was cancelled after every host prepared:
	// stopping half way would split the fleet. It has its own timeout.
	sctx := context.WithoutCancel(ctx)
	out, res, err := f.switchHosts(sctx, prepared, what)
	if err != nil {
		return nil, f.switchFailed(err, res, prepared, nil)
	}
	if f.Verify == nil {
		f.drainOld(prepared)
		return out, nil
	}
	f.Options.progress(Event{Phase: PhaseVerify, State: EventStarted})
	verr := f.Verify(sctx, out)
	f.Options.progress(ended("", PhaseVerify, verr))
	if verr == nil {
		f.drainOld(prepared)
		return out, nil
	}
	if f.KeepOnVerifyFailure {
		f.drainOld(prepared)
		return out, fmt.Errorf("the new release is live everywhere but failed its check (kept: automatic rollback is off): %w", verr)
	}
	f.say("the check failed; switching every host back: %v", verr)
	if cerr := f.switchBack(prepared, nil); cerr != nil {
		return nil, f.splitReport("the new release failed its check", verr, cerr, prepared, nil, nil)
	}
	return nil, fmt.Errorf("the new release failed its check, so every host was switched back to its previous release: %w", verr)
}

// switchHosts switches the hosts of prepared in parallel, each within the
// switch timeout, even if ctx is cancelled. On success it returns each
// host's result; either way, what each host's switch returned.
func (f *Fleet) switchHosts(ctx context.Context, prepared []*Prepared, what string) ([]HostResult, []sshx.Result[time.Duration], error) {
	sctx := context.WithoutCancel(ctx)
	hosts := make([]sshx.Host, len(prepared))
	byHost := map[string]*Prepared{}
	for i, p := range prepared {
		hosts[i] = p.Host
		byHost[p.Host.Name()] = p
	}
	f.Options.waiting(PhaseSwitch, hosts)
	res, err := sshx.Each(sctx, hosts, f.Parallel, func(_ context.Context, h sshx.Host) (time.Duration, error) {
		c, cancel := context.WithTimeout(sctx, f.switchTimeout())
		defer cancel()
		start := time.Now()
		f.Options.progress(Event{Host: h.Name(), Phase: PhaseSwitch, State: EventStarted})
		err := switchHost(c, byHost[h.Name()], f.Options, what)
		if err != nil && c.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("switch timed out after %s: %w", f.switchTimeout(), err)
		}
		f.Options.progress(ended(h.Name(), PhaseSwitch, err))
		return time.Since(start), err
	})
	if err != nil {
		return nil, res, err
	}
	out := make([]HostResult, len(res))
	for i, r := range res {
		p := byHost[r.Host.Name()]
		out[i] = HostResult{Host: r.Host.Name(), Dir: p.Dir, Release: p.Target.Name, Reused: p.Reused, Installed: p.Installed, Previous: p.Was, Elapsed: p.Elapsed + r.Value}
	}
	return out, res, nil
}

// switchFailed handles a switch that failed on some of the hosts of
// prepared (err, with each host's result in res): it puts back the ones
// that switched, those whose switch ended in an unknown state (the
// connection dropped, the run stopped waiting, or the script died half
// way: switching back is idempotent), and those of done, which switched
// in an earlier stage; then it says what the fleet serves.
func (f *Fleet) switchFailed(err error, res []sshx.Result[time.Duration], prepared, done []*Prepared) error {
	here, failed, lost := f.sortSwitch(res, prepared)
	switched := append(append([]*Prepared(nil), done...), here...)
	if len(switched) == 0 && len(lost) == 0 {
		whole := true
		for _, p := range failed {
			_, w, _ := hostServing(err, p)
			whole = whole && w
		}
		if whole {
			return fmt.Errorf("the switch failed on every host; each was switched back where it could be: %w", err)
		}
		return f.splitReport("the switch failed on every host", err, nil, nil, failed, nil)
	}
	f.say("switch failed on %d host(s); switching %d host(s) back", len(failed), len(switched)+len(lost))
	comp := f.switchBack(switched, lost)
	f.unlockStuck(comp, lost)
	return f.splitReport("the switch failed", err, comp, switched, failed, lost)
}

// sortSwitch sorts the hosts of a switch of prepared that failed somewhere
// (res) into those that switched, those that failed and, among these,
// those lost: their switch ended in an unknown state (the connection
// dropped, the run stopped waiting, or the script died half way). The
// other failed hosts' switch went back (and stopped their new slot): their
// locks are released here.
func (f *Fleet) sortSwitch(res []sshx.Result[time.Duration], prepared []*Prepared) (switched, failed, lost []*Prepared) {
	byHost := map[string]*Prepared{}
	for _, p := range prepared {
		byHost[p.Host.Name()] = p
	}
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
	f.unlockAll(context.Background(), known) // interrupts are held here
	return switched, failed, lost
}

// unlockStuck releases this run's locks on the lost hosts that could not
// be switched back (comp): Unlock leaves a lock that a detached switch
// holds, and one may still hold it.
func (f *Fleet) unlockStuck(comp error, lost []*Prepared) {
	compFailed := hostErrors(comp)
	var stuck []sshx.Host
	for _, p := range lost {
		if _, bad := compFailed[p.Host.Name()]; bad {
			stuck = append(stuck, p.Host)
		}
	}
	f.unlockAll(context.Background(), stuck) // interrupts are held here
}

// unlockAll releases this run's locks on hosts, even if the run's context
// (ctx) was cancelled, within the bounds of cleanupContext. A lock it
// cannot release is told to Warn.
func (f *Fleet) unlockAll(ctx context.Context, hosts []sshx.Host) {
	if len(hosts) == 0 {
		return
	}
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	f.Options.waiting(PhaseUnlock, hosts)
	_, err := sshx.Each(ctx, hosts, 0, func(ctx context.Context, h sshx.Host) (struct{}, error) {
		f.Options.progress(Event{Host: h.Name(), Phase: PhaseUnlock, State: EventStarted})
		err := unlockHost(ctx, h, f.Options)
		f.Options.progress(ended(h.Name(), PhaseUnlock, err))
		if err != nil {
			return struct{}{}, &UnlockError{Host: h.Name(), Err: err}
		}
		return struct{}{}, nil
	})
	if err == nil {
		return
	}
	f.warn(fmt.Errorf("could not release every lock: %w", err))
}

// switchBack is compensate, telling Options.Progress as the hosts begin
// and end PhaseSwitchBack.
func (f *Fleet) switchBack(switched, lost []*Prepared) error {
	o := f.Options
	all := append(append([]*Prepared(nil), switched...), lost...)
	for _, p := range all {
		o.progress(Event{Host: p.Host.Name(), Phase: PhaseSwitchBack, State: EventStarted})
	}
	err := f.compensate(switched, lost)
	if o.Progress != nil {
		failed := hostErrors(err)
		for _, p := range all {
			o.progress(ended(p.Host.Name(), PhaseSwitchBack, failed[p.Host.Name()]))
		}
	}
	return err
}
