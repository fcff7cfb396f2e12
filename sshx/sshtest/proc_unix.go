//go:build unix

package sshtest

import (
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// sshSignals maps the signal names of RFC 4254 to signals.
var sshSignals = map[ssh.Signal]syscall.Signal{
	ssh.SIGABRT: syscall.SIGABRT,
	ssh.SIGALRM: syscall.SIGALRM,
	ssh.SIGFPE:  syscall.SIGFPE,
	ssh.SIGHUP:  syscall.SIGHUP,
	ssh.SIGILL:  syscall.SIGILL,
	ssh.SIGINT:  syscall.SIGINT,
	ssh.SIGKILL: syscall.SIGKILL,
	ssh.SIGPIPE: syscall.SIGPIPE,
	ssh.SIGQUIT: syscall.SIGQUIT,
	ssh.SIGSEGV: syscall.SIGSEGV,
	ssh.SIGTERM: syscall.SIGTERM,
	ssh.SIGUSR1: syscall.SIGUSR1,
	ssh.SIGUSR2: syscall.SIGUSR2,
}

// setProcessGroup makes cmd the leader of a new process group, and sees
// that it starts with default signal dispositions, as sshd starts
// commands.
func setProcessGroup(cmd *exec.Cmd) {
	defaultDispositions()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// signalGroup sends sig to the process group led by p. Unknown signals are
// ignored, as sshd does.
func signalGroup(p *os.Process, sig ssh.Signal) {
	if s, ok := sshSignals[sig]; ok {
		syscall.Kill(-p.Pid, s)
	}
}

// killGroup kills the process group led by p.
func killGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
}

// exitSignal reports how a process that did not exit normally ended: the
// SSH name of the terminating signal and ok, or an exit code of 128 plus
// the signal number for signals without an SSH name.
func exitSignal(ps *os.ProcessState) (sig ssh.Signal, code int, ok bool) {
	ws, isWS := ps.Sys().(syscall.WaitStatus)
	if !isWS || !ws.Signaled() {
		return "", ps.ExitCode(), false
	}
	for name, s := range sshSignals {
		if s == ws.Signal() {
			return name, 0, true
		}
	}
	return "", 128 + int(ws.Signal()), false
}

// defaultDispositions makes the commands this process starts begin with
// every signal at its default disposition, whatever this process
// inherited. A signal ignored here stays ignored across exec, and Go
// keeps two of them ignored when it starts ignored: SIGHUP (a test run
// under nohup, a CI runner) and SIGINT (a background job of a shell).
// Subscribing to such a signal replaces "ignored" with a handler, and a
// handler is reset to the default by exec. Nothing reads the channel and
// a full channel drops the signal, so this process goes on ignoring it.
var defaultDispositions = sync.OnceFunc(func() {
	for _, sig := range []os.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if signal.Ignored(sig) {
			signal.Notify(make(chan os.Signal, 1), sig)
		}
	}
})
