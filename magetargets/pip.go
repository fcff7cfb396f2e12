package magetargets

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
	"github.com/magefile/mage/mg"
)

// Pip holds the requirements targets: pip:setup and pip:install.
type Pip mg.Namespace

// Install reinstalls the environment's requirements, private packages and install scripts into the live release on every host, then restarts.
func (Pip) Install(ctx context.Context) (err error) {
	if err := refuseDryRun("pip:install"); err != nil {
		return err
	}
	r, ctx, err := newFleetRun(ctx, false)
	if err != nil {
		return err
	}
	defer r.end(&err)
	archives, err := r.fetchExtras(ctx)
	if err != nil {
		return err
	}
	extras := hasExtras(r.cfg, archives)
	return r.advise(r.eachHostWithin(ctx, "pip install", r.cfg.Timeouts.Prepare, func(ctx context.Context, h sshx.Host) error {
		var extra func(ctx context.Context, dir, venv string) error
		if extras {
			extra = func(ctx context.Context, dir, venv string) error {
				return installExtrasIn(ctx, r.cfg, h, dir, venv, archives, r.opts.PipInstall)
			}
		}
		return release.ReinstallLive(ctx, h, r.opts, extra)
	}))
}

// Setup bootstraps or updates the project's local virtualenv: requirements (with the dev ones), private packages, install scripts, git submodules, ExtraSetupTasks.
func (Pip) Setup(ctx context.Context) error {
	if err := refuseDryRun("pip:setup"); err != nil {
		return err
	}
	c, err := currentConfig()
	if err != nil {
		return err
	}
	if err := c.validate(false); err != nil {
		return err
	}
	env, ok := c.Environments[envLocalhost]
	if !ok {
		env = Environment{Name: envLocalhost, DeploymentType: deploySolo}
	}
	pip, err := splitCommand("PipInstallCommand", c.PipInstallCommand)
	if err != nil {
		return err
	}
	reinstall, err := Reinstall()
	if err != nil {
		return err
	}
	pkgs, err := privatePackages(c)
	if err != nil {
		return err
	}
	archives, extra, err := fetchPrivate(ctx, c, pkgs, stdout)
	if err != nil {
		return err
	}
	venv := localVenv(c)
	if !filepath.IsAbs(venv) {
		venv = filepath.Join(c.RootDir, venv)
	}
	console := sshx.NewConsole(stdout)
	local := sshx.NewLocal("localhost")
	o := &release.Options{
		Layout:       release.Layout{Path: c.RootDir, ReleasesRoot: ".", Dirs: [2]string{"a", "b"}, Current: "current", Virtualenv: c.Virtualenv},
		Python:       c.Python,
		PipInstall:   pip,
		Requirements: c.requirements(env),
		Reinstall:    reinstall,
		Env:          []string{"DEPLOYMENT_TYPE=" + env.DeploymentType},
		ExtraStamp:   extra,
		Console:      console,
		Verbose:      mg.Verbose(),
	}
	start := time.Now()
	installed, err := release.SetupVirtualenv(ctx, local, o, c.RootDir, venv)
	if err != nil {
		return err
	}
	if installed && hasExtras(c, archives) {
		if err := installExtrasIn(ctx, c, local, c.RootDir, venv, archives, pip); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(c.RootDir, ".gitmodules")); err == nil {
		cmd := exec.CommandContext(ctx, "git", "submodule", "update", "--init", "--recursive")
		cmd.Dir = c.RootDir
		cmd.Stdout, cmd.Stderr = stdout, stdout
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("magetargets: git submodule update in %s: %w", c.RootDir, err)
		}
	}
	for i, task := range c.ExtraSetupTasks {
		if err := task(ctx, c.RootDir); err != nil {
			return fmt.Errorf("magetargets: ExtraSetupTasks[%d]: %w", i, err)
		}
	}
	state := "up to date"
	if installed {
		state = "installed"
	}
	fmt.Fprintf(stdout, "virtualenv %s: %s (%.1fs)\n", venv, state, time.Since(start).Seconds())
	return nil
}
