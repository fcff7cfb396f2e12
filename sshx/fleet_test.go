package sshx_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/sshx"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// fleetPool returns a pool for the real OpenSSH fleet, with an empty agent
// unless one is given.
func fleetPool(t *testing.T, f fleettest.Fleet, tweak func(*sshx.Config)) *sshx.Pool {
	t.Helper()
	cfg := sshx.Config{ConfigFile: f.ConfigFile, Agent: agent.NewKeyring().(agent.ExtendedAgent), ConnectTimeout: 30 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	p, err := sshx.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestFleetAliasesSudoUploadAndOneConnection(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 3)
	pool := fleetPool(t, f, nil)
	hosts, err := pool.Hosts(f.Hosts)
	if err != nil {
		t.Fatal(err)
	}
	startMark := f.LogMark(f.Hosts[0])
	ctx := context.Background()
	res, err := sshx.Each(ctx, hosts, 0, func(ctx context.Context, h sshx.Host) (string, error) {
		out, err := h.Command(ctx, "cat", "/run/fleet/host").Output()
		return string(out), err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if want := "name=" + f.Hosts[i]; !strings.Contains(r.Value, want) {
			t.Errorf("%s: /run/fleet/host = %q, want %q", f.Hosts[i], r.Value, want)
		}
	}

	web1 := hosts[0]
	// sudo -n as the deploy user.
	cmd := web1.Command(ctx, "id", "-u")
	cmd.Sudo = true
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Errorf("sudo id -u = %q, %v; want 0", out, err)
	}

	// Upload as root into a root-owned dir, atomically, with a mode.
	dst := "/var/webapps/sshx-upload-test/conf file"
	mk := web1.Command(ctx, "mkdir", "-p", filepath.Dir(dst))
	mk.Sudo = true
	if err := mk.Run(); err != nil {
		t.Fatal(err)
	}
	if err := web1.Upload(ctx, sshx.File{Path: dst, Mode: 0o640, Sudo: true}, strings.NewReader("payload $(id)\n")); err != nil {
		t.Fatal(err)
	}
	check := web1.Script(ctx, "stat -c '%a %U' "+sshx.Quote(dst)+" && cat "+sshx.Quote(dst))
	check.Sudo = true
	if out, err := check.Output(); err != nil || string(out) != "640 root\npayload $(id)\n" {
		t.Errorf("uploaded file: %q, %v", out, err)
	}
	// A reader of unknown size takes two steps; one that fails keeps the
	// old file and leaves no temporary file.
	if err := web1.Upload(ctx, sshx.File{Path: dst, Mode: 0o600, Sudo: true}, io.MultiReader(strings.NewReader("second\n"))); err != nil {
		t.Fatal(err)
	}
	broken := io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(errors.New("source failed")))
	if err := web1.Upload(ctx, sshx.File{Path: dst, Mode: 0o644, Sudo: true}, broken); err == nil {
		t.Errorf("upload from a failing reader succeeded")
	}
	check = web1.Script(ctx, "stat -c '%a %U' "+sshx.Quote(dst)+" && cat "+sshx.Quote(dst)+" && ls -A "+sshx.Quote(filepath.Dir(dst)))
	check.Sudo = true
	if out, err := check.Output(); err != nil || string(out) != "600 root\nsecond\nconf file\n" {
		t.Errorf("after a failed upload: %q, %v; want the second file alone", out, err)
	}
	rm := web1.Command(ctx, "rm", "-rf", filepath.Dir(dst))
	rm.Sudo = true
	rm.Run()

	// 100 commands on one host, 8 at a time: exactly one connection.
	before := web1.(*sshx.Remote).Stats()
	mark := f.LogMark(f.Hosts[0])
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	sem := make(chan struct{}, 8)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out, err := web1.Command(ctx, "echo", fmt.Sprint(i)).Output()
			if err == nil && strings.TrimSpace(string(out)) != fmt.Sprint(i) {
				err = fmt.Errorf("echo %d printed %q", i, out)
			}
			if err != nil {
				mu.Lock()
				failures = append(failures, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range failures {
		t.Error(err)
	}
	after := web1.(*sshx.Remote).Stats()
	if after.Connections != 1 || after.Sessions-before.Sessions != 100 {
		t.Errorf("after 100 commands: %+v (before %+v); want 1 connection and 100 more sessions", after, before)
	}
	// The host's sshd agrees: no login during the 100 commands, one for
	// the whole test, and a session for each command the pool counted.
	logged := func(mark int64, s string, want int64) int64 {
		n := int64(f.CountSince(f.Hosts[0], mark, s))
		for deadline := time.Now().Add(patience); n < want && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			n = int64(f.CountSince(f.Hosts[0], mark, s))
		}
		return n
	}
	if n := logged(mark, "Starting session", 100); n != 100 {
		t.Errorf("%s's sshd logged %d sessions during the 100 commands, want 100", f.Hosts[0], n)
	}
	if n := logged(mark, "Accepted publickey", 0); n != 0 {
		t.Errorf("%s's sshd logged %d logins during the 100 commands, want 0", f.Hosts[0], n)
	}
	if n := logged(startMark, "Accepted publickey", 1); n != 1 {
		t.Errorf("%s's sshd logged %d logins during the test, want 1", f.Hosts[0], n)
	}
	if n := logged(startMark, "Starting session", after.Sessions); n != after.Sessions {
		t.Errorf("%s's sshd logged %d sessions during the test, the pool counted %d", f.Hosts[0], n, after.Sessions)
	}
	t.Logf("web1 after the test: %d connection, %d sessions, %d bytes sent, %d received",
		after.Connections, after.Sessions, after.BytesSent, after.BytesReceived)
}

func TestFleetAgentForwardingKeyIsUsableOnHost(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 2)
	fleettest.RequireTool(t, "ssh", "openssh-client")
	keyBytes, err := os.ReadFile(f.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(keyBytes)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	keyring.Add(agent.AddedKey{PrivateKey: raw, Comment: "fleet"})
	pool := fleetPool(t, f, func(c *sshx.Config) { c.Agent = keyring.(agent.ExtendedAgent) })
	web1, _ := pool.Host(f.Hosts[0])
	// From web1, log in to web2 with the forwarded key: web1 holds no key.
	script := "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -p " + f.Port(t) + " deploy@" + f.Addr(t, f.Hosts[1]) + " cat /run/fleet/host"
	// Without forwarding the login fails.
	if err := web1.Script(context.Background(), script).Run(); err == nil {
		t.Errorf("login from web1 to web2 worked without a forwarded agent")
	}
	cmd := web1.Script(context.Background(), script)
	cmd.ForwardAgent = true
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh from web1 to web2 with the forwarded agent: %v", err)
	}
	if !strings.Contains(string(out), "name="+f.Hosts[1]) {
		t.Errorf("output %q, want web2's host file", out)
	}
	// sshd keeps the agent socket for the connection, but the client
	// refuses it to commands that did not ask for forwarding.
	out, err = web1.Script(context.Background(), script).CombinedOutput()
	if err == nil {
		t.Errorf("a plain command after a forwarding one logged in with the agent: %q", out)
	}
	if st := web1.Stats(); st.Connections != 1 {
		t.Errorf("Stats = %+v, want one connection", st)
	}
}

func TestFleetHostKeyMismatchRefused(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 1)
	kh, err := os.ReadFile(f.KnownHostsFile)
	if err != nil {
		t.Fatal(err)
	}
	// Record a key no host has for every host: each is now a changed key.
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := ssh.NewSignerFromKey(priv)
	other := strings.Fields(string(ssh.MarshalAuthorizedKey(stranger.PublicKey())))
	var swapped []string
	for _, l := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
		swapped = append(swapped, strings.Fields(l)[0]+" "+other[0]+" "+other[1])
	}
	bad := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(bad, []byte(strings.Join(swapped, "\n")+"\n"), 0o600)
	cfgText, _ := os.ReadFile(f.ConfigFile)
	cfgFile := filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(cfgFile, bytes.ReplaceAll(cfgText, []byte(f.KnownHostsFile), []byte(bad)), 0o600)
	pool := fleetPool(t, f, func(c *sshx.Config) { c.ConfigFile = cfgFile })
	web1, _ := pool.Host(f.Hosts[0])
	err = web1.Command(context.Background(), "true").Run()
	var hk *sshx.HostKeyError
	if !errors.As(err, &hk) || !hk.Changed {
		t.Fatalf("err = %v, want a changed host key refused", err)
	}
	if !strings.Contains(err.Error(), "SHA256:") || !strings.Contains(err.Error(), "ssh-ed25519") {
		t.Errorf("message %q lacks key type or fingerprint", err)
	}
}

func TestFleetStoppedHostFailsFast(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 3)
	victim := f.Hosts[len(f.Hosts)-1]
	f.Ctl(t, "stop", victim)
	t.Cleanup(func() { f.Ctl(t, "start", victim) })
	// A refused connection must fail at once, not be retried until the
	// connect timeout: make that timeout long, 60s, and the failure must
	// come well within a third of it, which a loaded machine still
	// manages.
	const connectTimeout = 60 * time.Second
	pool := fleetPool(t, f, func(c *sshx.Config) { c.ConnectTimeout = connectTimeout })
	h, _ := pool.Host(victim)
	start := time.Now()
	err := h.Command(context.Background(), "true").Run()
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), victim) {
		t.Errorf("err = %v, want connection refused naming %s", err, victim)
	}
	if d := time.Since(start); d > connectTimeout/3 {
		t.Errorf("a stopped host took %s to fail: was the connection retried until the %s timeout?", d, connectTimeout)
	}
}

func TestFleetProxyJump(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 2)
	cfgText, _ := os.ReadFile(f.ConfigFile)
	cfgFile := filepath.Join(t.TempDir(), "ssh_config")
	// web2 reached only through web1.
	extra := "\nHost behind\n  HostName " + f.Addr(t, f.Hosts[1]) + "\n  ProxyJump " + f.Hosts[0] + "\n"
	for _, l := range strings.Split(string(cfgText), "\n") {
		l = strings.TrimSpace(l)
		for _, k := range []string{"User ", "IdentityFile ", "UserKnownHostsFile ", "Port "} {
			if strings.HasPrefix(l, k) && !strings.Contains(extra, k) {
				extra += "  " + l + "\n"
			}
		}
	}
	os.WriteFile(cfgFile, append(cfgText, extra...), 0o600)
	pool := fleetPool(t, f, func(c *sshx.Config) { c.ConfigFile = cfgFile })
	h, err := pool.Host("behind")
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Command(context.Background(), "cat", "/run/fleet/host").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "name="+f.Hosts[1]) {
		t.Errorf("through the jump host got %q, want %s", out, f.Hosts[1])
	}
	jump := pool.Stats()["jump:"+f.Hosts[0]]
	if jump.Connections != 1 {
		t.Errorf("jump host stats %+v, want one connection", jump)
	}
}

func TestFleetSudoPasswordIsAClearError(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 1)
	pool := fleetPool(t, f, nil)
	// guest may use sudo only with a password.
	h, err := pool.Host("guest@" + f.Hosts[0])
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(context.Background(), "id", "-u")
	cmd.Sudo = true
	start := time.Now()
	err = cmd.Run()
	if !errors.Is(err, sshx.ErrSudoPassword) {
		t.Fatalf("sudo as guest = %v, want ErrSudoPassword", err)
	}
	// A sudo that asks for a password waits for it until its
	// passwd_timeout, 5 minutes by default, or forever: one that fails
	// within a fifth of that did not wait, however loaded the machine.
	if d := time.Since(start); d > time.Minute {
		t.Errorf("sudo took %s: it must never wait for a password", d)
	}
	if !strings.Contains(err.Error(), "sudo wants a password") || !strings.Contains(err.Error(), "guest@"+f.Hosts[0]) {
		t.Errorf("message %q", err)
	}
}

// A client that goes without a word (killed, its connection dropped) sends
// no signal, and sshd sends none to a session without a terminal: the
// command's process group is stopped all the same, when its input ends.
func TestFleetCommandStopsWhenTheClientIsGone(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 1)
	pool := fleetPool(t, f, nil)
	h, _ := pool.Host(f.Hosts[0])
	pidFile := filepath.Join("/tmp", fmt.Sprintf("magefab-gone-%d", time.Now().UnixNano()))
	t.Cleanup(func() { os.Remove(pidFile) })
	cmd := h.Script(context.Background(), "sleep 300 & echo $! > "+sshx.Quote(pidFile)+"; wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := waitForPid(t, pidFile) // /tmp is shared by the fleet's hosts and this machine
	pool.Close()
	cmd.Wait()
	waitGone(t, pid)
}

// A jump host that fails, or cannot reach the host behind it, is named in
// the error with its address, as is the host.
func TestFleetJumpHostFailuresNameTheBastion(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 2)
	cfgText, _ := os.ReadFile(f.ConfigFile)
	var common string
	for _, l := range strings.Split(string(cfgText), "\n") {
		l = strings.TrimSpace(l)
		for _, k := range []string{"User ", "IdentityFile ", "UserKnownHostsFile ", "IdentitiesOnly "} {
			if strings.HasPrefix(l, k) && !strings.Contains(common, k) {
				common += "  " + l + "\n"
			}
		}
	}
	bastion, target := f.Hosts[0], f.Hosts[1]
	// nothing listens on port 1: web1 cannot connect there, and nobody
	// can connect to web1 there.
	extra := "\nHost unreachable\n  HostName " + f.Addr(t, target) + "\n  Port 1\n  ProxyJump " + bastion + "\n" + common +
		"\nHost deadjump\n  HostName " + f.Addr(t, bastion) + "\n  Port 1\n" + common +
		"\nHost behinddead\n  HostName " + f.Addr(t, target) + "\n  Port " + f.Port(t) + "\n  ProxyJump deadjump\n" + common
	cfgFile := filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(cfgFile, append(cfgText, extra...), 0o600)
	pool := fleetPool(t, f, func(c *sshx.Config) { c.ConfigFile = cfgFile })
	for _, c := range []struct {
		host, jump, jumpAddr string
		forward              bool
		want                 []string
	}{
		{"unreachable", bastion, f.Addr(t, bastion) + ":" + f.Port(t), true, []string{"is up but could not connect", "connect failed", f.Addr(t, target) + ":1"}},
		{"behinddead", "deadjump", f.Addr(t, bastion) + ":1", false, []string{"connection refused", "was not reached"}},
	} {
		h, err := pool.Host(c.host)
		if err != nil {
			t.Fatal(err)
		}
		err = h.Command(context.Background(), "true").Run()
		var je *sshx.JumpError
		if !errors.As(err, &je) || je.Forward != c.forward || je.Jump != c.jump {
			t.Errorf("%s: err = %v, want a *JumpError of %s with Forward %v", c.host, err, c.jump, c.forward)
			continue
		}
		for _, want := range append([]string{"sshx: " + c.host, "jump host " + c.jump + " (deploy@" + c.jumpAddr + ")"}, c.want...) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: message %q lacks %q", c.host, err, want)
			}
		}
		t.Logf("%s: %v", c.host, err)
	}
}
