package sshtest

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// serveForward answers a "direct-tcpip" channel (RFC 4254 7.2) as sshd
// does: refused when forwarding is off, refused with "connect failed"
// when the address does not answer, and otherwise a copy both ways
// between the channel and a TCP connection to the address.
func (s *Server) serveForward(nc ssh.NewChannel) {
	defer s.wg.Done()
	var req struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &req); err != nil {
		s.count(func(st *Stats) { st.ForwardsRefused++ })
		nc.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	if !s.TCPForwarding {
		s.count(func(st *Stats) { st.ForwardsRefused++ })
		nc.Reject(ssh.Prohibited, "open failed")
		return
	}
	d := net.Dialer{Timeout: ClientTimeout}
	c, err := d.DialContext(s.ctx, "tcp", net.JoinHostPort(req.Host, strconv.Itoa(int(req.Port))))
	if err != nil {
		s.count(func(st *Stats) { st.ForwardsRefused++ })
		msg := err.Error()
		if errors.Is(err, syscall.ECONNREFUSED) {
			msg = "Connection refused"
		}
		nc.Reject(ssh.ConnectionFailed, msg)
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		c.Close()
		return
	}
	s.count(func(st *Stats) { st.Forwards++ })
	stop := context.AfterFunc(s.ctx, func() {
		c.Close()
		ch.Close()
	})
	defer stop()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ssh.DiscardRequests(reqs)
	}()
	done := make(chan struct{})
	go func() {
		io.Copy(c, ch)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		close(done)
	}()
	io.Copy(ch, c)
	ch.CloseWrite()
	<-done
	ch.Close()
	c.Close()
}
