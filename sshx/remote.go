package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// Remote is a host reached over SSH. It holds at most one connection,
// opened by the first command and shared by every later one; commands are
// sessions multiplexed on it, at most Config.MaxSessions at once. A Remote
// is safe for concurrent use. Get one from Pool.Host; the Pool closes it.
type Remote struct {
	pool *Pool
	ep   Endpoint
	sem  chan struct{} // one slot per concurrent session
	st   counters

	mu      sync.Mutex
	client  *sshConn      // nil until connected, and after the connection died
	dialing chan struct{} // non-nil while a dial is in flight; closed when it ends
	dialErr error         // result of the last dial, read after dialing closes
	closed  bool
	// jump says the Remote is a jump host (ProxyJump), whose connection
	// carries the hosts behind it.
	jump bool
	// failed is a jump host's failed dial: every later caller gets it,
	// rather than dialling again for each host behind it.
	failed error
}

var _ Host = (*Remote)(nil)

// Name returns the host as the user named it.
func (r *Remote) Name() string { return r.ep.Name }

// Endpoint returns where and as whom the host is reached.
func (r *Remote) Endpoint() Endpoint { return r.ep }

// Stats returns the host's counters.
func (r *Remote) Stats() Stats { return r.st.snapshot() }

// Command returns a Cmd running name with args on the host.
func (r *Remote) Command(ctx context.Context, name string, args ...string) *Cmd {
	return newCmd(ctx, r.ep.Name, r, Join(append([]string{name}, args...)...))
}

// Script returns a Cmd running a shell script on the host.
func (r *Remote) Script(ctx context.Context, script string) *Cmd {
	return newCmd(ctx, r.ep.Name, r, script)
}

// Upload writes r to a file on the host atomically.
func (r *Remote) Upload(ctx context.Context, f File, rd io.Reader) error {
	return upload(ctx, r, f, rd)
}

// connection returns the open client, dialling if there is none. Callers
// waiting for a dial in flight give up when their context ends.
func (r *Remote) connection(ctx context.Context) (*sshConn, error) {
	r.pool.wake()
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, fmt.Errorf("sshx: %s: pool closed", r.ep.Name)
		}
		if r.client != nil {
			c := r.client
			r.mu.Unlock()
			return c, nil
		}
		if r.failed != nil {
			err := r.failed
			r.mu.Unlock()
			return nil, err
		}
		wait := r.dialing
		if wait == nil {
			wait = make(chan struct{})
			r.dialing = wait
			r.mu.Unlock()
			if r.jump {
				// A jump host's dial serves every host behind it: it
				// must not end because the host that happened to start
				// it gave up. It ends within its ConnectTimeout.
				go r.dialOnce(context.WithoutCancel(ctx), wait)
			} else {
				r.dialOnce(ctx, wait)
			}
		} else {
			r.mu.Unlock()
		}
		select {
		case <-wait: // a dial of this caller's, done: its outcome, not ctx's
		default:
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, fmt.Errorf("sshx: %s: connecting: %w", r.ep.Name, ctx.Err())
			}
		}
		r.mu.Lock()
		err := r.dialErr
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

// dialOnce dials, records the outcome for the callers waiting on done,
// and closes done.
func (r *Remote) dialOnce(ctx context.Context, done chan struct{}) {
	c, err := r.dial(ctx)
	r.mu.Lock()
	r.dialing, r.dialErr = nil, err
	switch {
	case err == nil && r.closed:
		c.Close()
		r.dialErr = fmt.Errorf("sshx: %s: pool closed", r.ep.Name)
	case err == nil:
		r.client = c
	case r.jump && !errors.Is(err, context.Canceled):
		r.failed = err
	}
	r.mu.Unlock()
	close(done)
}

// sshConn is an open connection and what it lets the host do.
type sshConn struct {
	*ssh.Client
	// forwarding counts the sessions running with agent forwarding;
	// the host may open agent channels only while it is above zero.
	forwarding atomic.Int64
	// lost says why the client closed the connection, if it did.
	lost atomic.Pointer[string]
	// closed is closed once the connection has ended.
	closed chan struct{}
	// raw is the connection SSH runs over (a TCP connection, or a
	// channel of a jump host's), for shutdown's half-close.
	raw net.Conn
}

// shutdown ends the connection cleanly: it closes its sending side, reads
// what the host still sends until the host ends the connection too (or
// drain has passed), then closes it. A socket closed while messages are
// still arriving is answered with a reset, which the host's sshd logs as
// an error; a half-closed one reads them, and the host logs a plain
// close.
func (c *sshConn) shutdown(drain time.Duration) error {
	if hc, ok := c.raw.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		t := time.NewTimer(drain)
		select {
		case <-c.closed:
		case <-t.C:
		}
		t.Stop()
	}
	err := c.Close()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return nil // it had ended: the host closed its side
	}
	return err
}

// ended says whether the connection has ended.
func (c *sshConn) ended() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// dial opens and authenticates a connection, within ConnectTimeout, in
// a turn of the pool's MaxStartups. A host behind a jump host gets the
// jump host's connection first, within a ConnectTimeout of its own, and
// its turn after: a target holding a turn while its jump host waits for
// one could wait forever.
func (r *Remote) dial(parent context.Context) (*sshConn, error) {
	cfg := &r.pool.cfg
	addr := r.ep.addr()
	where := fmt.Sprintf("%s (%s@%s)", r.ep.Name, r.ep.User, addr)
	var jump *Remote
	var jc *sshConn
	if len(r.ep.ProxyJump) > 0 {
		var err error
		if jump, err = r.pool.jumpHost(r.ep.ProxyJump); err != nil {
			return nil, fmt.Errorf("sshx: %s: ProxyJump: %w", r.ep.Name, err)
		}
		jctx, jcancel := context.WithTimeout(parent, cfg.ConnectTimeout)
		jc, err = jump.connection(jctx)
		jcancel()
		if err != nil {
			return nil, r.jumpError(jump, false, err)
		}
	}
	endTurn, err := r.pool.startTurn(parent)
	if err != nil {
		return nil, fmt.Errorf("sshx: %s: waiting for a turn to connect: %w", where, err)
	}
	defer endTurn()
	ctx, cancel := context.WithTimeout(parent, cfg.ConnectTimeout)
	defer cancel()

	hostKey, algos, err := r.pool.keys.callback(r.ep, cfg.InsecureIgnoreHostKey)
	if err != nil {
		return nil, err
	}
	ag, err := r.pool.agent.get(cfg.Agent)
	if err != nil {
		return nil, err
	}
	signers, err := collectSigners(r.ep, ag)
	if err != nil {
		return nil, err
	}

	var conn net.Conn
	if jc != nil {
		if conn, err = r.forward(ctx, jump, jc); err != nil {
			return nil, err
		}
	} else {
		conn, err = cfg.Dial(ctx, "tcp", addr)
		if err != nil {
			return nil, dialError(where, err, ctx, cfg.ConnectTimeout)
		}
	}
	raw := conn
	conn = countingConn{Conn: conn, c: &r.st}
	// The handshake must finish within the same timeout: a host that
	// accepts TCP and then says nothing must fail, not hang.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	cc, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:              r.ep.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signers.signers...)},
		HostKeyCallback:   hostKey,
		HostKeyAlgorithms: algos,
		ClientVersion:     "SSH-2.0-magefab",
	})
	if !stop() {
		if err == nil {
			cc.Close()
		}
		if ctx.Err() == context.DeadlineExceeded && parent.Err() == nil {
			return nil, fmt.Errorf("sshx: %s: no SSH handshake within %s: the host accepts connections but does not answer", where, cfg.ConnectTimeout)
		}
		return nil, fmt.Errorf("sshx: %s: connecting: %w", where, ctx.Err())
	}
	if err != nil {
		conn.Close()
		if jc != nil && jc.ended() {
			return nil, r.jumpError(jump, false, fmt.Errorf("connection lost during the SSH handshake with %s: %w", r.ep.Name, err))
		}
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		if strings.Contains(err.Error(), "unable to authenticate") || strings.Contains(err.Error(), "no supported methods remain") {
			return nil, &AuthError{Host: r.ep.Name, User: r.ep.User, Tried: signers.tried, Skipped: signers.skipped, Err: err}
		}
		return nil, fmt.Errorf("sshx: %s: SSH handshake: %w", where, err)
	}
	client := &sshConn{closed: make(chan struct{}), raw: raw}
	if ag != nil {
		// Take the host's agent channels before the client sees any: the
		// client rejects a channel type with no handler as unknown, and
		// the host may open one the moment the connection is up.
		chans = r.serveAgent(client, chans, ag)
	}
	client.Client = ssh.NewClient(cc, chans, reqs)
	r.st.connections.Add(1)
	r.pool.logf("%s: connected to %s as %s", r.ep.Name, addr, r.ep.User)
	go r.watch(client)
	return client, nil
}

// serveAgent answers the host's requests to reach the agent, arriving on
// in, and passes every other channel on in the channel it returns. It
// serves them while a command that asked for agent forwarding runs, and
// rejects them otherwise, as OpenSSH's client rejects them from a host it
// did not forward the agent to. (sshd keeps its agent socket open once one
// session asked for it; this stops a later command, or a process left
// behind, from using the keys.) A channel carries no session, so while a
// forwarding command runs, other commands on the connection could reach
// the agent too.
func (r *Remote) serveAgent(c *sshConn, in <-chan ssh.NewChannel, ag agent.Agent) <-chan ssh.NewChannel {
	rest := make(chan ssh.NewChannel)
	go func() {
		defer close(rest)
		for nc := range in {
			if nc.ChannelType() != "auth-agent@openssh.com" {
				rest <- nc
				continue
			}
			if c.forwarding.Load() <= 0 {
				r.pool.logf("%s: refused the host's request for the agent: no command asked for agent forwarding", r.ep.Name)
				nc.Reject(ssh.Prohibited, "agent forwarding was not requested")
				continue
			}
			ch, reqs, err := nc.Accept()
			if err != nil {
				continue
			}
			go ssh.DiscardRequests(reqs)
			go func() {
				agent.ServeAgent(ag, ch)
				ch.Close()
			}()
		}
	}()
	return rest
}

func dialError(where string, err error, ctx context.Context, timeout time.Duration) error {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("sshx: %s: connection refused: is sshd running there, on that port?", where)
	case ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("sshx: %s: no TCP connection within %s: host down or unreachable", where, timeout)
	}
	return fmt.Errorf("sshx: %s: %w", where, err)
}

// watch sends keepalives and forgets the client when its connection ends,
// so that the next command dials again.
func (r *Remote) watch(c *sshConn) {
	dead := c.closed
	go func() {
		c.Wait()
		close(dead)
	}()
	interval, allowed := r.ep.KeepAlive, r.ep.KeepAliveMax
	if interval > 0 {
		t := time.NewTicker(interval)
		misses := 0
	loop:
		for {
			select {
			case <-dead:
				t.Stop()
				break loop
			case <-t.C:
				if !r.pool.ping() {
					continue // quiet (see Pool.Quiet)
				}
				reply := make(chan error, 1)
				go func() {
					_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
					r.pool.pinged()
					reply <- err
				}()
				select {
				case err := <-reply:
					if err != nil {
						misses = allowed
					} else {
						misses = 0
					}
				case <-time.After(interval):
					misses++
				case <-dead:
				}
				if misses >= allowed {
					why := fmt.Sprintf("no answer to keepalives for %s", time.Duration(allowed)*interval)
					c.lost.CompareAndSwap(nil, &why)
					r.pool.logf("%s: %s; closing the connection", r.ep.Name, why)
					c.Close()
				}
			}
		}
	}
	<-dead
	r.mu.Lock()
	if r.client == c {
		r.client = nil
	}
	r.mu.Unlock()
}

// close closes the connection, if any, cleanly (see sshConn.shutdown).
func (r *Remote) close(drain time.Duration) error {
	r.mu.Lock()
	r.closed = true
	c := r.client
	r.client = nil
	r.mu.Unlock()
	if c == nil {
		return nil
	}
	r.pool.logf("%s: closing connection", r.ep.Name)
	if err := c.shutdown(drain); err != nil {
		return fmt.Errorf("sshx: %s: closing: %w", r.ep.Name, err)
	}
	return nil
}

// wrap runs the command line as the leader of a new process group, so that
// a cancel (the TERM signal the client sends) stops everything it started;
// a process that ignores TERM gets KILL 3 s later. Standard input is
// passed through explicitly: a background job's would otherwise be
// /dev/null.
//
// With watch, the command gets no input (/dev/null), and the wrapper
// reads its own standard input, which the client keeps open until the
// command ends: end of input while the command still runs means the
// client is gone (killed, its connection dropped), and the command's
// process group gets TERM (then KILL 3 s later), as on a cancel. sshd
// sends a session without a terminal no signal when its client goes, so
// without this a command would run on, and a lock loop or a restart with
// it, after the run that started it is dead.
func wrap(line string, watch bool) string {
	if watch {
		return wrapWatch + Quote(line)
	}
	return wrapPlain + Quote(line)
}

// The wrappers, quoted once: the command line is their argument $1 and is
// quoted once too (a command line can be a whole host script of tens of
// kilobytes, sent to hundreds of hosts). The login shell runs
// "exec /bin/sh -c WRAPPER sh LINE", and the wrapper passes "$1" on.
var (
	wrapTrap  = "trap 'kill -TERM -$p 2>/dev/null; (sleep 3; kill -KILL -$p) >/dev/null 2>&1 & exit 143' TERM INT HUP PIPE; "
	wrapPlain = "exec /bin/sh -c " + Quote(`exec 3<&0; setsid /bin/sh -c "$1" <&3 3<&- & p=$!; exec 3<&-; `+wrapTrap+"wait $p") + " sh "
	// A background job's input is /dev/null unless redirected: the
	// watcher gets the wrapper's through fd 3.
	wrapWatch = "exec /bin/sh -c " + Quote(`exec 3<&0; setsid /bin/sh -c "$1" </dev/null 3<&- & p=$!; `+wrapTrap+
		"{ cat >/dev/null; kill -TERM -$p; sleep 3; kill -KILL -$p; } <&3 3<&- >/dev/null 2>&1 & w=$!; exec 3<&-; "+
		"wait $p; s=$?; kill $w 2>/dev/null; exit $s") + " sh "
)

func (r *Remote) start(ctx context.Context, c *Cmd, line string, stdout, stderr io.Writer) (process, error) {
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("sshx: %s: %w", r.ep.Name, ctx.Err())
	}
	release := sync.OnceFunc(func() { <-r.sem })
	// closeAgent ends this command's hold on the agent gate, once: when
	// the session ends, or when a cancelled command is abandoned.
	closeAgent := func() {}
	sess, conn, err := r.session(ctx)
	if err != nil {
		release()
		return nil, err
	}
	if c.ForwardAgent {
		ag, _ := r.pool.agent.get(r.pool.cfg.Agent)
		if ag == nil {
			sess.Close()
			release()
			return nil, fmt.Errorf("sshx: %s: agent forwarding asked for, but there is no SSH agent (SSH_AUTH_SOCK is unset)", r.ep.Name)
		}
		// Open the gate before asking: the host may reach for the
		// agent as soon as the command starts.
		conn.forwarding.Add(1)
		closeAgent = sync.OnceFunc(func() { conn.forwarding.Add(-1) })
		if err := agent.RequestAgentForwarding(sess); err != nil {
			sess.Close()
			closeAgent()
			release()
			return nil, fmt.Errorf("sshx: %s: agent forwarding refused by the host: %w", r.ep.Name, err)
		}
	}
	sess.Stdin, sess.Stdout, sess.Stderr = c.Stdin, smallCopy{stdout}, smallCopy{stderr}
	// A command without input gets an input that stays open until it
	// ends: the wrapper takes its end for the client's (see wrap). The
	// session's own pipe, written by nobody, needs no copying goroutine.
	watch := c.Stdin == nil
	closeInput := func() {}
	if watch {
		in, err := sess.StdinPipe()
		if err != nil {
			sess.Close()
			closeAgent()
			release()
			return nil, fmt.Errorf("sshx: %s: starting command: %w", r.ep.Name, err)
		}
		closeInput = func() { in.Close() }
	}
	if err := sess.Start(wrap(line, watch)); err != nil {
		closeInput()
		sess.Close()
		closeAgent()
		release()
		return nil, fmt.Errorf("sshx: %s: starting command: %w", r.ep.Name, err)
	}
	p := &remoteProc{host: r.ep.Name, sess: sess, conn: conn, closeAgent: closeAgent, done: make(chan error, 1)}
	go func() {
		err := sess.Wait()
		closeInput()
		p.done <- err
		closeAgent()
		release()
	}()
	return p, nil
}

// session opens a session. A refusal (sshd's MaxSessions counts a session
// until it has seen the close of the previous one) is retried on the same
// connection; a connection found dead is dialled again, once.
func (r *Remote) session(ctx context.Context) (*ssh.Session, *sshConn, error) {
	redialled := false
	for backoff := 5 * time.Millisecond; ; {
		c, err := r.connection(ctx)
		if err != nil {
			return nil, nil, err
		}
		sess, err := c.NewSession()
		if err == nil {
			r.st.sessions.Add(1)
			return sess, c, nil
		}
		var refused *ssh.OpenChannelError
		if errors.As(err, &refused) {
			select {
			case <-time.After(backoff):
				backoff = min(2*backoff, 200*time.Millisecond)
				continue
			case <-ctx.Done():
				return nil, nil, fmt.Errorf("sshx: %s: opening a session (%v): %w", r.ep.Name, err, ctx.Err())
			}
		}
		r.mu.Lock()
		if r.client == c {
			r.client = nil
		}
		r.mu.Unlock()
		c.Close()
		if redialled || ctx.Err() != nil {
			return nil, nil, fmt.Errorf("sshx: %s: opening a session: %w", r.ep.Name, err)
		}
		redialled = true
	}
}

type remoteProc struct {
	host string
	sess *ssh.Session
	conn *sshConn
	// closeAgent ends the command's hold on the agent (idempotent).
	closeAgent func()
	done       chan error
}

// cancelGrace is how long a cancelled command has to exit after TERM
// before its session is abandoned.
const cancelGrace = 2 * time.Second

func (p *remoteProc) wait(ctx context.Context) (int, string, error) {
	var err error
	select {
	case err = <-p.done:
	case <-ctx.Done():
		p.sess.Signal(ssh.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(cancelGrace):
		}
		// Closing the session only asks the host to close it: a hung or
		// hostile host may never answer, and must not keep the agent
		// until the connection dies. The session's slot is freed when
		// it really ends.
		p.closeAgent()
		p.sess.Close()
		return 0, "", fmt.Errorf("sshx: %s: command stopped: %w", p.host, ctx.Err())
	}
	if err == nil {
		return 0, "", nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus(), ee.Signal(), nil
	}
	var em *ssh.ExitMissingError
	if errors.As(err, &em) || errors.Is(err, io.EOF) {
		if ctx.Err() != nil {
			return 0, "", fmt.Errorf("sshx: %s: command stopped: %w", p.host, ctx.Err())
		}
		why := ""
		if w := p.conn.lost.Load(); w != nil {
			why = " (" + *w + ")"
		}
		return 0, "", fmt.Errorf("sshx: %s: connection lost while the command ran%s; its outcome on the host is unknown", p.host, why)
	}
	return 0, "", fmt.Errorf("sshx: %s: %w", p.host, err)
}
