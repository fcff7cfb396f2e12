package sshtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ClientTimeout is the TCP connect timeout set by [Server.ClientConfig].
const ClientTimeout = 5 * time.Second

// DefaultAlias is the host alias written by [Server.WriteClientFiles] when
// [Server.Alias] is empty.
const DefaultAlias = "sshtest"

// Fault selects a failure mode of a [Server]. Set it with [Server.SetFault].
type Fault int

const (
	// FaultNone is normal operation.
	FaultNone Fault = iota

	// FaultHangHandshake accepts new TCP connections but never sends a
	// byte on them. Held connections are closed when the fault is changed
	// to anything else or when the server is closed. Connections that were
	// already established are not affected. Note that ssh.Dial blocks in
	// the handshake: ClientConfig.Timeout only limits the TCP connect.
	FaultHangHandshake

	// FaultHangCommands accepts exec requests (they are recorded by
	// [Server.Commands] and acknowledged) but never runs them: the session
	// produces no output and no exit status until the client closes the
	// session, the connection drops or the server is closed. Clearing the
	// fault does not release commands that are already hanging.
	FaultHangCommands

	// FaultDropConnections closes every open connection abruptly (with a
	// TCP reset) at the moment the fault is set, and closes every new
	// connection right after accepting it.
	FaultDropConnections

	// FaultRejectAuth rejects every public key, so no client can
	// authenticate. Established connections are not affected.
	FaultRejectAuth

	// FaultFreezeConnections freezes the connections that are open when
	// it is set, as a host that hangs or a network that drops every
	// packet: the server stops reading from them and sends nothing more
	// on them (keepalives go unanswered, commands' output is held back),
	// but does not close them. New connections are served normally.
	// Changing the fault to anything else thaws the frozen connections;
	// closing the server closes them.
	FaultFreezeConnections

	// FaultDeafConnections stops the server reading from the connections
	// that are open when it is set, as a host that hangs while still
	// sending: what the client sends (data, signals, the close of a
	// session, keepalives, answers to channel opens) is held back unread,
	// so sessions stay open, while the server and its handlers can still
	// send, for instance open an agent channel. New connections are served
	// normally. Changing the fault to anything else lets the server read
	// what was held back, in order; closing the server closes them.
	FaultDeafConnections
)

// String returns the name of the fault, such as "FaultHangHandshake".
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "FaultNone"
	case FaultHangHandshake:
		return "FaultHangHandshake"
	case FaultHangCommands:
		return "FaultHangCommands"
	case FaultDropConnections:
		return "FaultDropConnections"
	case FaultRejectAuth:
		return "FaultRejectAuth"
	case FaultFreezeConnections:
		return "FaultFreezeConnections"
	case FaultDeafConnections:
		return "FaultDeafConnections"
	}
	return "Fault(" + strconv.Itoa(int(f)) + ")"
}

// Stats holds counters of a [Server]. All counts are cumulative since Start
// except ActiveConnections.
//
// Connections, AuthRejections, Sessions, Execs and AgentForwards are
// updated before the client receives the corresponding answer, so they are
// current once the client's call returns. FailedHandshakes, Signals,
// ActiveConnections and the counts of dropped or held connections are
// updated as the server gets to them, possibly shortly after the client
// has observed the event.
type Stats struct {
	// Accepted is the number of TCP connections accepted, including those
	// held or dropped by a fault.
	Accepted int
	// Connections is the number of SSH connections that completed the
	// handshake and authenticated.
	Connections int
	// FailedHandshakes is the number of accepted connections whose SSH
	// handshake or authentication failed, including handshakes cut off
	// by FaultDropConnections. Connections held by FaultHangHandshake or
	// dropped right after accept are not counted.
	FailedHandshakes int
	// AuthRejections is the number of public keys rejected, because they
	// are not authorized or because FaultRejectAuth was set.
	AuthRejections int
	// Sessions is the number of session channels opened.
	Sessions int
	// Execs is the number of exec requests received; it equals
	// len(Commands()).
	Execs int
	// AgentForwards is the number of accepted agent forwarding requests.
	AgentForwards int
	// AgentChannels is the number of connections to agent sockets that
	// were forwarded to a client.
	AgentChannels int
	// Signals is the number of signal requests received.
	Signals int
	// Forwards is the number of "direct-tcpip" channels opened: the
	// server connected to the address asked for.
	Forwards int
	// ForwardsRefused is the number of "direct-tcpip" channels refused:
	// forwarding is off (TCPForwarding), or the address did not answer.
	ForwardsRefused int
	// GlobalRequests is the number of global requests received, such as
	// keepalives.
	GlobalRequests int
	// ActiveConnections is the number of accepted TCP connections that
	// are still open.
	ActiveConnections int
}

// Server is an SSH server listening on a loopback address, for use in tests
// and demos. Configure the exported fields before calling [Server.Start] and
// do not modify them afterwards; use [Server.SetFault] to change behaviour
// while the server runs. The zero value is ready to be configured and
// started.
type Server struct {
	// Addr is the listening address, "127.0.0.1:PORT", set by Start.
	Addr string

	// Dir is the working directory of commands. If empty, Start creates a
	// temporary directory and Close removes it.
	Dir string

	// Env holds extra environment variables (KEY=VALUE) for commands. They
	// are added to the server process's environment, see [Exec.Env].
	Env []string

	// HostKey is the server's host key. Start generates an ed25519 key if
	// it is nil.
	HostKey ssh.Signer

	// ClientKey is the key clients authenticate with. Start generates an
	// ed25519 key (and sets ClientPrivateKey) if it is nil.
	ClientKey ssh.Signer

	// ClientPrivateKey is the private key behind ClientKey, needed by
	// WriteClientFiles. Start sets it when it generates ClientKey; set it
	// yourself when supplying ClientKey, or leave it nil if
	// WriteClientFiles is not used.
	ClientPrivateKey crypto.PrivateKey

	// AuthorizedKeys lists further public keys accepted in addition to
	// ClientKey.
	AuthorizedKeys []ssh.PublicKey

	// Handler handles exec requests. If nil, [ShellHandler] runs the
	// command with /bin/sh -c in Dir.
	Handler func(*Exec)

	// Alias is the host alias written by WriteClientFiles; DefaultAlias if
	// empty.
	Alias string

	// TCPForwarding lets clients open "direct-tcpip" channels (ssh -J,
	// ProxyJump) to any address: the server connects to it and copies
	// bytes both ways, and refuses the channel with "connect failed" when
	// it cannot connect, as sshd does. False refuses every such channel
	// as "administratively prohibited", as sshd with AllowTcpForwarding no
	// does.
	TCPForwarding bool

	// OnConnect, if set, is called in a goroutine of its own as soon as a
	// connection has authenticated, before the client has opened any
	// channel. It can play a host that acts at once, such as opening an
	// "auth-agent@openssh.com" channel with conn.OpenChannel. It must
	// return once conn is closed; Close waits for it.
	OnConnect func(conn ssh.Conn)

	// OnDisconnect, if set, is called when an authenticated connection
	// has ended, with what ended it: io.EOF when the client closed its
	// side of the TCP connection (or channel) cleanly, an error wrapping
	// syscall.ECONNRESET when the client's side answered with a reset,
	// the message of SSH's disconnect when the client sent one.
	OnDisconnect func(conn ssh.ConnMetadata, err error)

	config *ssh.ServerConfig
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	started   bool
	closed    bool
	ln        net.Listener
	tempDir   string
	fault     Fault
	conns     map[net.Conn]*freezableConn
	held      map[net.Conn]struct{}
	commands  []string
	users     []string
	stats     Stats
	closeOnce sync.Once
}

// NewServer returns a started Server. It panics if the server cannot be
// started, like httptest.NewServer. The caller should call Close when
// finished with it.
func NewServer() *Server {
	s := NewUnstartedServer()
	s.Start()
	return s
}

// NewUnstartedServer returns a new Server that is not yet started. Configure
// its fields and then call Start.
func NewUnstartedServer() *Server {
	return &Server{}
}

// Start starts the server. It panics if the server cannot be started or was
// already started; see Listen for a variant returning an error.
func (s *Server) Start() {
	if err := s.Listen(); err != nil {
		panic("sshtest: " + err.Error())
	}
}

// Listen starts the server like Start but returns an error instead of
// panicking. It fills in Addr, Dir, HostKey and ClientKey as needed.
func (s *Server) Listen() error {
	var err error
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("server already started")
	}
	if s.closed {
		return errors.New("server closed")
	}

	if s.HostKey == nil {
		if s.HostKey, _, err = generateKey(); err != nil {
			return fmt.Errorf("generating host key: %w", err)
		}
	}
	if s.ClientKey == nil {
		if s.ClientKey, s.ClientPrivateKey, err = generateKey(); err != nil {
			return fmt.Errorf("generating client key: %w", err)
		}
	}
	createdDir := false
	if s.Dir == "" {
		dir, err := os.MkdirTemp("", "sshtest-dir-")
		if err != nil {
			return fmt.Errorf("creating working directory: %w", err)
		}
		s.Dir, s.tempDir, createdDir = dir, dir, true
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if ln, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			if createdDir {
				os.RemoveAll(s.tempDir)
				s.Dir, s.tempDir = "", ""
			}
			return fmt.Errorf("listening on a loopback address: %w", err)
		}
	}

	s.config = &ssh.ServerConfig{
		PublicKeyCallback:         s.checkKey,
		VerifiedPublicKeyCallback: s.authenticated,
		ServerVersion:             "SSH-2.0-sshtest",
	}
	s.config.AddHostKey(s.HostKey)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.conns = make(map[net.Conn]*freezableConn)
	s.held = make(map[net.Conn]struct{})
	s.ln = ln
	s.Addr = ln.Addr().String()
	s.started = true

	s.wg.Add(1)
	go s.acceptLoop(ln)
	return nil
}

// generateKey returns a new ed25519 key as a signer and as a private key.
func generateKey() (ssh.Signer, crypto.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return signer, priv, nil
}

// Close shuts the server down: it closes the listener and every connection,
// kills the process groups of running commands and waits until all of the
// server's goroutines have finished. Then it removes Dir if Start created
// it. Close may be called more than once and on a server never started.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		started := s.started
		var conns []net.Conn
		if started {
			s.cancel()
			s.ln.Close()
			conns = s.allConnsLocked()
		}
		s.mu.Unlock()
		if !started {
			return
		}
		for _, c := range conns {
			c.Close()
		}
		s.wg.Wait()
		if s.tempDir != "" {
			os.RemoveAll(s.tempDir)
		}
	})
}

// allConnsLocked returns every tracked connection, held or not. s.mu must
// be held.
func (s *Server) allConnsLocked() []net.Conn {
	conns := make([]net.Conn, 0, len(s.conns)+len(s.held))
	for c := range s.conns {
		conns = append(conns, c)
	}
	for c := range s.held {
		conns = append(conns, c)
	}
	return conns
}

// SetFault changes the failure mode of the server. It is safe to call at
// any time, from any goroutine, before or after Start.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	old := s.fault
	s.fault = f
	var toClose []net.Conn
	for _, fc := range s.conns {
		fc.freeze(f == FaultFreezeConnections || f == FaultDeafConnections, f == FaultFreezeConnections)
	}
	switch {
	case f == FaultDropConnections:
		toClose = s.allConnsLocked()
	case old == FaultHangHandshake && f != FaultHangHandshake:
		for c := range s.held {
			toClose = append(toClose, c)
		}
	}
	s.mu.Unlock()
	for _, c := range toClose {
		if f == FaultDropConnections {
			abort(c)
		} else {
			c.Close()
		}
	}
}

// Fault returns the current failure mode.
func (s *Server) Fault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

// abort closes c, with a TCP reset where possible.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient failure such as running out of file
			// descriptors: try again shortly.
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		s.mu.Lock()
		s.stats.Accepted++
		switch {
		case s.closed:
			s.mu.Unlock()
			c.Close()
			continue
		case s.fault == FaultDropConnections:
			s.mu.Unlock()
			abort(c)
			continue
		case s.fault == FaultHangHandshake:
			s.held[c] = struct{}{}
			s.stats.ActiveConnections++
			s.wg.Add(1)
			s.mu.Unlock()
			go s.hold(c)
			continue
		}
		fc := &freezableConn{Conn: c, stop: s.ctx.Done()}
		s.conns[c] = fc
		s.stats.ActiveConnections++
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(fc)
	}
}

// hold keeps c open without sending anything until the client hangs up or
// c is closed by SetFault or Close. Bytes from the client are discarded.
func (s *Server) hold(c net.Conn) {
	defer s.wg.Done()
	io.Copy(io.Discard, c)
	c.Close()
	s.mu.Lock()
	delete(s.held, c)
	s.stats.ActiveConnections--
	s.mu.Unlock()
}

// untrack removes a finished connection from the bookkeeping.
func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.stats.ActiveConnections--
	s.mu.Unlock()
}

// checkKey accepts ClientKey and AuthorizedKeys unless FaultRejectAuth is
// set.
func (s *Server) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == FaultRejectAuth {
		s.stats.AuthRejections++
		return nil, errors.New("sshtest: authentication rejected by fault")
	}
	blob := key.Marshal()
	if bytes.Equal(blob, s.ClientKey.PublicKey().Marshal()) {
		return &ssh.Permissions{}, nil
	}
	for _, k := range s.AuthorizedKeys {
		if bytes.Equal(blob, k.Marshal()) {
			return &ssh.Permissions{}, nil
		}
	}
	s.stats.AuthRejections++
	return nil, fmt.Errorf("sshtest: public key %s not authorized", ssh.FingerprintSHA256(key))
}

// authenticated records a successful authentication. It runs before the
// client is told of the success, so the counters are up to date by the
// time a client's Dial returns.
func (s *Server) authenticated(meta ssh.ConnMetadata, _ ssh.PublicKey, perms *ssh.Permissions, _ string) (*ssh.Permissions, error) {
	s.mu.Lock()
	s.stats.Connections++
	s.users = append(s.users, meta.User())
	s.mu.Unlock()
	return perms, nil
}

// ClientConfig returns a client configuration that authenticates as user
// with ClientKey and accepts only HostKey. The server must have been
// started.
func (s *Server) ClientConfig(user string) *ssh.ClientConfig {
	s.mustStarted("ClientConfig")
	return &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(s.ClientKey)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey.PublicKey()),
		Timeout:         ClientTimeout,
	}
}

// Dial connects to the server and authenticates as user using ClientConfig.
func (s *Server) Dial(user string) (*ssh.Client, error) {
	return ssh.Dial("tcp", s.Addr, s.ClientConfig(user))
}

// KnownHostsLine returns a known_hosts line for Addr and HostKey, such as
// "[127.0.0.1]:PORT ssh-ed25519 AAAA...". It has no trailing newline.
func (s *Server) KnownHostsLine() string {
	s.mustStarted("KnownHostsLine")
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey.PublicKey())
}

func (s *Server) mustStarted(method string) {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		panic("sshtest: " + method + " called before Start")
	}
}

// ClientFiles names the files written by [Server.WriteClientFiles]. All
// paths are absolute.
type ClientFiles struct {
	// IdentityFile is the client's private key (OpenSSH format, mode 0600).
	IdentityFile string
	// KnownHostsFile holds KnownHostsLine.
	KnownHostsFile string
	// ConfigFile is an ssh_config(5) file with a Host section for Alias.
	ConfigFile string
	// Alias is the host name to use with ConfigFile, as in
	// "ssh -F ConfigFile Alias command".
	Alias string
}

// WriteClientFiles writes into dir what an OpenSSH client needs to connect:
// the private key "id_ed25519", "known_hosts" and "ssh_config", the latter
// with a Host section for the server's Alias setting HostName, Port, User
// (the current OS user), IdentityFile, IdentitiesOnly, UserKnownHostsFile,
// StrictHostKeyChecking and BatchMode. dir is created if needed. It fails
// if ClientPrivateKey is unknown.
func (s *Server) WriteClientFiles(dir string) (ClientFiles, error) {
	s.mustStarted("WriteClientFiles")
	if s.ClientPrivateKey == nil {
		return ClientFiles{}, errors.New("sshtest: ClientPrivateKey is not set")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ClientFiles{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ClientFiles{}, err
	}
	alias := s.Alias
	if alias == "" {
		alias = DefaultAlias
	}
	files := ClientFiles{
		IdentityFile:   filepath.Join(dir, "id_ed25519"),
		KnownHostsFile: filepath.Join(dir, "known_hosts"),
		ConfigFile:     filepath.Join(dir, "ssh_config"),
		Alias:          alias,
	}

	block, err := ssh.MarshalPrivateKey(s.ClientPrivateKey, "sshtest")
	if err != nil {
		return ClientFiles{}, fmt.Errorf("sshtest: encoding client key: %w", err)
	}
	if err := writeFile(files.IdentityFile, pem.EncodeToMemory(block)); err != nil {
		return ClientFiles{}, err
	}
	if err := writeFile(files.KnownHostsFile, []byte(s.KnownHostsLine()+"\n")); err != nil {
		return ClientFiles{}, err
	}

	host, port, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return ClientFiles{}, err
	}
	userName := "sshtest"
	if u, err := user.Current(); err == nil && u.Username != "" {
		userName = u.Username
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Host %s\n", alias)
	fmt.Fprintf(&b, "  HostName %s\n", host)
	fmt.Fprintf(&b, "  Port %s\n", port)
	fmt.Fprintf(&b, "  User %s\n", quoteConfig(userName))
	fmt.Fprintf(&b, "  IdentityFile %s\n", quoteConfig(files.IdentityFile))
	fmt.Fprintf(&b, "  IdentitiesOnly yes\n")
	fmt.Fprintf(&b, "  UserKnownHostsFile %s\n", quoteConfig(files.KnownHostsFile))
	fmt.Fprintf(&b, "  StrictHostKeyChecking yes\n")
	fmt.Fprintf(&b, "  BatchMode yes\n")
	if err := writeFile(files.ConfigFile, []byte(b.String())); err != nil {
		return ClientFiles{}, err
	}
	return files, nil
}

// writeFile writes data to name with mode 0600, also when name exists.
func writeFile(name string, data []byte) error {
	if err := os.WriteFile(name, data, 0o600); err != nil {
		return err
	}
	return os.Chmod(name, 0o600)
}

// quoteConfig quotes an ssh_config argument if it contains white space or
// quotes.
func quoteConfig(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\"'") {
		return v
	}
	return `"` + strings.ReplaceAll(v, `"`, "") + `"`
}

// Commands returns every command received in an exec request, in order,
// including commands held by FaultHangCommands.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Users returns the user name of every authenticated connection, in order.
func (s *Server) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.users...)
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// count updates the counters under the lock.
func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// serveConn runs the SSH protocol on an accepted connection.
func (s *Server) serveConn(fc *freezableConn) {
	c := fc.Conn
	defer s.wg.Done()
	defer s.untrack(c)
	defer c.Close()

	sconn, chans, reqs, err := ssh.NewServerConn(fc, s.config)
	if err != nil {
		s.count(func(st *Stats) { st.FailedHandshakes++ })
		return
	}
	defer sconn.Close()

	if s.OnConnect != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.OnConnect(sconn)
		}()
	}

	cs := &connState{}
	s.wg.Add(1)
	go s.globalRequests(reqs, cs)

	for nc := range chans {
		if nc.ChannelType() == "direct-tcpip" {
			s.wg.Add(1)
			go s.serveForward(nc)
			continue
		}
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "unsupported channel type")
			continue
		}
		if cs.noMoreSessions.Load() {
			nc.Reject(ssh.Prohibited, "no more sessions")
			continue
		}
		s.wg.Add(1)
		go s.serveSession(sconn, nc)
	}
	if s.OnDisconnect != nil {
		s.OnDisconnect(sconn, sconn.Wait())
	}
}

// globalRequests answers connection-level requests as OpenSSH does:
// "no-more-sessions@openssh.com" succeeds and forbids further sessions,
// everything else (including "keepalive@openssh.com") fails.
func (s *Server) globalRequests(reqs <-chan *ssh.Request, cs *connState) {
	defer s.wg.Done()
	for req := range reqs {
		s.count(func(st *Stats) { st.GlobalRequests++ })
		ok := false
		if req.Type == "no-more-sessions@openssh.com" {
			cs.noMoreSessions.Store(true)
			ok = true
		}
		if req.WantReply {
			req.Reply(ok, nil)
		}
	}
}

// freezableConn is a server connection that FaultFreezeConnections and
// FaultDeafConnections can stop: while frozen, reads (and, for
// FaultFreezeConnections, writes) wait until it is thawed or the server
// closes; data already read is held back.
type freezableConn struct {
	net.Conn
	stop <-chan struct{} // closed when the server closes

	mu        sync.Mutex
	readThaw  chan struct{} // non-nil while reads are frozen; closed on thaw
	writeThaw chan struct{} // non-nil while writes are frozen; closed on thaw
}

func (f *freezableConn) freeze(reads, writes bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	setFrozen(&f.readThaw, reads)
	setFrozen(&f.writeThaw, writes)
}

func setFrozen(thaw *chan struct{}, on bool) {
	switch {
	case on && *thaw == nil:
		*thaw = make(chan struct{})
	case !on && *thaw != nil:
		close(*thaw)
		*thaw = nil
	}
}

// wait returns when the direction whose thaw channel is at thaw is not
// frozen, or net.ErrClosed when the server closes while it is.
func (f *freezableConn) wait(thaw *chan struct{}) error {
	f.mu.Lock()
	c := *thaw
	f.mu.Unlock()
	if c == nil {
		return nil
	}
	select {
	case <-c:
		return nil
	case <-f.stop:
		return net.ErrClosed
	}
}

func (f *freezableConn) Read(p []byte) (int, error) {
	if err := f.wait(&f.readThaw); err != nil {
		return 0, err
	}
	n, err := f.Conn.Read(p)
	if werr := f.wait(&f.readThaw); werr != nil {
		return 0, werr
	}
	return n, err
}

func (f *freezableConn) Write(p []byte) (int, error) {
	if err := f.wait(&f.writeThaw); err != nil {
		return 0, err
	}
	return f.Conn.Write(p)
}
