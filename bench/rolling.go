package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/magefab/magefab/internal/load"
	mfrelease "github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/haproxy"
)

// The rolling-switch comparison (-rolling N): one app with a classic
// (restart) switch on hosts web1..webN behind an HAProxy on loopback, its
// backend checking every host's /version, deployed by two magefiles that
// differ only in Config.Rollout:
//
//   - magefab-allatonce: no Rollout, every host switches and restarts at
//     once;
//   - magefab-rolling: Canary "1", Batch "25%", a health window, and
//     Rollout.HAProxy: each stage is drained out of the backend, switched
//     and restarted, checked, put back and waited healthy.
//
// Each does N deploys (v0.3.0 over the live v0.2.0) and N rollbacks, the
// two tools alternating, under the load (-load) sent through HAProxy's
// frontend, while HAProxy's stats socket is read every rollingPoll for the
// hosts out of service (maintenance, drain, or down per its check).
// Once per run, "restart" is magefab's maint:restart of one batch of hosts,
// the unit of the wall-time limit.

// Names of the two tools of the comparison.
const (
	allAtOnceTool = "magefab-allatonce"
	rollingTool   = "magefab-rolling"
)

// The rollout measured: a canary host, then batches of a quarter of the
// fleet, each checked over rollingWindow.
const (
	rollingCanary = 1
	rollingBatch  = 25 // percent
	rollingWindow = time.Second
	rollingPoll   = 50 * time.Millisecond
)

// rollingBatchSize is Batch "25%" of n hosts, as magetargets reads it.
func rollingBatchSize(n int) int {
	return max(int(math.Ceil(float64(rollingBatch)*float64(n)/100)), 1)
}

// rollingStages is how many stages the rollout of n hosts has: the canary
// and the batches of the rest.
func rollingStages(n int) int {
	if n <= rollingCanary {
		return 1
	}
	return 1 + (n-rollingCanary+rollingBatchSize(n)-1)/rollingBatchSize(n)
}

// rollingLimit is MaxOut's default: the largest stage.
func rollingLimit(n int) int { return min(n, max(rollingCanary, rollingBatchSize(n))) }

// outStats is what HAProxy's stats socket said of the backend's servers
// during one step.
type outStats struct {
	Hosts   int // servers in the backend
	MaxOut  int // the most out of service at one look
	Limit   int // MaxOut of the rollout (the largest stage); 0 for all at once
	Looks   int // looks at the stats socket
	Errors  int // looks that failed
	MaxSeen []string
}

func (o *outStats) String() string {
	s := fmt.Sprintf("at most %d of %d hosts out of service (%.0f%%) over %d looks", o.MaxOut, o.Hosts, 100*o.share(), o.Looks)
	if o.Limit > 0 {
		s += fmt.Sprintf(", limit %d", o.Limit)
	}
	if o.Errors > 0 {
		s += fmt.Sprintf(", %d unreadable", o.Errors)
	}
	return s
}

func (o *outStats) share() float64 {
	if o == nil || o.Hosts == 0 {
		return math.NaN()
	}
	return float64(o.MaxOut) / float64(o.Hosts)
}

// rollingFront is an HAProxy on loopback in front of the app of hosts
// web1..webN: frontend on 127.0.0.1:port, backend "app" with a server per
// host checked on /version every 100ms (down after 2 failed checks, up
// after 2 passing ones; a check may take 2s to answer, the connection
// 100ms), no retries, the runtime API at level admin on admin.sock in dir.
// Its pid is in dir/haproxy.pid while it runs.
type rollingFront struct {
	dir     string
	port    int // the frontend's
	appPort int
	n       int
	cmd     *exec.Cmd
	done    chan struct{}
}

func (h *rollingFront) socket() string { return filepath.Join(h.dir, "admin.sock") }

func (h *rollingFront) balancer() *haproxy.Balancer {
	return &haproxy.Balancer{Socket: h.socket(), Backend: "app"}
}

func (h *rollingFront) url() string { return fmt.Sprintf("http://127.0.0.1:%d/version", h.port) }

const rollingHAProxyConf = `global
    stats socket %s mode 600 level admin
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    timeout check 2s
    retries 0
frontend web
    bind 127.0.0.1:%d
    default_backend app
backend app
    option httpchk GET /version
    default-server inter 100ms fastinter 100ms downinter 100ms fall 2 rise 2
%s`

// start runs HAProxy in front of n hosts and waits until every server is
// in service.
func (h *rollingFront) start(ctx context.Context, n int) error {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return fmt.Errorf("the rolling switch needs haproxy (Debian: apt-get install haproxy): %w", err)
	}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return err
	}
	var servers strings.Builder
	for i, name := range hosts(n) {
		fmt.Fprintf(&servers, "    server %s %s:%d check\n", name, addr(i), h.appPort)
	}
	conf := filepath.Join(h.dir, "haproxy.cfg")
	if err := os.WriteFile(conf, fmt.Appendf(nil, rollingHAProxyConf, h.socket(), h.port, servers.String()), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(h.dir, "haproxy.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-db", "-q", "-f", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting haproxy: %w", err)
	}
	h.cmd, h.n, h.done = cmd, n, make(chan struct{})
	go func() { cmd.Wait(); close(h.done) }()
	if err := os.WriteFile(filepath.Join(h.dir, "haproxy.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		h.stop()
		return err
	}
	if err := h.waitUp(ctx, time.Minute); err != nil {
		h.stop()
		return err
	}
	return nil
}

// waitUp waits until HAProxy has every server in service.
func (h *rollingFront) waitUp(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b := h.balancer()
	for {
		select {
		case <-h.done:
			return fmt.Errorf("haproxy exited (log: %s)", filepath.Join(h.dir, "haproxy.log"))
		default:
		}
		st, err := b.States(ctx, hosts(h.n)) // fails until the socket is there
		var out []string
		for _, name := range hosts(h.n) {
			if st[name] != mfrelease.InService {
				out = append(out, fmt.Sprintf("%s %s", name, st[name]))
			}
		}
		if err == nil && len(out) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("haproxy: not every server in service after %s: %s %v", timeout, strings.Join(out, ", "), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop stops the HAProxy this run started, by the process it holds.
func (h *rollingFront) stop() {
	if h.cmd == nil {
		return
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
	}
	os.Remove(filepath.Join(h.dir, "haproxy.pid"))
	h.cmd = nil
}

// watch reads the backend's states every rollingPoll until the returned
// function is called, which gives what it saw.
func (h *rollingFront) watch(ctx context.Context, limit int) func() *outStats {
	ctx, cancel := context.WithCancel(ctx)
	b := h.balancer()
	names := hosts(h.n)
	o := &outStats{Hosts: h.n, Limit: limit}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := b.States(lctx, names)
			lcancel()
			if ctx.Err() != nil {
				return
			}
			o.Looks++
			if err != nil {
				o.Errors++
			} else {
				var out []string
				for _, name := range names {
					if st[name] != mfrelease.InService {
						out = append(out, name+" "+string(st[name]))
					}
				}
				if len(out) > o.MaxOut {
					o.MaxOut, o.MaxSeen = len(out), out
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(rollingPoll):
			}
		}
	}()
	return func() *outStats {
		cancel()
		wg.Wait()
		return o
	}
}

// rollingAppStart starts the app (e2e.AppPy) with a listen backlog of 128
// connections, as the slot app has, instead of Python's default of 5:
// with 5, a few hundred new connections a second on a busy machine
// overflow it whether or not a deploy runs, and the dropped connections
// wait for the client's SYN retransmission (1 s), or time out.
const rollingAppStart = `env/bin/python -c 'import http.server, runpy, sys; http.server.ThreadingHTTPServer.request_queue_size = 128; sys.argv = sys.argv[1:]; runpy.run_path("app.py", run_name="__main__")' app.py "$addr" "$PORT"`

// rollingMagefile is the magefile of a tool of the comparison: the
// magefab tool's, from the app's repository (RootDir), with VersionURL,
// and rollout (Config.Rollout's fields) when it is not empty.
func rollingMagefile(w *workspace, unit string, port int, rollout string) string {
	extra := fmt.Sprintf("RootDir: %q,\n\t\tVersionURL: \"http://{{.HostName}}:%d/version\",", w.app, port)
	if rollout != "" {
		extra += "\n\t\tRollout: magetargets.Rollout{" + rollout + "},"
	}
	return e2eMagefile(w, unit, extra)
}

// rollingRun is the state of the comparison: its two tools (one app,
// one unit, one port) and the HAProxy in front of them.
type rollingRun struct {
	allAtOnce, rolling *tool
	front              *rollingFront
	samples            []sample
}

func newRollingTool(w *workspace, name, unit string, port int, rollout string) (*tool, error) {
	t, err := newMagefileTool(w, name, unit, port, rollingMagefile(w, unit, port, rollout))
	if err != nil {
		return nil, err
	}
	t.patterns = append(slices.Clone(magefabPatterns), "canary", "batch ", "taking ", "putting ", "passed ")
	t.switchLine = "prepared; switching"
	if out, err := command(context.Background(), t.dir, w.mageEnv(1), w.mage, "env:production").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("compiling %s's magefile: %v\n%s", name, err, out)
	}
	return t, nil
}

// newRollingRun writes both tools' magefiles and the app's init script:
// the app listens on port, HAProxy's frontend on frontPort.
func newRollingRun(w *workspace, unit string, port, frontPort int) (*rollingRun, error) {
	if err := w.writeInitStart(unit, port, "/var/webapps/"+unit+"/releases/current", rollingAppStart); err != nil {
		return nil, err
	}
	front := &rollingFront{dir: filepath.Join(w.tmp, "haproxy-"+unit), port: frontPort, appPort: port}
	a, err := newRollingTool(w, allAtOnceTool, unit, port, "")
	if err != nil {
		return nil, err
	}
	rollout := fmt.Sprintf("Canary: %q, Batch: %q, Window: %d, HAProxy: magetargets.HAProxy{Socket: %q, Backend: \"app\"}, BalancerTimeout: %d",
		strconv.Itoa(rollingCanary), strconv.Itoa(rollingBatch)+"%", rollingWindow, front.socket(), 2*time.Minute)
	r, err := newRollingTool(w, rollingTool, unit, port, rollout)
	if err != nil {
		return nil, err
	}
	for _, t := range []*tool{a, r} {
		t.loadVia = func() []load.Target { return []load.Target{{Name: "haproxy", URL: front.url()}} }
		t.watch = func(ctx context.Context, n int) func() *outStats {
			limit := 0
			if t == r {
				limit = rollingLimit(n)
			}
			return front.watch(ctx, limit)
		}
	}
	r.mustServe = true
	return &rollingRun{allAtOnce: a, rolling: r, front: front}, nil
}

// rolling runs the comparison on every host count: the hosts get v0.1.0,
// v0.2.0, v0.3.0 and a rollback to v0.2.0 all at once, with no HAProxy
// yet; then HAProxy starts in front of them, and each run measures the
// restart of one batch, and a deploy of v0.3.0 and a rollback by each
// tool, in alternating order.
func (b *bench) rolling(ctx context.Context) error {
	rr := b.roll
	defer rr.front.stop()
	a, r := rr.allAtOnce, rr.rolling
	rel := b.w.releases
	for _, n := range b.o.hosts {
		rr.front.stop()
		if err := b.wipe(ctx, n); err != nil {
			return fmt.Errorf("cleaning the hosts: %w", err)
		}
		fmt.Fprintf(os.Stderr, "bench: rolling switch on %d host(s): %d stage(s) of at most %d host(s), %d deploy(s) and rollback(s) per tool\n",
			n, rollingStages(n), rollingLimit(n), b.o.rolling)
		for _, st := range []struct {
			op   string
			cmd  *exec.Cmd
			want string
		}{
			{"cold1", a.deploy(ctx, n, rel[0]), rel[0].SHA},
			{"cold2", a.deploy(ctx, n, rel[1]), rel[1].SHA},
			{"prepare", a.deploy(ctx, n, rel[2]), rel[2].SHA},
			{"prepare-rollback", a.rollback(ctx, n), rel[1].SHA},
		} {
			if !b.measureStep(ctx, n, 0, a, st.op, st.cmd, b.serving(a, st.want), &rr.samples) {
				return fmt.Errorf("rolling switch on %d host(s): preparing the hosts failed", n)
			}
		}
		if err := rr.front.start(ctx, n); err != nil {
			return err
		}
		broken := map[string]bool{}
		for run := range b.o.rolling {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := rr.front.waitUp(ctx, time.Minute); err != nil {
				return err
			}
			restart := command(ctx, a.dir, b.w.mageEnv(rollingBatchSize(n)), b.w.mage, "env:production", "maint:restart")
			b.measureStep(ctx, n, run, a, "restart", restart, nil, &rr.samples)
			order := []*tool{a, r}
			if run%2 == 1 {
				slices.Reverse(order)
			}
			for _, t := range order {
				for _, st := range []struct {
					op   string
					cmd  *exec.Cmd
					want string
				}{
					{"deploy", t.deploy(ctx, n, rel[2]), rel[2].SHA},
					{"rollback", t.rollback(ctx, n), rel[1].SHA},
				} {
					if broken[t.name] {
						break
					}
					if err := rr.front.waitUp(ctx, time.Minute); err != nil {
						return err
					}
					if !b.measureStep(ctx, n, run, t, st.op, st.cmd, b.serving(t, st.want), &rr.samples) {
						broken[t.name] = true
					}
				}
			}
			if broken[a.name] && broken[r.name] {
				break
			}
		}
	}
	return nil
}

// rollingTable writes the comparison's results: per host count and tool,
// each step's requests, failures, wall time and the most hosts out of
// service, then the goals, each checked at the largest host count.
func (b *bench) rollingTable(w *strings.Builder) {
	if b.roll == nil || len(b.roll.samples) == 0 {
		return
	}
	ss := b.roll.samples
	get := func(n int, tool, op string) (out []sample) {
		for _, s := range ss {
			if s.Hosts == n && s.Tool == tool && s.Op == op && s.OK {
				out = append(out, s)
			}
		}
		return out
	}
	walls := func(v []sample) (out []float64) {
		for _, s := range v {
			out = append(out, s.Wall)
		}
		return out
	}
	fmt.Fprintf(w, "### Rolling switch behind a load balancer\n\n"+
		"One app with a classic (restart) switch behind an HAProxy on loopback (backend checking `/version` every 100 ms, fall 2, rise 2, no retries). "+
		"%s: every host switches and restarts at once; %s: Canary %d, Batch %d%%, Window %s (3 checks), each stage drained out of HAProxy, switched, checked, put back and waited healthy. "+
		"%g requests/s through HAProxy's frontend during each deploy (v0.2.0 → v0.3.0) and rollback, new connection per request, 2 s timeout; "+
		"HAProxy's stats socket read every %s for the servers out of service (maintenance, drain, or down). "+
		"Restart is maint:restart of one batch of hosts, no load. Requests, failed and max out are over all runs; wall is the median. \"Failed before the switch\" counts the requests that finished before magefab printed \"prepared; switching\", while every host was in service; the others finished once the switch began.\n\n",
		allAtOnceTool, rollingTool, rollingCanary, rollingBatch, rollingWindow, b.o.load, rollingPoll)
	w.WriteString("| hosts | tool | op | runs | requests | failed | failed before the switch | worst outage | p50 | p99 | wall | most out (share) | limit |\n|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	type total struct{ req, failed, runs, beforeReq, beforeFailed int }
	totals := map[string]*total{}
	maxShare := map[string]float64{}
	for _, n := range b.o.hosts {
		for _, tool := range []string{allAtOnceTool, rollingTool} {
			for _, op := range []string{"deploy", "rollback"} {
				v := get(n, tool, op)
				if len(v) == 0 {
					continue
				}
				req, failed, most := 0, 0, 0
				beforeReq, beforeFailed, split := 0, 0, 0
				outage := 0.0
				var p50, p99 []float64
				for _, s := range v {
					if s.Load != nil {
						req += s.Load.Requests
						failed += s.Load.Failed
						outage = max(outage, s.Load.WorstOutage)
						p50 = append(p50, s.Load.P50)
						p99 = append(p99, s.Load.P99)
					}
					if s.Out != nil {
						most = max(most, s.Out.MaxOut)
					}
					if s.LoadBefore != nil {
						beforeReq += s.LoadBefore.Requests
						beforeFailed += s.LoadBefore.Failed
						split++
					}
				}
				before := "–"
				if split == len(v) {
					before = fmt.Sprintf("%d of %d", beforeFailed, beforeReq)
				}
				limit := "–"
				if tool == rollingTool {
					limit = fmt.Sprintf("%d (%.0f%%)", rollingLimit(n), 100*float64(rollingLimit(n))/float64(n))
				}
				fmt.Fprintf(w, "| %d | %s | %s | %d | %d | %d | %s | %.3f s | %.2f ms | %.2f ms | %s | %d (%.0f%%) | %s |\n",
					n, tool, op, len(v), req, failed, before, outage, median(p50), median(p99), fmtS(median(walls(v))), most, 100*float64(most)/float64(n), limit)
				if n == slices.Max(b.o.hosts) {
					k := tool + " " + op
					totals[k] = &total{req, failed, len(v), beforeReq, beforeFailed}
					if split != len(v) {
						totals[k].beforeReq = -1
					}
					maxShare[k] = float64(most) / float64(n)
				}
			}
		}
		if v := get(n, allAtOnceTool, "restart"); len(v) > 0 {
			fmt.Fprintf(w, "| %d | %s | restart (%d host(s)) | %d | | | | | | | %s | | |\n", n, "maint:restart", rollingBatchSize(n), len(v), fmtS(median(walls(v))))
		}
		for _, op := range []string{"deploy", "rollback"} {
			if ph := restartPhases(get(n, allAtOnceTool, op)); len(ph) > 0 {
				fmt.Fprintf(w, "| %d | %s | restart phase of the %s (%d hosts) | %d | | | | | | | %s | | |\n", n, allAtOnceTool, op, n, len(ph), fmtS(median(ph)))
			}
		}
	}
	w.WriteString("\n")

	n := slices.Max(b.o.hosts)
	stages := rollingStages(n)
	restart := median(walls(get(n, allAtOnceTool, "restart")))
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	fmt.Fprintf(w, "At %d hosts the rollout has %d stages (the canary and %d batch(es) of at most %d hosts); the wall-time limit is all-at-once's median + %d restarts + %d × the window (%s), "+
		"a restart being either maint:restart of one batch (median %s, no load) or the restart phase of the all-at-once %s itself (from \"prepared; switching\" to \"is now deployed\", every host at once, under load).\n\n",
		n, stages, stages-1, rollingBatchSize(n), stages-1, stages, rollingWindow, fmtS(restart), "deploy or rollback")
	w.WriteString("| goal | measured | limit | met |\n|---|---:|---:|---|\n")
	req, failed, runs, beforeReq, beforeFailed := 0, 0, 0, 0, 0
	for _, op := range []string{"deploy", "rollback"} {
		if t := totals[rollingTool+" "+op]; t != nil {
			req += t.req
			failed += t.failed
			runs += t.runs
			if t.beforeReq < 0 || beforeReq < 0 {
				beforeReq = -1
			} else {
				beforeReq += t.beforeReq
				beforeFailed += t.beforeFailed
			}
		}
	}
	if req == 0 {
		fmt.Fprintf(w, "| %s: failed requests, %d hosts | – | 0 of ≥ 10000 | not measured |\n", rollingTool, n)
	} else {
		fmt.Fprintf(w, "| %s: failed requests over %d deploys and rollbacks, %d hosts | %d of %d | 0 of ≥ 10000 | %s |\n",
			rollingTool, runs, n, failed, req, tooFew(met(failed == 0 && req >= 10000), failed, req))
		if beforeReq >= 0 {
			sf, sr := failed-beforeFailed, req-beforeReq
			fmt.Fprintf(w, "| … of which from the switch on (%d of %d failed before it, every host in service) | %d of %d | 0 of ≥ 10000 | %s |\n",
				beforeFailed, beforeReq, sf, sr, tooFew(met(sf == 0 && sr >= 10000), sf, sr))
		}
	}
	for _, op := range []string{"deploy", "rollback"} {
		ra, rb := get(n, allAtOnceTool, op), get(n, rollingTool, op)
		if len(ra) == 0 || len(rb) == 0 {
			fmt.Fprintf(w, "| %s wall vs all at once, %d hosts | – | – | not measured |\n", op, n)
			continue
		}
		wa, wb := median(walls(ra)), median(walls(rb))
		var ratios []float64
		for _, sa := range ra {
			for _, sb := range rb {
				if sa.Run == sb.Run {
					ratios = append(ratios, sb.Wall/sa.Wall)
				}
			}
		}
		limit := wa + float64(stages-1)*restart + float64(stages)*rollingWindow.Seconds()
		fmt.Fprintf(w, "| %s wall, %d hosts: batches (all at once %s; ratio %.2f×), restart = maint:restart of a batch | %s | %s | %s |\n",
			op, n, fmtS(wa), median(ratios), fmtS(wb), fmtS(limit), met(wb <= limit))
		phase := median(restartPhases(ra))
		limit = wa + float64(stages-1)*phase + float64(stages)*rollingWindow.Seconds()
		fmt.Fprintf(w, "| %s wall, %d hosts: batches, restart = the all-at-once %s's restart phase (%s) | %s | %s | %s |\n",
			op, n, op, fmtS(phase), fmtS(wb), fmtS(limit), met(wb <= limit))
	}
	if s, ok := maxShare[rollingTool+" deploy"]; ok {
		s = max(s, maxShare[rollingTool+" rollback"])
		lim := float64(rollingLimit(n)) / float64(n)
		fmt.Fprintf(w, "| share of the fleet out of service at any look, %d hosts, batches (all at once: %.0f%%) | %.0f%% | %.0f%% (%d hosts) | %s |\n",
			n, 100*max(maxShare[allAtOnceTool+" deploy"], maxShare[allAtOnceTool+" rollback"]), 100*s, 100*lim, rollingLimit(n), met(s <= lim))
	}
	w.WriteString("\n")
}

// tooFew says why a goal of 0 failed requests of at least 10000 is not
// met when none failed.
func tooFew(met string, failed, req int) string {
	if failed == 0 && req < 10000 {
		return met + " (fewer than 10000 requests)"
	}
	return met
}

// restartPhases are the seconds from "prepared; switching" to "is now
// deployed" in each sample's output: the switch and restart of a deploy
// or rollback, after its hosts were prepared.
func restartPhases(v []sample) (out []float64) {
	for _, s := range v {
		from, ok1 := s.Markers["prepared; switching"]
		to, ok2 := s.Markers["is now deployed"]
		if ok1 && ok2 {
			out = append(out, to[0]-from[0])
		}
	}
	return out
}
