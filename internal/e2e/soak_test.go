package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/magetargets"
	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
)

// Leak slack, on top of the counts taken after the warm-up cycle. Both
// counts are the minimum of samples taken over a second with the HTTP
// readers paused, so a goroutine or connection that lives for a moment (a
// keepalive request on a pooled SSH connection, a reader's connection
// closing) is not counted. What is left is one-off state that a code path
// creates the first time it runs and then keeps (a runtime or library
// helper): a few at most, never one per cycle. A leak of one per cycle
// exceeds the slack from the default 10 cycles on.
const (
	soakGoroutineSlack = 3
	soakFDSlack        = 2
)

// Time per cycle must not grow: the median of the last cycles may be at
// most soakTimeFactor times the median of the first, plus soakTimeSlack.
// This machine runs other work too, so each cycle is paired with a control:
// a fixed piece of work on every host (sudo, git, a Python start, what a
// cycle spends most of its time on) that no deploy state can slow down.
// When the control got slower, the machine did, and the limit grows by as
// much; it never shrinks below the plain limit.
const (
	soakTimeFactor = 1.5
	soakTimeSlack  = 500 * time.Millisecond
)

// soakControlScript is the control's work on each host.
const soakControlScript = `sudo -n /bin/true && git --version >/dev/null && /usr/bin/python3 -c 'import http.server, subprocess, urllib.request'`

// The work of a cycle, as the pool counts it, must not grow either:
// the same number of SSH sessions every cycle, and bytes within
// soakBytesFactor of the first cycles plus soakBytesSlack (keepalive
// requests, one every 15 seconds per connection, add a little to a slow
// cycle).
const (
	soakBytesFactor = 1.25
	soakBytesSlack  = 4096
)

// soakChildEnv is set in the process that runs the soak's cycles.
const soakChildEnv = "MAGEFAB_SOAK_CHILD"

// runSoakChild runs TestSoak in a new process of this test binary, beside
// the other fleet tests, and reports its result as this test's: its
// output is logged, its skip is a skip and anything but a pass fails.
func runSoakChild(t *testing.T) {
	t.Parallel()
	args := []string{"-test.run=^TestSoak$", "-test.count=1", "-test.v"}
	if dl, ok := t.Deadline(); ok {
		// A minute less than this process has, so that the child's own
		// timeout, with its goroutine dump, is the one that is seen.
		left := time.Until(dl) - time.Minute
		if left < time.Minute {
			t.Fatalf("the test's -timeout leaves %s: not enough for a soak", time.Until(dl).Round(time.Second))
		}
		args = append(args, "-test.timeout="+left.Round(time.Second).String())
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], args...)
	cmd.Env = append(os.Environ(), soakChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("the soak's process (%s):\n%s", cmd.ProcessState, out)
	switch {
	case err == nil && strings.Contains(string(out), "--- PASS: TestSoak"):
	case err == nil && strings.Contains(string(out), "--- SKIP: TestSoak"):
		t.Skip("the soak's process skipped it: see its output above")
	case err == nil:
		t.Fatal("the soak's process exited 0 without running TestSoak")
	default:
		t.Fatalf("the soak's process failed: %v", err)
	}
}

// soakCycle is what one deploy/rollback cycle took.
type soakCycle struct {
	took     time.Duration // the deploy and the rollback
	control  time.Duration // the control, right after
	sessions int64         // SSH sessions the deploy and the rollback opened, all hosts
	bytes    int64         // bytes they sent and received, all hosts
	load     string        // the load average after the cycle
}

// TestSoak runs deploy/rollback cycles on three fleet hosts, in this
// process, while readers on every host check that current always resolves
// and that the app only ever serves one of the two releases. The deploying
// process must not leak goroutines or file descriptors, a cycle must not
// get slower or do more work, and no app process may be left behind on
// the hosts. MAGEFAB_SOAK_CYCLES sets the number of cycles (default 10;
// the full run is 100, with -timeout 45m: 15 to 30 minutes, depending on
// the machine's load).
// It counts the deploying process's goroutines and open files, so the
// cycles run in a process of their own (this test binary again, with
// soakChildEnv set): the fleet tests running beside it in this process
// would add theirs.
func TestSoak(t *testing.T) {
	if os.Getenv(soakChildEnv) == "" {
		runSoakChild(t)
		return
	}
	f := fleettest.Require(t, 3)
	fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	fleettest.RequireTool(t, "ssh", "openssh-client")
	cycles := 10
	if v := os.Getenv("MAGEFAB_SOAK_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			t.Fatalf("MAGEFAB_SOAK_CYCLES=%q: want a number of cycles, at least 2", v)
		}
		cycles = n
	}
	start := time.Now()
	hosts := f.Hosts[:3]
	p := e2e.NewProject(t, f, hosts, "")
	v1 := release.Target{Name: "v0.1.0", SHA: p.Git(t, "rev-parse", "HEAD"), Tag: "v0.1.0"}
	p.Tag(t, v1.Tag)
	v2 := release.Target{Name: "v0.1.1", SHA: p.Commit(t, "second"), Tag: "v0.1.1"}
	p.Tag(t, v2.Tag)

	d := newSoakDeployer(t, f, p, hosts)
	ctx := context.Background()
	d.must(t, "first deploy of v0.1.0", func(fl *release.Fleet) error { _, err := fl.Deploy(ctx, v1); return err })

	root := "/var/webapps/" + p.Unit + "/releases"
	readers := startSoakReaders(t, f, p, hosts, root, v1.SHA, v2.SHA)

	cycle := func(n int) soakCycle {
		t.Helper()
		var c soakCycle
		sess0, bytes0 := d.work()
		began := time.Now()
		d.must(t, fmt.Sprintf("cycle %d: deploy of v0.1.1", n), func(fl *release.Fleet) error { _, err := fl.Deploy(ctx, v2); return err })
		c.took = time.Since(began)
		readers.expect(t, fmt.Sprintf("cycle %d, after the deploy", n), v2.SHA)
		began = time.Now()
		d.must(t, fmt.Sprintf("cycle %d: rollback", n), func(fl *release.Fleet) error { _, err := fl.Rollback(ctx); return err })
		c.took += time.Since(began)
		sess1, bytes1 := d.work()
		c.sessions, c.bytes = sess1-sess0, bytes1-bytes0
		readers.expect(t, fmt.Sprintf("cycle %d, after the rollback", n), v1.SHA)
		c.control = d.control(t)
		c.load = soakLoad()
		return c
	}

	warm := cycle(0)
	g0, fd0 := readers.settled()

	var done []soakCycle
	var trace strings.Builder
	for i := 1; i <= cycles; i++ {
		if dl, ok := t.Deadline(); ok {
			longest := warm.took + warm.control
			for _, c := range done {
				longest = max(longest, c.took+c.control)
			}
			if left := time.Until(dl); left < 2*longest+time.Minute {
				t.Fatalf("stopping before cycle %d of %d: the test's -timeout leaves %s; run with -timeout %s",
					i, cycles, left.Round(time.Second), (time.Duration(cycles)*2*longest + 5*time.Minute).Round(time.Minute))
			}
		}
		c := cycle(i)
		done = append(done, c)
		fmt.Fprintf(&trace, " %.1f/%.1f@%s", c.took.Seconds(), c.control.Seconds(), c.load)
		if t.Failed() {
			break
		}
	}
	g1, fd1 := readers.settled()
	st := readers.stop(t)
	d.checkHosts(t, root, f)

	k := max(1, min(10, len(done)/2))
	pick := func(cs []soakCycle, v func(soakCycle) time.Duration) time.Duration {
		ds := make([]time.Duration, len(cs))
		for i, c := range cs {
			ds[i] = v(c)
		}
		return soakMedian(ds)
	}
	took := func(c soakCycle) time.Duration { return c.took }
	control := func(c soakCycle) time.Duration { return c.control }
	bytes := func(c soakCycle) time.Duration { return time.Duration(c.bytes) }
	head, tail := done[:k], done[len(done)-k:]
	first, last := pick(head, took), pick(tail, took)
	ctlFirst, ctlLast := pick(head, control), pick(tail, control)
	bytesFirst, bytesLast := int64(pick(head, bytes)), int64(pick(tail, bytes))
	slower := max(1, float64(ctlLast)/float64(ctlFirst))
	limit := time.Duration(float64(first)*soakTimeFactor*slower) + soakTimeSlack

	t.Logf("soak: %d cycles (full run: MAGEFAB_SOAK_CYCLES=100), plus 1 warm-up cycle (%s); wall time %s",
		len(done), warm.took.Round(time.Millisecond), time.Since(start).Round(time.Second))
	t.Logf("soak: time per cycle (deploy + rollback): median of the first %d %s, of the last %d %s (limit %s); min %s, max %s",
		k, first.Round(time.Millisecond), k, last.Round(time.Millisecond), limit.Round(time.Millisecond),
		slices.MinFunc(done, func(a, b soakCycle) int { return int(a.took - b.took) }).took.Round(time.Millisecond),
		slices.MaxFunc(done, func(a, b soakCycle) int { return int(a.took - b.took) }).took.Round(time.Millisecond))
	t.Logf("soak: control per cycle: median of the first %d %s, of the last %d %s", k, ctlFirst.Round(time.Millisecond), k, ctlLast.Round(time.Millisecond))
	t.Logf("soak: each cycle, seconds of deploy + rollback / seconds of control @ load average (%d CPUs):%s", runtime.NumCPU(), trace.String())
	t.Logf("soak: work per cycle: %d SSH sessions (all hosts); bytes median of the first %d %d, of the last %d %d",
		done[0].sessions, k, bytesFirst, k, bytesLast)
	t.Logf("soak: goroutines %d after the warm-up, %d at the end; open fds %d after the warm-up, %d at the end",
		g0, g1, fd0, fd1)
	st.log(t)

	if g1 > g0+soakGoroutineSlack {
		t.Errorf("goroutines grew from %d to %d over %d cycles (slack %d):\n%s", g0, g1, len(done), soakGoroutineSlack, soakStacks())
	}
	if fd1 > fd0+soakFDSlack {
		t.Errorf("open file descriptors grew from %d to %d over %d cycles (slack %d): %s", fd0, fd1, len(done), soakFDSlack, soakFDs())
	}
	if last > limit {
		t.Errorf("cycles got slower: median of the last %d %s > %.1f × median of the first %d (%s) × %.2f (control %s, then %s) + %s",
			k, last, soakTimeFactor, k, first, slower, ctlFirst, ctlLast, soakTimeSlack)
	}
	// Against the first cycle, not the warm-up: the warm-up may also
	// store scripts the hosts did not hold yet, in a session each.
	for i, c := range done[1:] {
		if c.sessions != done[0].sessions {
			t.Errorf("cycle %d opened %d SSH sessions, cycle 1 %d", i+2, c.sessions, done[0].sessions)
		}
	}
	if float64(bytesLast) > float64(bytesFirst)*soakBytesFactor+soakBytesSlack {
		t.Errorf("cycles moved more bytes: median of the last %d %d > %.2f × median of the first %d (%d) + %d",
			k, bytesLast, soakBytesFactor, k, bytesFirst, soakBytesSlack)
	}
}

// soakDeployer deploys the way magetargets does: one sshx.Pool (one
// connection per host) for the whole process, and for each operation a new
// release.Fleet with its own Options and run id, built by
// magetargets.NewFleet from the project's Config, on the pool's hosts.
type soakDeployer struct {
	p     *e2e.Project
	cfg   magetargets.Config
	pool  *sshx.Pool
	hosts []sshx.Host
}

func newSoakDeployer(t *testing.T, f fleettest.Fleet, p *e2e.Project, names []string) *soakDeployer {
	t.Helper()
	pool, err := sshx.NewPool(sshx.Config{
		Port:                  22,
		ConfigFile:            f.ConfigFile,
		KnownHostsFile:        "~/.ssh/known_hosts",
		StrictHostKeyChecking: sshx.StrictYes,
		ConnectTimeout:        10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	hosts, err := pool.Hosts(names)
	if err != nil {
		t.Fatal(err)
	}
	// The project's magefile (e2e.Magefile) as a Config.
	cfg := magetargets.Config{
		Unit:              p.Unit,
		SCM:               p.Remote,
		RootDir:           p.Dir,
		Python:            "/usr/bin/python3",
		PipRequirements:   []string{"requirements.txt"},
		PipInstallCommand: "pip install --no-index --find-links " + p.Wheels,
		SSH:               magetargets.SSH{ConfigFile: f.ConfigFile},
		Environments: map[string]magetargets.Environment{
			"production": {Hosts: names},
		},
	}
	return &soakDeployer{p: p, cfg: cfg, pool: pool, hosts: hosts}
}

func (d *soakDeployer) fleet(t *testing.T, console io.Writer) *release.Fleet {
	t.Helper()
	fl, err := magetargets.NewFleet(context.Background(), d.cfg, "production", d.hosts, console)
	if err != nil {
		t.Fatal(err)
	}
	return fl
}

// work returns the SSH sessions opened and bytes moved so far, all hosts.
func (d *soakDeployer) work() (sessions, bytes int64) {
	for _, st := range d.pool.Stats() {
		sessions += st.Sessions
		bytes += st.BytesSent + st.BytesReceived
	}
	return sessions, bytes
}

// control runs soakControlScript on every host at once, through the pool,
// and returns how long it took.
func (d *soakDeployer) control(t *testing.T) time.Duration {
	t.Helper()
	began := time.Now()
	_, err := sshx.Each(context.Background(), d.hosts, 0, func(ctx context.Context, h sshx.Host) (struct{}, error) {
		out, err := h.Script(ctx, soakControlScript).CombinedOutput()
		if err != nil {
			return struct{}{}, fmt.Errorf("%w: %s", err, out)
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatalf("control: %v", err)
	}
	return time.Since(began)
}

// must runs op on a new Fleet and fails the test, with the operation's
// output, if it fails.
func (d *soakDeployer) must(t *testing.T, what string, op func(*release.Fleet) error) {
	t.Helper()
	var out sshx.SyncWriter
	if err := op(d.fleet(t, &out)); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, out.String())
	}
}

// checkHosts checks that every host is left unlocked, serving the first
// release dir, and running one app process: app processes that a restart
// left running would pile up there.
func (d *soakDeployer) checkHosts(t *testing.T, root string, f fleettest.Fleet) {
	t.Helper()
	for _, h := range d.hosts {
		out, err := h.Script(context.Background(), "cd "+sshx.Quote(root)+" && readlink current && { [ ! -e .lock ] || echo LOCKED; }").CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v: %s", h.Name(), err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != "a" {
			t.Errorf("%s after the soak: current -> %q, want a and no lock", h.Name(), got)
		}
		app := fmt.Sprintf("app.py %s %d", f.Addr(t, h.Name()), d.p.Port)
		var procs []string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			out, err := h.Command(context.Background(), "ps", "-eo", "pid=,stat=,args=").Output()
			if err != nil {
				t.Errorf("%s: ps: %v", h.Name(), err)
				break
			}
			procs = procs[:0]
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasSuffix(strings.TrimSpace(l), app) {
					procs = append(procs, strings.TrimSpace(l))
				}
			}
			if len(procs) == 1 || time.Now().After(deadline) {
				break
			}
		}
		if len(procs) != 1 {
			t.Errorf("%s after the soak: want one app process running, have %d:\n  %s", h.Name(), len(procs), strings.Join(procs, "\n  "))
		}
	}
}

// soakReaders watch every host while the cycles run: one SSH session per
// host runs a shell loop printing where current resolves to, and one HTTP
// loop per host asks the app for /version.
type soakReaders struct {
	p      *e2e.Project
	shas   [2]string
	gate   sync.RWMutex // an HTTP request holds it for reading; settled pauses them
	done   chan struct{}
	wg     sync.WaitGroup
	links  []*soakLinkReader
	mu     sync.Mutex
	stats  map[string]*soakHTTPStats
	client *http.Client
}

type soakLinkReader struct {
	host   string
	cmd    *exec.Cmd
	stderr sshx.SyncWriter
	exited chan struct{}
	first  chan struct{}

	mu      sync.Mutex
	lines   int
	seen    map[string]int
	bad     []string
	waitErr error
}

type soakHTTPStats struct {
	ok      map[string]int // answers by release
	failed  map[string]int // failed requests by kind
	wrong   []string       // answers that are neither release
	total   int
	outage  time.Duration // the longest run of failed requests
	failing time.Time     // when the current run of failures began
}

func startSoakReaders(t *testing.T, f fleettest.Fleet, p *e2e.Project, hosts []string, root string, sha1, sha2 string) *soakReaders {
	t.Helper()
	r := &soakReaders{
		p: p, shas: [2]string{sha1, sha2}, done: make(chan struct{}), stats: map[string]*soakHTTPStats{},
		client: &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	loop := `root=` + sshx.Quote(root) + `; i=0
while :; do
  i=$((i+1))
  if cd -P "$root/current" 2>/dev/null; then echo "$i $PWD"; else echo "$i MISSING $(readlink "$root/current" 2>&1)"; fi
  cd /; sleep 0.02
done`
	for _, h := range hosts {
		l := &soakLinkReader{host: h, seen: map[string]int{}, exited: make(chan struct{}), first: make(chan struct{})}
		l.cmd = exec.Command("ssh", "-F", f.ConfigFile, h, loop)
		l.cmd.Stderr = &l.stderr
		out, err := l.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := l.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r.links = append(r.links, l)
		go l.read(out, root)
		st := &soakHTTPStats{ok: map[string]int{}, failed: map[string]int{}}
		r.stats[h] = st
		r.wg.Add(1)
		go r.poll(st, fmt.Sprintf("http://%s:%d/version", f.Addr(t, h), p.Port))
	}
	t.Cleanup(func() { r.stop(t) })
	for _, l := range r.links {
		select {
		case <-l.first:
		case <-l.exited:
			t.Fatalf("the reader on %s ended at once: %v %s", l.host, l.waitErr, l.stderr.String())
		case <-time.After(15 * time.Second):
			t.Fatalf("the reader on %s printed nothing in 15s: %s", l.host, l.stderr.String())
		}
	}
	return r
}

func (l *soakLinkReader) read(out io.Reader, root string) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, target, _ := strings.Cut(sc.Text(), " ")
		l.mu.Lock()
		if l.lines == 0 {
			close(l.first)
		}
		l.lines++
		if dir, ok := strings.CutPrefix(target, root+"/"); ok && (dir == "a" || dir == "b") {
			l.seen[dir]++
		} else if len(l.bad) < 20 {
			l.bad = append(l.bad, time.Now().Format("15:04:05.000")+" iteration "+n+": "+target)
		}
		l.mu.Unlock()
	}
	err := l.cmd.Wait()
	l.mu.Lock()
	l.waitErr = err
	l.mu.Unlock()
	close(l.exited)
}

func (r *soakReaders) poll(st *soakHTTPStats, url string) {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case <-time.After(10 * time.Millisecond):
		}
		r.gate.RLock()
		body, err := r.get(url)
		r.gate.RUnlock()
		now := time.Now()
		r.mu.Lock()
		st.total++
		switch {
		case err != nil:
			st.failed[soakErrKind(err)]++
			if st.failing.IsZero() {
				st.failing = now
			}
		default:
			if !st.failing.IsZero() {
				st.outage = max(st.outage, now.Sub(st.failing))
				st.failing = time.Time{}
			}
			switch body {
			case r.shas[0]:
				st.ok["v0.1.0"]++
			case r.shas[1]:
				st.ok["v0.1.1"]++
			default:
				if len(st.wrong) < 20 {
					st.wrong = append(st.wrong, now.Format("15:04:05.000")+" "+strconv.Quote(body))
				}
			}
		}
		r.mu.Unlock()
	}
}

func (r *soakReaders) get(url string) (string, error) {
	resp, err := r.client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("HTTP %d: %s", resp.StatusCode, b), nil
	}
	return strings.TrimSpace(string(b)), nil
}

func soakErrKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other: " + err.Error()
}

// expect checks that every host's app serves sha once an operation
// returned.
func (r *soakReaders) expect(t *testing.T, when, sha string) {
	t.Helper()
	for h := range r.stats {
		url := fmt.Sprintf("http://%s:%d/version", r.p.Fleet.Addr(t, h), r.p.Port)
		got, err := r.get(url)
		if err != nil || got != sha {
			t.Errorf("%s: %s serves %q (%v), want %s", when, h, got, err, sha)
		}
	}
}

// settled pauses the HTTP readers and returns the goroutines and the open
// file descriptors of this process: the least of samples taken over a
// second, so that what lives only for a moment is not counted.
func (r *soakReaders) settled() (goroutines, fds int) {
	r.gate.Lock()
	defer r.gate.Unlock()
	goroutines, fds = -1, -1
	for i := 0; i < 20; i++ {
		if i > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		g, n := runtime.NumGoroutine(), soakFDCount()
		if goroutines < 0 || g < goroutines {
			goroutines = g
		}
		if fds < 0 || n < fds {
			fds = n
		}
	}
	return goroutines, fds
}

// soakStats is what the readers saw.
type soakStats struct {
	http  map[string]*soakHTTPStats
	links []*soakLinkReader
}

// stop ends the readers (once) and checks what they saw: current always
// resolved to a release dir, the app only ever served one of the two
// releases, and every reader ran until the end and saw both releases.
func (r *soakReaders) stop(t *testing.T) soakStats {
	t.Helper()
	select {
	case <-r.done:
		return soakStats{http: r.stats, links: r.links}
	default:
	}
	close(r.done)
	r.wg.Wait()
	for _, l := range r.links {
		select {
		case <-l.exited:
			t.Errorf("the reader on %s stopped before the end: %v %s", l.host, l.waitErr, l.stderr.String())
		default:
			l.cmd.Process.Kill()
			<-l.exited
		}
		if len(l.bad) > 0 {
			t.Errorf("%s: current did not resolve to a release dir (first %d of these):\n  %s", l.host, len(l.bad), strings.Join(l.bad, "\n  "))
		}
		if l.seen["a"] == 0 || l.seen["b"] == 0 {
			t.Errorf("%s: the reader never saw current switch: %v", l.host, l.seen)
		}
	}
	r.client.CloseIdleConnections()
	for h, st := range r.stats {
		if len(st.wrong) > 0 {
			t.Errorf("%s: the app served something else than v0.1.0 and v0.1.1 (first %d):\n  %s", h, len(st.wrong), strings.Join(st.wrong, "\n  "))
		}
		if st.ok["v0.1.0"] == 0 || st.ok["v0.1.1"] == 0 {
			t.Errorf("%s: the HTTP reader did not see both releases: %v", h, st.ok)
		}
	}
	return soakStats{http: r.stats, links: r.links}
}

func (s soakStats) log(t *testing.T) {
	t.Helper()
	var total, failed int
	hosts := make([]string, 0, len(s.http))
	for h := range s.http {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		st := s.http[h]
		n := 0
		for _, c := range st.failed {
			n += c
		}
		total += st.total
		failed += n
		t.Logf("soak: %s: %d HTTP requests, %d failed %v, answers %v, longest run of failures %s",
			h, st.total, n, st.failed, st.ok, st.outage.Round(time.Millisecond))
	}
	rate := 0.0
	if total > 0 {
		rate = 100 * float64(failed) / float64(total)
	}
	t.Logf("soak: %d of %d HTTP requests failed (%.2f%%): the app restarts with stop then start", failed, total, rate)
	for _, l := range s.links {
		t.Logf("soak: %s: current checked %d times: resolved to a %d times, to b %d times, to nothing or elsewhere %d times",
			l.host, l.lines, l.seen["a"], l.seen["b"], l.lines-l.seen["a"]-l.seen["b"])
	}
}

// soakLoad is the machine's load average over the last minute.
func soakLoad() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b) + " unknown")[0]
}

func soakFDCount() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// soakFDs lists where this process's open file descriptors point.
func soakFDs() string {
	ents, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&b, "\n  %s -> %s", e.Name(), target)
	}
	return b.String()
}

func soakStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

func soakMedian(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
