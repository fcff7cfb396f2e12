package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// Local runs commands on this machine with /bin/sh, through the same Cmd
// as Remote: the same quoting, Dir, Env and sudo -n. It serves the
// localhost environment. The zero value is not usable; call NewLocal.
type Local struct {
	name string
	st   counters
}

var _ Host = (*Local)(nil)

// NewLocal returns a local host named name ("localhost" if empty).
func NewLocal(name string) *Local {
	if name == "" {
		name = "localhost"
	}
	return &Local{name: name}
}

// Name returns the host's name.
func (l *Local) Name() string { return l.name }

// Stats returns the counters; Sessions counts processes started.
func (l *Local) Stats() Stats { return l.st.snapshot() }

// Command returns a Cmd running name with args.
func (l *Local) Command(ctx context.Context, name string, args ...string) *Cmd {
	return newCmd(ctx, l.name, l, Join(append([]string{name}, args...)...))
}

// Script returns a Cmd running a shell script.
func (l *Local) Script(ctx context.Context, script string) *Cmd {
	return newCmd(ctx, l.name, l, script)
}

// Upload writes r to a file atomically.
func (l *Local) Upload(ctx context.Context, f File, r io.Reader) error {
	return upload(ctx, l, f, r)
}

func (l *Local) start(ctx context.Context, c *Cmd, line string, stdout, stderr io.Writer) (process, error) {
	// ForwardAgent needs nothing here: local commands see the local agent.
	// The context is applied in wait, as for Remote, so that a cancel
	// reaches the whole process group.
	cmd := exec.Command("/bin/sh", "-c", line)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = cancelGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sshx: %s: %w", l.name, err)
	}
	l.st.sessions.Add(1)
	p := &localProc{host: l.name, cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

type localProc struct {
	host string
	cmd  *exec.Cmd
	done chan error
}

func (p *localProc) wait(ctx context.Context) (int, string, error) {
	var err error
	select {
	case err = <-p.done:
	case <-ctx.Done():
		pg := -p.cmd.Process.Pid
		syscall.Kill(pg, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(cancelGrace):
			syscall.Kill(pg, syscall.SIGKILL)
			<-p.done
		}
		return 0, "", fmt.Errorf("sshx: %s: command stopped: %w", p.host, ctx.Err())
	}
	if err == nil {
		return 0, "", nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, signalName(ws.Signal()), nil
		}
		return ee.ExitCode(), "", nil
	}
	return 0, "", fmt.Errorf("sshx: %s: %w", p.host, err)
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGKILL:
		return "KILL"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGPIPE:
		return "PIPE"
	}
	return s.String()
}
