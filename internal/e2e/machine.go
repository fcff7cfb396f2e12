package e2e

import (
	"bytes"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/sshx"
)

// command is the mage command of a run in the project with args and the
// given environment variables added. With machine set, mage runs as on
// another machine: in a UTS namespace of its own (unshare -u, which needs
// root) whose hostname is machine, so that what it writes about where it
// runs, and what it makes of a lock taken here, is another machine's.
func (p *Project) command(t testing.TB, machine string, env []string, args []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(p.mage, args...)
	if machine != "" {
		unshare := fleettest.RequireTool(t, "unshare", "util-linux")
		cmd = exec.Command(unshare, append([]string{"-u", "/bin/sh", "-c", `hostname "$0" && exec "$@"`, machine, p.mage}, args...)...)
	}
	cmd.Dir = p.Dir
	cmd.Env = p.env(env)
	return cmd
}

// StartOn is Start on another machine (see command): mage in its own
// process group, as a terminal's foreground job or a CI runner's job, with
// its live output. An empty machine is this one.
func (p *Project) StartOn(t testing.TB, machine string, env []string, args ...string) (*exec.Cmd, *sshx.SyncWriter) {
	t.Helper()
	cmd := p.command(t, machine, env, args)
	out := &sshx.SyncWriter{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// RunOn is Run on another machine (see command); an empty machine is this
// one.
func (p *Project) RunOn(t testing.TB, machine string, env []string, args ...string) Result {
	t.Helper()
	cmd := p.command(t, machine, env, args)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := Result{Out: out.String(), Err: err, Took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	}
	return r
}
