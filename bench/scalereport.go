package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// scaleOps are the operations of the scaling run, in order.
var scaleOps = []string{"cold1", "cold2", "warm", "redeploy", "rollback"}

// scaleRow is one operation at one host count: medians over the runs.
type scaleRow struct {
	n        int
	op       string
	wall     float64 // seconds
	cpu      float64 // the deploying process's CPU seconds
	rss      float64 // its peak RSS, MB
	conns    float64 // SSH connections per host, mean
	sess     float64 // SSH sessions per host, mean
	sessMost int     // the most sessions any host saw
	hsPeak   float64 // the most connections the hosts accepted in any one second
	hostCPU  float64 // CPU seconds per host on the hosts, mean
}

// handshakePeak is the most handshakes (accepted connections, times in
// seconds) within any one second.
func handshakePeak(times []float64) float64 {
	most := 0
	for i, t := range times {
		j, _ := slices.BinarySearch(times, t+1)
		most = max(most, j-i)
	}
	return float64(most)
}

// rows returns the medians of every operation at every host count
// measured.
func (s *scaleApp) rows(counts []int) []scaleRow {
	var out []scaleRow
	for _, n := range counts {
		for _, op := range scaleOps {
			var wall, cpu, rss, conns, sess, hs, hcpu []float64
			most := 0
			for _, x := range s.samples {
				if x.Hosts != n || x.Op != op || !x.OK {
					continue
				}
				c, _ := x.perHost(x.Conns)
				m, mx := x.perHost(x.Sessions)
				wall, cpu, rss = append(wall, x.Wall), append(cpu, x.CPU), append(rss, x.MaxRSSMB)
				conns, sess = append(conns, c), append(sess, m)
				hs, hcpu = append(hs, handshakePeak(x.Handshakes)), append(hcpu, meanF(x.HostCPU))
				most = max(most, mx)
			}
			if len(wall) == 0 {
				continue
			}
			out = append(out, scaleRow{n: n, op: op, wall: median(wall), cpu: median(cpu), rss: median(rss),
				conns: median(conns), sess: median(sess), sessMost: most, hsPeak: median(hs), hostCPU: median(hcpu)})
		}
	}
	return out
}

// fitLine is the least-squares line y = a + b x.
func fitLine(xs, ys []float64) (a, b float64) {
	n := float64(len(xs))
	if n < 2 {
		return math.NaN(), math.NaN()
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return math.NaN(), math.NaN()
	}
	b = (n*sxy - sx*sy) / d
	return (sy - b*sx) / n, b
}

// opFit fits f of op's rows against the host count.
func opFit(rows []scaleRow, op string, f func(scaleRow) float64) (a, b float64) {
	var xs, ys []float64
	for _, r := range rows {
		if r.op == op {
			xs, ys = append(xs, float64(r.n)), append(ys, f(r))
		}
	}
	return fitLine(xs, ys)
}

// markdown writes the scaling run's table and the lines fitted to it.
func (s *scaleApp) markdown(w *strings.Builder, counts []int) {
	rows := s.rows(counts)
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "Trivial app (no requirements, restart is `true`), magefab with MAGEFAB_PARALLEL = hosts, %d run(s), medians. "+
		"CPU and RSS are the deploying process's (mage and the magefile it runs); handshakes/s is the most SSH connections the hosts accepted in any one second; "+
		"host CPU is what each host spent (its sshd and everything the sessions ran).\n\n", s.runs)
	w.WriteString("| hosts | operation | wall | CPU | CPU per host | peak RSS | connections/host | sessions/host (max) | handshakes/s | host CPU/host |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| %d | %s | %.2f s | %.2f s | %.1f ms | %.0f MB | %.1f | %.1f (%d) | %.0f | %.2f s |\n",
			r.n, r.op, r.wall, r.cpu, 1000*r.cpu/float64(r.n), r.rss, r.conns, r.sess, r.sessMost, r.hsPeak, r.hostCPU)
	}
	w.WriteString("\nLines fitted over the host counts (least squares): the deploying process's CPU and peak RSS, a fixed part plus a part per host.\n\n")
	w.WriteString("| operation | CPU: fixed + per host | peak RSS: fixed + per host | host CPU per host (median over counts) |\n|---|---:|---:|---:|\n")
	for _, op := range scaleOps {
		ca, cb := opFit(rows, op, func(r scaleRow) float64 { return r.cpu })
		ra, rb := opFit(rows, op, func(r scaleRow) float64 { return r.rss })
		var hc []float64
		for _, r := range rows {
			if r.op == op {
				hc = append(hc, r.hostCPU)
			}
		}
		if math.IsNaN(cb) {
			continue
		}
		fmt.Fprintf(w, "| %s | %.3f s + %.2f ms | %.1f MB + %.0f KB | %.2f s |\n", op, ca, 1000*cb, ra, 1024*rb, median(hc))
	}
	w.WriteString("\n")
}

// svg draws the scaling run: wall time, the deploying process's CPU and
// its peak RSS against the number of hosts, one line per operation.
func (s *scaleApp) svg(counts []int) string {
	rows := s.rows(counts)
	if len(rows) == 0 {
		return ""
	}
	const (
		pw, ph = 300.0, 230.0 // one panel
		ml, mt = 52.0, 34.0   // margins: left (the axis labels), top (the title)
		mb     = 36.0
		gap    = 24.0
	)
	panels := []struct {
		title string
		unit  string
		f     func(scaleRow) float64
	}{
		{"wall time", "s", func(r scaleRow) float64 { return r.wall }},
		{"deploying process: CPU", "s", func(r scaleRow) float64 { return r.cpu }},
		{"deploying process: peak RSS", "MB", func(r scaleRow) float64 { return r.rss }},
	}
	colors := map[string]string{"cold1": "#888888", "cold2": "#bbbbbb", "warm": "#d62728", "redeploy": "#1f77b4", "rollback": "#2ca02c"}
	maxN := float64(slices.Max(counts))
	width := float64(len(panels))*(ml+pw+gap) + 10
	height := mt + ph + mb + 28
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for pi, p := range panels {
		x0 := float64(pi)*(ml+pw+gap) + ml
		top := 0.0
		for _, r := range rows {
			top = max(top, p.f(r))
		}
		top = niceCeil(top)
		px := func(n float64) float64 { return x0 + n/maxN*pw }
		py := func(v float64) float64 { return mt + ph - v/top*ph }
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="13" font-weight="bold">%s (%s)</text>`+"\n", x0, mt-14, p.title, p.unit)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#444"/>`+"\n", x0, mt, pw, ph)
		for i := 0; i <= 4; i++ {
			v := top * float64(i) / 4
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, py(v), x0+pw, py(v))
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-4, py(v)+4, trimFloat(v))
		}
		for _, n := range counts {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n", px(float64(n)), mt+ph+14, n)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">hosts</text>`+"\n", x0+pw/2, mt+ph+30)
		for _, op := range scaleOps {
			var pts, dots []string
			for _, r := range rows {
				if r.op == op {
					x, y := px(float64(r.n)), py(p.f(r))
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
					dots = append(dots, fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`, x, y, colors[op]))
				}
			}
			if len(pts) == 0 {
				continue
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colors[op])
			b.WriteString(strings.Join(dots, "\n") + "\n")
		}
	}
	lx := ml
	for _, op := range scaleOps {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="14" height="4" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`+"\n", lx, height-12, colors[op], lx+18, height-8, op)
		lx += 90
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// reportScaling reports the scaling runs recorded in o.from together:
// results.md and scaling.svg in o.out (by default, the directory of the
// first file).
func reportScaling(o options) error {
	s := &scaleApp{}
	var counts []int
	for _, f := range o.from {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var samples []sample
		if err := json.Unmarshal(b, &samples); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for _, x := range samples {
			if x.Tool != "trivial" {
				continue
			}
			s.samples = append(s.samples, x)
			s.runs = max(s.runs, x.Run)
			if !slices.Contains(counts, x.Hosts) {
				counts = append(counts, x.Hosts)
			}
		}
	}
	if len(s.samples) == 0 {
		return fmt.Errorf("no scaling samples in %s", strings.Join(o.from, ", "))
	}
	slices.Sort(counts)
	out := o.out
	if out == "" {
		out = filepath.Dir(o.from[0])
	}
	var md strings.Builder
	s.markdown(&md, counts)
	if err := os.WriteFile(filepath.Join(out, "scaling.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(md.String())
	return os.WriteFile(filepath.Join(out, "scaling.svg"), []byte(s.svg(counts)), 0o644)
}
