package sshtest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
)

// ShellHandler is the default [Server.Handler]. It runs e.Command with
// /bin/sh -c in e.Dir with the environment e.Env, in a new process group.
//
// Client input is piped to the command's standard input and its standard
// output and error are sent back. Signals from the client are delivered to
// the whole process group. When the client closes the session, the
// connection is lost or the server is closed, the process group is killed
// with SIGKILL. The exit status, or the terminating signal, is reported to
// the client.
//
// As with sshd, the session ends when the shell has exited and its output
// is closed, so background processes that keep the output open keep the
// session open too; processes that detach from the output outlive the
// session.
//
// A custom handler may call ShellHandler, for example after inspecting or
// rewriting e.Command.
func ShellHandler(e *Exec) {
	ctx := e.Context()
	stdout, stderr := e.Stdout, e.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}

	cmd := exec.Command("/bin/sh", "-c", e.Command)
	cmd.Dir = e.Dir
	cmd.Env = e.Env
	setProcessGroup(cmd)

	var toClose []*os.File
	closeAll := func() {
		for _, f := range toClose {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			toClose = append(toClose, r, w)
		}
		return r, w, err
	}
	fail := func(err error) {
		closeAll()
		fmt.Fprintf(stderr, "sshtest: %v\n", err)
		e.Exit(127)
	}

	var stdinW *os.File
	if e.Stdin != nil {
		r, w, err := pipe()
		if err != nil {
			fail(err)
			return
		}
		cmd.Stdin, stdinW = r, w
	}
	stdoutR, stdoutW, err := pipe()
	if err != nil {
		fail(err)
		return
	}
	stderrR, stderrW, err := pipe()
	if err != nil {
		fail(err)
		return
	}
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW

	if err := cmd.Start(); err != nil {
		fail(err)
		return
	}
	// Keep only the parent's ends of the pipes.
	if r, ok := cmd.Stdin.(*os.File); ok {
		r.Close()
	}
	stdoutW.Close()
	stderrW.Close()

	if stdinW != nil {
		// The copy ends when the client closes its side or the channel
		// is closed, which may be after this handler has returned.
		e.goTracked(func() {
			io.Copy(stdinW, e.Stdin)
			stdinW.Close()
		})
	}

	var outputs sync.WaitGroup
	outputs.Add(2)
	drain := func(w io.Writer, r *os.File) {
		defer outputs.Done()
		io.Copy(w, r)
		io.Copy(io.Discard, r)
	}
	go drain(stdout, stdoutR)
	go drain(stderr, stderrR)

	finished := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		for {
			select {
			case sig := <-e.Signals:
				signalGroup(cmd.Process, sig)
			case <-ctx.Done():
				killGroup(cmd.Process)
				stdoutR.Close()
				stderrR.Close()
				return
			case <-finished:
				return
			}
		}
	}()

	waitErr := cmd.Wait()
	outputs.Wait()
	close(finished)
	<-watcherDone
	stdoutR.Close()
	stderrR.Close()

	switch ps := cmd.ProcessState; {
	case waitErr == nil:
		e.Exit(0)
	case ps == nil:
		e.Exit(255)
	default:
		if sig, code, ok := exitSignal(ps); ok {
			e.ExitSignal(sig)
		} else {
			e.Exit(code)
		}
	}
}

// Respond returns a handler that answers every command in-process,
// without starting a process: it writes stdout and exits with status,
// leaving standard input unread. A benchmark that uses it measures the
// SSH transport alone, and a test can use it for a host whose commands
// need not run.
func Respond(stdout string, status int) func(*Exec) {
	return func(e *Exec) {
		if stdout != "" && e.Stdout != nil {
			io.WriteString(e.Stdout, stdout)
		}
		e.Exit(status)
	}
}
