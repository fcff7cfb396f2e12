package magetargets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/notify"
	"github.com/magefile/mage/mg"
)

// Deploy holds the deploy targets: deploy:head, deploy:commit, deploy:tag,
// deploy:rollback, deploy:status and deploy:unlock.
type Deploy mg.Namespace

// Head deploys the environment's default revision; in production it tags HEAD of master as a new release first (or deploys the latest tag).
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
func deploy(ctx context.Context, check func(Config) error, resolve func(resolver) (release.Target, error)) error {
	start := time.Now()
	r, err := newFleetRun(ctx, true)
	if err != nil {
		return err
	}
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
	t, err = resolve(rs)
	if err != nil {
		return err
	}
	if dry {
		return r.dryRun(ctx, t)
	}
	r.say("deploying %s (%s) to %s: %s", t.Name, t.Short(), r.env.DeploymentType, r.hostNames())
	res, err := r.fleet.Deploy(ctx, t)
	if err != nil {
		return splitExit(r.advise(fmt.Errorf("deploy of %s to %s failed: %w", t.Name, r.env.DeploymentType, err)))
	}
	r.summary(res)
	fmt.Fprintf(stdout, "%s is now deployed to %s (%.1fs)\n", t.Name, r.env.DeploymentType, time.Since(start).Seconds())
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

// Rollback points current back at the previous release dir on every host and restarts the app.
// With MAGEFAB_DRY_RUN=1 it only prints what it would do on each host.
func (Deploy) Rollback(ctx context.Context) error {
	dry, err := DryRun()
	if err != nil {
		return err
	}
	r, err := newFleetRun(ctx, false)
	if err != nil {
		return err
	}
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
		return splitExit(r.advise(fmt.Errorf("rollback of %s failed: %w", r.env.DeploymentType, err)))
	}
	r.summary(res)
	releases := map[string]bool{}
	for _, h := range res {
		releases[h.Release] = true
	}
	if len(releases) == 1 {
		fmt.Fprintf(stdout, "%s is now deployed to %s again\n", res[0].Release, r.env.DeploymentType)
	} else {
		fmt.Fprintf(stdout, "%s rolled back; the hosts now serve different releases (see above)\n", r.env.DeploymentType)
	}
	r.notify(ctx, notify.KindRollback, release.Target{Name: res[0].Release}, res, "")
	return nil
}

// Status shows, per host, where current points, the release in each dir, the lock and the last log lines.
func (Deploy) Status(ctx context.Context) error {
	r, err := newFleetRun(ctx, false)
	if err != nil {
		return err
	}
	failed := 0
	for _, st := range r.fleet.Status(ctx, 3) {
		fmt.Fprintf(stdout, "%s\n", st.Host)
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
				stamp = "requirements " + stamp
			}
			fmt.Fprintf(stdout, "  %s %-4s %-24s %s  %s\n", mark, d.Name, d.Describe, shortSHA(d.Head), stamp)
		}
		if st.Lock != "" {
			fmt.Fprintf(stdout, "  locked by %s since %s (deploy:unlock clears it)\n", st.Lock, st.LockAt.Format(time.RFC3339))
		} else {
			fmt.Fprintf(stdout, "  not locked\n")
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

// Unlock removes the deploy lock on every host, as after a deploy that was killed.
func (Deploy) Unlock(ctx context.Context) error {
	if err := refuseDryRun("deploy:unlock"); err != nil {
		return err
	}
	r, err := newFleetRun(ctx, false)
	if err != nil {
		return err
	}
	var failed []string
	for _, h := range r.hosts {
		held, err := release.ForceUnlock(ctx, h, r.opts)
		switch {
		case err != nil:
			failed = append(failed, err.Error())
			r.console.Println(h.Name(), "could not unlock: "+err.Error())
		case held != "":
			r.console.Println(h.Name(), "removed the lock held by "+strings.TrimSpace(held))
		default:
			r.console.Println(h.Name(), "was not locked")
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("magetargets: unlock failed on %d host(s)", len(failed))
	}
	return nil
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
