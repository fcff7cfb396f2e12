package sshx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
)

// JumpError reports a host that was not reached because of its jump host
// (ProxyJump): connecting to the jump host failed or its connection was
// lost (Forward false), or the jump host is up but would not or could
// not open the way to the host (Forward true). errors.As reaches the
// cause in Err: a *HostKeyError or *AuthError of the jump host, or an
// *ssh.OpenChannelError.
type JumpError struct {
	Host     string // the host as the user named it
	Addr     string // host:port the jump host was to reach
	Jump     string // the jump host as ProxyJump names it
	JumpAddr string // user@host:port of the jump host
	Forward  bool   // false: the jump host failed; true: it refused or failed to forward to Addr
	Err      error
}

func (e *JumpError) Error() string {
	jump := fmt.Sprintf("jump host %s (%s)", e.Jump, e.JumpAddr)
	if !e.Forward {
		return fmt.Sprintf("sshx: %s: %s failed, so %s (%s) was not reached: %s", e.Host, jump, e.Host, e.Addr, e.cause())
	}
	var oc *ssh.OpenChannelError
	if errors.As(e.Err, &oc) {
		why := oc.Reason.String()
		if oc.Message != "" {
			why += ": " + oc.Message
		}
		switch oc.Reason {
		case ssh.Prohibited:
			return fmt.Sprintf("sshx: %s (%s): %s refused to forward to it (%s): allow TCP forwarding for %s there: AllowTcpForwarding yes (or local) and PermitOpen in its sshd_config, and no restrict, no-port-forwarding or permitopen that excludes %s in its authorized_keys",
				e.Host, e.Addr, jump, why, userOf(e.JumpAddr), e.Addr)
		case ssh.ConnectionFailed:
			return fmt.Sprintf("sshx: %s (%s): %s is up but could not connect to %s (%s): is %s up, and does its sshd listen on that address and port as seen from the jump host?",
				e.Host, e.Addr, jump, e.Addr, why, e.Host)
		}
		return fmt.Sprintf("sshx: %s (%s): %s did not open a channel to %s (%s)", e.Host, e.Addr, jump, e.Addr, why)
	}
	return fmt.Sprintf("sshx: %s (%s): through %s: %v", e.Host, e.Addr, jump, e.Err)
}

func (e *JumpError) Unwrap() error { return e.Err }

// cause is the jump host's own error without the prefix that names it
// again.
func (e *JumpError) cause() string {
	msg := strings.TrimPrefix(e.Err.Error(), "sshx: ")
	if rest, ok := strings.CutPrefix(msg, e.Jump+" ("); ok {
		if i := strings.Index(rest, "): "); i >= 0 {
			return rest[i+3:]
		}
	}
	return strings.TrimPrefix(msg, e.Jump+": ")
}

func userOf(userAddr string) string {
	u, _, ok := strings.Cut(userAddr, "@")
	if !ok {
		return "the user"
	}
	return u
}

// jumpError is a JumpError of r reaching its address through jump.
func (r *Remote) jumpError(jump *Remote, forward bool, err error) error {
	return &JumpError{
		Host:     r.ep.Name,
		Addr:     r.ep.addr(),
		Jump:     jump.ep.Name,
		JumpAddr: jump.ep.User + "@" + jump.ep.addr(),
		Forward:  forward,
		Err:      err,
	}
}

// forward opens a TCP connection to r's address through jump's
// connection jc. A connection found dead (lost before the jump host's
// keepalives told) is forgotten and the jump host dialled again, once:
// every host behind it that finds it dead shares that one new dial.
func (r *Remote) forward(ctx context.Context, jump *Remote, jc *sshConn) (net.Conn, error) {
	addr := r.ep.addr()
	for redialled := false; ; redialled = true {
		conn, err := jc.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn, nil
		}
		var oc *ssh.OpenChannelError
		if errors.As(err, &oc) {
			return nil, r.jumpError(jump, true, err)
		}
		if ctx.Err() != nil {
			return nil, r.jumpError(jump, true, fmt.Errorf("no channel to %s within the connect timeout: %w", addr, ctx.Err()))
		}
		jump.forget(jc)
		lost := fmt.Errorf("connection lost: %w", err)
		if redialled {
			return nil, r.jumpError(jump, false, lost)
		}
		r.pool.logf("%s: the connection to jump host %s is gone (%v); connecting again", r.ep.Name, jump.ep.Name, err)
		if jc, err = jump.connection(ctx); err != nil {
			return nil, r.jumpError(jump, false, err)
		}
	}
}

// forget drops c as r's connection, if it still is, and closes it, so
// that the next command dials again.
func (r *Remote) forget(c *sshConn) {
	r.mu.Lock()
	if r.client == c {
		r.client = nil
	}
	r.mu.Unlock()
	c.Close()
}
