package release

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/magefab/magefab/sshx"
)

// ErrNoPreviousRelease is matched by the error of a rollback on a host whose
// other release dir holds no release.
var ErrNoPreviousRelease = errors.New("release: no previous release to roll back to")

// Rollback points current back at the other release dir on every host and
// restarts, all or nothing: every host is locked and checked first (one
// session), then each switches, restarts and unlocks (one session). A host
// that fails to switch has the others switched back.
func (f *Fleet) Rollback(ctx context.Context) ([]HostResult, error) {
	if len(f.Hosts) == 0 {
		return nil, errors.New("release: no hosts to roll back")
	}
	if err := f.Rollout.validate(len(f.Hosts)); err != nil {
		return nil, err
	}
	defer f.keepLeases()()
	f.say("checking %d host(s) for a previous release", len(f.Hosts))
	res, err := f.lockingFirst(ctx, func(ctx context.Context, h sshx.Host, o *Options) (*Prepared, error) {
		ctx, cancel := context.WithTimeout(ctx, f.switchTimeout())
		defer cancel()
		lock := lockParams{Owner: o.Owner + " rolling back", Wait: o.LockWait}
		script := phase(lock.part(), part{files: []string{"inspect", "after", "rollback"}, in: crontabVars(o)})
		out, err := withOrphanRetry(ctx, h, o, func() (*scriptOutput, error) {
			out, err := script.run(ctx, h, o, false)
			if err != nil {
				return out, scriptError(h, "rollback", out, err, o)
			}
			return out, nil
		})
		if err != nil {
			return nil, err
		}
		st := parseState(out)
		other, back, was, err := rollbackTo(o, st, out.result("refused"))
		if err != nil {
			return nil, err
		}
		return &Prepared{Host: h, Dir: other, Previous: st.Current, Target: back, Was: was}, nil
	})
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		f.unlockAll(ctx, f.Hosts)
		return nil, fmt.Errorf("no host was rolled back: %w", err)
	}
	prepared := make([]*Prepared, len(res))
	for i, r := range res {
		prepared[i] = r.Value
	}
	err = f.startSlots(ctx, prepared)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		f.unlockAll(ctx, f.Hosts)
		return nil, fmt.Errorf("no host was rolled back: %w", err)
	}
	return f.switchAll(ctx, prepared, "rollback")
}

// crontabVars are the inputs of check_crontab and check_rollback
// (hostsh/after.sh), which check what the after-switch steps need.
func crontabVars(o *Options) vars {
	var in vars
	in.set("MF_CRONTAB", o.Crontab)
	return in
}

// rollbackTo says where a rollback takes a host in state st: the other
// release dir, what it holds, and what the host serves now. It fails when
// there is nothing to go back to: no other dir, one without a complete
// virtualenv, or one holding a release that never went live there; or
// when refused (what check_rollback reported) says why its
// after-switch steps could not run.
func rollbackTo(o *Options, st HostState, refused []string) (other string, back, was Target, err error) {
	l := o.Layout
	if st.Current == "" {
		return "", Target{}, Target{}, fmt.Errorf("%w: %s has no %s link: nothing was deployed there", ErrNoPreviousRelease, l.Root(), l.Current)
	}
	if st.Current != l.Dirs[0] && st.Current != l.Dirs[1] {
		return "", Target{}, Target{}, fmt.Errorf("%s/%s points to %q, which is not one of the release dirs %s and %s: point it at one of them, then roll back again",
			l.Root(), l.Current, st.Current, l.Dirs[0], l.Dirs[1])
	}
	other = l.Other(st.Current)
	d, ok := st.Dir(other)
	if !ok || d.Head == "" {
		return "", Target{}, Target{}, fmt.Errorf("%w: %s/%s holds no release", ErrNoPreviousRelease, l.Root(), other)
	}
	if d.Stamp == "" {
		// The copy made when the host was bootstrapped, or a dir whose
		// prepare failed: it never served, and has no virtualenv.
		return "", Target{}, Target{}, fmt.Errorf("%w: %s/%s holds no release that was deployed (its virtualenv %s is missing or incomplete)",
			ErrNoPreviousRelease, l.Root(), other, l.Virtualenv)
	}
	cur, _ := st.Dir(st.Current)
	if !d.Live {
		// A deploy that failed on another host, in its migrations or at a
		// check before the switch, or whose switch was undone, leaves the
		// dir prepared with a release that never served.
		e := &NeverLiveError{Dir: l.Root() + "/" + other, Release: tagged(Target{Name: d.Describe, SHA: d.Head})}
		if b := st.Before; b.SHA != "" && b.SHA != cur.Head {
			e.Before = tagged(b)
		}
		return "", Target{}, Target{}, e
	}
	if len(refused) > 0 {
		return "", Target{}, Target{}, fmt.Errorf("%s/%s cannot be rolled back to: %s", l.Root(), other, strings.Join(refused, "; "))
	}
	return other, Target{Name: d.Describe, SHA: d.Head}, Target{Name: cur.Describe, SHA: cur.Head}, nil
}

// ErrNothingDeployed is matched by the Err of a HostStatus whose host has
// no deploy root yet: a state to report rather than a failure.
var ErrNothingDeployed = errors.New("nothing deployed")

// HostStatus is what deploy:status shows for a host.
type HostStatus struct {
	Host   string
	State  HostState
	Lock   string    // the lock's owner line, "" if unlocked
	LockAt time.Time // when it was taken
	// LockHolder is the lock's holder, when there is a lock: who, on
	// which machine, which process, the CI job; fields the lock does not
	// say (a lock of an older magefab) are empty.
	LockHolder  Holder
	LockRelease string      // the release the holder deploys, "" if it does not say
	LockBeat    time.Time   // the holder's last heartbeat; zero if the lock has none
	LockStale   bool        // its lease expired: the next run takes it over
	LogTail     []string    // the last lines of revisions.log
	Slots       []SlotState // with slots: each release dir's
	Err         error       // the host could not be inspected
}

// SlotState is what runs of a release dir, with slots.
type SlotState struct {
	Dir     string   // the release dir
	Serving string   // the slot that serves for it (app.sock's), "" for none
	Running []string // the slots of it that answer on their socket
}

// Status inspects every host in one session each: where current points,
// what each release dir holds, the lock, and the last lines of the log.
func (f *Fleet) Status(ctx context.Context, logLines int) []HostStatus {
	o := f.Options
	res, _ := sshx.Each(ctx, f.Hosts, f.Parallel, func(ctx context.Context, h sshx.Host) (HostStatus, error) {
		var in vars
		in.set("MF_LOG_LINES", strconv.Itoa(logLines))
		out, err := (part{files: []string{"lock", "inspect", "slot", "status"}, in: in}).run(ctx, h, o, false)
		st := HostStatus{Host: h.Name()}
		if err != nil {
			st.Err = scriptError(h, "status", out, err, o)
			return st, st.Err
		}
		if out.result("missing") != nil {
			st.Err = fmt.Errorf("%w: %s does not exist", ErrNothingDeployed, o.Layout.Root())
			return st, nil
		}
		st.State = parseState(out)
		if l := parseLockInfo(out.result("lock")); l.present {
			st.Lock, st.LockAt = l.owner, l.since
			le := parseLocked(h.Name(), out.result("lock"), o)
			pid, _ := strconv.Atoi(le.PID)
			st.LockHolder = Holder{User: le.User, Machine: le.Machine, PID: pid, Job: le.Job}
			st.LockRelease, st.LockBeat, st.LockStale = le.Release, le.Beat, le.Stale
		}
		for _, l := range out.all("log") {
			st.LogTail = append(st.LogTail, strings.Join(l, "\t"))
		}
		for _, l := range out.all("slots") {
			if len(l) >= 2 {
				st.Slots = append(st.Slots, SlotState{Dir: l[0], Serving: l[1], Running: l[2:]})
			}
		}
		return st, nil
	})
	out := make([]HostStatus, len(res))
	for i, r := range res {
		out[i] = r.Value
		if r.Err != nil && out[i].Err == nil {
			out[i].Host, out[i].Err = r.Host.Name(), r.Err
		}
	}
	return out
}

// Plan is what a deploy or a rollback would do on one host (a dry run).
type Plan struct {
	Host      string
	Current   string // dir current points to now
	Dir       string // dir current would point to
	Release   string // what Dir would serve
	Reuse     bool   // the dir already holds the release
	Steps     []string
	Bootstrap bool
	Lock      string    // the deploy lock's owner line, "" when the host is not locked
	LockAt    time.Time // when the lock was taken
	Err       error     // why the operation would fail on this host; nil when it would not
}

// DryRun inspects every host without changing anything and says what a
// deploy of t would do there.
func (f *Fleet) DryRun(ctx context.Context, t Target) ([]Plan, error) {
	return f.plans(ctx, false, func(h sshx.Host, st HostState, _ *scriptOutput) (Plan, error) {
		return plan(h.Name(), f.Options, st, t), nil
	})
}

// RollbackPlan inspects every host without changing anything and says what
// Rollback would do there: which dir current would point to, the release
// that dir holds, and the commands. A host that Rollback would refuse
// (nothing to go back to) has its reason in Plan.Err, and the returned
// error names every such host.
func (f *Fleet) RollbackPlan(ctx context.Context) ([]Plan, error) {
	if len(f.Hosts) == 0 {
		return nil, errors.New("release: no hosts to roll back")
	}
	o := f.Options
	return f.plans(ctx, true, func(h sshx.Host, st HostState, out *scriptOutput) (Plan, error) {
		p := Plan{Host: h.Name(), Current: st.Current}
		other, back, was, err := rollbackTo(o, st, out.result("refused"))
		if err != nil {
			return p, err
		}
		p.Dir, p.Release = other, back.Name
		p.Steps = append([]string{"lock " + o.Layout.Root() + "/.lock",
			fmt.Sprintf("%s -> %s (%s) becomes %s -> %s (%s)", o.Layout.Current, st.Current, was.Name, o.Layout.Current, other, back.Name)},
			switchSteps(o, other)...)
		return p, nil
	})
}

// plans inspects every host in one session each (changing nothing), with
// rollback also what a rollback's after-switch steps need, and makes each
// host's plan from what it found.
func (f *Fleet) plans(ctx context.Context, rollback bool, fn func(h sshx.Host, st HostState, out *scriptOutput) (Plan, error)) ([]Plan, error) {
	o := f.Options
	in := crontabVars(o)
	in.flag("MF_CHECK_ROLLBACK", rollback)
	script := part{files: []string{"lock", "inspect", "after", "plan"}, in: in}
	res, err := sshx.Each(ctx, f.Hosts, f.Parallel, func(ctx context.Context, h sshx.Host) (Plan, error) {
		out, err := script.run(ctx, h, o, false)
		if err != nil {
			err = scriptError(h, "inspect", out, err, o)
			return Plan{Host: h.Name(), Err: err}, err
		}
		p, err := fn(h, parseState(out), out)
		p.Lock, p.LockAt = parseLock(out)
		p.Err = err
		return p, err
	})
	plans := make([]Plan, len(res))
	for i, r := range res {
		plans[i] = r.Value
		if plans[i].Host == "" {
			plans[i].Host, plans[i].Err = r.Host.Name(), r.Err
		}
	}
	return plans, err
}

func plan(host string, o *Options, st HostState, t Target) Plan {
	l := o.Layout
	p := Plan{Host: host, Current: st.Current, Release: t.Name}
	var steps []string
	if len(st.Dirs) == 0 {
		p.Bootstrap = true
		steps = append(steps, "create "+l.Root()+" if missing", "git clone "+o.SCM+" "+l.Dirs[0], "copy "+l.Dirs[0]+" to "+l.Dirs[1])
	}
	for _, d := range st.Dirs {
		if d.Head == t.SHA && (p.Dir == "" || d.Name == st.Current) {
			p.Dir, p.Reuse = d.Name, true
		}
	}
	steps = append([]string{"lock " + l.Root() + "/.lock"}, steps...)
	if !p.Reuse {
		p.Dir = l.Dirs[0]
		if st.Current == l.Dirs[0] {
			p.Dir = l.Dirs[1]
		}
		steps = append(steps, "git fetch --tags origin (in "+p.Dir+")", "git checkout -f --detach "+t.SHA, "git submodule update --init --recursive (if it has .gitmodules)")
	} else {
		steps = append(steps, p.Dir+" already holds "+t.Name+": used as it is")
	}
	steps = append(steps, "virtualenv "+p.Dir+"/"+l.Virtualenv+": create if missing; "+sshx.Join(o.PipInstall...)+" "+strings.Join(prefixEach("-r ", o.Requirements), " ")+" unless the requirements stamp matches")
	p.Steps = append(steps, switchSteps(o, p.Dir)...)
	return p
}

// switchSteps describes what a switch to dir runs on a host.
func switchSteps(o *Options, dir string) []string {
	l := o.Layout
	sudo := o.sudo()
	restart := "(no restart command)"
	if o.Restart != "" {
		restart = sudo + o.Restart
	}
	link := "ln -sfn " + dir + " " + l.Current + ".tmp && mv -T " + l.Current + ".tmp " + l.Current
	steps := []string{link, "append to revisions.log", restart}
	if s := o.Slots; s != nil {
		start := "start a new slot of " + dir + " beside the serving one (" + sudo + s.Start + "), wait until it answers on its socket"
		steps = []string{start + ", before any host switches", "point " + dir + "/run/app.sock at it", link + ": the traffic moves", "append to revisions.log"}
		if s.Port != 0 {
			steps = []string{start + " (it joins port " + strconv.Itoa(s.Port) + ")", "point " + dir + "/run/app.sock at it", link, "append to revisions.log"}
		}
	}
	if o.Crontab != "" {
		steps = append(steps, "install "+dir+"/"+o.Crontab+" as the crontab of "+o.CrontabUser)
	}
	for _, f := range o.Staged {
		steps = append(steps, "put the new "+f+" in place (the one it replaces kept for a switch back)")
	}
	for _, svc := range o.Services {
		steps = append(steps, sudo+svc+" restart")
	}
	steps = append(steps, "unlock")
	if s := o.Slots; s != nil {
		steps = append(steps, "once every host switched and passed the check: drain the slot that served before ("+sudo+s.Stop+")")
	}
	return steps
}

func prefixEach(prefix string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = prefix + x
	}
	return out
}

// ReinstallLive takes the lock on h and installs the requirements into the
// live release's virtualenv whatever its stamp says; then extra, if not
// nil, runs with the live release dir and its virtualenv (both absolute)
// while the lock is held, to install what a deploy installs beside the
// requirements (private packages, install scripts); then the app restarts
// and the lock goes. The stamp written is the one a deploy computes (with
// Options.ExtraStamp), so the next deploy of the same requirements skips
// the install; extra must remove it if it fails. Without extra it takes
// one session, with it three.
func ReinstallLive(ctx context.Context, h sshx.Host, o *Options, extra func(ctx context.Context, dir, venv string) error) (err error) {
	forced := *o
	forced.Reinstall = true
	var in vars
	in.flag("MF_KEEP_LOCK", extra != nil)
	lock := lockParams{Owner: o.Owner + " reinstalling requirements", Wait: o.LockWait}
	script := phase(lock.part(), livePart(o), venvPart(&forced), part{files: []string{"reinstall"}, in: in})
	out, err := withOrphanRetry(ctx, h, o, func() (*scriptOutput, error) {
		out, err := script.run(ctx, h, o, o.ForwardAgent)
		if err != nil {
			return out, scriptError(h, "pip install", out, err, o)
		}
		return out, nil
	})
	if err != nil || extra == nil {
		return err
	}
	defer func() {
		uctx, cancel := cleanupContext(ctx)
		defer cancel()
		if uerr := unlockHost(uctx, h, o); uerr != nil && err == nil {
			err = &UnlockError{Host: h.Name(), Err: uerr}
		}
	}()
	f := out.result("live")
	if len(f) < 1 || f[0] == "" {
		return errors.New("pip install: the host's script gave no result")
	}
	if err := extra(ctx, f[0], path.Join(f[0], o.Layout.Virtualenv)); err != nil {
		return err
	}
	return Restart(ctx, h, o)
}
