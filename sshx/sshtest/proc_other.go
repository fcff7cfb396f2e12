//go:build !unix

package sshtest

import (
	"os"
	"os/exec"

	"golang.org/x/crypto/ssh"
)

// setProcessGroup does nothing on systems without process groups.
func setProcessGroup(cmd *exec.Cmd) {}

// signalGroup delivers the signals the platform supports to p.
func signalGroup(p *os.Process, sig ssh.Signal) {
	switch sig {
	case ssh.SIGKILL, ssh.SIGTERM:
		p.Kill()
	case ssh.SIGINT:
		p.Signal(os.Interrupt)
	}
}

// killGroup kills p.
func killGroup(p *os.Process) {
	p.Kill()
}

// exitSignal reports the exit code; signals are not reported on this
// platform.
func exitSignal(ps *os.ProcessState) (ssh.Signal, int, bool) {
	return "", ps.ExitCode(), false
}
