package magetargets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/magefile/mage/mg"
)

// Lint holds lint:python.
type Lint mg.Namespace

// Python runs the linter (LintCommand, pylint by default) with PYTHONPATH extended by lib/, apps/ and vendor/*.
func (Lint) Python(ctx context.Context) error {
	c, err := currentConfig()
	if err != nil {
		return err
	}
	words := []string{"pylint", "--rcfile=.pylintrc", c.RootDir}
	if c.LintCommand != "" {
		if words, err = splitCommand("LintCommand", c.LintCommand); err != nil {
			return err
		}
	}
	tool := words[0]
	if p := filepath.Join(localVenv(c), "bin", tool); !strings.Contains(tool, "/") {
		if _, err := os.Stat(p); err == nil {
			tool = p
		} else if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("magetargets: %s is not installed: pip install %s (in the project's virtualenv, e.g. add it to PipRequirementsDev and run pip:setup)", words[0], words[0])
		}
	}
	cmd := exec.CommandContext(ctx, tool, words[1:]...)
	cmd.Dir = c.RootDir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+lintPath(c.RootDir))
	cmd.Stdout, cmd.Stderr = stdout, stdout
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return mg.Fatalf(ee.ExitCode(), "magetargets: %s found problems (exit status %d)", words[0], ee.ExitCode())
		}
		return fmt.Errorf("magetargets: %s: %w", words[0], err)
	}
	return nil
}

// lintPath is PYTHONPATH with lib/, apps/ and each vendor/* directory of
// root added before what was there.
func lintPath(root string) string {
	var parts []string
	for _, d := range []string{"lib", "apps"} {
		if st, err := os.Stat(filepath.Join(root, d)); err == nil && st.IsDir() {
			parts = append(parts, filepath.Join(root, d))
		}
	}
	vendors, _ := filepath.Glob(filepath.Join(root, "vendor", "*"))
	for _, v := range vendors {
		if st, err := os.Stat(v); err == nil && st.IsDir() {
			parts = append(parts, v)
		}
	}
	if old := os.Getenv("PYTHONPATH"); old != "" {
		parts = append(parts, old)
	}
	return strings.Join(parts, string(os.PathListSeparator))
}
