package magetargets

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/wheel"
)

func TestPipSetupIsIdempotent(t *testing.T) {
	py := fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	if exec.Command(py, "-c", "import venv, pip").Run() != nil {
		fleettest.Unavailable(t, "python3 needs venv and pip (python3-venv, python3-pip)")
	}
	wheels := t.TempDir()
	if _, err := wheel.Build(wheels, "setup-dep", "2.0", "WHO = 'setup'\n"); err != nil {
		t.Fatal(err)
	}
	var tasks []string
	dir := pythonProject(t, map[string]string{
		"requirements/common.txt": "setup-dep==2.0\n",
		"requirements/dev.txt":    "# nothing more\n",
	}, func(c *Config) {
		c.Python = py
		c.Virtualenv = "env"
		c.PipRequirements = []string{"requirements/common.txt"}
		c.PipRequirementsDev = []string{"requirements/dev.txt"}
		c.PipInstallCommand = "pip install --no-index --find-links " + wheels
		c.ExtraSetupTasks = []SetupTask{func(ctx context.Context, root string) error {
			tasks = append(tasks, root)
			return nil
		}}
	})
	out := captureOut(t)
	if err := (Pip{}).Setup(context.Background()); err != nil {
		t.Fatalf("pip:setup: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), ": installed") {
		t.Errorf("first pip:setup did not install:\n%s", out)
	}
	got, err := exec.Command(filepath.Join(dir, "env/bin/python"), "-c", "import setup_dep; print(setup_dep.WHO)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "setup" {
		t.Errorf("the virtualenv cannot import the requirement: %s %v", got, err)
	}
	out.Reset()
	if err := (Pip{}).Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), ": up to date") {
		t.Errorf("second pip:setup was not a no-op:\n%s", out)
	}
	if len(tasks) != 2 || tasks[0] != dir {
		t.Errorf("ExtraSetupTasks ran %v, want twice in %s", tasks, dir)
	}
	// A changed requirement file installs again.
	os.WriteFile(filepath.Join(dir, "requirements/dev.txt"), []byte("# changed\n"), 0o644)
	out.Reset()
	if err := (Pip{}).Setup(context.Background()); err != nil || !strings.Contains(out.String(), ": installed") {
		t.Errorf("pip:setup after a change: %v\n%s", err, out)
	}
}

// TestPipSetupInstallsIntoVirtualEnv checks pip:setup with $VIRTUAL_ENV
// set to a virtualenv outside the project: the requirements, the private
// packages and the install scripts all go to that virtualenv, and the
// project's submodules are checked out.
func TestPipSetupInstallsIntoVirtualEnv(t *testing.T) {
	py := fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	if exec.Command(py, "-c", "import venv, pip").Run() != nil {
		fleettest.Unavailable(t, "python3 needs venv and pip (python3-venv, python3-pip)")
	}
	ctx := context.Background()
	root := t.TempDir()
	venv := filepath.Join(root, "venvs", "five")
	if out, err := exec.Command(py, "-m", "venv", venv).CombinedOutput(); err != nil {
		t.Fatalf("%s -m venv: %v\n%s", py, err, out)
	}
	if exec.Command(filepath.Join(venv, "bin/python"), "-c", "import setuptools").Run() != nil {
		fleettest.Unavailable(t, "a new virtualenv has no setuptools to build the private package (python3-setuptools-whl)")
	}
	wheels := t.TempDir()
	if _, err := wheel.Build(wheels, "setup-dep", "2.0", "WHO = 'setup'\n"); err != nil {
		t.Fatal(err)
	}
	// Git submodules from local paths need this since git 2.38.1.
	t.Setenv("GIT_CONFIG_COUNT", "1")
	t.Setenv("GIT_CONFIG_KEY_0", "protocol.file.allow")
	t.Setenv("GIT_CONFIG_VALUE_0", "always")

	// The private package, in a git repository tagged v1.
	secret := filepath.Join(root, "secretpkg")
	writeFiles(t, secret, map[string]string{
		"setup.py":              "from setuptools import setup\nsetup(name='secretpkg', version='1.0', packages=['secretpkg'])\n",
		"secretpkg/__init__.py": "SECRET = 'kept'\n",
	})
	gitCommitAll(t, secret)
	git(t, secret, "tag", "v1")

	// The project, with a submodule, cloned without it as a developer
	// would.
	vendored := filepath.Join(root, "vendored")
	writeFiles(t, vendored, map[string]string{"README": "vendored\n"})
	gitCommitAll(t, vendored)
	origin := filepath.Join(root, "origin")
	writeFiles(t, origin, map[string]string{
		"requirements/common.txt":  "setup-dep==2.0\n",
		"requirements/private.txt": "secretpkg==" + secret + "==v1\n",
		"bin/install.sh":           "#!/bin/sh\nprintf '%s\\n' \"$1\" \"$VIRTUAL_ENV\" > script-ran\n",
	})
	gitCommitAll(t, origin)
	git(t, origin, "submodule", "--quiet", "add", vendored, "vendor/lib")
	git(t, origin, "commit", "-q", "-m", "vendor/lib")
	dir := filepath.Join(root, "five")
	git(t, root, "clone", "-q", origin, dir)
	if _, err := os.Stat(filepath.Join(dir, "vendor/lib/README")); err == nil {
		t.Fatal("the clone has the submodule already")
	}

	configure(t, Config{
		Unit:                  "five",
		RootDir:               dir,
		Python:                py,
		Virtualenv:            "env",
		PipRequirements:       []string{"requirements/common.txt"},
		PrivateRequirements:   []string{"requirements/private.txt"},
		PackageInstallScripts: []string{"bin/install.sh"},
		PipInstallCommand:     "pip install --no-index --no-build-isolation --find-links " + wheels,
	})
	t.Setenv("VIRTUAL_ENV", venv)
	out := captureOut(t)
	if err := (Pip{}).Setup(ctx); err != nil {
		t.Fatalf("pip:setup: %v\n%s", err, out)
	}
	got, err := exec.Command(filepath.Join(venv, "bin/python"), "-c", "import setup_dep, secretpkg; print(setup_dep.WHO, secretpkg.SECRET)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "setup kept" {
		t.Errorf("$VIRTUAL_ENV cannot import the requirement and the private package: %s %v", got, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "script-ran")); string(b) != venv+"\n"+venv+"\n" {
		t.Errorf("the install script got %q (its argument, then $VIRTUAL_ENV), want %s twice", b, venv)
	}
	if _, err := os.Stat(filepath.Join(dir, "env")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pip:setup made %s/env (%v), want everything in $VIRTUAL_ENV", dir, err)
	}
	if _, err := os.Stat(filepath.Join(venv, ".magefab-stamp")); err != nil {
		t.Errorf("no stamp in $VIRTUAL_ENV: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "vendor/lib/README")); err != nil || string(b) != "vendored\n" {
		t.Errorf("the submodule was not checked out (git submodule update --init --recursive): %q, %v", b, err)
	}

	// Nothing changed: nothing is installed again.
	out.Reset()
	os.Remove(filepath.Join(dir, "script-ran"))
	if err := (Pip{}).Setup(ctx); err != nil || !strings.Contains(out.String(), venv+": up to date") {
		t.Errorf("second pip:setup: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "script-ran")); err == nil {
		t.Errorf("the second pip:setup ran the install script again")
	}
}

// writeFiles writes files (name to content) under dir, mode 0755.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// gitCommitAll makes dir a repository on branch master (if it is not one)
// and commits everything in it.
func gitCommitAll(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		git(t, dir, "init", "-q", "-b", "master")
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "files")
}

// TestPipInstallWritesTheDeployStamp checks that pip:install installs what
// a deploy installs (requirements, private packages, install scripts) and
// leaves the stamp a deploy writes: the next deploy of the same
// requirements installs nothing.
func TestPipInstallWritesTheDeployStamp(t *testing.T) {
	ctx := context.Background()
	p := newHostProject(t)
	p.path = "app"
	secret := filepath.Join(t.TempDir(), "secretpkg")
	writeFiles(t, secret, map[string]string{"setup.py": "# the private package\n"})
	gitCommitAll(t, secret)
	git(t, secret, "tag", "v1")
	head := p.commitFiles(t, map[string]string{
		"requirements.txt":         "django\n",
		"requirements/private.txt": "secretpkg==" + secret + "==v1\n",
		"bin/install.sh":           installScript,
	})
	cfg := p.config(p.path)
	cfg.PipRequirements = []string{"requirements.txt"}
	cfg.PrivateRequirements = []string{"requirements/private.txt"}
	cfg.PackageInstallScripts = []string{"bin/install.sh"}
	configure(t, cfg)
	t.Setenv(EnvVar, envDevelopment)
	if err := (Deploy{}).Commit(ctx, head); err != nil {
		t.Fatalf("deploy: %v\n%s", err, p.out)
	}

	mark := p.toolsLogSize()
	if err := (Pip{}).Install(ctx); err != nil {
		t.Fatalf("pip:install: %v\n%s", err, p.out)
	}
	calls := p.toolCalls(mark)
	var reqs, private, script bool
	for _, c := range calls {
		all := strings.Join(c, " ")
		reqs = reqs || c[0] == "pip" && strings.Contains(all, "-r requirements.txt")
		private = private || c[0] == "pip" && strings.Contains(all, "secretpkg-v1.tar.gz")
		script = script || c[0] == "script" && strings.HasSuffix(all, "bin/install.sh")
	}
	if !reqs || !private || !script {
		t.Errorf("pip:install: requirements %v, private package %v, install script %v, want all three; calls: %q", reqs, private, script, calls)
	}
	if _, err := os.Stat(filepath.Join(p.home, p.path, "releases", ".lock")); err == nil {
		t.Errorf("pip:install left the host locked")
	}

	mark = p.toolsLogSize()
	p.out.Reset()
	if err := (Deploy{}).Commit(ctx, head); err != nil {
		t.Fatalf("deploy after pip:install: %v\n%s", err, p.out)
	}
	if calls := p.toolCalls(mark); len(calls) > 0 {
		t.Errorf("the deploy after pip:install installed again: %q", calls)
	}
	if !strings.Contains(p.out.String(), "requirements unchanged: nothing to install") {
		t.Errorf("the deploy after pip:install does not say the requirements are unchanged:\n%s", p.out)
	}
}
