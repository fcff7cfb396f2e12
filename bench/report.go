package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// agg is a tool's result for one operation in one run; "cold" is cold1
// and cold2 together.
type agg struct {
	hostCPU            float64 // CPU seconds per host on the hosts (mean over hosts)
	wall, cpu, rss     float64
	sessMean, connMean float64
	sessMost, connMost int
	markers            map[string][2]float64
	parts              int
}

func (a *agg) add(s sample) {
	a.wall += s.Wall
	a.hostCPU += meanF(s.HostCPU)
	a.cpu += s.CPU
	a.rss = max(a.rss, s.MaxRSSMB)
	c, _ := s.perHost(s.Conns)
	m, _ := s.perHost(s.Sessions)
	a.connMean += c
	a.sessMean += m
	a.parts++
}

type key struct {
	n        int
	tool, op string
	run      int
}

type results struct {
	byKey map[key][]sample
	runs  map[int][]int // host count -> runs seen
}

func newResults(samples []sample) *results {
	r := &results{byKey: map[key][]sample{}, runs: map[int][]int{}}
	for _, s := range samples {
		k := key{s.Hosts, s.Tool, s.Op, s.Run}
		r.byKey[k] = append(r.byKey[k], s)
		if !slices.Contains(r.runs[s.Hosts], s.Run) {
			r.runs[s.Hosts] = append(r.runs[s.Hosts], s.Run)
		}
	}
	return r
}

// get returns a tool's result for op in one run, if every part of it
// succeeded. The floor is the mean of the run's floor samples.
func (r *results) get(n int, tool, op string, run int) (agg, bool) {
	parts := []string{op}
	if op == "cold" {
		parts = []string{"cold1", "cold2"}
	}
	var a agg
	perHostSess := map[int]int{}
	perHostConn := map[int]int{}
	for _, p := range parts {
		ss := r.byKey[key{n, tool, p, run}]
		if len(ss) == 0 {
			return a, false
		}
		if op == "floor" {
			var fa agg
			for _, s := range ss {
				if !s.OK {
					return a, false
				}
				fa.add(s)
				for i, v := range s.Sessions {
					perHostSess[i] = max(perHostSess[i], v)
				}
				for i, v := range s.Conns {
					perHostConn[i] = max(perHostConn[i], v)
				}
			}
			k := float64(fa.parts)
			a = agg{wall: fa.wall / k, hostCPU: fa.hostCPU / k, cpu: fa.cpu / k, rss: fa.rss, sessMean: fa.sessMean / k, connMean: fa.connMean / k, parts: 1, markers: ss[0].Markers}
			break
		}
		s := ss[0]
		if !s.OK {
			return a, false
		}
		a.add(s)
		for i, v := range s.Sessions {
			perHostSess[i] += v
		}
		for i, v := range s.Conns {
			perHostConn[i] += v
		}
		if len(parts) == 1 {
			a.markers = s.Markers
		}
	}
	for _, v := range perHostSess {
		a.sessMost = max(a.sessMost, v)
	}
	for _, v := range perHostConn {
		a.connMost = max(a.connMost, v)
	}
	return a, true
}

// series returns f of a tool's result in every run where it succeeded.
func (r *results) series(n int, tool, op string, f func(a agg) float64) []float64 {
	var out []float64
	for _, run := range r.runs[n] {
		if a, ok := r.get(n, tool, op, run); ok {
			out = append(out, f(a))
		}
	}
	return out
}

// paired returns f(magefab's, peer's, floor) for every run where all three
// succeeded: the pair was measured in the same run, one right after the
// other.
func (r *results) paired(n int, op, peer string, f func(mf, p, floor agg) float64) []float64 {
	var out []float64
	for _, run := range r.runs[n] {
		mf, ok1 := r.get(n, "magefab", op, run)
		p, ok2 := r.get(n, peer, op, run)
		fl, ok3 := r.get(n, "floor", "floor", run)
		if ok1 && ok2 && ok3 {
			out = append(out, f(mf, p, fl))
		}
	}
	return out
}

func wall(a agg) float64 { return a.wall }

func fmtS(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.2f s", x)
}

func fmtX(x float64) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.3f", x)
}

var opNames = map[string]string{
	"cold":       "cold (first deploy + first deploy into the second dir)",
	"cold1":      "first deploy",
	"cold2":      "first deploy into the second dir",
	"warm":       "warm (new commit, same requirements)",
	"redeploy":   "redeploy of the live release",
	"rollback":   "rollback",
	"floor":      "floor: maint:restart",
	"plainfloor": "floor with plain `mage` (no MAGEFILE_HASHFAST)",
}

func isFloor(op string) bool { return op == "floor" || op == "plainfloor" }

// report writes results.md and samples.json into the output directory and
// prints the results; it fails if any command or verification failed.
func (b *bench) report() error {
	all := b.samples
	if b.roll != nil {
		all = append(slices.Clone(all), b.roll.samples...)
	}
	if b.scaleApp != nil {
		all = append(slices.Clone(all), b.scaleApp.samples...)
		if svg := b.scaleApp.svg(b.o.scale); svg != "" {
			if err := os.WriteFile(filepath.Join(b.o.out, "scaling.svg"), []byte(svg), 0o644); err != nil {
				return err
			}
		}
	}
	js, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.o.out, "samples.json"), js, 0o644); err != nil {
		return err
	}
	md := b.markdown()
	if err := os.WriteFile(filepath.Join(b.o.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	fmt.Fprintf(os.Stderr, "bench: results in %s (results.md, samples.json, logs/; scaling.svg with -scale)\n", b.o.out)
	if len(b.failures) > 0 {
		return fmt.Errorf("%d command(s) or verification(s) failed:\n  %s", len(b.failures), strings.Join(b.failures, "\n  "))
	}
	if len(b.loadFailures) > 0 {
		return fmt.Errorf("a tool that must serve every request (slots, rolling switch) failed requests in %d step(s):\n  %s", len(b.loadFailures), strings.Join(b.loadFailures, "\n  "))
	}
	if len(all) == 0 {
		return errors.New("nothing was measured")
	}
	return nil
}

func (b *bench) peers() []string {
	var p []string
	for _, t := range b.o.tools {
		if t != "magefab" {
			p = append(p, t)
		}
	}
	return p
}

func (b *bench) markdown() string {
	r := newResults(b.samples)
	var w strings.Builder
	host, _ := os.Hostname()
	cpus := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		cpus = strings.Count(string(b), "processor\t:")
	}
	fmt.Fprintf(&w, "## Deploy benchmark, %s\n\n", b.start.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&w, "Machine %s: %d CPUs, shared with other work. Hosts %v, %d run(s) each, medians over the runs; ratios are the median of the per-run ratios of commands run one after the other. Fleet: %s, port %d. Took %s.\n\n",
		host, cpus, b.o.hosts, b.o.runs, b.f.dir, b.f.port, time.Since(b.start).Round(time.Second))
	ops := []string{}
	for _, op := range []string{"cold", "warm", "redeploy", "rollback"} {
		if slices.Contains(b.o.ops, op) {
			ops = append(ops, op)
		}
	}
	tools := b.o.tools
	peers := b.peers()
	if len(tools) > 0 {
		b.toolTables(&w, r, ops, tools, peers)
	}
	b.rollingTable(&w)
	if len(b.loadFailures) > 0 {
		w.WriteString("### Failed requests of the tools that must serve every request\n\n")
		for _, f := range b.loadFailures {
			fmt.Fprintf(&w, "- %s\n", f)
		}
		w.WriteString("\n")
	}
	if len(b.failures) > 0 {
		w.WriteString("### Failures\n\n")
		for _, f := range b.failures {
			fmt.Fprintf(&w, "- %s\n", strings.ReplaceAll(f, "\n", " "))
		}
		w.WriteString("\n")
	}
	return w.String()
}

// toolTables writes the tools' tables: per host count, the goals, the
// requests during a switch, the work on the hosts, the scaling and the
// phases.
func (b *bench) toolTables(w *strings.Builder, r *results, ops, tools, peers []string) {
	for _, n := range b.o.hosts {
		fmt.Fprintf(w, "### %d host(s)\n\n", n)
		w.WriteString("| operation |")
		for _, t := range tools {
			fmt.Fprintf(w, " %s |", t)
		}
		for _, p := range peers {
			if slices.Contains(tools, "magefab") {
				fmt.Fprintf(w, " magefab/%s |", p)
			}
		}
		w.WriteString(" sessions/host (conns/host) |\n|---|")
		w.WriteString(strings.Repeat("---:|", len(tools)))
		if slices.Contains(tools, "magefab") {
			w.WriteString(strings.Repeat("---:|", len(peers)))
		}
		w.WriteString("---|\n")
		for _, op := range append(ops, "floor", "plainfloor") {
			fmt.Fprintf(w, "| %s |", opNames[op])
			for _, t := range tools {
				if isFloor(op) && t != "magefab" {
					w.WriteString(" |")
					continue
				}
				tt := t
				if isFloor(op) {
					tt = "floor"
				}
				fmt.Fprintf(w, " %s |", fmtS(median(r.series(n, tt, op, wall))))
			}
			if slices.Contains(tools, "magefab") {
				for _, p := range peers {
					if isFloor(op) {
						w.WriteString(" |")
						continue
					}
					fmt.Fprintf(w, " %s |", fmtX(median(r.paired(n, op, p, func(mf, pa, _ agg) float64 { return mf.wall / pa.wall }))))
				}
			}
			var cells []string
			for _, t := range tools {
				if isFloor(op) && t != "magefab" {
					continue
				}
				tt := t
				if isFloor(op) {
					tt = "floor"
				}
				sess := median(r.series(n, tt, op, func(a agg) float64 { return a.sessMean }))
				conn := median(r.series(n, tt, op, func(a agg) float64 { return a.connMean }))
				most := slices.Max(append(r.series(n, tt, op, func(a agg) float64 { return float64(a.sessMost) }), 0))
				cells = append(cells, fmt.Sprintf("%s %.1f (%.1f, max %g)", tt, sess, conn, most))
			}
			fmt.Fprintf(w, " %s |\n", strings.Join(cells, "; "))
		}
		w.WriteString("\n")
		if slices.Contains(tools, "magefab") {
			fmt.Fprintf(w, "Above the floor (command minus the same run's floor), %d host(s):\n\n", n)
			w.WriteString("| operation | magefab |")
			for _, p := range peers {
				fmt.Fprintf(w, " %s | magefab/%s |", p, p)
			}
			w.WriteString("\n|---|---:|" + strings.Repeat("---:|---:|", len(peers)) + "\n")
			for _, op := range ops {
				above := func(a, fl agg) float64 { return a.wall - fl.wall }
				var mfAbove []float64
				for _, run := range r.runs[n] {
					mf, ok1 := r.get(n, "magefab", op, run)
					fl, ok2 := r.get(n, "floor", "floor", run)
					if ok1 && ok2 {
						mfAbove = append(mfAbove, above(mf, fl))
					}
				}
				fmt.Fprintf(w, "| %s | %s |", op, fmtS(median(mfAbove)))
				for _, p := range peers {
					pa := median(r.paired(n, op, p, func(_, pa, fl agg) float64 { return above(pa, fl) }))
					ratio := median(r.paired(n, op, p, func(mf, pa, fl agg) float64 { return above(mf, fl) / above(pa, fl) }))
					fmt.Fprintf(w, " %s | %s |", fmtS(pa), fmtX(ratio))
				}
				w.WriteString("\n")
			}
			w.WriteString("\n")
		}
	}
	b.goals(w, r)
	b.loadTable(w)
	b.hostWork(w, r)
	b.scalingTable(w, r)
	b.phases(w, r)
}

// goals checks the targets of the benchmark's issue, each from ratios
// measured in the same runs.
func (b *bench) goals(w *strings.Builder, r *results) {
	if !slices.Contains(b.o.tools, "magefab") {
		return
	}
	big, small := slices.Max(b.o.hosts), slices.Min(b.o.hosts)
	type goal struct {
		what  string
		value float64
		limit float64
		unit  string
	}
	var gs []goal
	above := func(a, fl agg) float64 { return a.wall - fl.wall }
	has := func(t string) bool { return slices.Contains(b.o.tools, t) }
	if has("fabric") && slices.Contains(b.o.ops, "warm") {
		gs = append(gs,
			goal{fmt.Sprintf("warm above floor vs Fabric's, %d hosts", big), median(r.paired(big, "warm", "fabric", func(mf, p, fl agg) float64 { return above(mf, fl) / above(p, fl) })), 0.15, "×"},
			goal{fmt.Sprintf("warm above floor vs Fabric's, %d host(s)", small), median(r.paired(small, "warm", "fabric", func(mf, p, fl agg) float64 { return above(mf, fl) / above(p, fl) })), 0.2, "×"})
	}
	maxSess := func(op string) float64 {
		m := 0.0
		for _, n := range b.o.hosts {
			m = max(m, slices.Max(append(r.series(n, "magefab", op, func(a agg) float64 { return float64(a.sessMost) }), 0)))
		}
		return m
	}
	if slices.Contains(b.o.ops, "warm") {
		gs = append(gs, goal{"warm: sessions per host (most, any host count)", maxSess("warm"), 3, ""})
	}
	if slices.Contains(b.o.ops, "redeploy") {
		var v []float64
		for _, run := range r.runs[big] {
			mf, ok1 := r.get(big, "magefab", "redeploy", run)
			fl, ok2 := r.get(big, "floor", "floor", run)
			if ok1 && ok2 {
				v = append(v, above(mf, fl))
			}
		}
		gs = append(gs, goal{fmt.Sprintf("redeploy above floor, %d hosts", big), median(v), 0.5, " s"})
	}
	if slices.Contains(b.o.ops, "rollback") {
		var v []float64
		for _, run := range r.runs[big] {
			mf, ok1 := r.get(big, "magefab", "rollback", run)
			fl, ok2 := r.get(big, "floor", "floor", run)
			if ok1 && ok2 {
				v = append(v, mf.wall/fl.wall)
			}
		}
		gs = append(gs, goal{fmt.Sprintf("rollback vs floor, %d hosts", big), median(v), 1.1, "×"},
			goal{"rollback: sessions per host (most, any host count)", maxSess("rollback"), 2, ""})
	}
	if slices.Contains(b.o.ops, "cold") {
		for _, p := range b.peers() {
			gs = append(gs, goal{fmt.Sprintf("cold vs %s's cold, %d hosts", p, big), median(r.paired(big, "cold", p, func(mf, pa, _ agg) float64 { return mf.wall / pa.wall })), 0.35, "×"})
		}
		// With plain mage, each of the two deploys pays the rebuild that
		// plainfloor minus floor measures in the same run.
		for _, p := range b.peers() {
			var v []float64
			for _, run := range r.runs[big] {
				mf, ok1 := r.get(big, "magefab", "cold", run)
				pa, ok2 := r.get(big, p, "cold", run)
				fl, ok3 := r.get(big, "floor", "floor", run)
				pf, ok4 := r.get(big, "floor", "plainfloor", run)
				if ok1 && ok2 && ok3 && ok4 {
					v = append(v, (mf.wall+2*(pf.wall-fl.wall))/pa.wall)
				}
			}
			gs = append(gs, goal{fmt.Sprintf("cold vs %s's cold, %d hosts, run with plain `mage`", p, big), median(v), 0.35, "×"})
		}
	}
	w.WriteString("### Goals\n\n| goal | measured | limit | met |\n|---|---:|---:|---|\n")
	for _, g := range gs {
		met := "yes"
		switch {
		case math.IsNaN(g.value):
			met = "not measured"
		case g.value > g.limit:
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %.3f%s | %g%s | %s |\n", g.what, g.value, g.unit, g.limit, g.unit, met)
	}
	w.WriteString("\n")
}

// hostWork shows the CPU time each operation cost on every host: on a
// machine that runs all the hosts, it is what the wall time at many hosts
// is made of, and it does not depend on what else the machine runs.
func (b *bench) hostWork(w *strings.Builder, r *results) {
	w.WriteString("### CPU time spent on each host\n\nCPU seconds per host (sshd and every process the sessions ran, not the app's own server), medians.\n\n| operation |")
	for _, n := range b.o.hosts {
		for _, t := range b.o.tools {
			fmt.Fprintf(w, " %s, %d |", t, n)
		}
	}
	w.WriteString("\n|---|" + strings.Repeat("---:|", len(b.o.hosts)*len(b.o.tools)) + "\n")
	for _, op := range []string{"cold1", "cold2", "warm", "redeploy", "rollback", "floor"} {
		if !isFloor(op) && !slices.Contains(b.o.ops, strings.TrimRight(op, "12")) {
			continue
		}
		fmt.Fprintf(w, "| %s |", op)
		for _, n := range b.o.hosts {
			for _, t := range b.o.tools {
				tt := t
				if isFloor(op) {
					if t != "magefab" {
						w.WriteString(" |")
						continue
					}
					tt = "floor"
				}
				fmt.Fprintf(w, " %.2f |", median(r.series(n, tt, op, func(a agg) float64 { return a.hostCPU })))
			}
		}
		w.WriteString("\n")
	}
	w.WriteString("\n")
}

// scalingTable shows how wall time, CPU time and peak RSS of each tool's
// deploying process grow with the number of hosts.
func (b *bench) scalingTable(w *strings.Builder, r *results) {
	w.WriteString("### Scaling of the deploying process\n\nWall time, CPU time (user+system, with the children it waited for) and peak RSS of the deploying process, medians.\n\n")
	w.WriteString("| tool | operation |")
	for _, n := range b.o.hosts {
		fmt.Fprintf(w, " %d host(s): wall / CPU / RSS |", n)
	}
	w.WriteString("\n|---|---|" + strings.Repeat("---:|", len(b.o.hosts)) + "\n")
	for _, t := range append(slices.Clone(b.o.tools), "floor") {
		for _, op := range []string{"cold1", "cold2", "warm", "redeploy", "rollback", "floor", "plainfloor"} {
			if (t == "floor") != isFloor(op) {
				continue
			}
			if !isFloor(op) && !slices.Contains(b.o.ops, strings.TrimRight(op, "12")) {
				continue
			}
			fmt.Fprintf(w, "| %s | %s |", t, op)
			for _, n := range b.o.hosts {
				fmt.Fprintf(w, " %.2f s / %.2f s / %.0f MB |",
					median(r.series(n, t, op, wall)), median(r.series(n, t, op, func(a agg) float64 { return a.cpu })), median(r.series(n, t, op, func(a agg) float64 { return a.rss })))
			}
			w.WriteString("\n")
		}
	}
	w.WriteString("\n")
	if b.scaleApp != nil {
		b.scaleApp.markdown(w, b.o.scale)
	}
}

// phases shows when magefab's progress lines appeared, to see where its
// time goes.
func (b *bench) phases(w *strings.Builder, r *results) {
	if !slices.Contains(b.o.tools, "magefab") {
		return
	}
	n := slices.Max(b.o.hosts)
	fmt.Fprintf(w, "### Where magefab's time goes, %d hosts\n\nSeconds since the command started when a line with this text first / last appeared (any host), medians.\n\n", n)
	w.WriteString("| operation | line | first | last |\n|---|---|---:|---:|\n")
	for _, op := range []string{"cold1", "cold2", "warm", "redeploy", "rollback", "floor", "plainfloor"} {
		tool := "magefab"
		if isFloor(op) {
			tool = "floor"
		}
		for _, p := range magefabPatterns {
			var first, last []float64
			for _, run := range r.runs[n] {
				if a, ok := r.get(n, tool, op, run); ok {
					if m, ok := a.markers[p]; ok {
						first = append(first, m[0])
						last = append(last, m[1])
					}
				}
			}
			if len(first) > 0 {
				fmt.Fprintf(w, "| %s | %q | %.2f | %.2f |\n", op, strings.TrimSpace(p), median(first), median(last))
			}
		}
		fmt.Fprintf(w, "| %s | (exit) | %.2f | |\n", op, median(r.series(n, tool, op, wall)))
	}
	w.WriteString("\n")
}
