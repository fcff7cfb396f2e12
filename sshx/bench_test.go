package sshx_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// benchCommands runs b.N commands on one host, either over the pooled
// connection or with a fresh pool (a new connection) for each command.
func benchCommands(b *testing.B, cfg sshx.Config, spec string, fresh bool) {
	ctx := context.Background()
	cfg.Agent = agent.NewKeyring().(agent.ExtendedAgent)
	cfg.ConnectTimeout = 10 * time.Second
	pool, err := sshx.NewPool(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	h, _ := pool.Host(spec)
	if err := h.Command(ctx, "true").Run(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if fresh {
			p, _ := sshx.NewPool(cfg)
			h, _ = p.Host(spec)
			err = h.Command(ctx, "true").Run()
			p.Close()
		} else {
			err = h.Command(ctx, "true").Run()
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}

// sshtestServer starts a server with handler (nil: the shell) and returns
// its client config file and alias.
func sshtestServer(b *testing.B, handler func(*sshtest.Exec)) (*sshtest.Server, sshtest.ClientFiles) {
	srv := sshtest.NewUnstartedServer()
	srv.Handler = handler
	srv.Start()
	b.Cleanup(srv.Close)
	files, err := srv.WriteClientFiles(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return srv, files
}

// BenchmarkSSHTest measures the transport on an in-process server that
// answers without starting a process ("inprocess"), where the pool's
// saving shows, and with commands run by /bin/sh ("shell").
func BenchmarkSSHTest(b *testing.B) {
	for _, c := range []struct {
		name    string
		handler func(*sshtest.Exec)
	}{
		{"inprocess", sshtest.Respond("", 0)},
		{"shell", nil},
	} {
		_, files := sshtestServer(b, c.handler)
		cfg := sshx.Config{ConfigFile: files.ConfigFile}
		b.Run(c.name+"/pooled", func(b *testing.B) { benchCommands(b, cfg, files.Alias, false) })
		b.Run(c.name+"/fresh", func(b *testing.B) { benchCommands(b, cfg, files.Alias, true) })
	}
}

func BenchmarkFleet(b *testing.B) {
	cfgFile := os.Getenv("MAGEFAB_FLEET")
	if cfgFile == "" {
		b.Skip("MAGEFAB_FLEET is unset: start the fleet with .ci/fleet up")
	}
	f := fleettest.Require(b, 1)
	cfg := sshx.Config{ConfigFile: f.ConfigFile}
	b.Run("pooled", func(b *testing.B) { benchCommands(b, cfg, f.Hosts[0], false) })
	b.Run("fresh", func(b *testing.B) { benchCommands(b, cfg, f.Hosts[0], true) })
}

// benchSessions runs b.N sessions of command on one connection: what a
// command costs with and without the process-group wrapper.
func benchSessions(b *testing.B, client *ssh.Client, command string) {
	for b.Loop() {
		sess, err := client.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		err = sess.Run(command)
		sess.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}

// BenchmarkWrapper compares a bare session running true with one running
// true inside the wrapper that every sshx command gets, on the sshtest
// shell and, when it is up, on the fleet's sshd.
func BenchmarkWrapper(b *testing.B) {
	run := func(b *testing.B, client *ssh.Client) {
		b.Run("bare", func(b *testing.B) { benchSessions(b, client, "true") })
		b.Run("wrapped", func(b *testing.B) { benchSessions(b, client, sshx.Wrap("true")) })
	}
	b.Run("sshtest", func(b *testing.B) {
		srv, _ := sshtestServer(b, nil)
		client, err := srv.Dial("bench")
		if err != nil {
			b.Fatal(err)
		}
		defer client.Close()
		run(b, client)
	})
	b.Run("fleet", func(b *testing.B) {
		if os.Getenv("MAGEFAB_FLEET") == "" {
			b.Skip("MAGEFAB_FLEET is unset: start the fleet with .ci/fleet up")
		}
		f := fleettest.Require(b, 1)
		key, err := os.ReadFile(f.KeyFile)
		if err != nil {
			b.Fatal(err)
		}
		signer, err := ssh.ParsePrivateKey(key)
		if err != nil {
			b.Fatal(err)
		}
		hostKeys, err := knownhosts.New(f.KnownHostsFile)
		if err != nil {
			b.Fatal(err)
		}
		client, err := ssh.Dial("tcp", net.JoinHostPort(f.Addr(b, f.Hosts[0]), "22"), &ssh.ClientConfig{
			User: "deploy", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hostKeys, Timeout: 10 * time.Second,
		})
		if err != nil {
			b.Fatal(err)
		}
		defer client.Close()
		run(b, client)
	})
}
