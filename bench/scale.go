package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// scaleApp is the scaling run: magefab deploying a trivial app (the same
// repository, no requirements, a restart that does nothing) to many fleet
// hosts at once, to see how the deploying process's CPU time and memory
// grow with the number of hosts.
type scaleApp struct {
	unit    string
	dir     string
	runs    int
	samples []sample
}

func trivialMagefile(unit, remote, sshConfig string) string {
	return fmt.Sprintf(`//go:build mage

package main

import (
	"time"

	// mage:import
	"github.com/magefab/magefab/magetargets"
)

func init() {
	magetargets.Configure(magetargets.Config{
		Unit:           %q,
		SCM:            %q,
		Python:         "/usr/bin/python3",
		RestartCommand: "true",
		// A longer handshake timeout than the default 10 s: here all the
		// hosts' sshd share the deploying machine's CPUs with the
		// hosts' own work, and at 128 hosts a handshake waited more
		// than 10 s for them.
		SSH:            magetargets.SSH{ConfigFile: %q, ConnectTimeout: 30 * time.Second},
		Environments: map[string]magetargets.Environment{
			"production": {Hosts: []string{"web1"}},
		},
	})
}
`, unit, remote, sshConfig)
}

func (b *bench) scaling(ctx context.Context) error {
	s := &scaleApp{unit: "bsc" + b.w.id, dir: filepath.Join(b.w.tmp, "scale"), runs: min(b.o.runs, 3)}
	b.scaleApp = s
	if err := b.w.git(ctx, "", "clone", "-q", b.w.remote, s.dir); err != nil {
		return err
	}
	sum, err := os.ReadFile(filepath.Join(b.w.src, "go.sum"))
	if err != nil {
		return err
	}
	if err := writeFiles(s.dir, map[string]string{
		"magefile.go": trivialMagefile(s.unit, b.w.remote, b.f.sshConfig()),
		"go.mod":      goMod("benchscale"+b.w.id, b.w.src),
		"go.sum":      string(sum),
	}); err != nil {
		return err
	}
	mage := func(ctx context.Context, n int, args ...string) *exec.Cmd {
		return command(ctx, s.dir, b.w.mageEnv(n, "MAGEFAB_PARALLEL="+strconv.Itoa(n)), b.w.mage, args...)
	}
	if out, err := mage(ctx, 1, "env:production").CombinedOutput(); err != nil {
		return fmt.Errorf("compiling the trivial app's magefile: %v\n%s", err, out)
	}
	t := &tool{name: "trivial", unit: s.unit, patterns: magefabPatterns}
	rel := b.w.releases
	steps := []struct {
		op   string
		args []string
		want string
	}{
		{"cold1", []string{"env:production", "deploy:tag", rel[0].Tag}, rel[0].SHA},
		{"cold2", []string{"env:production", "deploy:tag", rel[1].Tag}, rel[1].SHA},
		{"warm", []string{"env:production", "deploy:tag", rel[2].Tag}, rel[2].SHA},
		{"redeploy", []string{"env:production", "deploy:tag", rel[2].Tag}, rel[2].SHA},
		{"rollback", []string{"env:production", "deploy:rollback"}, rel[1].SHA},
	}
	for _, n := range b.o.scale {
		for run := range s.runs {
			if err := b.wipe(ctx, n); err != nil {
				return fmt.Errorf("cleaning the hosts: %w", err)
			}
			for _, st := range steps {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				check := func(ctx context.Context, n int) error { return b.liveCommit(ctx, n, s.unit, st.want) }
				if !b.measureStep(ctx, n, run, t, st.op, mage(ctx, n, st.args...), check, &s.samples) {
					break
				}
			}
		}
	}
	return nil
}

// liveCommit checks over SSH that current points at a clone of want on
// hosts web1..webN.
func (b *bench) liveCommit(ctx context.Context, n int, unit, want string) error {
	return b.f.onEach(ctx, n, "git -C /var/webapps/"+unit+"/releases/current rev-parse HEAD", func(got string) error {
		if got != want {
			return fmt.Errorf("current holds %.12s, want %.12s", got, want)
		}
		return nil
	})
}
