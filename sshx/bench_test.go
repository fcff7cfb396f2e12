package sshx_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh/agent"
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

func BenchmarkSSHTest(b *testing.B) {
	srv := sshtest.NewServer()
	defer srv.Close()
	files, err := srv.WriteClientFiles(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	cfg := sshx.Config{ConfigFile: files.ConfigFile}
	b.Run("pooled", func(b *testing.B) { benchCommands(b, cfg, files.Alias, false) })
	b.Run("fresh", func(b *testing.B) { benchCommands(b, cfg, files.Alias, true) })
}

func BenchmarkFleet(b *testing.B) {
	cfgFile := os.Getenv("MAGEFAB_FLEET")
	if cfgFile == "" {
		b.Skip("MAGEFAB_FLEET is unset: start the fleet with .ci/fleet up")
	}
	cfg := sshx.Config{ConfigFile: cfgFile}
	b.Run("pooled", func(b *testing.B) { benchCommands(b, cfg, "web1", false) })
	b.Run("fresh", func(b *testing.B) { benchCommands(b, cfg, "web1", true) })
}
