package sshx_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/testenv"
	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// newHost starts an sshtest server and returns a pool with its client files
// and the Remote for it. Both are closed when the test ends.
func newHost(t *testing.T, tweak func(*sshx.Config)) (*sshtest.Server, *sshx.Pool, *sshx.Remote, sshtest.ClientFiles) {
	t.Helper()
	srv := sshtest.NewServer()
	t.Cleanup(srv.Close)
	files, err := srv.WriteClientFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := sshx.Config{
		ConfigFile: files.ConfigFile,
		Agent:      agent.NewKeyring().(agent.ExtendedAgent),
		// Long enough for a handshake with -race on a starved machine
		// (2 seconds was not); the tests of the timeout set their own.
		ConnectTimeout: 30 * time.Second,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	pool, err := sshx.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	r, err := pool.Host(files.Alias)
	if err != nil {
		t.Fatal(err)
	}
	return srv, pool, r, files
}

func TestRemoteRunsCommandsOnOneConnection(t *testing.T) {
	t.Parallel()
	srv, _, r, _ := newHost(t, nil)
	ctx := context.Background()
	dir := t.TempDir()
	cmd := r.Command(ctx, "sh", "-c", `printf '%s|%s|%s' "$(pwd)" "$GREETING" "$(cat)"`)
	cmd.Dir = dir
	cmd.Env = []string{"GREETING=it's $(not run) `nor this`"}
	cmd.Stdin = strings.NewReader("from stdin")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if want := real + "|it's $(not run) `nor this`|from stdin"; string(out) != want {
		t.Errorf("output = %q, want %q", out, want)
	}

	// 100 commands, 20 at a time: one connection, 101 sessions.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	sem := make(chan struct{}, 20)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out, err := r.Command(ctx, "echo", fmt.Sprint(i)).Output()
			if err == nil && strings.TrimSpace(string(out)) != fmt.Sprint(i) {
				err = fmt.Errorf("command %d printed %q", i, out)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := r.Stats()
	if st.Connections != 1 || st.Sessions != 101 {
		t.Errorf("Stats = %+v, want 1 connection and 101 sessions", st)
	}
	if st.BytesSent == 0 || st.BytesReceived == 0 {
		t.Errorf("Stats = %+v, want bytes counted", st)
	}
	if s := srv.Stats(); s.Connections != 1 {
		t.Errorf("server saw %d connections, want 1", s.Connections)
	}
}

func TestRemoteConcurrentFirstDialOpensOneConnection(t *testing.T) {
	t.Parallel()
	const slots = 8
	var dials atomic.Int32
	srv, _, r, _ := newHost(t, func(c *sshx.Config) {
		c.MaxSessions = slots
		d := &net.Dialer{}
		c.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			// A slow network: the dial lasts until a command holds every
			// session slot and waits for a connection, however slowly
			// the machine gets them there. The other commands wait for
			// a slot.
			for deadline := time.Now().Add(patience); waitingForConnection(t.Name()) < slots; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Errorf("fewer than %d commands waited for the connection within %s", slots, patience)
					break
				}
			}
			return d.DialContext(ctx, network, addr)
		}
	})
	ctx := context.Background()
	begin := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-begin
			out, err := r.Command(ctx, "echo", fmt.Sprint(i)).Output()
			if err == nil && strings.TrimSpace(string(out)) != fmt.Sprint(i) {
				err = fmt.Errorf("command %d printed %q", i, out)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	close(begin)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := r.Stats(); st.Connections != 1 || st.Sessions != 30 {
		t.Errorf("Stats = %+v, want 1 connection and 30 sessions", st)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("dialled %d times, want once", n)
	}
	if st := srv.Stats(); st.Accepted != 1 || st.Connections != 1 {
		t.Errorf("server saw %d TCP and %d SSH connections, want 1 and 1", st.Accepted, st.Connections)
	}
}

// waitingForConnection counts the goroutines started by the test named
// test that are in Remote.connection: dialling, or waiting for the dial.
func waitingForConnection(test string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	created := "created by github.com/magefab/magefab/sshx_test." + test + " in goroutine"
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "sshx.(*Remote).connection(") && strings.Contains(g, created) {
			count++
		}
	}
	return count
}

func TestRemoteExitError(t *testing.T) {
	t.Parallel()
	_, _, r, files := newHost(t, nil)
	err := r.Script(context.Background(), "echo first >&2; echo 'the reason' >&2; exit 42").Run()
	var ee *sshx.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *sshx.ExitError", err)
	}
	if ee.ExitStatus() != 42 || ee.Host != files.Alias || !bytes.Contains(ee.Stderr, []byte("the reason")) {
		t.Errorf("ExitError = %+v", ee)
	}
	if msg := err.Error(); !strings.Contains(msg, "status 42") || !strings.Contains(msg, "the reason") || !strings.Contains(msg, files.Alias) {
		t.Errorf("message %q lacks host, status or stderr", msg)
	}
}

func TestRemoteCancelStopsCommand(t *testing.T) {
	t.Parallel()
	_, _, r, _ := newHost(t, nil)
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := r.Script(ctx, longSleep+" & echo $! > "+sshx.Quote(pidFile)+"; wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := waitForPid(t, pidFile)
	cancel()
	// The command would run for 300s: a Wait that returns within
	// patience did not wait for it. (It returns as soon as the TERM has
	// stopped the command, at most cancelGrace later.)
	err := returnsWithin(t, patience, "Wait after cancel", cmd.Wait)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want context.Canceled", err)
	}
	waitGone(t, pid)
	// The connection survives a cancelled command.
	if err := r.Command(context.Background(), "true").Run(); err != nil {
		t.Errorf("command after cancel: %v", err)
	}
	if c := r.Stats().Connections; c != 1 {
		t.Errorf("Connections = %d, want 1", c)
	}
}

func TestRemoteHungHandshakeFailsFast(t *testing.T) {
	t.Parallel()
	// The host accepts TCP and then never says a word: without the
	// ConnectTimeout on the handshake the command would wait forever.
	// It fails after 2s; patience only catches a hang. (A shorter
	// timeout could run out before a loaded machine has even connected,
	// with another error.)
	srv, _, r, _ := newHost(t, func(c *sshx.Config) { c.ConnectTimeout = 2 * time.Second })
	srv.SetFault(sshtest.FaultHangHandshake)
	err := returnsWithin(t, patience, "a command on a host hung in the handshake", r.Command(context.Background(), "true").Run)
	if err == nil || !strings.Contains(err.Error(), "no SSH handshake within 2s") {
		t.Errorf("err = %v, want a handshake timeout", err)
	}
}

func TestRemoteHungCommandHonoursTimeout(t *testing.T) {
	t.Parallel()
	srv, _, r, _ := newHost(t, nil)
	if err := r.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.SetFault(sshtest.FaultHangCommands)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	// The host never runs the command nor answers its TERM: only the
	// timeout ends the wait, after 200ms and the cancelGrace of 2s.
	// patience only catches a command that waits for the host forever.
	err := returnsWithin(t, patience, "a hung command with a 200ms timeout", r.Command(ctx, "true").Run)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

func TestRemoteDroppedConnection(t *testing.T) {
	t.Parallel()
	srv, _, r, _ := newHost(t, nil)
	ctx := context.Background()
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := r.Script(ctx, "echo $$ > "+sshx.Quote(pidFile)+"; exec sleep 30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The command runs on the host: drop the connection under it. (Run
	// in a session of its own, the process outlives the connection and
	// ends by itself; it is not killed by its pid at the end, since by
	// then that pid may be another process's.)
	waitForPid(t, pidFile)
	srv.SetFault(sshtest.FaultDropConnections)
	err := cmd.Wait()
	if err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Errorf("Wait = %v, want connection lost", err)
	}
	srv.SetFault(sshtest.FaultNone)
	// The next command dials again.
	deadline := time.Now().Add(patience)
	for {
		err = r.Command(ctx, "true").Run()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("command after reconnect: %v", err)
	}
	if c := r.Stats().Connections; c != 2 {
		t.Errorf("Connections = %d, want 2", c)
	}
}

func TestRemoteKeepAliveNoticesFrozenConnection(t *testing.T) {
	t.Parallel()
	var log syncLog
	// Three keepalives without an answer within their interval close
	// the connection: the interval must be long enough that a loaded
	// machine still answers within it.
	const interval = 500 * time.Millisecond
	srv, _, r, _ := newHost(t, func(c *sshx.Config) {
		c.KeepAlive = interval
		c.Log = &log
	})
	ctx := context.Background()
	cmd := r.Command(ctx, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A few keepalives go by: the server refuses them, as sshd does, and
	// a refusal is an answer, so the connection stays. The command says
	// nothing, so what the host sends now is the answers to keepalives;
	// a client that took refusals for misses would have closed the
	// connection after the third.
	answers, received := 0, r.Stats().BytesReceived
	waitUntil(t, "four answered keepalives", func() bool {
		if n := r.Stats().BytesReceived; n != received {
			answers, received = answers+1, n
		}
		return answers >= 4
	})
	if c := r.Stats().Connections; c != 1 {
		t.Fatalf("Connections = %d before the freeze, want 1", c)
	}
	srv.SetFault(sshtest.FaultFreezeConnections)
	// The frozen host never answers: without keepalives Wait would wait
	// forever. They notice it after about 4 intervals; patience only
	// catches a hang (or the 15s default interval, 45s and more).
	err := returnsWithin(t, patience, "Wait on a frozen connection", cmd.Wait)
	if err == nil || !strings.Contains(err.Error(), "connection lost") || !strings.Contains(err.Error(), "no answer to keepalives") {
		t.Errorf("Wait = %v, want the connection lost to keepalives", err)
	}
	// The frozen connection is still open on the server; a new one is
	// served.
	if err := r.Command(ctx, "true").Run(); err != nil {
		t.Fatalf("command after the freeze: %v", err)
	}
	if c := r.Stats().Connections; c != 2 {
		t.Errorf("Connections = %d, want 2: the next command dials again", c)
	}
	if !strings.Contains(log.String(), "no answer to keepalives") {
		t.Errorf("log %q does not say why the connection was closed", log.String())
	}
}

// syncLog is a log buffer safe for the pool's goroutines.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRemoteHostKeyChanged(t *testing.T) {
	t.Parallel()
	srv, _, _, files := newHost(t, nil)
	// Record a different key for the server's address.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherSigner, _ := ssh.NewSignerFromKey(other)
	line := strings.Replace(srv.KnownHostsLine(), strings.Fields(srv.KnownHostsLine())[2],
		strings.Fields(string(ssh.MarshalAuthorizedKey(otherSigner.PublicKey())))[1], 1)
	os.WriteFile(files.KnownHostsFile, []byte(line+"\n"), 0o600)

	pool, _ := sshx.NewPool(sshx.Config{ConfigFile: files.ConfigFile, Agent: agent.NewKeyring().(agent.ExtendedAgent)})
	defer pool.Close()
	r, _ := pool.Host(files.Alias)
	err := r.Command(context.Background(), "true").Run()
	var hk *sshx.HostKeyError
	if !errors.As(err, &hk) || !hk.Changed {
		t.Fatalf("err = %v, want a changed-key *HostKeyError", err)
	}
	fp := ssh.FingerprintSHA256(srv.HostKey.PublicKey())
	for _, want := range []string{files.Alias, "ssh-ed25519", fp, "CHANGED", "ssh-keygen -R"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
	if n := len(srv.Commands()); n != 0 {
		t.Errorf("%d commands reached a host with a changed key", n)
	}
}

func TestRemoteUnknownHostStrictAndAcceptNew(t *testing.T) {
	t.Parallel()
	srv, _, _, files := newHost(t, nil)
	os.Remove(files.KnownHostsFile)
	mk := func(strict string) *sshx.Remote {
		pool, err := sshx.NewPool(sshx.Config{ConfigFile: files.ConfigFile, StrictHostKeyChecking: strict, Agent: agent.NewKeyring().(agent.ExtendedAgent)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Close() })
		r, _ := pool.Host(files.Alias)
		return r
	}
	err := mk(sshx.StrictYes).Command(context.Background(), "true").Run()
	var hk *sshx.HostKeyError
	if !errors.As(err, &hk) || hk.Changed || !strings.Contains(err.Error(), "unknown host") {
		t.Fatalf("strict: err = %v, want unknown host", err)
	}
	if err := mk(sshx.StrictAcceptNew).Command(context.Background(), "true").Run(); err != nil {
		t.Fatalf("accept-new: %v", err)
	}
	b, _ := os.ReadFile(files.KnownHostsFile)
	if !bytes.Contains(b, []byte(strings.Fields(srv.KnownHostsLine())[2])) {
		t.Errorf("accept-new did not record the key: %q", b)
	}
	// Now recorded, strict checking accepts it.
	if err := mk(sshx.StrictYes).Command(context.Background(), "true").Run(); err != nil {
		t.Errorf("strict after accept-new: %v", err)
	}
}

func TestRemoteAcceptNewStillRefusesChangedKey(t *testing.T) {
	t.Parallel()
	srv1 := sshtest.NewServer()
	defer srv1.Close()
	files, _ := srv1.WriteClientFiles(t.TempDir())
	os.Remove(files.KnownHostsFile)
	cfg := sshx.Config{ConfigFile: files.ConfigFile, StrictHostKeyChecking: sshx.StrictAcceptNew, Agent: agent.NewKeyring().(agent.ExtendedAgent)}
	p1, _ := sshx.NewPool(cfg)
	r1, _ := p1.Host(files.Alias)
	if err := r1.Command(context.Background(), "true").Run(); err != nil {
		t.Fatal(err)
	}
	p1.Close()
	// A second server with another host key; known_hosts now records the
	// first server's key under the second's address, as if the host at
	// that address had changed its key.
	srv2 := sshtest.NewUnstartedServer()
	srv2.ClientKey, srv2.ClientPrivateKey = srv1.ClientKey, srv1.ClientPrivateKey
	srv2.Start()
	defer srv2.Close()
	kh, _ := os.ReadFile(files.KnownHostsFile)
	_, port1, _ := net.SplitHostPort(srv1.Addr)
	_, port2, _ := net.SplitHostPort(srv2.Addr)
	kh = bytes.ReplaceAll(kh, []byte("]:"+port1), []byte("]:"+port2))
	os.WriteFile(files.KnownHostsFile, kh, 0o600)
	cfgText, _ := os.ReadFile(files.ConfigFile)
	os.WriteFile(files.ConfigFile, bytes.ReplaceAll(cfgText, []byte(port1), []byte(port2)), 0o600)
	p2, _ := sshx.NewPool(cfg)
	defer p2.Close()
	r2, _ := p2.Host(files.Alias)
	err := r2.Command(context.Background(), "true").Run()
	var hk *sshx.HostKeyError
	if !errors.As(err, &hk) || !hk.Changed {
		t.Fatalf("err = %v, want a changed key refused under accept-new", err)
	}
}

func TestRemoteAuthErrors(t *testing.T) {
	t.Parallel()
	srv, _, _, files := newHost(t, nil)
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	// An unauthorized key, a passphrase-protected key, a world-readable key.
	write := func(name string, blk *pem.Block, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(blk), mode)
		os.Chmod(p, mode)
		return p
	}
	plain, _ := ssh.MarshalPrivateKey(priv, "")
	enc, _ := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	stranger := write("stranger", plain, 0o600)
	locked := write("locked", enc, 0o600)
	loose := write("loose", plain, 0o644)

	pool, _ := sshx.NewPool(sshx.Config{
		ConfigFile: "none", User: "deploy", KnownHostsFile: files.KnownHostsFile,
		IdentityFiles: []string{stranger, locked, loose},
		Agent:         agent.NewKeyring().(agent.ExtendedAgent),
	})
	defer pool.Close()
	r, _ := pool.Host(srv.Addr)
	err := r.Command(context.Background(), "true").Run()
	var ae *sshx.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *sshx.AuthError", err)
	}
	for _, want := range []string{srv.Addr, `"deploy"`, stranger, locked + ": needs a passphrase", "ssh-add", loose + ": permissions 0644 are too open"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q lacks %q", err, want)
		}
	}
}

func TestRemoteAgentForwarding(t *testing.T) {
	t.Parallel()
	fleettest.RequireTool(t, "ssh-add", "openssh-client")
	keyring := agent.NewKeyring()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "forwarded-key"}); err != nil {
		t.Fatal(err)
	}
	srv, _, r, files := newHost(t, func(c *sshx.Config) { c.Agent = keyring.(agent.ExtendedAgent) })
	_ = files
	// Without ForwardAgent, the command sees no agent.
	out, _ := r.Script(context.Background(), `echo "sock=${SSH_AUTH_SOCK:-none}"`).Output()
	if strings.TrimSpace(string(out)) != "sock=none" {
		t.Errorf("agent visible without ForwardAgent: %q", out)
	}
	cmd := r.Command(context.Background(), "ssh-add", "-l")
	cmd.ForwardAgent = true
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh-add -l through the forwarded agent: %v", err)
	}
	if !strings.Contains(string(out), "forwarded-key") {
		t.Errorf("ssh-add -l = %q, want the forwarded key", out)
	}
	if s := srv.Stats(); s.AgentForwards != 1 {
		t.Errorf("server saw %d agent forwards, want 1", s.AgentForwards)
	}
}

func TestRemoteAgentChannelOnlyWhileForwarding(t *testing.T) {
	t.Parallel()
	keyring := agent.NewKeyring()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "precious-key"})
	// A host that reaches for the client's agent from every command,
	// asked or not, and prints what it could see.
	srv := sshtest.NewUnstartedServer()
	srv.Handler = func(e *sshtest.Exec) {
		ch, err := e.OpenAgentChannel()
		if err != nil {
			fmt.Fprintf(e.Stdout, "refused: %v", err)
			return
		}
		defer ch.Close()
		keys, err := agent.NewClient(ch).List()
		if err != nil {
			fmt.Fprintf(e.Stdout, "list: %v", err)
			return
		}
		for _, k := range keys {
			fmt.Fprintf(e.Stdout, "key: %s", k.Comment)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	files, _ := srv.WriteClientFiles(t.TempDir())
	pool, _ := sshx.NewPool(sshx.Config{ConfigFile: files.ConfigFile, Agent: keyring.(agent.ExtendedAgent)})
	t.Cleanup(func() { pool.Close() })
	r, _ := pool.Host(files.Alias)
	run := func(forward bool) string {
		cmd := r.Command(context.Background(), "true")
		cmd.ForwardAgent = forward
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	if out := run(false); !strings.HasPrefix(out, "refused:") || !strings.Contains(out, "not requested") {
		t.Errorf("a plain command reached the agent: %q", out)
	}
	if out := run(true); out != "key: precious-key" {
		t.Errorf("a forwarding command saw %q, want the key", out)
	}
	// Once the forwarding command is over, the agent is closed again.
	if out := run(false); !strings.HasPrefix(out, "refused:") {
		t.Errorf("a plain command after a forwarding one reached the agent: %q", out)
	}
	if c := r.Stats().Connections; c != 1 {
		t.Errorf("Connections = %d, want 1", c)
	}
}

// A host may open an agent channel the moment the connection is up. The
// client must answer it by its own rule (no command asked for forwarding:
// prohibited), never as a channel type it does not know, which is what
// happens when the agent handler is not yet in place.
func TestRemoteAgentChannelRightAfterConnect(t *testing.T) {
	t.Parallel()
	const conns = 20
	answers := make(chan error, conns)
	srv := sshtest.NewUnstartedServer()
	srv.OnConnect = func(conn ssh.Conn) {
		ch, reqs, err := conn.OpenChannel("auth-agent@openssh.com", nil)
		if err == nil {
			go ssh.DiscardRequests(reqs)
			ch.Close()
		}
		answers <- err
	}
	srv.Start()
	t.Cleanup(srv.Close)
	files, _ := srv.WriteClientFiles(t.TempDir())
	for i := 0; i < conns; i++ {
		pool, err := sshx.NewPool(sshx.Config{ConfigFile: files.ConfigFile, Agent: agent.NewKeyring().(agent.ExtendedAgent)})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := pool.Host(files.Alias)
		if err := r.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		var oce *ssh.OpenChannelError
		select {
		case err := <-answers:
			if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
				t.Errorf("connection %d: the host's agent channel got %v, want it prohibited", i, err)
			}
		case <-time.After(patience):
			t.Fatalf("connection %d: no answer to the host's agent channel", i)
		}
		pool.Close()
	}
}

// A cancelled forwarding command closes the agent again when the client
// gives up on it, even if the host never closes the session: a hung or
// hostile host must not keep the keys until the connection dies.
func TestRemoteCancelledForwardingClosesAgentOnHungHost(t *testing.T) {
	t.Parallel()
	keyring := agent.NewKeyring()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyring.Add(agent.AddedKey{PrivateKey: priv, Comment: "precious-key"})
	started, reach := make(chan struct{}), make(chan struct{})
	answer := make(chan error, 1)
	srv := sshtest.NewUnstartedServer()
	srv.Handler = func(e *sshtest.Exec) {
		close(started)
		select {
		case <-reach:
		case <-e.Context().Done():
			return
		}
		ch, err := e.OpenAgentChannel()
		if err == nil {
			ch.Close()
		}
		answer <- err
		<-e.Context().Done()
	}
	srv.Start()
	t.Cleanup(srv.Close)
	files, _ := srv.WriteClientFiles(t.TempDir())
	var log syncLog
	pool, _ := sshx.NewPool(sshx.Config{ConfigFile: files.ConfigFile, Agent: keyring.(agent.ExtendedAgent), Log: &log})
	t.Cleanup(func() { pool.Close() })
	r, _ := pool.Host(files.Alias)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := r.Command(ctx, "true")
	cmd.ForwardAgent = true
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(patience):
		t.Fatal("the command did not start")
	}
	// From now on the host reads nothing the client sends: neither the
	// TERM nor the close of the session.
	srv.SetFault(sshtest.FaultDeafConnections)
	cancel()
	if err := cmd.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	// The session is still open on the host, which now reaches for the
	// agent. Its answer is read once the host listens again; let the
	// client decide first.
	close(reach)
	deadline := time.Now().Add(patience)
	for !strings.Contains(log.String(), "refused the host's request for the agent") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	srv.SetFault(sshtest.FaultNone)
	var oce *ssh.OpenChannelError
	select {
	case err := <-answer:
		if !errors.As(err, &oce) || oce.Reason != ssh.Prohibited {
			t.Errorf("the host's agent channel after the cancel got %v, want it prohibited", err)
		}
	case <-time.After(patience):
		t.Fatal("no answer to the host's agent channel")
	}
}

func TestRemoteForwardAgentWithoutAgent(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	srv := sshtest.NewServer()
	defer srv.Close()
	files, _ := srv.WriteClientFiles(t.TempDir())
	pool, _ := sshx.NewPool(sshx.Config{ConfigFile: files.ConfigFile})
	defer pool.Close()
	r, _ := pool.Host(files.Alias)
	cmd := r.Command(context.Background(), "true")
	cmd.ForwardAgent = true
	if err := cmd.Run(); err == nil || !strings.Contains(err.Error(), "no SSH agent") {
		t.Errorf("err = %v, want 'no SSH agent'", err)
	}
}

func TestRemoteSudoPasswordIsAClearError(t *testing.T) {
	t.Parallel()
	// A sudo that, like the real one under -n, refuses without a password.
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "sudo"), []byte("#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n"), 0o755)
	srv := sshtest.NewUnstartedServer()
	srv.Env = []string{"PATH=" + bin + ":/usr/bin:/bin"}
	srv.Start()
	defer srv.Close()
	files, _ := srv.WriteClientFiles(t.TempDir())
	pool, _ := sshx.NewPool(sshx.Config{ConfigFile: files.ConfigFile, Agent: agent.NewKeyring().(agent.ExtendedAgent)})
	defer pool.Close()
	r, _ := pool.Host(files.Alias)
	cmd := r.Command(context.Background(), "/etc/init.d/five", "restart")
	cmd.Sudo = true
	err := cmd.Run()
	if !errors.Is(err, sshx.ErrSudoPassword) {
		t.Fatalf("err = %v, want ErrSudoPassword", err)
	}
	if !strings.Contains(err.Error(), "NOPASSWD") {
		t.Errorf("message %q does not say how to fix it", err)
	}
	if cmds := srv.Commands(); len(cmds) != 1 || !strings.Contains(cmds[0], "sudo -n") {
		t.Errorf("commands = %q, want one run through sudo -n", cmds)
	}
}

func TestRemoteSudoPasswordInAnyLanguage(t *testing.T) {
	t.Parallel()
	// A sudo that speaks the host's language, as the real one does, and
	// one that lets the command run.
	refuse := t.TempDir()
	os.WriteFile(filepath.Join(refuse, "sudo"), []byte("#!/bin/sh\n"+
		"if [ \"$LC_ALL\" = C ]; then echo 'sudo: a password is required' >&2\n"+
		"else echo 'sudo: Ein Passwort ist notwendig' >&2; fi\nexit 1\n"), 0o755)
	allow := t.TempDir()
	os.WriteFile(filepath.Join(allow, "sudo"), []byte("#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\n"), 0o755)
	for _, c := range []struct {
		bin, lcAll string
	}{{refuse, "de_DE.UTF-8"}, {allow, "de_DE.UTF-8"}, {allow, ""}} {
		srv := sshtest.NewUnstartedServer()
		srv.Env = []string{"PATH=" + c.bin + ":/usr/bin:/bin", "LANGUAGE=de"}
		if c.lcAll != "" {
			srv.Env = append(srv.Env, "LC_ALL="+c.lcAll)
		}
		srv.Start()
		defer srv.Close()
		files, _ := srv.WriteClientFiles(t.TempDir())
		pool, _ := sshx.NewPool(sshx.Config{ConfigFile: files.ConfigFile, Agent: agent.NewKeyring().(agent.ExtendedAgent)})
		defer pool.Close()
		r, _ := pool.Host(files.Alias)
		cmd := r.Script(context.Background(), `echo "${LC_ALL-unset}|${LANGUAGE-unset}|$#"`)
		cmd.Sudo = true
		out, err := cmd.Output()
		if c.bin == refuse {
			if !errors.Is(err, sshx.ErrSudoPassword) {
				t.Errorf("a German host: err = %v, want ErrSudoPassword", err)
			}
			continue
		}
		want := c.lcAll
		if want == "" {
			want = "unset"
		}
		if err != nil || string(out) != want+"|de|0\n" {
			t.Errorf("under sudo the command saw %q, %v; want the caller's locale %q", out, err, want+"|de|0\n")
		}
	}
}

func TestRemoteUpload(t *testing.T) {
	t.Parallel()
	_, _, r, _ := newHost(t, nil)
	dst := filepath.Join(t.TempDir(), "celeryd five")
	data := bytes.Repeat([]byte("0123456789\n"), 100000)
	if err := r.Upload(context.Background(), sshx.File{Path: dst, Mode: 0o755}, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	st, _ := os.Stat(dst)
	if !bytes.Equal(got, data) || st.Mode().Perm() != 0o755 {
		t.Errorf("uploaded %d bytes mode %o, want %d bytes mode 755", len(got), st.Mode().Perm(), len(data))
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		t.Errorf("%d entries beside the upload, want none (no temporaries left)", len(entries)-1)
	}
}

func TestEachOverRemotes(t *testing.T) {
	t.Parallel()
	var hosts []sshx.Host
	for range 3 {
		_, _, r, _ := newHost(t, nil)
		hosts = append(hosts, r)
	}
	var buf bytes.Buffer
	console := sshx.NewConsole(&buf)
	res, err := sshx.Each(context.Background(), hosts, 2, func(ctx context.Context, h sshx.Host) (string, error) {
		cmd := h.Script(ctx, "echo hello; echo world")
		w := console.Writer(h.Name())
		defer w.Close()
		cmd.Stdout = w
		return h.Name(), cmd.Run()
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || strings.Count(buf.String(), "| hello\n") != 3 {
		t.Errorf("results %v, output %q", res, buf.String())
	}
}

// A command given input of its own keeps it: its end is the data's end.
func TestRemoteCommandWithInputReadsItToTheEnd(t *testing.T) {
	t.Parallel()
	_, _, r, _ := newHost(t, nil)
	cmd := r.Script(context.Background(), "cat; echo done")
	cmd.Stdin = strings.NewReader("data\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "data\ndone\n" {
		t.Errorf("Output = %q, %v; want the input and done", out, err)
	}
}

// After Quiet the connection sends no keepalive until the next command,
// which lets them go again.
func TestPoolQuietStopsKeepalivesUntilTheNextCommand(t *testing.T) {
	t.Parallel()
	// Long enough that a loaded machine answers a keepalive within three
	// intervals (see TestRemoteKeepAliveNoticesFrozenConnection).
	const interval = 500 * time.Millisecond
	srv, pool, r, _ := newHost(t, func(c *sshx.Config) { c.KeepAlive = interval })
	ctx := context.Background()
	if err := r.Command(ctx, "true").Run(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "two keepalives", func() bool { return srv.Stats().GlobalRequests >= 2 })
	if err := pool.Quiet(ctx); err != nil {
		t.Fatalf("Quiet: %v", err)
	}
	quiet := srv.Stats().GlobalRequests
	// Keepalives would come every interval: 6 intervals without one.
	time.Sleep(6 * interval)
	if n := srv.Stats().GlobalRequests; n != quiet {
		t.Fatalf("%d keepalives arrived after Quiet, want none until the next command", n-quiet)
	}
	if err := r.Command(ctx, "true").Run(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a keepalive after the next command", func() bool { return srv.Stats().GlobalRequests > quiet })
}

// TestServerAliveSettingsOfTheClientConfig: a host's ServerAliveInterval
// and ServerAliveCountMax in the client config file set its keepalives,
// over the Config's (which here sends none): they arrive every second,
// and two missed in a row close a frozen connection.
func TestServerAliveSettingsOfTheClientConfig(t *testing.T) {
	t.Parallel()
	srv, _, r, _ := newHost(t, func(c *sshx.Config) {
		c.KeepAlive = -1
		testenv.AppendFile(t, c.ConfigFile, "Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
	})
	ctx := context.Background()
	cmd := r.Command(ctx, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "two keepalives", func() bool { return srv.Stats().GlobalRequests >= 2 })
	srv.SetFault(sshtest.FaultFreezeConnections)
	err := returnsWithin(t, patience, "Wait on a frozen connection", cmd.Wait)
	if err == nil || !strings.Contains(err.Error(), "no answer to keepalives for 2s") {
		t.Errorf("Wait = %v, want the connection lost after two keepalives of 1s", err)
	}
}
