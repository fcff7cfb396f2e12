package magetargets

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"text/template"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
)

// celeryInit is where a host's celeryd init script goes.
func (r *fleetRun) celeryInit() string {
	return "/etc/init.d/celeryd-" + r.cfg.Unit + "_" + r.env.DeploymentType
}

// mageCommand is how a user runs targets in the selected environment, for
// the commands that messages suggest: "mage env:production", or
// "MAGEFAB_ENV=qa mage" for an environment that has no env:* target.
func mageCommand(c Config) string {
	state.mu.Lock()
	name := state.env
	state.mu.Unlock()
	if name == "" {
		name, _ = EnvName()
	}
	if name == "" {
		name = c.DefaultEnvironment
	}
	switch name {
	case envLocalhost, envDevelopment, envStaging, envProduction:
		return "mage env:" + name
	}
	return EnvVar + "=" + sshx.Quote(name) + " mage"
}

// wireHooks adds the Python-side steps to the fleet: celery and
// ExtraDeployTasks on each host after it prepared, Django migrations and
// fixtures once before the switch, the crontab and celery after it.
//
// The celery init script of a deploy is uploaded while the host prepares,
// to release.StagedPath beside its place; the switch renames it into place
// right before it restarts celery, and a switch back restores the one it
// replaced: a deploy that fails leaves the live init script alone.
//
// It reads and checks the project's files now, before anything is tagged
// or touched; t is filled in once the release is known. Their names were
// checked with the rest of the Config (Config.validate, in newFleetRun).
func (r *fleetRun) wireHooks(ctx context.Context, t *release.Target, forDeploy bool) error {
	var celery *template.Template
	if r.cfg.Celeryd != "" {
		b, err := os.ReadFile(filepath.Join(r.cfg.RootDir, r.cfg.Celeryd))
		if err != nil {
			return fmt.Errorf("magetargets: Config.Celeryd: %w", err)
		}
		celery, err = template.New(r.cfg.Celeryd).Option("missingkey=error").Parse(string(b))
		if err != nil {
			return fmt.Errorf("magetargets: Config.Celeryd %s: %w", r.cfg.Celeryd, err)
		}
		r.opts.Services = append(r.opts.Services, r.celeryInit())
	}
	if r.env.Crontab != "" {
		r.opts.Crontab, r.opts.CrontabUser = r.env.Crontab, r.cfg.DeployUser
	}
	first := ""
	if len(r.hosts) > 0 {
		first = r.hosts[0].Name()
	}
	if !forDeploy {
		return nil // a rollback needs only the crontab and the services
	}
	if celery != nil {
		r.opts.Staged = append(r.opts.Staged, r.celeryInit())
	}
	archives, err := r.fetchExtras(ctx)
	if err != nil {
		return err
	}
	extras := hasExtras(r.cfg, archives)
	if celery != nil || len(r.cfg.ExtraDeployTasks) > 0 || extras {
		r.fleet.PerHost = func(ctx context.Context, p *release.Prepared) error {
			if extras && p.Installed {
				dir := path.Join(p.Root, p.Dir)
				if err := installExtrasIn(ctx, r.cfg, p.Host, dir, path.Join(dir, r.cfg.Virtualenv), archives, r.opts.PipInstall); err != nil {
					return err
				}
			}
			if celery != nil {
				data := CeleryData{Config: r.cfg, Environment: r.env, Beat: p.Host.Name() == first,
					Current: path.Join(p.Root, r.cfg.CurrentLink)}
				var b bytes.Buffer
				if err := celery.Execute(&b, data); err != nil {
					return fmt.Errorf("rendering Config.Celeryd %s: %w", r.cfg.Celeryd, err)
				}
				f := sshx.File{Path: release.StagedPath(r.celeryInit(), p.Host.Name()), Mode: 0o755, Sudo: !r.cfg.NoSudo}
				if err := p.Host.Upload(ctx, f, &b); err != nil {
					return err
				}
			}
			for i, task := range r.cfg.ExtraDeployTasks {
				step := DeployStep{Host: p.Host, Dir: path.Join(p.Root, p.Dir), Environment: r.env, Release: *t}
				if err := task(ctx, step); err != nil {
					return fmt.Errorf("ExtraDeployTasks[%d]: %w", i, err)
				}
			}
			return nil
		}
	}
	var manage [][]string
	if r.cfg.Migrate {
		manage = append(manage, []string{"migrate", "--noinput"})
	}
	if fixtures := append(append([]string(nil), r.cfg.Fixtures...), r.env.Fixtures...); len(fixtures) > 0 {
		manage = append(manage, append([]string{"loaddata"}, fixtures...))
	}
	if len(manage) > 0 {
		r.fleet.AfterPrepare = func(ctx context.Context, prepared []*release.Prepared) error {
			p := prepared[0]
			r.say("Django on %s (once for the fleet): %d manage.py command(s)", p.Host.Name(), len(manage))
			if err := release.Manage(ctx, p.Host, r.opts, p.Dir, manage); err != nil {
				return &sshx.HostError{Host: p.Host.Name(), Err: err}
			}
			return nil
		}
	}
	return nil
}
