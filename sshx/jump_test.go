package sshx_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/testenv"
	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// jumpSetup is a bastion and a target behind it, and a client config in
// which host "target" (any user) is reached only through "bastion".
type jumpSetup struct {
	bastion, target *sshtest.Server
	// Where the client config sends them: the servers' addresses, or
	// another after moveTo.
	bastionAddr, targetAddr string
	configFile              string
	knownHosts              string
	dials                   atomic.Int64 // TCP connections the pool opened
	dialed                  sync.Map     // address -> struct{}
}

func newJumpSetup(t *testing.T, forwarding bool) *jumpSetup {
	return newJumpSetupWith(t, forwarding, nil)
}

// newJumpSetupWith is newJumpSetup with configure, if not nil, called on
// both servers before they start.
func newJumpSetupWith(t *testing.T, forwarding bool, configure func(bastion, target *sshtest.Server)) *jumpSetup {
	t.Helper()
	js := &jumpSetup{bastion: sshtest.NewUnstartedServer(), target: sshtest.NewUnstartedServer()}
	js.bastion.TCPForwarding = forwarding
	if configure != nil {
		configure(js.bastion, js.target)
	}
	js.bastion.Start()
	t.Cleanup(js.bastion.Close)
	js.target.ClientKey, js.target.ClientPrivateKey = js.bastion.ClientKey, js.bastion.ClientPrivateKey
	js.target.Start()
	t.Cleanup(js.target.Close)
	dir := t.TempDir()
	files, err := js.bastion.WriteClientFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	js.knownHosts = files.KnownHostsFile
	if err := os.WriteFile(js.knownHosts, []byte(js.bastion.KnownHostsLine()+"\n"+js.target.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bh, bp, _ := net.SplitHostPort(js.bastion.Addr)
	th, tp, _ := net.SplitHostPort(js.target.Addr)
	common := fmt.Sprintf("  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n", files.IdentityFile, js.knownHosts)
	cfg := fmt.Sprintf("Host bastion\n  HostName %s\n  Port %s\n  User jumper\n%s\nHost target\n  HostName %s\n  Port %s\n  ProxyJump bastion\n%s", bh, bp, common, th, tp, common)
	js.configFile = filepath.Join(dir, "ssh_config")
	if err := os.WriteFile(js.configFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	js.bastionAddr, js.targetAddr = js.bastion.Addr, js.target.Addr
	return js
}

// moveTo closes the bastion (or the target) and points the client config
// at addr instead, for the host name given.
func (js *jumpSetup) moveTo(t *testing.T, host, addr string) {
	t.Helper()
	srv, to := js.bastion, &js.bastionAddr
	if host == "target" {
		srv, to = js.target, &js.targetAddr
	}
	srv.Close()
	_, oldPort, _ := net.SplitHostPort(*to)
	_, newPort, _ := net.SplitHostPort(addr)
	b, err := os.ReadFile(js.configFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "  Port "+oldPort+"\n", "  Port "+newPort+"\n", 1)
	if err := os.WriteFile(js.configFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	*to = addr
}

func (js *jumpSetup) pool(t *testing.T) *sshx.Pool {
	t.Helper()
	d := &net.Dialer{}
	p, err := sshx.NewPool(sshx.Config{
		ConfigFile:     js.configFile,
		Agent:          agent.NewKeyring().(agent.ExtendedAgent),
		ConnectTimeout: 30 * time.Second,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			js.dials.Add(1)
			js.dialed.Store(addr, struct{}{})
			return d.DialContext(ctx, network, addr)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// hosts returns n hosts behind the bastion: the target, as n users.
func (js *jumpSetup) hosts(t *testing.T, p *sshx.Pool, n int) []sshx.Host {
	t.Helper()
	specs := make([]string, n)
	for i := range specs {
		specs[i] = fmt.Sprintf("u%d@target", i)
	}
	hosts, err := p.Hosts(specs)
	if err != nil {
		t.Fatal(err)
	}
	return hosts
}

// runAll runs true on every host at once and returns each host's error.
func runAll(hosts []sshx.Host) []error {
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { errs[i] = h.Command(context.Background(), "true").Run() })
	}
	wg.Wait()
	return errs
}

// 128 hosts behind one bastion, all connecting at once: one TCP
// connection, to the bastion, and one SSH connection to it, carrying a
// channel per host.
func TestJumpHostOneConnectionFor128Hosts(t *testing.T) {
	t.Parallel()
	js := newJumpSetup(t, true)
	p := js.pool(t)
	hosts := js.hosts(t, p, 128)
	for i, err := range runAll(hosts) {
		if err != nil {
			t.Errorf("%s: %v", hosts[i].Name(), err)
		}
	}
	if n := js.dials.Load(); n != 1 {
		t.Errorf("the pool opened %d TCP connections, want 1", n)
	}
	if _, ok := js.dialed.Load(js.bastion.Addr); !ok {
		t.Errorf("the pool never dialled the bastion at %s", js.bastion.Addr)
	}
	b, tg := js.bastion.Stats(), js.target.Stats()
	if b.Accepted != 1 || b.Connections != 1 || b.Forwards != 128 {
		t.Errorf("bastion: %d accepted, %d connections, %d forwards; want 1, 1, 128", b.Accepted, b.Connections, b.Forwards)
	}
	if tg.Connections != 128 {
		t.Errorf("target: %d connections, want 128", tg.Connections)
	}
	if st := p.Stats()["jump:bastion"]; st.Connections != 1 {
		t.Errorf("jump host stats %+v, want 1 connection", st)
	}
}

// When the bastion is what fails, every host behind it says so, naming
// the bastion, its address and the host; the bastion is dialled once,
// not once per host.
func TestJumpHostFailureNamesTheBastion(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		forward bool // the failure is the bastion's refusal to forward
		break_  func(t *testing.T, js *jumpSetup)
		want    []string
		check   func(t *testing.T, err error)
	}{
		{
			name:   "refused",
			break_: func(t *testing.T, js *jumpSetup) { js.moveTo(t, "bastion", testenv.RefusingAddr(t)) },
			want:   []string{"connection refused", "is sshd running there"},
		},
		{
			name:   "auth",
			break_: func(t *testing.T, js *jumpSetup) { js.bastion.SetFault(sshtest.FaultRejectAuth) },
			want:   []string{"authentication as \"jumper\" failed"},
			check: func(t *testing.T, err error) {
				var ae *sshx.AuthError
				if !errors.As(err, &ae) || ae.Host != "bastion" {
					t.Errorf("errors.As(*AuthError) = %v, want the bastion's", ae)
				}
			},
		},
		{
			name: "host key changed",
			break_: func(t *testing.T, js *jumpSetup) {
				_, other, _ := ed25519.GenerateKey(rand.Reader)
				signer, _ := ssh.NewSignerFromKey(other)
				line := strings.Fields(js.bastion.KnownHostsLine())[0] + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
				os.WriteFile(js.knownHosts, []byte(line+"\n"+js.target.KnownHostsLine()+"\n"), 0o600)
			},
			want: []string{"HOST KEY CHANGED"},
			check: func(t *testing.T, err error) {
				var hk *sshx.HostKeyError
				if !errors.As(err, &hk) || !hk.Changed || hk.Host != "bastion" {
					t.Errorf("errors.As(*HostKeyError) = %+v, want the bastion's changed key", hk)
				}
			},
		},
		{
			name:    "forwarding prohibited",
			forward: true,
			break_:  func(t *testing.T, js *jumpSetup) {},
			want:    []string{"refused to forward", "administratively prohibited", "AllowTcpForwarding"},
		},
		{
			name:    "target down",
			forward: true,
			break_:  func(t *testing.T, js *jumpSetup) { js.moveTo(t, "target", testenv.RefusingAddr(t)) },
			want:    []string{"is up but could not connect", "connect failed", "Connection refused"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			js := newJumpSetup(t, c.name != "forwarding prohibited")
			c.break_(t, js)
			p := js.pool(t)
			hosts := js.hosts(t, p, 5)
			for i, err := range runAll(hosts) {
				var je *sshx.JumpError
				if !errors.As(err, &je) {
					t.Fatalf("%s: err = %v, want a *JumpError", hosts[i].Name(), err)
				}
				if je.Forward != c.forward || je.Jump != "bastion" || je.Host != hosts[i].Name() {
					t.Errorf("%s: JumpError %+v, want Forward %v, Jump bastion", hosts[i].Name(), je, c.forward)
				}
				msg := err.Error()
				for _, want := range append([]string{"sshx: " + hosts[i].Name(), "jump host bastion (jumper@" + js.bastionAddr + ")", js.targetAddr}, c.want...) {
					if !strings.Contains(msg, want) {
						t.Errorf("message %q lacks %q", msg, want)
					}
				}
				if c.check != nil {
					c.check(t, err)
				}
			}
			if n := js.dials.Load(); n != 1 {
				t.Errorf("the pool opened %d TCP connections for 5 hosts, want 1: a failed bastion is not dialled again", n)
			}
		})
	}
}

// A bastion connection that drops mid-run is dialled again, once, for
// every host behind it: the hosts reconnect through the new connection.
func TestJumpHostDroppedMidRunIsRedialledOnce(t *testing.T) {
	t.Parallel()
	js := newJumpSetup(t, true)
	p := js.pool(t)
	hosts := js.hosts(t, p, 16)
	for i, err := range runAll(hosts) {
		if err != nil {
			t.Fatalf("%s: %v", hosts[i].Name(), err)
		}
	}
	js.bastion.SetFault(sshtest.FaultDropConnections)
	js.bastion.SetFault(sshtest.FaultNone)
	for i, err := range runAll(hosts) {
		if err != nil {
			t.Errorf("%s after the drop: %v", hosts[i].Name(), err)
		}
	}
	if n := js.dials.Load(); n != 2 {
		t.Errorf("the pool opened %d TCP connections, want 2: the bastion, and the bastion again", n)
	}
	if b := js.bastion.Stats(); b.Connections != 2 {
		t.Errorf("bastion: %d connections, want 2", b.Connections)
	}
	if st := p.Stats()["jump:bastion"]; st.Connections != 2 {
		t.Errorf("jump host stats %+v, want 2 connections", st)
	}
}

// Close ends every connection cleanly, the hosts behind the bastion
// before the bastion's own: each server reads the end of its client's
// input (no reset), and every host's connection ends before the
// bastion's, since Close reads each host's to its end first.
func TestPoolCloseEndsHostsBeforeTheirBastionCleanly(t *testing.T) {
	t.Parallel()
	type ended struct {
		server string
		err    error
	}
	var (
		mu   sync.Mutex
		ends []ended
	)
	record := func(name string) func(ssh.ConnMetadata, error) {
		return func(_ ssh.ConnMetadata, err error) {
			mu.Lock()
			ends = append(ends, ended{name, err})
			mu.Unlock()
		}
	}
	js := newJumpSetupWith(t, true, func(bastion, target *sshtest.Server) {
		bastion.OnDisconnect = record("bastion")
		target.OnDisconnect = record("target")
	})
	p := js.pool(t)
	const n = 8
	hosts := js.hosts(t, p, n)
	for i, err := range runAll(hosts) {
		if err != nil {
			t.Fatalf("%s: %v", hosts[i].Name(), err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitUntil(t, "every connection's end on its server", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ends) == n+1
	})
	mu.Lock()
	defer mu.Unlock()
	for _, e := range ends {
		if !errors.Is(e.err, io.EOF) {
			t.Errorf("the %s's connection ended with %v, want the client's end of input", e.server, e.err)
		}
	}
	// A server reports an end from its own goroutine, which can run a
	// little after the client has seen the close: the last host or two
	// may be reported after the bastion even in the right order.
	before := slices.IndexFunc(ends, func(e ended) bool { return e.server == "bastion" })
	if before < n-2 {
		t.Errorf("the bastion's connection ended after %d of the %d hosts', want after every host's: %v", before, n, ends)
	}
}
