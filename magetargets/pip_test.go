package magetargets

import (
	"context"
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
