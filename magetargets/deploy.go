package magetargets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/notify"
	"github.com/magefile/mage/mg"
)

// Deploy holds the deploy targets: deploy:head, deploy:commit, deploy:tag,
// deploy:rollback, deploy:status, deploy:unlock and deploy:check.
type Deploy mg.Namespace

// Head deploys the environment's default revision; in production it asks whether to tag HEAD of master as a new release (MAGEFAB_TAG=v1.2.3 answers; MAGEFAB_YES=1 takes the suggested tag), else deploys the latest tag.
func (Deploy) Head(ctx context.Context) error {
	return deploy(ctx, nil, func(r resolver) (release.Target, error) { return r.resolveHead(ctx) })
}

// Commit deploys a commit given by its SHA; in production it is tagged as a new release first.
func (Deploy) Commit(ctx context.Context, sha string) error {
	check := func(Config) error { return release.ValidateCommit(sha) }
	return deploy(ctx, check, func(r resolver) (release.Target, error) { return r.resolveCommit(ctx, sha) })
}

// Tag deploys an existing release tag such as v0.1.1.
func (Deploy) Tag(ctx context.Context, tag string) error {
	check := func(c Config) error {
		re, err := release.CompileVersionPattern(c.VersionPattern)
		if err != nil {
			return err
		}
		return release.ValidateTag(tag, re)
	}
	return deploy(ctx, check, func(r resolver) (release.Target, error) { return r.resolveTag(ctx, tag) })
}

// deploy runs the whole deploy of SPEC section 4: the argument check,
// tests, resolving the release on this machine, then prepare everywhere
// and switch everywhere.
func deploy(ctx context.Context, check func(Config) error, resolve func(resolver) (release.Target, error)) (err error) {
	start := time.Now()
	r, ctx, err := newFleetRun(ctx, true)
	if err != nil {
		return err
	}
	defer r.end(&err)
	if check != nil {
		if err := check(r.cfg); err != nil {
			return err
		}
	}
	dry, err := DryRun()
	if err != nil {
		return err
	}
	// The tests come first: failing tests stop the deploy before anything
	// is fetched, pushed, tagged or touched.
	if err := r.runTests(ctx); err != nil {
		return err
	}
	var t release.Target
	if err := r.wireHooks(ctx, &t, true); err != nil {
		return err
	}
	urls, err := r.versionURLs()
	if err != nil {
		return err
	}
	live := r.liveVersion(ctx, urls)
	if urls != nil {
		keep, err := NoAutoRollback()
		if err != nil {
			return err
		}
		r.fleet.Verify = r.verifier(urls, func() string { return t.SHA })
		r.fleet.KeepOnVerifyFailure = keep
	}
	rs := newResolver(r.cfg, r.env, stdout)
	rs.dryRun = dry
	rs.preview = r.previewer(dry, live)
	t, err = resolve(rs)
	if err != nil {
		return err
	}
	if rs.preview != nil {
		rs.preview(ctx, t.SHA, t.Name) // what goes live, unless the resolver showed it
	}
	if dry {
		return r.dryRun(ctx, t)
	}
	r.say("deploying %s (%s) to %s: %s", t.Name, t.Short(), r.env.DeploymentType, r.hostNames())
	res, err := r.fleet.Deploy(ctx, t)
	if err != nil {
		return splitExit(redError(r.advise(fmt.Errorf("deploy of %s to %s failed: %w", t.Name, r.env.DeploymentType, err))))
	}
	r.summary(res)
	fmt.Fprintln(stdout, green(stdout, fmt.Sprintf("%s is now deployed to %s (%.1fs)", t.Name, r.env.DeploymentType, time.Since(start).Seconds())))
	r.notify(ctx, notify.KindDeploy, t, res, live)
	return nil
}

// runTests runs the configured TestRunner unless MAGEFAB_SKIP_TESTS is set.
func (r *fleetRun) runTests(ctx context.Context) error {
	skip, err := SkipTests()
	if err != nil {
		return err
	}
	if skip || r.cfg.TestRunner == nil {
		if skip {
			r.say("tests skipped (%s)", SkipTestsVar)
		} else {
			r.say("no tests configured (set Config.TestRunner to run them before every deploy)")
		}
		return nil
	}
	r.say("running the tests")
	if err := r.cfg.TestRunner(ctx, r.env); err != nil {
		return exitCode(fmt.Errorf("magetargets: tests failed, nothing was deployed (%s=1 skips them): %w", SkipTestsVar, err))
	}
	return nil
}

func (r *fleetRun) dryRun(ctx context.Context, t release.Target) error {
	r.say("dry run: deploying %s (%s) to %s would do this; nothing is changed", t.Name, t.Short(), r.env.DeploymentType)
	plans, err := r.fleet.DryRun(ctx, t)
	r.printPlans(plans, func(p release.Plan) string { return p.Release + " would go to " + p.Dir })
	return r.advise(err)
}

// printPlans prints each host's plan of a dry run: where current points,
// where it would point and the commands; or why the host would fail.
func (r *fleetRun) printPlans(plans []release.Plan, what func(release.Plan) string) {
	if r.fleet.Rollout.Staged() {
		fmt.Fprintf(stdout, "\nthe switch would go in stages, in this order (a failure in any stage switches back every host that switched):\n")
		var names []string
		for _, h := range r.hosts {
			names = append(names, h.Name())
		}
		for _, l := range r.fleet.Rollout.Plan(names) {
			fmt.Fprintf(stdout, "  %s\n", l)
		}
	}
	for _, p := range plans {
		if p.Host == "" {
			continue
		}
		if p.Err != nil {
			fmt.Fprintf(stdout, "\n%s: would fail: %v\n", p.Host, r.advise(p.Err))
			continue
		}
		cur := p.Current
		if cur == "" {
			cur = "(none)"
		}
		fmt.Fprintf(stdout, "\n%s: current -> %s; %s\n", p.Host, cur, what(p))
		for i, s := range p.Steps {
			fmt.Fprintf(stdout, "  %d. %s\n", i+1, s)
		}
		if p.Lock != "" {
			fmt.Fprintf(stdout, "  note: locked by %s since %s: the run would be refused until that lock goes (deploy:unlock clears a stale one)\n",
				p.Lock, p.LockAt.Format(time.RFC3339))
		}
	}
}

// Rollback points current back at the previous release dir on every host and restarts the app (with Slots, moves the traffic to its slot).
// With MAGEFAB_DRY_RUN=1 it only prints what it would do on each host.
func (Deploy) Rollback(ctx context.Context) (err error) {
	dry, err := DryRun()
	if err != nil {
		return err
	}
	r, ctx, err := newFleetRun(ctx, false)
	if err != nil {
		return err
	}
	defer r.end(&err)
	if err := r.wireHooks(ctx, &release.Target{}, false); err != nil {
		return err
	}
	if dry {
		r.say("dry run: rolling back %s would do this; nothing is changed", r.env.DeploymentType)
		plans, err := r.fleet.RollbackPlan(ctx)
		r.printPlans(plans, func(p release.Plan) string { return "would point back to " + p.Dir + ", which holds " + p.Release })
		if err != nil {
			return r.advise(fmt.Errorf("dry run: the rollback of %s would fail, and no host would be rolled back: %w", r.env.DeploymentType, err))
		}
		return nil
	}
	r.say("rolling back %s: %s", r.env.DeploymentType, r.hostNames())
	res, err := r.fleet.Rollback(ctx)
	if err != nil {
		return splitExit(redError(r.advise(fmt.Errorf("rollback of %s failed: %w", r.env.DeploymentType, err))))
	}
	r.summary(res)
	releases := map[string]bool{}
	for _, h := range res {
		releases[h.Release] = true
	}
	if len(releases) == 1 {
		fmt.Fprintln(stdout, green(stdout, fmt.Sprintf("%s is now deployed to %s again", res[0].Release, r.env.DeploymentType)))
	} else {
		fmt.Fprintf(stdout, "%s rolled back; the hosts now serve different releases (see above)\n", r.env.DeploymentType)
	}
	r.notify(ctx, notify.KindRollback, release.Target{Name: res[0].Release}, res, "")
	return nil
}

// Status shows, per host, where current points, the release in each dir, the lock and the last log lines.
func (Deploy) Status(ctx context.Context) (err error) {
	r, ctx, err := newFleetRun(ctx, false)
	if err != nil {
		return err
	}
	defer r.end(&err)
	failed := 0
	lb := r.balancerStates(ctx)
	for _, st := range r.fleet.Status(ctx, 3) {
		fmt.Fprintf(stdout, "%s\n", st.Host)
		if s, ok := lb[st.Host]; ok {
			fmt.Fprintf(stdout, "  %s: %s\n", r.fleet.Rollout.Balancer.Name(), s)
		}
		if what, ok := nothingDeployed(st.Err); ok {
			fmt.Fprintf(stdout, "  nothing deployed yet (%s)\n", what)
			continue
		}
		if st.Err != nil {
			fmt.Fprintf(stdout, "  %v\n", r.advise(st.Err))
			failed++
			continue
		}
		cur := st.State.Current
		if cur == "" {
			cur = "(none)"
		}
		fmt.Fprintf(stdout, "  %s -> %s\n", r.cfg.CurrentLink, cur)
		for _, d := range st.State.Dirs {
			mark := " "
			if d.Name == st.State.Current {
				mark = "*"
			}
			stamp := d.Stamp
			if stamp == "" {
				stamp = "no virtualenv"
			} else {
				stamp = "requirements " + shortStamp(stamp)
			}
			fmt.Fprintf(stdout, "  %s %-4s %-24s %s  %s\n", mark, d.Name, d.Describe, shortSHA(d.Head), stamp)
		}
		if st.Lock != "" {
			fmt.Fprintf(stdout, "  locked by %s (deploy:unlock clears it)\n", lockHolder(st))
		} else {
			fmt.Fprintf(stdout, "  not locked\n")
		}
		for _, s := range st.Slots {
			fmt.Fprintf(stdout, "  %s\n", slotLine(st, s))
		}
		for _, l := range st.LogTail {
			fmt.Fprintf(stdout, "  log: %s\n", strings.ReplaceAll(l, "\t", "  "))
		}
	}
	if failed > 0 {
		return fmt.Errorf("magetargets: %d host(s) could not be inspected", failed)
	}
	return nil
}

// Unlock removes the deploy lock on every host, as after a deploy that was killed; it asks first about a lock whose lease is still fresh (MAGEFAB_YES=1 answers yes).
func (Deploy) Unlock(ctx context.Context) (err error) {
	if err := refuseDryRun("deploy:unlock"); err != nil {
		return err
	}
	r, ctx, err := newFleetRun(ctx, false)
	if err != nil {
		return err
	}
	defer r.end(&err)
	// What each lock says of its holder, first: a lock whose lease is
	// fresh is refreshed by a run at work, and removing it could let a
	// second deploy split the fleet. An expired one goes without asking
	// (the next deploy would take it over anyway).
	var failed, remove []string
	var fresh []release.HostStatus
	for _, st := range r.fleet.Status(ctx, 0) {
		switch {
		case errors.Is(st.Err, release.ErrNothingDeployed):
			r.console.Println(st.Host, "was not locked (nothing deployed)")
		case st.Err != nil:
			failed = append(failed, st.Host)
			r.console.Println(st.Host, "could not read its lock, left it: "+r.advise(st.Err).Error())
		case st.Lock == "":
			r.console.Println(st.Host, "was not locked")
		case st.LockStale:
			remove = append(remove, st.Host)
		default:
			fresh = append(fresh, st)
		}
	}
	if len(fresh) > 0 {
		yes, err := r.confirmUnlock(ctx, fresh)
		if err != nil {
			return err
		}
		if yes {
			// The answer may have taken a while: a lock that changed
			// since it was shown is not the one the user agreed to.
			now := map[string]release.HostStatus{}
			for _, st := range r.fleet.Status(ctx, 0) {
				now[st.Host] = st
			}
			for _, st := range fresh {
				n := now[st.Host]
				if n.Err == nil && (n.Lock == "" || sameLock(n, st)) {
					remove = append(remove, st.Host)
					continue
				}
				failed = append(failed, st.Host)
				r.console.Println(st.Host, "left the lock: it changed since it was shown (run deploy:unlock again to see it)")
			}
		} else {
			for _, st := range fresh {
				r.console.Println(st.Host, "left the lock of "+lockHolder(st))
			}
		}
	}
	for _, h := range r.hosts {
		if !slices.Contains(remove, h.Name()) {
			continue
		}
		held, err := release.ForceUnlock(ctx, h, r.opts)
		switch {
		case err != nil:
			failed = append(failed, h.Name())
			r.console.Println(h.Name(), "could not unlock: "+err.Error())
		case held != "":
			r.console.Println(h.Name(), "removed the lock held by "+strings.TrimSpace(held))
		default:
			r.console.Println(h.Name(), "was not locked")
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("magetargets: unlock failed on %d host(s): %s", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

// confirmUnlock shows the fresh locks (whose holders may be at work) and
// asks whether to remove them. MAGEFAB_YES answers yes; with neither a
// terminal nor MAGEFAB_YES, it refuses with the command that removes
// them.
func (r *fleetRun) confirmUnlock(ctx context.Context, fresh []release.HostStatus) (bool, error) {
	var names []string
	for _, st := range fresh {
		names = append(names, st.Host)
		r.console.Println(st.Host, "locked by "+lockHolder(st))
	}
	hosts := strings.Join(names, ", ")
	yes, err := Yes()
	if err != nil {
		return false, err
	}
	if !yes && !prompts.IsTerminal() {
		return false, fmt.Errorf("magetargets: the lock on %s is fresh: its holder refreshed it within its lease, so a deploy may be at work there, and removing its lock could let another deploy split the fleet; nothing was removed. "+
			"deploy:unlock asks before removing a fresh lock, and stdin is not a terminal: if that deploy is dead, run %s=1 %s deploy:unlock (or wait: the next deploy takes a lock over once its lease has expired)",
			hosts, YesVar, r.mage)
	}
	return prompts.confirm(ctx, fmt.Sprintf("The lock on %s is fresh: a deploy may be at work there. Remove it anyway?", hosts), "")
}

// lockHolder says what a host's lock says of its holder: the owner line,
// since when, the holder's user, machine, process, release and CI job,
// the last heartbeat, and whether its lease expired.
func lockHolder(st release.HostStatus) string {
	s := st.Lock
	if !st.LockAt.IsZero() {
		s += fmt.Sprintf(" since %s (%s ago)", st.LockAt.Format(time.RFC3339), time.Since(st.LockAt).Round(time.Second))
	}
	pid := ""
	if st.LockHolder.PID != 0 {
		pid = strconv.Itoa(st.LockHolder.PID)
	}
	if h := holderText(st.LockHolder.User, st.LockHolder.Machine, pid, st.LockRelease, st.LockHolder.Job); h != "" {
		s += "; holder: " + h
	}
	if !st.LockBeat.IsZero() {
		s += fmt.Sprintf("; last heartbeat %s ago", time.Since(st.LockBeat).Round(time.Second))
	}
	if st.LockStale {
		s += " (lease expired: the next deploy takes it over)"
	}
	return s
}

// sameLock reports whether two readings of a host's lock are of one lock:
// the same owner, start and holder (its heartbeat moves on).
func sameLock(a, b release.HostStatus) bool {
	return a.Lock == b.Lock && a.LockAt.Equal(b.LockAt) && a.LockHolder == b.LockHolder && a.LockRelease == b.LockRelease
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

// splitExit makes mage exit with the status of a split fleet (77) when err
// reports one, so that scripts can tell "the fleet is split, act now" from
// a deploy that changed nothing.
func splitExit(err error) error {
	var split *release.SplitError
	if errors.As(err, &split) {
		return mg.Fatal(split.ExitStatus(), err.Error())
	}
	return err
}
