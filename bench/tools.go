package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/magefab/magefab/internal/load"
)

// tool is one way of deploying the app: magefab, Capistrano or Fabric.
// Each has its own unit (init script, deploy root) and port, so that the
// three apps run side by side on every host.
type tool struct {
	name string
	unit string
	port int
	dir  string // where its commands run
	// current is the live release dir on a host, for the init script.
	current string
	// rollbackTo is the release a rollback after cold, warm and redeploy
	// goes back to: magefab reuses the live dir on a redeploy, so its
	// previous dir still holds v0.2.0; Capistrano's redeploy makes a new
	// release dir and Fabric's updates the other dir, so theirs hold the
	// live v0.3.0.
	rollbackTo int
	// configure writes the tool's files for n hosts.
	configure func(n int) error
	deploy    func(ctx context.Context, n int, r release) *exec.Cmd
	rollback  func(ctx context.Context, n int) *exec.Cmd
	// patterns are output lines whose times are kept, to see where the
	// time goes.
	patterns []string
	// live is the commit its app serves now, as last verified.
	live string
	// slots says the tool switches slots: a request that fails during its
	// switch is a failure of the benchmark. slotPort is the port the
	// slots share, 0 in front mode.
	slots    bool
	slotPort int
	// up, when set, starts what the tool needs on hosts web1..webN
	// besides its app (nginx); down stops it at the end.
	up   func(ctx context.Context, n int) error
	down func(ctx context.Context) error
	// loadVia, when set, is where the load goes instead of every host's
	// app (a load balancer's frontend), and watch, when set, starts
	// watching the hosts out of service during a step measured under
	// load; its function stops it and says what it saw. mustServe makes
	// a failed request a failure of the benchmark, as for slot tools.
	loadVia   func() []load.Target
	watch     func(ctx context.Context, n int) func() *outStats
	mustServe bool
	// switchLine, when set, is the output line that says the switch
	// begins: the load report is also split there (sample.LoadBefore).
	switchLine string
}

// toolEnv is the environment of every tool's command: no SSH agent, so
// that each uses the fleet's key as configured and nothing else.
func toolEnv(extra ...string) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SSH_AUTH_SOCK=") {
			env = append(env, e)
		}
	}
	return append(env, extra...)
}

func command(ctx context.Context, dir string, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	return cmd
}

// mageEnv is the environment of a mage run on n hosts. MAGEFILE_HASHFAST
// makes mage run the magefile binary it compiled before, as long as the
// magefile is unchanged; without it, mage parses the magefile and runs go
// build on every invocation (see plainMageEnv).
func (w *workspace) mageEnv(n int, extra ...string) []string {
	return append(w.plainMageEnv(n, "MAGEFILE_HASHFAST=1"), extra...)
}

// plainMageEnv is the environment of a mage run on n hosts with mage's
// default hashing, as a user who sets nothing gets it.
func (w *workspace) plainMageEnv(n int, extra ...string) []string {
	var env []string
	for _, e := range toolEnv(w.gitEnv...) {
		if !strings.HasPrefix(e, "MAGEFILE_HASHFAST=") {
			env = append(env, e)
		}
	}
	env = append(env, "MAGEFILE_CACHE="+filepath.Join(w.tmp, "magecache"), "GOFLAGS=-mod=mod",
		"MAGEFAB_SKIP_TESTS=1", "MAGEFAB_HOSTS="+strings.Join(hosts(n), ","))
	return append(env, extra...)
}

var magefabPatterns = []string{
	"tests skipped", "deploying ", "preparing ", "cloning", "creating the virtualenv",
	"installing requirements", "requirements unchanged", "already in", "updating ",
	"prepared; switching", "restarting", "is now deployed", "rolling back", "restart on", "restart ok",
}

func newMagefab(w *workspace, unit string, port int) *tool {
	t := &tool{
		name: "magefab", unit: unit, port: port, dir: w.app,
		current:    "/var/webapps/" + unit + "/releases/current",
		rollbackTo: 1,
		configure:  func(int) error { return nil },
		patterns:   magefabPatterns,
	}
	t.deploy = func(ctx context.Context, n int, r release) *exec.Cmd {
		return command(ctx, w.app, w.mageEnv(n), w.mage, "env:production", "deploy:tag", r.Tag)
	}
	t.rollback = func(ctx context.Context, n int) *exec.Cmd {
		return command(ctx, w.app, w.mageEnv(n), w.mage, "env:production", "deploy:rollback")
	}
	return t
}

// restart is the floor: magefab's maint:restart, one session per host
// that runs the app's own restart.
func (w *workspace) restart(ctx context.Context, n int) *exec.Cmd {
	return command(ctx, w.app, w.mageEnv(n), w.mage, "env:production", "maint:restart")
}

// plainRestart is the floor run with mage's default hashing: the
// difference to restart is what plain `mage` adds to every invocation.
func (w *workspace) plainRestart(ctx context.Context, n int) *exec.Cmd {
	return command(ctx, w.app, w.plainMageEnv(n), w.mage, "env:production", "maint:restart")
}

func newCapistrano(w *workspace, f *fleet, unit string, port int) *tool {
	dir := filepath.Join(w.tmp, "capistrano")
	t := &tool{
		name: "capistrano", unit: unit, port: port, dir: dir,
		current:    "/var/webapps/" + unit + "/current",
		rollbackTo: 2,
		patterns:   []string{"deploy:check", "git:clone", "git:create_release", "deploy:virtualenv", "deploy:symlink:release", "deploy:restart", "deploy:cleanup", "deploy:log_revision"},
	}
	t.configure = func(n int) error {
		data := map[string]any{
			"Unit": unit, "Remote": w.remote, "Wheels": w.wheels,
			"Hosts": addrs(n), "Port": f.port, "Key": f.key(), "KnownHosts": f.knownHosts(),
		}
		files := map[string]string{}
		for name, tmpl := range map[string]string{"Capfile": "Capfile", "config/deploy.rb": "deploy.rb", "config/deploy/production.rb": "production.rb"} {
			s, err := render(tmpl, data)
			if err != nil {
				return err
			}
			files[name] = s
		}
		return writeFiles(dir, files)
	}
	t.deploy = func(ctx context.Context, n int, r release) *exec.Cmd {
		return command(ctx, dir, toolEnv("BRANCH="+r.Tag), "cap", "production", "deploy")
	}
	t.rollback = func(ctx context.Context, n int) *exec.Cmd {
		return command(ctx, dir, toolEnv(), "cap", "production", "deploy:rollback")
	}
	return t
}

func newFabric(w *workspace, f *fleet, unit string, port int) *tool {
	dir := filepath.Join(w.tmp, "fabric")
	t := &tool{
		name: "fabric", unit: unit, port: port, dir: dir,
		current:    "/var/webapps/" + unit + "/releases/current",
		rollbackTo: 2,
		patterns:   []string{"is live in", "rolled back"},
	}
	t.configure = func(n int) error {
		s, err := render("fabfile.py", map[string]any{
			"Unit": unit, "Remote": w.remote, "Wheels": w.wheels, "Hosts": hosts(n),
			"SSHConfig": f.sshConfig(), "Key": f.key(), "KnownHosts": f.knownHosts(),
		})
		if err != nil {
			return err
		}
		return writeFiles(dir, map[string]string{"fabfile.py": s})
	}
	t.deploy = func(ctx context.Context, n int, r release) *exec.Cmd {
		return command(ctx, dir, toolEnv(), "fab", "deploy", "--rev", r.Tag)
	}
	t.rollback = func(ctx context.Context, n int) *exec.Cmd {
		return command(ctx, dir, toolEnv(), "fab", "rollback")
	}
	return t
}
