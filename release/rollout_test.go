package release_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magefab/magefab/release"
)

// memBalancer is a load balancer kept in memory, for the rollout's logic:
// it records every host taken out and put back, and the most hosts out at
// once. refuseOut makes Out fail for a host; neverHealthy makes In wait
// until its context ends.
type memBalancer struct {
	mu           sync.Mutex
	state        map[string]release.BalancerState
	outs         [][]string
	mostOut      int
	refuseOut    string
	neverHealthy string
	// seen, if not nil, is told of each Out ("out") and In ("in") as it
	// begins.
	seen func(event string, hosts []string)
}

func newMemBalancer(hosts []string) *memBalancer {
	b := &memBalancer{state: map[string]release.BalancerState{}}
	for _, h := range hosts {
		b.state[h] = release.InService
	}
	return b
}

func (b *memBalancer) Name() string { return `load balancer "test"` }

func (b *memBalancer) Out(ctx context.Context, hosts []string) error {
	if b.seen != nil {
		b.seen("out", hosts)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if slices.Contains(hosts, b.refuseOut) {
		return fmt.Errorf("AccessDenied: not allowed to deregister %s", b.refuseOut)
	}
	b.outs = append(b.outs, hosts)
	out := 0
	for _, h := range hosts {
		b.state[h] = release.OutService
	}
	for _, s := range b.state {
		if s != release.InService {
			out++
		}
	}
	b.mostOut = max(b.mostOut, out)
	return nil
}

func (b *memBalancer) In(ctx context.Context, hosts []string) error {
	if b.seen != nil {
		b.seen("in", hosts)
	}
	if slices.Contains(hosts, b.neverHealthy) {
		b.mu.Lock()
		for _, h := range hosts {
			b.state[h] = release.Unhealthy // registered, failing its check
		}
		b.mu.Unlock()
		<-ctx.Done()
		return fmt.Errorf("%s never became healthy: %w", b.neverHealthy, ctx.Err())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range hosts {
		b.state[h] = release.InService
	}
	return nil
}

func (b *memBalancer) States(ctx context.Context, hosts []string) (map[string]release.BalancerState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := map[string]release.BalancerState{}
	for _, h := range hosts {
		m[h] = b.state[h]
	}
	return m, nil
}

// allIn fails the test if a host is left out of the balancer (one put
// back that fails its health check is in).
func (b *memBalancer) allIn(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for h, s := range b.state {
		if s == release.OutService || s == release.Draining {
			t.Errorf("%s is left %s in the balancer", h, s)
		}
	}
}

// checked records the hosts of each Verify call, and fails those whose
// names are in fail.
type checked struct {
	mu    sync.Mutex
	calls [][]string
	fail  string
}

func (c *checked) verify(_ context.Context, res []release.HostResult) error {
	var hosts []string
	for _, r := range res {
		hosts = append(hosts, r.Host)
	}
	c.mu.Lock()
	c.calls = append(c.calls, hosts)
	c.mu.Unlock()
	if slices.Contains(hosts, c.fail) {
		return fmt.Errorf("%s serves the wrong commit", c.fail)
	}
	return nil
}

func hostNames(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("h%d", i+1))
	}
	return out
}

// A canary, then batches, each taken out of the balancer, switched,
// checked and put back: never more than one stage out at once, and every
// host ends on the new release, back in the balancer.
func TestRolloutCanaryThenBatches(t *testing.T) {
	t.Parallel()
	f, fl, _, v2 := newRolloutFleet(t, 5)
	b := newMemBalancer(hostNames(5))
	c := &checked{}
	fl.Verify = c.verify
	fl.Rollout = release.Rollout{Canary: 1, Batch: 2, Window: 200 * time.Millisecond, Checks: 2, Balancer: b}

	f.mustDeploy(t, fl, v2)
	f.assertAll(t, "after the rollout", "b", v2.SHA)
	b.allIn(t)
	want := [][]string{{"h1"}, {"h2", "h3"}, {"h4", "h5"}}
	if fmt.Sprint(b.outs) != fmt.Sprint(want) {
		t.Errorf("taken out %v, want %v", b.outs, want)
	}
	if b.mostOut != 2 {
		t.Errorf("at most %d hosts were out at once, want 2", b.mostOut)
	}
	// each stage checked twice, on its own hosts
	if fmt.Sprint(c.calls) != fmt.Sprint([][]string{{"h1"}, {"h1"}, {"h2", "h3"}, {"h2", "h3"}, {"h4", "h5"}, {"h4", "h5"}}) {
		t.Errorf("checks %v", c.calls)
	}
	out := f.out.String()
	for _, w := range []string{"canary: h1", "batch 1 of 2: h2, h3", "batch 2 of 2: h4, h5", "canary passed 2 checks"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	plan := fl.Rollout.Plan(hostNames(5))
	if len(plan) != 3 || !strings.HasPrefix(plan[0], "canary: h1; out of load balancer") {
		t.Errorf("plan %q", plan)
	}
}

// A batch that fails its check switches back every host of every stage,
// and nothing is left out of the balancer.
func TestRolloutBatchFailureSwitchesEveryStageBack(t *testing.T) {
	t.Parallel()
	f, fl, v1, v2 := newRolloutFleet(t, 5)
	b := newMemBalancer(hostNames(5))
	fl.Verify = (&checked{fail: "h5"}).verify
	fl.Rollout = release.Rollout{Canary: 1, Batch: 2, Balancer: b}

	_, err := fl.Deploy(context.Background(), v2)
	if err == nil || !strings.Contains(err.Error(), "every host that had switched (5) was switched back") || !strings.Contains(err.Error(), "h5 serves the wrong commit") {
		t.Fatalf("deploy error = %v", err)
	}
	f.assertAll(t, "after the failed batch", "a", v1.SHA)
	b.allIn(t)
}

// When a later stage fails, the earlier stages, back in the balancer on
// the new release, are switched back through it too, stage by stage:
// taken out, switched back, put back in, never more than MaxOut out; the
// failed stage goes back first, while it is out, and is put back in
// before any other host leaves the balancer.
func TestRolloutSwitchesEarlierStagesBackThroughTheBalancer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		fail func(f *testFleet, fl *release.Fleet)
	}{
		// h5's check fails: batch 2 is out when it fails.
		{"check", func(_ *testFleet, fl *release.Fleet) { fl.Verify = (&checked{fail: "h5"}).verify }},
		// h5 cannot restart with the new release (b): its switch fails.
		{"switch", func(f *testFleet, _ *release.Fleet) {
			os.WriteFile(filepath.Join(f.homes[4], "fail-restart-b"), nil, 0o644)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, fl, v1, v2 := newRolloutFleet(t, 5)
			b := newMemBalancer(hostNames(5))
			var events []string
			b.seen = func(event string, hosts []string) {
				// where each host's current points as it goes out or in
				var at []string
				for _, h := range hosts {
					i := slices.Index(hostNames(5), h)
					at = append(at, h+"@"+f.current(t, i))
				}
				events = append(events, event+" "+strings.Join(at, " "))
			}
			c.fail(f, fl)
			fl.Rollout = release.Rollout{Canary: 1, Batch: 2, Balancer: b}
			_, err := fl.Deploy(context.Background(), v2)
			if err == nil || !strings.Contains(err.Error(), "switched back") {
				t.Fatalf("deploy error = %v", err)
			}
			f.assertAll(t, "after the failed batch", "a", v1.SHA)
			b.allIn(t)
			want := []string{
				"out h1@a", "in h1@b", "out h2@a h3@a", "in h2@b h3@b", "out h4@a h5@a",
				"in h4@a h5@a", // the failed batch, switched back while out
				"out h1@b", "in h1@a", "out h2@b h3@b", "in h2@a h3@a",
			}
			if !slices.Equal(events, want) {
				t.Errorf("the balancer saw\n  %s\nwant\n  %s", strings.Join(events, "\n  "), strings.Join(want, "\n  "))
			}
			if b.mostOut > 2 {
				t.Errorf("%d hosts were out at once, more than a stage (2)", b.mostOut)
			}
		})
	}
}

// A canary that fails switches back the canary alone: no other host ever
// switched, and every lock is released.
func TestRolloutCanaryFailureSwitchesNothingElse(t *testing.T) {
	t.Parallel()
	f, fl, v1, v2 := newRolloutFleet(t, 3)
	fl.Verify = (&checked{fail: "h1"}).verify
	fl.Rollout = release.Rollout{Canary: 1, Batch: 1}

	_, err := fl.Deploy(context.Background(), v2)
	if err == nil || !strings.Contains(err.Error(), "canary failed check 1 of 1") {
		t.Fatalf("deploy error = %v", err)
	}
	f.assertAll(t, "after the failed canary", "a", v1.SHA)
	for i := 1; i < 3; i++ {
		log, _ := os.ReadFile(filepath.Join(f.root(i), "revisions.log"))
		if strings.Contains(string(log), "v0.2.0") {
			t.Errorf("h%d switched though the canary failed:\n%s", i+1, log)
		}
	}
}

// A balancer that refuses to take a batch out stops the rollout before
// that batch switches; one that never reports a batch healthy fails it;
// either way every switched host goes back, and every host is put back.
func TestRolloutBalancerFailures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		set  func(b *memBalancer)
		want string
	}{
		{"refuses", func(b *memBalancer) { b.refuseOut = "h2" }, "AccessDenied"},
		{"never healthy", func(b *memBalancer) { b.neverHealthy = "h3" }, "h3 never became healthy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, fl, v1, v2 := newRolloutFleet(t, 3)
			b := newMemBalancer(hostNames(3))
			c.set(b)
			fl.Rollout = release.Rollout{Batch: 1, Balancer: b, BalancerTimeout: time.Second}
			_, err := fl.Deploy(context.Background(), v2)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("deploy error = %v, want %q", err, c.want)
			}
			f.assertAll(t, "after the balancer failed", "a", v1.SHA)
			b.allIn(t)
		})
	}
}

// An interrupt while a stage is checked (Ctrl-C) stops the rollout and
// switches back every host that switched.
func TestRolloutInterruptedSwitchesBack(t *testing.T) {
	t.Parallel()
	f, fl, v1, v2 := newRolloutFleet(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	fl.Verify = func(context.Context, []release.HostResult) error { cancel(); return nil }
	fl.Rollout = release.Rollout{Canary: 1, Batch: 1, Window: time.Minute, Checks: 2}
	_, err := fl.Deploy(ctx, v2)
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted while canary was being checked") {
		t.Fatalf("deploy error = %v", err)
	}
	f.assertAll(t, "after the interrupt", "a", v1.SHA)
}

// A rollout that would take every host out of the balancer at once, or
// more than MaxOut, is refused before anything happens on a host.
func TestRolloutRefusesTooManyHostsOut(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 3, "")
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	for _, c := range []struct {
		r    release.Rollout
		want string
	}{
		{release.Rollout{Balancer: newMemBalancer(hostNames(3))}, "every host would be out of load balancer \"test\" at once"},
		{release.Rollout{Batch: 2, MaxOut: 1, Balancer: newMemBalancer(hostNames(3))}, "more than MaxOut (1)"},
	} {
		fl.Rollout = c.r
		if _, err := fl.Deploy(context.Background(), v1); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("deploy error = %v, want %q", err, c.want)
		}
	}
	if _, err := os.Stat(f.root(0)); err == nil {
		t.Errorf("a refused rollout created %s", f.root(0))
	}
}

// newRolloutFleet is a test fleet of n hosts serving v0.1.0 in a, with
// v0.2.0 tagged to deploy; its restart records each dir it restarts with.
func newRolloutFleet(t *testing.T, n int) (*testFleet, *release.Fleet, release.Target, release.Target) {
	t.Helper()
	f := newTestFleet(t, n, "")
	f.opts.Requirements = nil
	f.opts.Restart = recordingRestart
	fl := f.fleet()
	v1, v2 := f.tag(t, "v0.1.0"), f.tag(t, "v0.2.0")
	f.mustDeploy(t, fl, v1)
	return f, fl, v1, v2
}
