package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type bench struct {
	o         options
	f         *fleet
	w         *workspace
	tools     []*tool // magefab first
	floorOnly bool    // magefab runs only to give the floor
	logs      string
	start     time.Time
	maxHosts  int
	samples   []sample
	failures  []string
	// loadFailures are the slot tools' failed requests: each makes the
	// benchmark fail at the end, after everything is measured.
	loadFailures []string
	scaleApp     *scaleApp
	roll         *rollingRun // -rolling
}

// step is one operation of the sequence every tool goes through in a run.
type step struct {
	op  string
	rel int // index of the release deployed; -1 for rollback and floor
}

var sequence = []step{
	{"cold1", 0}, {"cold2", 1}, {"floor", -1}, {"plainfloor", -1}, {"warm", 2}, {"redeploy", 2}, {"rollback", -1}, {"floor", -1},
}

// steps is the sequence up to the last operation asked for, ending with a
// floor measurement.
func (b *bench) steps() []step {
	last := 1 // cold needs cold1 and cold2
	for i, s := range sequence {
		if slices.Contains(b.o.ops, s.op) {
			last = i
		}
	}
	out := slices.Clone(sequence[:last+1])
	if out[len(out)-1].op != "floor" {
		out = append(out, step{"floor", -1})
	}
	if b.o.load > 0 {
		// the idle baseline of the load, once every app runs
		out = slices.Insert(out, 2, step{"idle", -1})
	}
	return out
}

// warmup compiles the magefile and loads the peers once, so that no
// measured run pays for a compile or a cold disk cache.
func (b *bench) warmup(ctx context.Context) error {
	n := b.o.hosts[0]
	for _, t := range b.tools {
		if err := t.configure(n); err != nil {
			return err
		}
	}
	// env:production alone compiles the magefile into mage's cache and
	// touches no host.
	cmds := []*exec.Cmd{command(ctx, b.w.app, b.w.mageEnv(n), b.w.mage, "env:production")}
	for _, t := range b.tools {
		switch {
		case t.slots:
			cmds = append(cmds, command(ctx, t.dir, b.w.mageEnv(n), b.w.mage, "env:production"))
		case t.name == "capistrano":
			cmds = append(cmds, command(ctx, t.dir, toolEnv(), "cap", "-T"))
		case t.name == "fabric":
			cmds = append(cmds, command(ctx, t.dir, toolEnv(), "fab", "--list"))
		}
	}
	for _, c := range cmds {
		if out, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(c.Args, " "), err, out)
		}
	}
	return nil
}

// wipe stops every tool's app on hosts web1..webN and removes their deploy
// roots, so that the next deploy is a first one.
func (b *bench) wipe(ctx context.Context, n int) error {
	var units []string
	for _, t := range b.tools {
		units = append(units, t.unit)
	}
	if b.scaleApp != nil {
		units = append(units, b.scaleApp.unit)
	}
	if b.roll != nil {
		units = append(units, b.roll.rolling.unit)
	}
	script := "sudo -n sh -c 'for u in " + strings.Join(units, " ") + "; do [ -x /etc/init.d/$u ] && /etc/init.d/$u stop >/dev/null 2>&1; rm -rf /var/webapps/$u; done; true'"
	return b.f.onEach(ctx, n, script, nil)
}

// round is one run on n hosts: every step of the sequence for every tool,
// from empty hosts.
func (b *bench) round(ctx context.Context, n, run int) error {
	if err := b.wipe(ctx, n); err != nil {
		return fmt.Errorf("cleaning the hosts: %w", err)
	}
	for _, t := range b.tools {
		if t.name == "capistrano" {
			os.RemoveAll("/tmp/" + t.unit) // its git wrapper's dir
		}
	}
	broken := map[string]bool{}
	for i, s := range b.steps() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.op == "idle" {
			for _, t := range b.tools {
				if !broken[t.name] && !(t.name == "magefab" && b.floorOnly) {
					b.idle(ctx, n, run, t)
				}
			}
			continue
		}
		if s.op == "floor" || s.op == "plainfloor" {
			if !broken["magefab"] {
				mf := b.tools[0]
				cmd := b.w.restart(ctx, n)
				if s.op == "plainfloor" {
					cmd = b.w.plainRestart(ctx, n)
				}
				// A failed plain-mage floor (a compile error in the
				// working tree) leaves the compiled magefab usable.
				if !b.measureStep(ctx, n, run, mf, s.op, cmd, b.serving(mf), &b.samples) && s.op == "floor" {
					broken["magefab"] = true
				}
			}
			continue
		}
		order := slices.Clone(b.tools)
		if (run+i)%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			if broken[t.name] {
				continue
			}
			var cmd *exec.Cmd
			var want string
			if s.op == "rollback" {
				cmd = t.rollback(ctx, n)
				want = b.w.releases[t.rollbackTo].SHA
			} else {
				cmd = t.deploy(ctx, n, b.w.releases[s.rel])
				want = b.w.releases[s.rel].SHA
			}
			if !b.measureStep(ctx, n, run, t, s.op, cmd, b.serving(t, want), &b.samples) {
				broken[t.name] = true
			} else {
				t.live = want
			}
		}
	}
	return nil
}

// serving returns the check that every host's app of t serves want (by
// default the commit it served last).
func (b *bench) serving(t *tool, want ...string) func(ctx context.Context, n int) error {
	return func(ctx context.Context, n int) error {
		w := t.live
		if len(want) > 0 {
			w = want[0]
		}
		return verify(ctx, n, t.port, w)
	}
}

// measureStep runs one command, counts the SSH connections and sessions it
// opened per host, checks the result and adds the sample to dest.
func (b *bench) measureStep(ctx context.Context, n, run int, t *tool, op string, cmd *exec.Cmd, check func(context.Context, int) error, dest *[]sample) bool {
	time.Sleep(500 * time.Millisecond) // let the previous command's leftovers settle
	name := t.name
	if op == "floor" || op == "plainfloor" {
		name = "floor"
	}
	s := sample{Hosts: n, Run: run + 1, Tool: name, Op: op}
	var echo io.Writer
	if b.o.verbose {
		echo = os.Stderr
	}
	logPath := filepath.Join(b.logs, fmt.Sprintf("n%03d-run%d-%s-%s.log", n, run+1, op, name))
	marks := b.f.marks(n)
	cpu0 := b.f.hostCPU(n)
	lr, lerr := b.startLoad(ctx, n, t, op)
	var stopWatch func() *outStats
	if lr != nil && t.watch != nil {
		stopWatch = t.watch(ctx, n)
	}
	var onLine func(string)
	if lr != nil && t.switchLine != "" {
		// the load until the switch began: before it, every host serves
		onLine = func(l string) {
			if s.LoadBefore == nil && strings.Contains(l, t.switchLine) {
				s.LoadBefore = newLoadStats(b.o.load, lr.Snapshot())
			}
		}
	}
	stopAccepts := b.f.watchAccepts(marks, time.Now())
	err := measure(cmd, logPath, echo, fmt.Sprintf("[%s %s]", name, op), t.patterns, onLine, &s)
	if lerr != nil && err == nil {
		err = lerr
	}
	if stopWatch != nil {
		s.Out = stopWatch()
	}
	if lr != nil {
		b.stopLoad(n, run, t, op, lr, &s)
	}
	s.Conns, s.Sessions = b.f.counts(marks)
	s.Handshakes = stopAccepts()
	if err == nil && check != nil {
		if verr := check(ctx, n); verr != nil {
			err = fmt.Errorf("verification after %s by %s on %d host(s): %w", op, name, n, verr)
		}
	}
	time.Sleep(200 * time.Millisecond) // the hosts' sshd reap the closed connections
	cpu1 := b.f.hostCPU(n)
	s.HostCPU = make([]float64, n)
	for i := range cpu1 {
		s.HostCPU[i] = cpu1[i] - cpu0[i]
		if cpu0[i] < 0 || cpu1[i] < 0 {
			s.HostCPU[i] = math.NaN()
		}
	}
	s.OK = err == nil
	status := "ok"
	if err != nil {
		s.Err = err.Error()
		status = "FAILED"
		b.failures = append(b.failures, fmt.Sprintf("n=%d run %d %s %s: %v (log: %s)", n, run+1, name, op, err, logPath))
	}
	*dest = append(*dest, s)
	conns, _ := s.perHost(s.Conns)
	sess, most := s.perHost(s.Sessions)
	fmt.Fprintf(os.Stderr, "bench: %6s n=%-3d run %d %-10s %-10s %7.2fs  cpu %6.2fs  rss %5.0f MB  host cpu/host %5.2fs  conns/host %.1f  sessions/host %.1f (max %d)  %s\n",
		time.Since(b.start).Round(time.Second), n, run+1, op, name, s.Wall, s.CPU, s.MaxRSSMB, meanF(s.HostCPU), conns, sess, most, status)
	if s.Load != nil {
		fmt.Fprintf(os.Stderr, "bench:        load: %s\n", s.Load)
	}
	if s.LoadBefore != nil {
		fmt.Fprintf(os.Stderr, "bench:        before the switch: %s\n", s.LoadBefore)
	}
	if s.Out != nil {
		fmt.Fprintf(os.Stderr, "bench:        balancer: %s\n", s.Out)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench:   %v\n", err)
	}
	return s.OK
}

// cleanupHosts stops every app the benchmark started and removes its files
// from every host it used.
func (b *bench) cleanupHosts() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := b.wipe(ctx, b.maxHosts); err != nil {
		fmt.Fprintf(os.Stderr, "bench: cleaning the hosts: %v\n", err)
	}
	for _, t := range b.tools {
		if t.down != nil {
			if err := t.down(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "bench: stopping %s's front: %v\n", t.name, err)
			}
		}
	}
	for _, t := range b.tools {
		os.RemoveAll("/tmp/" + t.unit)
	}
}

func meanF(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}
