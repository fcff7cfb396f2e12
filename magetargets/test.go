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

// Test holds test:run.
type Test mg.Namespace

// Run runs the project's tests with the configured TestRunner, with DEPLOYMENT_TYPE exported.
func (Test) Run(ctx context.Context) error {
	c, err := currentConfig()
	if err != nil {
		return err
	}
	if c.TestRunner == nil {
		return errors.New("magetargets: no TestRunner configured: set Config.TestRunner to magetargets.Django, Tornado, Nose, Pytest or a func")
	}
	env, err := selectedOrLocal(c)
	if err != nil {
		return err
	}
	return exitCode(c.TestRunner(ctx, env))
}

// selectedOrLocal is the selected environment, or localhost when none was
// chosen: tests and lint run on this machine.
func selectedOrLocal(c Config) (Environment, error) {
	if env, err := selectedEnvironment(c); err == nil {
		return env, nil
	}
	env, ok := c.Environments[envLocalhost]
	if !ok {
		return Environment{}, errors.New("magetargets: no environment chosen and no localhost environment")
	}
	return env, nil
}

// The test runners of buedafab, plus pytest. Each runs on this machine in
// RootDir with DEPLOYMENT_TYPE set to the environment's type, using the
// project's virtualenv ($VIRTUAL_ENV, else RootDir/<Virtualenv>) when there
// is one. A failing run's error carries the runner's exit status.
var (
	// Django runs ./manage.py test.
	Django TestRunner = pythonRunner("manage.py", "test")
	// Tornado runs tests/run_tests.py.
	Tornado TestRunner = pythonRunner("tests/run_tests.py")
	// Nose runs nosetests.
	Nose TestRunner = toolRunner("nosetests", "nose")
	// Pytest runs python -m pytest.
	Pytest TestRunner = moduleRunner("pytest")
)

// moduleRunner runs python -m module, once python has shown it can import
// module.
func moduleRunner(module string) TestRunner {
	return func(ctx context.Context, env Environment) error {
		c, err := currentConfig()
		if err != nil {
			return err
		}
		py := localPython(c)
		check := exec.CommandContext(ctx, py, "-c", "import "+module)
		check.Dir = c.RootDir
		if out, err := check.CombinedOutput(); err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return fmt.Errorf("magetargets: %s is not installed or not on PATH", py)
			}
			why := ""
			if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); lines[len(lines)-1] != "" {
				why = " (" + lines[len(lines)-1] + ")"
			}
			return fmt.Errorf("magetargets: %s cannot import %s%s: pip install %s (in the project's virtualenv, e.g. with pip:setup)", py, module, why, module)
		}
		return runLocal(ctx, c, env, py, "-m", module)
	}
}

func pythonRunner(args ...string) TestRunner {
	return func(ctx context.Context, env Environment) error {
		c, err := currentConfig()
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(c.RootDir, args[0])); err != nil {
			return fmt.Errorf("magetargets: the test runner needs %s in %s: %w", args[0], c.RootDir, err)
		}
		return runLocal(ctx, c, env, localPython(c), args...)
	}
}

func toolRunner(tool, pkg string) TestRunner {
	return func(ctx context.Context, env Environment) error {
		c, err := currentConfig()
		if err != nil {
			return err
		}
		path := filepath.Join(localVenv(c), "bin", tool)
		if _, err := os.Stat(path); err != nil {
			if path, err = exec.LookPath(tool); err != nil {
				return fmt.Errorf("magetargets: %s is not installed: pip install %s (in the project's virtualenv, e.g. with pip:setup)", tool, pkg)
			}
		}
		return runLocal(ctx, c, env, path)
	}
}

// localVenv is the project's virtualenv on this machine.
func localVenv(c Config) string {
	if v := os.Getenv("VIRTUAL_ENV"); v != "" {
		return v
	}
	return filepath.Join(c.RootDir, c.Virtualenv)
}

// localPython is the virtualenv's python, else python3.
func localPython(c Config) string {
	p := filepath.Join(localVenv(c), "bin", "python")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return "python3"
}

// runLocal runs a command in RootDir with DEPLOYMENT_TYPE, its output
// going to the user.
func runLocal(ctx context.Context, c Config, env Environment, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.RootDir
	cmd.Env = append(os.Environ(), "DEPLOYMENT_TYPE="+env.DeploymentType)
	cmd.Stdout, cmd.Stderr = stdout, stdout
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &exitError{code: ee.ExitCode(), err: fmt.Errorf("magetargets: %s %s exited with status %d", name, strings.Join(args, " "), ee.ExitCode())}
		}
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("magetargets: %s is not installed or not on PATH", name)
		}
		return fmt.Errorf("magetargets: %s: %w", name, err)
	}
	return nil
}

// exitError is a failure that carries a process's exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string   { return e.err.Error() }
func (e *exitError) Unwrap() error   { return e.err }
func (e *exitError) ExitStatus() int { return e.code }

// exitCode makes an error mage exits with the status of the process (or
// the mg.Fatal of a custom TestRunner) inside it, if any: mage looks only
// at the outermost error.
func exitCode(err error) error {
	var ee interface{ ExitStatus() int }
	if errors.As(err, &ee) && ee.ExitStatus() > 0 {
		if _, outer := err.(interface{ ExitStatus() int }); outer {
			return err
		}
		return mg.Fatal(ee.ExitStatus(), err.Error())
	}
	return err
}
