package sshtest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/ssh"
)

// signalBuffer is the capacity of [Exec.Signals]. Signals arriving while the
// buffer is full are dropped.
const signalBuffer = 16

// Exec describes one exec request being handled. The server creates it and
// passes it to [Server.Handler]. The handler writes the command's output to
// Stdout and Stderr, optionally sets the exit status with Exit or
// ExitSignal, and returns. After it returns, the server sends EOF, the exit
// status (or signal) and closes the session channel; the handler must not
// use Stdin, Stdout or Stderr afterwards.
type Exec struct {
	// Command is the command line sent by the client.
	Command string

	// User is the user name the client authenticated as.
	User string

	// RemoteAddr is the client's address.
	RemoteAddr net.Addr

	// Dir is the server's Dir, the working directory for the command.
	Dir string

	// Env is the full environment for the command: the server process's
	// environment without SSH_AUTH_SOCK, SSH_CLIENT, SSH_CONNECTION and
	// SSH_TTY; then SSH_CLIENT and SSH_CONNECTION describing this
	// connection as sshd sets them; then the server's Env; then the
	// variables sent by the client (RequestedEnv); then SSH_AUTH_SOCK if
	// agent forwarding was requested. Later entries replace earlier ones
	// with the same name, so every name occurs once.
	Env []string

	// RequestedEnv lists the variables (NAME=VALUE) the client sent with
	// "env" requests, in order.
	RequestedEnv []string

	// Stdin reads what the client sends; it returns io.EOF when the client
	// closes its side.
	Stdin io.Reader

	// Stdout and Stderr send output to the client.
	Stdout, Stderr io.Writer

	// AgentSocket is the path of a unix socket whose connections are
	// forwarded to the client's agent, or "" if the client did not request
	// agent forwarding before the exec request.
	AgentSocket string

	// Signals receives the signals the client sends, such as ssh.SIGTERM.
	// It is buffered; signals are dropped when the buffer is full. It is
	// never closed.
	Signals <-chan ssh.Signal

	ctx  context.Context
	srv  *Server
	conn ssh.Conn

	mu     sync.Mutex
	status int
	signal ssh.Signal
}

// Context returns a context that is done when the client closes the
// session, the connection is lost or the server is closing. A handler must
// stop and return soon after that.
func (e *Exec) Context() context.Context {
	if e.ctx == nil {
		return context.Background()
	}
	return e.ctx
}

// Exit sets the exit status reported to the client when the handler
// returns. The default is 0. It does not stop the handler.
func (e *Exec) Exit(status int) {
	e.mu.Lock()
	e.status, e.signal = status, ""
	e.mu.Unlock()
}

// ExitSignal reports that the command was killed by sig: the client
// receives an "exit-signal" request instead of "exit-status" when the
// handler returns. It does not stop the handler.
func (e *Exec) ExitSignal(sig ssh.Signal) {
	e.mu.Lock()
	e.signal = sig
	e.mu.Unlock()
}

func (e *Exec) result() (int, ssh.Signal) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status, e.signal
}

// OpenAgentChannel opens an "auth-agent@openssh.com" channel to the
// client, as a server does to reach a forwarded agent, whether or not the
// client asked for agent forwarding: a handler can play a host that tries
// to use the client's keys, to test that the client refuses. An error
// means the client rejected the channel. Talk to the agent through the
// channel with agent.NewClient, and close it when done.
func (e *Exec) OpenAgentChannel() (ssh.Channel, error) {
	if e.conn == nil {
		return nil, errors.New("sshtest: Exec has no connection")
	}
	ch, reqs, err := e.conn.OpenChannel("auth-agent@openssh.com", nil)
	if err != nil {
		return nil, err
	}
	e.goTracked(func() { ssh.DiscardRequests(reqs) })
	return ch, nil
}

// goTracked runs f in a goroutine that Server.Close waits for.
func (e *Exec) goTracked(f func()) {
	if e.srv == nil {
		go f()
		return
	}
	e.srv.wg.Add(1)
	go func() {
		defer e.srv.wg.Done()
		f()
	}()
}

// connState is the per-connection state shared between its goroutines.
type connState struct {
	noMoreSessions atomic.Bool
}

// serveSession handles one session channel: it processes the channel
// requests until the channel is closed by the peer or the connection ends.
func (s *Server) serveSession(conn *ssh.ServerConn, nc ssh.NewChannel) {
	defer s.wg.Done()
	s.count(func(st *Stats) { st.Sessions++ })
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	var (
		requested []string
		agent     *agentForwarder
		started   bool
		done      chan struct{}
		signals   = make(chan ssh.Signal, signalBuffer)
	)
	defer func() {
		cancel()
		if done != nil {
			<-done
		}
		if agent != nil {
			agent.close()
		}
	}()

	for req := range reqs {
		ok := false
		switch req.Type {
		case "env":
			var m struct{ Name, Value string }
			if !started && ssh.Unmarshal(req.Payload, &m) == nil &&
				m.Name != "" && !strings.ContainsAny(m.Name, "=\x00") {
				requested = append(requested, m.Name+"="+m.Value)
				ok = true
			}
		case "auth-agent-req@openssh.com":
			if !started && agent == nil {
				if agent, err = s.startAgent(conn); err == nil {
					s.count(func(st *Stats) { st.AgentForwards++ })
					ok = true
				}
			}
		case "exec":
			var m struct{ Command string }
			if started || ssh.Unmarshal(req.Payload, &m) != nil {
				break
			}
			started = true
			s.mu.Lock()
			s.commands = append(s.commands, m.Command)
			s.stats.Execs++
			hang := s.fault == FaultHangCommands
			s.mu.Unlock()
			e := &Exec{
				Command:      m.Command,
				User:         conn.User(),
				RemoteAddr:   conn.RemoteAddr(),
				Dir:          s.Dir,
				RequestedEnv: requested,
				Stdin:        ch,
				Stdout:       ch,
				Stderr:       ch.Stderr(),
				Signals:      signals,
				ctx:          ctx,
				srv:          s,
				conn:         conn,
			}
			if agent != nil {
				e.AgentSocket = agent.path
			}
			e.Env = s.commandEnv(conn, requested, e.AgentSocket)
			if req.WantReply {
				req.Reply(true, nil)
			}
			done = make(chan struct{})
			s.wg.Add(1)
			go s.runExec(e, ch, hang, done)
			continue
		case "signal":
			s.count(func(st *Stats) { st.Signals++ })
			var m struct{ Signal string }
			if started && ssh.Unmarshal(req.Payload, &m) == nil {
				select {
				case signals <- ssh.Signal(m.Signal):
					ok = true
				default:
				}
			}
		default:
			// "pty-req", "shell", "subsystem", "x11-req" and everything
			// else are refused.
		}
		if req.WantReply {
			req.Reply(ok, nil)
		}
	}
}

// runExec runs the handler for e and then finishes the session channel.
func (s *Server) runExec(e *Exec, ch ssh.Channel, hang bool, done chan struct{}) {
	defer s.wg.Done()
	defer close(done)
	if hang {
		<-e.ctx.Done()
		return
	}
	h := s.Handler
	if h == nil {
		h = ShellHandler
	}
	h(e)

	ch.CloseWrite()
	status, sig := e.result()
	if sig != "" {
		ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: string(sig)}))
	} else {
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
	}
	ch.Close()
}

// commandEnv builds Exec.Env; see its documentation.
func (s *Server) commandEnv(conn ssh.ConnMetadata, requested []string, agentSocket string) []string {
	var env []string
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "SSH_AUTH_SOCK", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY":
			continue
		}
		env = append(env, kv)
	}
	rhost, rport, _ := net.SplitHostPort(conn.RemoteAddr().String())
	lhost, lport, _ := net.SplitHostPort(conn.LocalAddr().String())
	env = append(env,
		"SSH_CLIENT="+rhost+" "+rport+" "+lport,
		"SSH_CONNECTION="+rhost+" "+rport+" "+lhost+" "+lport,
	)
	env = append(env, s.Env...)
	env = append(env, requested...)
	if agentSocket != "" {
		env = append(env, "SSH_AUTH_SOCK="+agentSocket)
	}
	return dedupEnv(env)
}

// dedupEnv keeps, for every variable name, the last value at the position
// of the first occurrence.
func dedupEnv(env []string) []string {
	index := make(map[string]int, len(env))
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if i, ok := index[name]; ok {
			out[i] = kv
			continue
		}
		index[name] = len(out)
		out = append(out, kv)
	}
	return out
}

// agentForwarder serves a unix socket whose connections are forwarded to
// the client's agent over "auth-agent@openssh.com" channels.
type agentForwarder struct {
	srv  *Server
	conn ssh.Conn
	dir  string
	path string
	ln   net.Listener

	mu     sync.Mutex
	closed bool
	active map[net.Conn]ssh.Channel
}

func (s *Server) startAgent(conn ssh.Conn) (*agentForwarder, error) {
	dir, err := os.MkdirTemp("", "sshtest-agent-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	a := &agentForwarder{
		srv:    s,
		conn:   conn,
		dir:    dir,
		path:   path,
		ln:     ln,
		active: make(map[net.Conn]ssh.Channel),
	}
	s.wg.Add(1)
	go a.accept()
	return a, nil
}

func (a *agentForwarder) accept() {
	defer a.srv.wg.Done()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.active[c] = nil
		a.srv.wg.Add(1)
		a.mu.Unlock()
		go a.proxy(c)
	}
}

// proxy copies bytes between c and a new agent channel to the client.
func (a *agentForwarder) proxy(c net.Conn) {
	defer a.srv.wg.Done()
	defer func() {
		a.mu.Lock()
		delete(a.active, c)
		a.mu.Unlock()
		c.Close()
	}()

	ch, reqs, err := a.conn.OpenChannel("auth-agent@openssh.com", nil)
	if err != nil {
		return
	}
	a.mu.Lock()
	closed := a.closed
	if !closed {
		a.active[c] = ch
	}
	a.mu.Unlock()
	if closed {
		ch.Close()
		ssh.DiscardRequests(reqs)
		return
	}
	a.srv.count(func(st *Stats) { st.AgentChannels++ })

	discarded := make(chan struct{})
	go func() {
		defer close(discarded)
		ssh.DiscardRequests(reqs)
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		io.Copy(ch, c)
		ch.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		io.Copy(c, ch)
		if uc, ok := c.(*net.UnixConn); ok {
			uc.CloseWrite()
		} else {
			c.Close()
		}
	}()
	wg.Wait()
	ch.Close()
	<-discarded
}

// close stops accepting agent connections, closes the forwarded ones and
// removes the socket's directory.
func (a *agentForwarder) close() {
	a.mu.Lock()
	a.closed = true
	a.ln.Close()
	for c, ch := range a.active {
		c.Close()
		if ch != nil {
			ch.Close()
		}
	}
	a.mu.Unlock()
	os.RemoveAll(a.dir)
}
