package magetargets

import (
	"context"
	"fmt"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
	"github.com/magefile/mage/mg"
)

// Maint holds the maintenance targets: maint:enable, maint:disable and
// maint:restart.
type Maint mg.Namespace

// Enable turns maintenance mode on (MAINTENANCE_MODE = True in the live release's settings) on every host, then restarts.
func (Maint) Enable(ctx context.Context) error { return maintenance(ctx, true) }

// Disable turns maintenance mode off (MAINTENANCE_MODE = False) on every host, then restarts.
func (Maint) Disable(ctx context.Context) error { return maintenance(ctx, false) }

// Restart restarts the app on every host of the environment.
func (Maint) Restart(ctx context.Context) (err error) {
	if err := refuseDryRun("maint:restart"); err != nil {
		return err
	}
	r, ctx, err := newFleetRun(ctx, false)
	if err != nil {
		return err
	}
	defer r.end(&err)
	return r.eachHost(ctx, "restart", func(ctx context.Context, h sshx.Host) error {
		return release.Restart(ctx, h, r.opts)
	})
}

func maintenance(ctx context.Context, on bool) (err error) {
	if err := refuseDryRun(map[bool]string{true: "maint:enable", false: "maint:disable"}[on]); err != nil {
		return err
	}
	r, ctx, err := newFleetRun(ctx, false)
	if err != nil {
		return err
	}
	defer r.end(&err)
	what := map[bool]string{true: "enable maintenance mode", false: "disable maintenance mode"}[on]
	return r.eachHost(ctx, what, func(ctx context.Context, h sshx.Host) error {
		left, err := release.Maintenance(ctx, h, r.opts, r.cfg.Settings, on)
		if err != nil {
			return err
		}
		if left != "" {
			// The settings file had nothing to change: maintenance
			// mode is not what the target says, and that is a failure.
			return maintenanceUnchanged(left, r.cfg.Settings, on)
		}
		return nil
	})
}

// maintenanceUnchanged is the error of a host whose settings file was left
// as it was (left says why, naming the host and the file).
func maintenanceUnchanged(left, settings string, on bool) error {
	value := map[bool]string{true: "True", false: "False"}[on]
	return fmt.Errorf("%s: MAINTENANCE_MODE was not set to %s there; Config.Settings (%s) must assign it True or False at the start of a line, e.g. MAINTENANCE_MODE = False, in the release that is live",
		left, value, settings)
}

// eachHost runs fn on every host of the run in parallel, each bounded by
// the switch timeout, and reports every host.
func (r *fleetRun) eachHost(ctx context.Context, what string, fn func(ctx context.Context, h sshx.Host) error) error {
	return r.eachHostWithin(ctx, what, r.cfg.Timeouts.Switch, fn)
}

// eachHostWithin is eachHost with each host bounded by timeout.
func (r *fleetRun) eachHostWithin(ctx context.Context, what string, timeout time.Duration, fn func(ctx context.Context, h sshx.Host) error) error {
	start := time.Now()
	r.say("%s on %s: %s", what, r.env.DeploymentType, r.hostNames())
	res, err := sshx.Each(ctx, r.hosts, r.fleet.Parallel, func(ctx context.Context, h sshx.Host) (struct{}, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return struct{}{}, fn(ctx, h)
	})
	for _, x := range res {
		status := "ok"
		if x.Err != nil {
			status = "FAILED"
		}
		r.console.Println(x.Host.Name(), fmt.Sprintf("%s %s (%.1fs)", what, status, x.Elapsed.Seconds()))
	}
	if err != nil {
		return fmt.Errorf("%s failed: %w", what, err)
	}
	fmt.Fprintf(stdout, "%s: done on %d host(s) in %.1fs\n", what, len(res), time.Since(start).Seconds())
	return nil
}
