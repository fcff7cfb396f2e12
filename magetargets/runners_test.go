package magetargets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefile/mage/mg"
)

// pythonProject configures a project in a temp dir holding files.
func pythonProject(t *testing.T, files map[string]string, tweak func(*Config)) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o755)
	}
	c := Config{Unit: "five", RootDir: dir, Virtualenv: "no-venv-here"}
	if tweak != nil {
		tweak(&c)
	}
	Configure(c)
	t.Setenv("VIRTUAL_ENV", "")
	var out bytes.Buffer
	old := stdout
	stdout = &out
	t.Cleanup(func() { stdout = old })
	return dir
}

func TestDjangoRunnerKeepsExitStatusAndDeploymentType(t *testing.T) {
	dir := pythonProject(t, map[string]string{
		"manage.py": "import os, sys\nopen('ran', 'w').write(' '.join(sys.argv[1:]) + ' ' + os.environ['DEPLOYMENT_TYPE'])\nsys.exit(3)\n",
	}, func(c *Config) { c.TestRunner = Django })
	t.Setenv(EnvVar, "development")
	err := Test{}.Run(context.Background())
	if mg.ExitStatus(err) != 3 {
		t.Errorf("test:run = %v (exit %d), want exit status 3", err, mg.ExitStatus(err))
	}
	b, _ := os.ReadFile(filepath.Join(dir, "ran"))
	if string(b) != "test DEV" {
		t.Errorf("manage.py saw %q, want %q", b, "test DEV")
	}
}

func TestRunnersNameWhatIsMissing(t *testing.T) {
	pythonProject(t, nil, func(c *Config) { c.TestRunner = Tornado })
	err := Test{}.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "tests/run_tests.py") {
		t.Errorf("Tornado without tests/run_tests.py: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	pythonProject(t, nil, func(c *Config) { c.TestRunner = Nose })
	err = Test{}.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "pip install nose") {
		t.Errorf("Nose without nosetests: %v", err)
	}
	// An interpreter that cannot import pytest: the project's virtualenv
	// runs python without its site directories.
	pythonProject(t, map[string]string{"env/bin/python": "#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n"}, func(c *Config) {
		c.Virtualenv = "env"
		c.TestRunner = Pytest
	})
	err = Test{}.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot import pytest") || !strings.Contains(err.Error(), "pip install pytest") {
		t.Errorf("Pytest without pytest: %v", err)
	}
	pythonProject(t, nil, nil)
	if err := (Test{}).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "TestRunner") {
		t.Errorf("no runner: %v", err)
	}
}

// TestPytestRunner runs pytest on a passing and a failing test with
// Debian's python3 as the project's virtualenv; it needs pytest there
// (Debian package python3-pytest).
func TestPytestRunner(t *testing.T) {
	if exec.Command("/usr/bin/python3", "-c", "import pytest").Run() != nil {
		fleettest.Unavailable(t, "/usr/bin/python3 cannot import pytest (Debian package python3-pytest)")
	}
	python := "#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n"
	pythonProject(t, map[string]string{
		"env/bin/python": python,
		"test_app.py":    "import os\n\ndef test_deployment_type():\n    assert os.environ['DEPLOYMENT_TYPE'] == 'DEV'\n",
	}, func(c *Config) { c.Virtualenv, c.TestRunner = "env", Pytest })
	t.Setenv(EnvVar, envDevelopment)
	if err := (Test{}).Run(context.Background()); err != nil {
		t.Errorf("test:run with pytest and a passing test = %v", err)
	}
	pythonProject(t, map[string]string{
		"env/bin/python": python,
		"test_app.py":    "def test_fails():\n    assert False\n",
	}, func(c *Config) { c.Virtualenv, c.TestRunner = "env", Pytest })
	if err := (Test{}).Run(context.Background()); mg.ExitStatus(err) != 1 {
		t.Errorf("test:run with pytest and a failing test = %v (exit status %d), want exit status 1", err, mg.ExitStatus(err))
	}
}

func TestCustomRunnerAndDeployStopsOnFailure(t *testing.T) {
	sentinel := errors.New("red")
	pythonProject(t, nil, func(c *Config) {
		c.TestRunner = func(ctx context.Context, env Environment) error { return sentinel }
	})
	if err := (Test{}).Run(context.Background()); !errors.Is(err, sentinel) {
		t.Errorf("custom runner error = %v", err)
	}
}

func TestLintPythonPathAndMissingLinter(t *testing.T) {
	dir := pythonProject(t, map[string]string{
		"lib/x.py": "", "apps/y.py": "", "vendor/one/z.py": "", "vendor/two/w.py": "",
		"bin/fakelint": "#!/bin/sh\necho \"$PYTHONPATH\" > lintpath\necho \"$@\" > lintargs\nexit 2\n",
	}, func(c *Config) { c.LintCommand = "" })
	c, _ := currentConfig()
	c.LintCommand = filepath.Join(dir, "bin/fakelint") + " --rcfile=.pylintrc src"
	Configure(c)
	err := Lint{}.Python(context.Background())
	if mg.ExitStatus(err) != 2 {
		t.Errorf("lint = %v, want exit status 2", err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "lintpath"))
	want := strings.Join([]string{dir + "/lib", dir + "/apps", dir + "/vendor/one", dir + "/vendor/two"}, ":")
	if !strings.HasPrefix(strings.TrimSpace(string(got)), want) {
		t.Errorf("PYTHONPATH = %q, want it to start with %q", got, want)
	}
	t.Setenv("PATH", t.TempDir())
	c.LintCommand = ""
	Configure(c)
	if err := (Lint{}).Python(context.Background()); err == nil || !strings.Contains(err.Error(), "pip install pylint") {
		t.Errorf("missing pylint: %v", err)
	}
}

// captureOut sends what the targets print to a buffer for the rest of the
// test.
func captureOut(t *testing.T) *bytes.Buffer {
	t.Helper()
	var out bytes.Buffer
	old := stdout
	stdout = &out
	t.Cleanup(func() { stdout = old })
	return &out
}
