package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/magefab/magefab/internal/load"
)

// loadOps are the steps measured under load: every deploy and rollback
// that replaces a running app (the first deploy has none yet).
var loadOps = []string{"cold2", "warm", "redeploy", "rollback"}

// rollingOps are the steps of the rolling switch measured under load.
var rollingOps = []string{"deploy", "rollback"}

// loadStats is what the requests sent during one step saw.
type loadStats struct {
	Rate             float64 // requests per second asked for
	Requests, Failed int
	WorstOutage      float64  // seconds: the longest run of failed requests to one host
	WorstHost        string   `json:",omitempty"`
	P50, P99         float64  // milliseconds, of the successful requests
	Elapsed          float64  // seconds the load ran
	Failures         []string `json:",omitempty"` // the first few
}

func (l *loadStats) String() string {
	s := fmt.Sprintf("%d requests, %d failed", l.Requests, l.Failed)
	if l.Failed > 0 {
		s += fmt.Sprintf(", worst outage %.3fs on %s", l.WorstOutage, l.WorstHost)
	}
	return s + fmt.Sprintf(", p50 %.2fms, p99 %.2fms", l.P50, l.P99)
}

func newLoadStats(rate float64, r load.Report) *loadStats {
	l := &loadStats{
		Rate: rate, Requests: r.Requests, Failed: r.Failed,
		WorstOutage: r.WorstOutage.Seconds(), WorstHost: r.WorstTarget,
		P50: ms(r.P50), P99: ms(r.P99), Elapsed: r.Elapsed.Seconds(),
	}
	for _, f := range r.Failures {
		l.Failures = append(l.Failures, f.String())
	}
	return l
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadTargets are the /version URLs of t's app on hosts web1..webN.
func loadTargets(n int, t *tool) []load.Target {
	var ts []load.Target
	for i, h := range hosts(n) {
		ts = append(ts, load.Target{Name: h, URL: fmt.Sprintf("http://%s:%d/version", addr(i), t.port)})
	}
	return ts
}

// startLoad starts the load on t's app for a step measured under load; it
// returns nil for the others.
func (b *bench) startLoad(ctx context.Context, n int, t *tool, op string) (*load.Run, error) {
	targets := loadTargets(n, t)
	switch {
	case b.o.load == 0:
		return nil, nil
	case t.loadVia != nil:
		if !slices.Contains(rollingOps, op) {
			return nil, nil
		}
		targets = t.loadVia()
	case !slices.Contains(loadOps, op) || !slices.Contains(b.o.tools, t.name):
		return nil, nil
	}
	return load.Start(ctx, targets, load.Options{Rate: b.o.load, Timeout: 2 * time.Second, MaxDuration: 20 * time.Minute})
}

// stopLoad stops the load of a step and keeps its report in s; a failed
// request of a slot tool, or of a tool that must serve every request (the
// rolling switch in batches), is a failure of the benchmark.
func (b *bench) stopLoad(n, run int, t *tool, op string, lr *load.Run, s *sample) {
	s.Load = newLoadStats(b.o.load, lr.Stop())
	if (t.slots || t.mustServe) && s.Load.Failed > 0 {
		b.loadFailures = append(b.loadFailures, fmt.Sprintf("n=%d run %d %s %s: %d of %d requests failed, e.g. %s",
			n, run+1, t.name, op, s.Load.Failed, s.Load.Requests, strings.Join(s.Load.Failures[:min(3, len(s.Load.Failures))], "; ")))
	}
}

// idle measures the load on t's app with no deploy running: the baseline
// of the latency.
func (b *bench) idle(ctx context.Context, n, run int, t *tool) {
	time.Sleep(500 * time.Millisecond) // let the previous command's leftovers settle
	s := sample{Hosts: n, Run: run + 1, Tool: t.name, Op: "idle"}
	lr, err := load.Start(ctx, loadTargets(n, t), load.Options{Rate: b.o.load, Timeout: 2 * time.Second, MaxDuration: b.o.idle})
	if err != nil {
		s.Err = err.Error()
		b.failures = append(b.failures, fmt.Sprintf("n=%d run %d %s idle load: %v", n, run+1, t.name, err))
	} else {
		select {
		case <-lr.Done():
		case <-ctx.Done():
		}
		b.stopLoad(n, run, t, "idle", lr, &s)
		s.Wall = s.Load.Elapsed
		s.OK = true
	}
	b.samples = append(b.samples, s)
	if s.Load != nil {
		fmt.Fprintf(os.Stderr, "bench: %6s n=%-3d run %d %-10s %-10s idle load: %s\n",
			time.Since(b.start).Round(time.Second), n, run+1, "idle", t.name, s.Load)
	}
}

// loadTable writes the requests sent during each step: per tool, host
// count and operation, the totals over the runs, the worst outage of any
// run, the medians of p50, p99 and wall time, and the median idle p99.
func (b *bench) loadTable(w *strings.Builder) {
	if b.o.load == 0 {
		return
	}
	fmt.Fprintf(w, "### Requests during a switch\n\n%g requests/s round robin over every host's `/version` during each step (new connection per request, 2 s timeout), and %s with no deploy for the idle p99. Requests and failed are totals over the runs; worst outage is the longest run of failed requests to one host, the worst of the runs; p50, p99, idle p99 and wall are medians over the runs.\n\n",
		b.o.load, b.o.idle)
	w.WriteString("| tool | hosts | op | requests | failed | worst outage | p50 | p99 | idle p99 | wall |\n|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	type cell struct {
		req, failed   int
		outage        float64
		p50, p99, wal []float64
	}
	get := func(n int, tool, op string) (c cell, ok bool) {
		for _, s := range b.samples {
			if s.Hosts != n || s.Tool != tool || s.Op != op || s.Load == nil {
				continue
			}
			ok = true
			c.req += s.Load.Requests
			c.failed += s.Load.Failed
			c.outage = max(c.outage, s.Load.WorstOutage)
			c.p50 = append(c.p50, s.Load.P50)
			c.p99 = append(c.p99, s.Load.P99)
			c.wal = append(c.wal, s.Wall)
		}
		return c, ok
	}
	for _, t := range b.o.tools {
		for _, n := range b.o.hosts {
			idle, _ := get(n, t, "idle")
			for _, op := range loadOps {
				c, ok := get(n, t, op)
				if !ok {
					continue
				}
				fmt.Fprintf(w, "| %s | %d | %s | %d | %d | %.3f s | %.2f ms | %.2f ms | %.2f ms | %s |\n",
					t, n, op, c.req, c.failed, c.outage, median(c.p50), median(c.p99), median(idle.p99), fmtS(median(c.wal)))
			}
		}
	}
	w.WriteString("\n")
	big := slices.Max(b.o.hosts)
	var goals []string
	for _, t := range b.o.tools {
		if t != "magefab-slots" && t != "magefab-port" {
			continue
		}
		req, failed := 0, 0
		worst := math.NaN() // the highest ratio of an op's median p99 to the idle p99
		idle, _ := get(big, t, "idle")
		for _, op := range loadOps {
			for _, n := range b.o.hosts {
				c, _ := get(n, t, op)
				req += c.req
				failed += c.failed
			}
			if c, ok := get(big, t, op); ok {
				if r := median(c.p99) / median(idle.p99); math.IsNaN(worst) || r > worst {
					worst = r
				}
			}
		}
		if req == 0 {
			goals = append(goals, fmt.Sprintf("| %s: failed requests, every deploy and rollback | – | 0 | not measured |", t))
			continue
		}
		met := func(ok bool) string {
			if ok {
				return "yes"
			}
			return "**no**"
		}
		goals = append(goals,
			fmt.Sprintf("| %s: failed requests, every deploy and rollback | %d of %d | 0 | %s |", t, failed, req, met(failed == 0)),
			fmt.Sprintf("| %s: p99 during a step / idle p99, %d hosts (worst op) | %.2f× | 2× | %s |", t, big, worst, met(worst <= 2)))
		if math.IsNaN(worst) {
			goals[len(goals)-1] = fmt.Sprintf("| %s: p99 during a step / idle p99, %d hosts | – | 2× | not measured |", t, big)
		}
		if c, ok := get(big, t, "warm"); ok {
			if cl, ok := get(big, "magefab", "warm"); ok {
				ratio := median(c.wal) / median(cl.wal)
				goals = append(goals, fmt.Sprintf("| %s: warm wall / classic magefab's, %d hosts | %.2f× | 1× | %s |", t, big, ratio, met(ratio <= 1)))
			}
		}
	}
	if len(goals) > 0 {
		w.WriteString("| goal (slots) | measured | limit | met |\n|---|---:|---:|---|\n" + strings.Join(goals, "\n") + "\n\n")
	}
}
