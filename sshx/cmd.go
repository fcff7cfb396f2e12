package sshx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
)

// Host runs commands on one machine, over SSH (*Remote) or locally
// (*Local). Implementations are safe for concurrent use.
type Host interface {
	// Name is the host as the user named it; it prefixes output and errors.
	Name() string
	// Command returns a Cmd that runs name with args, each quoted.
	Command(ctx context.Context, name string, args ...string) *Cmd
	// Script returns a Cmd that runs a POSIX shell script. Every value in
	// it must have been quoted with Quote.
	Script(ctx context.Context, script string) *Cmd
	// Upload writes r to a file on the host atomically.
	Upload(ctx context.Context, f File, r io.Reader) error
}

// ErrSudoPassword is matched (errors.Is) by the error of a command run with
// Sudo when sudo wanted a password: sudo runs with -n and never prompts.
var ErrSudoPassword = errors.New("sshx: sudo requires a password")

// ExitError is the error of a command that ran and exited with a non-zero
// status or was killed by a signal.
type ExitError struct {
	Host    string // the host as the user named it
	Command string // the command, as Cmd.String shows it
	Status  int    // exit status; -1 when killed by a signal
	Signal  string // the signal that killed it ("TERM"), or ""
	Stderr  []byte // the last lines of standard error (up to 4 KiB)

	sudoPassword bool
}

// ExitStatus returns the exit status, -1 if the command was killed.
func (e *ExitError) ExitStatus() int { return e.Status }

func (e *ExitError) Error() string {
	if e.sudoPassword {
		return fmt.Sprintf("sshx: %s: sudo wants a password to run %s; allow it without one (NOPASSWD in sudoers) or run without sudo", e.Host, truncate(e.Command, 200))
	}
	var how string
	if e.Signal != "" {
		how = "was killed by signal " + e.Signal
	} else {
		how = fmt.Sprintf("exited with status %d", e.Status)
	}
	msg := fmt.Sprintf("sshx: %s: %s %s", e.Host, truncate(e.Command, 200), how)
	if tail := lastLines(e.Stderr, 3); tail != "" {
		msg += ": " + tail
	}
	return msg
}

// Is reports ErrSudoPassword for a sudo password prompt.
func (e *ExitError) Is(target error) bool { return target == ErrSudoPassword && e.sudoPassword }

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}

// File says where and how Upload and UploadFile write.
type File struct {
	Path string // destination on the host; a relative path is relative to the login directory
	Mode uint32 // permission bits, e.g. 0o644; zero means 0o644 (UploadFile: the local file's)
	Sudo bool   // write as root (sudo -n)
}

// Cmd is a command prepared to run on a host, like exec.Cmd. Set its
// fields before Run or Start; a Cmd runs once.
type Cmd struct {
	// Dir is the working directory; empty means the login directory
	// (remote) or the current directory (local).
	Dir string
	// Env holds NAME=value pairs set for the command (and under sudo).
	Env []string
	// Sudo runs the command as root with sudo -n: a password prompt is an
	// error (ErrSudoPassword), never a hang.
	Sudo bool
	// ForwardAgent forwards the local SSH agent to this command (e.g. for
	// git over SSH on the host). It needs an agent. The host can reach the
	// agent only while a command with ForwardAgent runs on the connection:
	// other requests for it are refused, although OpenSSH's sshd keeps its
	// agent socket once one command asked for it.
	ForwardAgent bool
	// Stdin is the command's standard input; nil means none (EOF). Wait
	// returns after Stdin is drained, as with exec.Cmd.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output; nil discards it.
	Stdout, Stderr io.Writer

	ctx    context.Context
	host   string
	script string
	exec   executor

	mu       sync.Mutex
	proc     process
	started  bool
	finished bool
	errTail  *tailBuffer
}

// executor starts processes; *Remote and *Local implement it.
type executor interface {
	start(ctx context.Context, c *Cmd, inner string, stdout, stderr io.Writer) (process, error)
}

type process interface {
	// wait waits for the process, honouring ctx: when ctx is done the
	// process is signalled, given a moment, and abandoned.
	wait(ctx context.Context) (status int, signal string, err error)
}

func newCmd(ctx context.Context, host string, ex executor, script string) *Cmd {
	return &Cmd{ctx: ctx, host: host, exec: ex, script: script}
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// shellLine is the script with its working directory, environment and sudo
// applied: what a POSIX shell on the host runs.
func (c *Cmd) shellLine() (string, error) {
	return c.line(func(line string) string { return "sudo -n -- /bin/sh -c " + Quote(line) })
}

// runLine is shellLine as the host runs it: sudo under the C locale.
func (c *Cmd) runLine() (string, error) { return c.line(sudoLine) }

func (c *Cmd) line(sudo func(string) string) (string, error) {
	var b strings.Builder
	if c.Dir != "" {
		b.WriteString("cd " + Quote(c.Dir) + " && ")
	}
	for _, kv := range c.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envName.MatchString(k) {
			return "", fmt.Errorf("sshx: %s: environment entry %q: want NAME=value with NAME made of letters, digits and _", c.host, truncate(kv, 80))
		}
		b.WriteString(k + "=" + Quote(v) + " && export " + k + " && ")
	}
	b.WriteString(c.script)
	line := b.String()
	if c.Sudo {
		line = sudo(line)
	}
	if strings.IndexByte(line, 0) >= 0 {
		return "", fmt.Errorf("sshx: %s: command contains a NUL byte, which no shell can pass", c.host)
	}
	return line, nil
}

// sudoLine runs line as root with sudo -n. sudo itself runs under
// LC_ALL=C, so that its refusal to prompt for a password reads the same
// in every language of the host; the command gets the caller's LC_ALL and
// LANGUAGE back, passed as arguments because sudo may drop variables.
func sudoLine(line string) string {
	restore := `if [ -n "$2" ]; then LC_ALL=$1; export LC_ALL; else unset LC_ALL; fi; ` +
		`if [ -n "$4" ]; then LANGUAGE=$3; export LANGUAGE; else unset LANGUAGE; fi; shift 4; `
	return "LC_ALL=C LANGUAGE=C sudo -n -- /bin/sh -c " + Quote(restore+line) +
		` sh "${LC_ALL-}" "${LC_ALL+set}" "${LANGUAGE-}" "${LANGUAGE+set}"`
}

// String returns the command as the host's shell runs it (without the
// process-group wrapper that lets a cancel stop it, and without the
// locale settings around sudo).
func (c *Cmd) String() string {
	line, err := c.shellLine()
	if err != nil {
		return c.script
	}
	return line
}

// Start starts the command; Wait waits for it.
func (c *Cmd) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return fmt.Errorf("sshx: %s: Cmd already started", c.host)
	}
	c.started = true
	if c.ctx == nil {
		return fmt.Errorf("sshx: %s: Cmd made without a context", c.host)
	}
	if err := c.ctx.Err(); err != nil {
		return fmt.Errorf("sshx: %s: %w", c.host, err)
	}
	line, err := c.runLine()
	if err != nil {
		return err
	}
	c.errTail = &tailBuffer{max: 4096}
	stderr := io.Writer(c.errTail)
	if c.Stderr != nil {
		stderr = io.MultiWriter(c.Stderr, c.errTail)
	}
	stdout := c.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	p, err := c.exec.start(c.ctx, c, line, stdout, stderr)
	if err != nil {
		return err
	}
	c.proc = p
	return nil
}

// Wait waits for the command started by Start. A non-zero exit gives an
// *ExitError; a cancelled context gives an error wrapping ctx.Err().
func (c *Cmd) Wait() error {
	c.mu.Lock()
	if !c.started || c.proc == nil {
		c.mu.Unlock()
		return fmt.Errorf("sshx: %s: Cmd not started", c.host)
	}
	if c.finished {
		c.mu.Unlock()
		return fmt.Errorf("sshx: %s: Wait already called", c.host)
	}
	c.finished = true
	c.mu.Unlock()
	status, sig, err := c.proc.wait(c.ctx)
	if err != nil {
		return err
	}
	if status == 0 && sig == "" {
		return nil
	}
	tail := c.errTail.Bytes()
	return &ExitError{
		Host: c.host, Command: c.String(), Status: status, Signal: sig, Stderr: tail,
		sudoPassword: c.Sudo && (bytes.Contains(tail, []byte("sudo: a password is required")) ||
			bytes.Contains(tail, []byte("sudo: a terminal is required"))),
	}
}

// Run starts the command and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the command and returns its standard output.
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, fmt.Errorf("sshx: %s: Stdout already set", c.host)
	}
	var out bytes.Buffer
	c.Stdout = &out
	err := c.Run()
	return out.Bytes(), err
}

// CombinedOutput runs the command and returns its standard output and
// standard error together.
func (c *Cmd) CombinedOutput() ([]byte, error) {
	if c.Stdout != nil || c.Stderr != nil {
		return nil, fmt.Errorf("sshx: %s: Stdout or Stderr already set", c.host)
	}
	var out SyncWriter
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.bytes(), err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.b...)
}
