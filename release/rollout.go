package release

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
	"github.com/magefab/magefab/sshx"
)

// Rollout says how a switch goes through the fleet: all at once (the zero
// value), or in stages: a canary first, checked over a window, then
// batches, each checked before the next. Whatever stage fails, every host
// that switched in any stage is switched back: the fleet ends on one
// release, as with a switch all at once.
//
// With a Balancer, each stage is taken out of it before it switches
// (once its connections drained), checked directly, and put back once the
// balancer reports it healthy; never more than MaxOut hosts are out at
// once, nor the last hosts the balancer has in service. A rollout that
// fails or is interrupted puts back every host it took out.
type Rollout struct {
	// Canary is how many hosts switch first; 0 means no canary.
	Canary int
	// Batch is how many hosts switch in each later stage; 0 means all
	// the rest at once.
	Batch int
	// Window is how long a stage is checked after it switched: Checks
	// checks spread over it, each of which must pass. Zero means one
	// check, at once.
	Window time.Duration
	// Checks is how many consecutive checks a stage must pass over
	// Window; zero means 3 (1 without a Window).
	Checks int
	// Balancer, if not nil, takes each stage out while it switches.
	Balancer Balancer
	// MaxOut bounds how many hosts are out of the balancer at once; zero
	// means the largest stage.
	MaxOut int
	// BalancerTimeout bounds each wait for the balancer (drained,
	// healthy); zero means 5 minutes.
	BalancerTimeout time.Duration
}

// Staged says whether the rollout switches in more than one stage, or
// through a balancer.
func (r Rollout) Staged() bool { return r.Canary > 0 || r.Batch > 0 || r.Balancer != nil }

func (r Rollout) checks() int {
	switch {
	case r.Checks > 0:
		return r.Checks
	case r.Window > 0:
		return 3
	}
	return 1
}

func (r Rollout) balancerTimeout() time.Duration {
	if r.BalancerTimeout > 0 {
		return r.BalancerTimeout
	}
	return 5 * time.Minute
}

// Stages splits hosts, in order, into the rollout's stages: the canary,
// then batches.
func (r Rollout) Stages(hosts []string) [][]string {
	var out [][]string
	rest := hosts
	if r.Canary > 0 && r.Canary < len(rest) {
		out = append(out, rest[:r.Canary])
		rest = rest[r.Canary:]
	}
	for len(rest) > 0 {
		n := len(rest)
		if r.Batch > 0 && r.Batch < n {
			n = r.Batch
		}
		out = append(out, rest[:n])
		rest = rest[n:]
	}
	return out
}

// Plan says in words what a rollout of hosts does, stage by stage, for a
// dry run.
func (r Rollout) Plan(hosts []string) []string {
	stages := r.Stages(hosts)
	var out []string
	for i, s := range stages {
		line := r.stageLabel(i, len(stages)) + ": " + strings.Join(s, ", ")
		if r.Balancer != nil {
			line += "; out of " + r.Balancer.Name() + " while it switches, back in once healthy"
		}
		if r.Window > 0 {
			line += fmt.Sprintf("; checked %d times over %s", r.checks(), r.Window)
		} else {
			line += "; checked"
		}
		out = append(out, line)
	}
	return out
}

// validate says what is wrong with the rollout for hosts.
func (r Rollout) validate(n int) error {
	if r.Canary < 0 || r.Batch < 0 || r.MaxOut < 0 || r.Window < 0 || r.Checks < 0 {
		return errors.New("release: a Rollout field is negative")
	}
	if r.Balancer == nil {
		return nil
	}
	for _, s := range r.Stages(make([]string, n)) {
		if r.MaxOut > 0 && len(s) > r.MaxOut {
			return fmt.Errorf("release: a stage of %d host(s) would be out of %s at once, more than MaxOut (%d): make Batch (and Canary) at most %d", len(s), r.Balancer.Name(), r.MaxOut, r.MaxOut)
		}
		if len(s) == n && n > 1 {
			return fmt.Errorf("release: every host would be out of %s at once: set a Batch smaller than the fleet (%d hosts)", r.Balancer.Name(), n)
		}
	}
	return nil
}

// stageLabel names stage i of n in the output.
func (r Rollout) stageLabel(i, n int) string {
	if r.Canary > 0 && n > 1 {
		if i == 0 {
			return "canary"
		}
		return fmt.Sprintf("batch %d of %d", i, n-1)
	}
	return fmt.Sprintf("batch %d of %d", i+1, n)
}

// checkStage checks a stage that switched: Verify, Checks times over
// Window; every check must pass. It stops early when ctx ends.
func (f *Fleet) checkStage(ctx context.Context, label string, results []HostResult) error {
	r := f.Rollout
	n := r.checks()
	var gap time.Duration
	if n > 1 {
		gap = r.Window / time.Duration(n-1)
	}
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("interrupted while %s was being checked: %w", label, ctx.Err())
			case <-time.After(gap):
			}
		}
		if f.Verify != nil {
			if err := f.Verify(context.WithoutCancel(ctx), results); err != nil {
				return fmt.Errorf("%s failed check %d of %d: %w", label, i+1, n, err)
			}
		}
	}
	if f.Verify != nil && n > 1 {
		f.say("%s passed %d checks over %s", label, n, r.Window)
	}
	return nil
}

// takeOut takes a stage out of the balancer, once sure that hosts the
// balancer has in service remain, and waits until it drained.
func (f *Fleet) takeOut(ctx context.Context, all, stage []string) error {
	b := f.Rollout.Balancer
	states, err := b.States(ctx, all)
	if err != nil {
		return fmt.Errorf("%s: %w", b.Name(), err)
	}
	in := map[string]bool{}
	for _, h := range stage {
		in[h] = true
	}
	var others, notIn []string
	for _, h := range all {
		switch {
		case in[h]:
		case states[h] == InService:
			others = append(others, h)
		default:
			notIn = append(notIn, fmt.Sprintf("%s (%s)", h, states[h]))
		}
	}
	if len(others) == 0 {
		return fmt.Errorf("taking %s out of %s would leave it no host in service (%s)", strings.Join(stage, ", "), b.Name(), strings.Join(notIn, ", "))
	}
	if len(notIn) > 0 {
		f.say("%s: not in service: %s", b.Name(), strings.Join(notIn, ", "))
	}
	f.say("taking %s out of %s; waiting until it drained", strings.Join(stage, ", "), b.Name())
	c, cancel := context.WithTimeout(ctx, f.Rollout.balancerTimeout())
	defer cancel()
	if err := b.Out(c, stage); err != nil {
		return fmt.Errorf("taking %s out of %s: %w", strings.Join(stage, ", "), b.Name(), err)
	}
	return nil
}

// putIn puts hosts back in the balancer and waits until it reports them
// healthy, within BalancerTimeout even if the run was interrupted.
func (f *Fleet) putIn(hosts []string) error {
	if len(hosts) == 0 {
		return nil
	}
	b := f.Rollout.Balancer
	c, cancel := context.WithTimeout(context.Background(), f.Rollout.balancerTimeout())
	defer cancel()
	f.say("putting %s back in %s; waiting until it is healthy", strings.Join(hosts, ", "), b.Name())
	if err := b.In(c, hosts); err != nil {
		return fmt.Errorf("putting %s back in %s: %w", strings.Join(hosts, ", "), b.Name(), err)
	}
	return nil
}

// rollout switches the prepared hosts stage by stage (see Rollout). It
// returns like switchAll.
func (f *Fleet) rollout(ctx context.Context, prepared []*Prepared, what string) ([]HostResult, error) {
	r := f.Rollout
	names := preparedNames(prepared)
	byName := map[string]*Prepared{}
	for _, p := range prepared {
		byName[p.Host.Name()] = p
	}
	stages := r.Stages(names)
	stagePs := make([][]*Prepared, len(stages))
	for i, s := range stages {
		for _, h := range s {
			stagePs[i] = append(stagePs[i], byName[h])
		}
	}
	var done [][]*Prepared // the stages switched and checked, back in service
	var results []HostResult
	var out []string // taken out of the balancer and not yet put back
	defer func() {
		if r.Balancer != nil && len(out) > 0 {
			if err := f.putIn(out); err != nil {
				f.warn(err)
			}
		}
	}()
	// fail releases the stages from the i-th on, which never switched,
	// switches back the earlier ones and stageDone (which is out of the
	// balancer), and says why.
	fail := func(i int, cause error, stageDone []*Prepared) error {
		hold := f.hold()
		defer hold()
		f.releaseUnswitched(slices.Concat(stagePs[i:]...))
		back := append(slices.Concat(done...), stageDone...)
		if len(back) == 0 {
			return fmt.Errorf("no host was switched: %w", cause)
		}
		f.say("switching %d host(s) back: %v", len(back), cause)
		cerr := f.switchBackStaged(names, out, stageDone, nil, done)
		out = nil
		if cerr != nil {
			return f.splitReport("the rollout failed", cause, cerr, back, nil, nil)
		}
		return fmt.Errorf("every host that had switched (%d) was switched back to its previous release: %w", len(back), cause)
	}
	for i, stage := range stages {
		ps := stagePs[i]
		label := r.stageLabel(i, len(stages))
		if i > 0 && ctx.Err() != nil {
			return nil, fail(i, fmt.Errorf("interrupted before %s: %w", label, ctx.Err()), nil)
		}
		f.say("%s: %s", label, strings.Join(stage, ", "))
		if r.Balancer != nil {
			out = append(out, stage...) // also after an Out that failed half way
			if err := f.takeOut(ctx, names, stage); err != nil {
				return nil, fail(i, err, nil)
			}
		}
		res, err := f.switchStage(ctx, ps, what, done, slices.Concat(stagePs[i+1:]...), names, out)
		if err != nil {
			out = nil // switchStage put them back
			return nil, err
		}
		if err := f.checkStage(ctx, label, res); err != nil {
			if f.KeepOnVerifyFailure && i == len(stages)-1 {
				f.drainOld(prepared)
				return append(results, res...), fmt.Errorf("the new release is live everywhere but failed its check (kept: automatic rollback is off): %w", err)
			}
			return nil, fail(i+1, err, ps)
		}
		if r.Balancer != nil {
			if err := f.putIn(stage); err != nil {
				return nil, fail(i+1, err, ps)
			}
			out = out[:0]
		}
		done = append(done, ps)
		results = append(results, res...)
	}
	f.drainOld(prepared)
	return results, nil
}

// switchBackStaged switches back the hosts of a rollout that failed
// (compensation): here and lost are hosts of the failing stage (lost
// those whose own switch ended in an unknown state, see compensate),
// earlier the stages before it, switched, checked and back in the
// balancer. out are the hosts the rollout has out of the balancer; all
// are hosts of the fleet. Its error is compensate's: each host that
// could not be switched back, under a *sshx.HostError.
//
// Without a balancer, every host goes back at once. With one, the order
// is the one that keeps the most hosts in service on one release:
//
//  1. The failing stage is out of the balancer: it goes back where it
//     is, taking no traffic.
//  2. Every host out is put back in and waited healthy: the balancer has
//     its capacity back before anything else leaves it, so MaxOut and
//     "never the last hosts in service" hold for what follows.
//  3. Each earlier stage, in stage order, is taken out (takeOut checks
//     that hosts in service remain), switched back, and put back in, as
//     it went forward.
//
// When that cannot hold (the balancer refuses a stage, or a stage does
// not become healthy again, so that taking out the next would leave
// more than MaxOut out or none in service), the stages left go back at
// once where they are, in service, and are put back in if they were
// taken out. That order is the safe one: the rollout is all or nothing,
// and a fleet left serving two releases, or a balancer left with no
// host, is worse than a restart of hosts that still get requests.
func (f *Fleet) switchBackStaged(all, out []string, here, lost []*Prepared, earlier [][]*Prepared) error {
	b := f.Rollout.Balancer
	if b == nil {
		return f.compensate(append(slices.Concat(earlier...), here...), lost)
	}
	var errs *multierror.Error
	add := func(err error) {
		if err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if len(here)+len(lost) > 0 {
		add(f.compensate(here, lost))
	}
	through := true
	if err := f.putIn(out); err != nil {
		f.warn(err)
		through = false
	}
	// giveUp stops going through the balancer: the stages left switch
	// back in place.
	giveUp := func(err error) {
		f.warn(fmt.Errorf("switching back through %s: %w; the hosts left switch back where they are, in service", b.Name(), err))
		through = false
	}
	var inPlace []*Prepared
	var putBack []string // a stage whose Out failed, maybe half way
	for _, st := range earlier {
		if !through {
			inPlace = append(inPlace, st...)
			continue
		}
		hosts := preparedNames(st)
		if err := f.takeOut(context.Background(), all, hosts); err != nil {
			giveUp(err)
			inPlace, putBack = append(inPlace, st...), hosts
			continue
		}
		add(f.compensate(st, nil))
		if err := f.putIn(hosts); err != nil {
			giveUp(err)
		}
	}
	if len(inPlace) > 0 {
		f.say("switching %s back where they are, in service", strings.Join(preparedNames(inPlace), ", "))
		add(f.compensate(inPlace, nil))
	}
	if err := f.putIn(putBack); err != nil {
		f.warn(err)
	}
	return errs.ErrorOrNil()
}

// preparedNames are the names of the hosts of ps.
func preparedNames(ps []*Prepared) []string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Host.Name()
	}
	return names
}

// releaseUnswitched gives up hosts that prepared but will not switch:
// their new slots stop (front mode) and their locks go.
func (f *Fleet) releaseUnswitched(ps []*Prepared) {
	if f.Options.front() {
		f.stopNew(ps)
	}
	var hosts []sshx.Host
	for _, p := range ps {
		hosts = append(hosts, p.Host)
	}
	f.unlockAll(context.Background(), hosts) // interrupts are held here
}

// hold holds the process's interrupts (Switching) until the func it
// returns is called.
func (f *Fleet) hold() func() {
	if f.Switching == nil {
		return func() {}
	}
	return f.Switching()
}

// switchStage switches the hosts of a stage, holding interrupts. If it
// fails, the hosts of later stages, which never switched, are released,
// and the stage's and the earlier stages' switched hosts (done) are
// switched back: all at once without a balancer (switchFailed), else
// through it (switchBackStaged; out are the hosts out of it, all the
// fleet's).
func (f *Fleet) switchStage(ctx context.Context, ps []*Prepared, what string, done [][]*Prepared, later []*Prepared, all, out []string) ([]HostResult, error) {
	hold := f.hold()
	defer hold()
	res, results, err := f.switchHosts(ctx, ps, what)
	if err == nil {
		return res, nil
	}
	f.releaseUnswitched(later)
	if f.Rollout.Balancer == nil || len(done) == 0 {
		cerr := f.switchFailed(err, results, ps, slices.Concat(done...))
		if perr := f.putIn(out); perr != nil {
			f.warn(perr)
		}
		return nil, cerr
	}
	// As switchFailed, but the earlier stages, in service, switch back
	// through the balancer.
	switched, failed, lost := f.sortSwitch(results, ps)
	back := slices.Concat(slices.Concat(done...), switched)
	f.say("switch failed on %d host(s); switching %d host(s) back", len(failed), len(back)+len(lost))
	comp := f.switchBackStaged(all, out, switched, lost, done)
	f.unlockStuck(comp, lost)
	return nil, f.splitReport("the switch failed", err, comp, back, failed, lost)
}
