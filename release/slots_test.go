package release_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/release"
)

// slotApp is the app of the slot tests: a stdlib HTTP server that answers
// every path with the commit of its release dir, on the unix socket of
// its first argument and, given a port, on 127.0.0.1:port with
// SO_REUSEPORT. On TERM it stops accepting and closes its listeners, then
// finishes the requests in flight and exits. Its accept queues are deep,
// as a real server's are (socketserver's default is 5): the connections
// queued on a draining slot's listener move to the new slot's queue,
// where a shallow one has no room for them on a busy machine. It refuses to start on a
// host whose HOME holds fail-start.
const slotApp = `import http.server, os, signal, socket, socketserver, sys, threading
if os.path.exists(os.path.join(os.environ.get("HOME", "/nonexistent"), "fail-start")):
    sys.exit("cannot start here: fail-start is present")
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, ".git", "HEAD")) as f:
    sha = f.read().strip()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (sha + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
    def address_string(self):
        return "local"

class Unix(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = False
    block_on_close = True
    request_queue_size = 1024

class TCP(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 1024
    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
servers = [Unix(path, Handler)]
if len(sys.argv) > 2:
    servers.append(TCP(("127.0.0.1", int(sys.argv[2])), Handler))
threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}) for s in servers]
for t in threads:
    t.start()
print("serving", flush=True)

def stop():
    for s in servers:
        s.shutdown()
    for s in servers:
        s.server_close()

signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=stop).start())
for t in threads:
    t.join()
`

// slotStart and slotStop run slotApp as the slots' commands, as an init
// script would: pid and log in the release dir's run/, a start that waits
// until the socket is there or the app died, and a stop that waits for
// the exit. The stop signals the pid file's process only while it is the
// slot's (its command line names the socket): a pid file outlives its
// process, and on a busy machine the pid soon names another.
const (
	slotStart = `cd "$MAGEFAB_SLOT_DIR" && { setsid python3 slotapp.py "$MAGEFAB_SLOT_SOCKET" $PORTARG >>"run/$MAGEFAB_SLOT.log" 2>&1 </dev/null & pid=$!; echo $pid >"run/$MAGEFAB_SLOT.pid"; }
while [ ! -S "$MAGEFAB_SLOT_SOCKET" ]; do kill -0 $pid 2>/dev/null || exit 1; sleep 0.05; done`
	slotStop = `p="$MAGEFAB_SLOT_DIR/run/$MAGEFAB_SLOT.pid"; [ -f "$p" ] || exit 0; pid=$(cat "$p")
ours() { tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$MAGEFAB_SLOT_SOCKET"; }
! ours || kill -TERM "$pid"; i=0; while ours && [ $i -lt $((MAGEFAB_DRAIN_TIMEOUT * 10)) ]; do sleep 0.1; i=$((i+1)); done; ! ours || kill -KILL "$pid"; rm -f "$p"`
)

// newSlotFleet is a test fleet whose app runs in slots: front mode, or
// with port, the slots share that port on 127.0.0.1.
func newSlotFleet(t *testing.T, n, port int) *testFleet {
	t.Helper()
	f := newTestFleet(t, n, "")
	os.WriteFile(filepath.Join(f.clone, "slotapp.py"), []byte(slotApp), 0o644)
	git(t, f.clone, "add", "slotapp.py")
	git(t, f.clone, "commit", "-q", "-m", "the app")
	git(t, f.clone, "push", "-q", "origin", "master")
	portArg := ""
	if port != 0 {
		portArg = strconv.Itoa(port)
	}
	f.opts.Requirements = nil
	f.opts.Restart = "false" // never run: slots restart nothing
	f.opts.Slots = &release.Slots{
		Start:        strings.ReplaceAll(slotStart, "$PORTARG", portArg),
		Stop:         slotStop,
		Check:        "/version",
		Port:         port,
		StartTimeout: 20 * time.Second,
		DrainTimeout: 10 * time.Second,
	}
	t.Cleanup(func() { f.killSlots() })
	return f
}

// killSlots ends the slot processes the test left running: those whose
// pid files it finds and whose command line is the slot app.
func (f *testFleet) killSlots() {
	for i := range f.homes {
		pids, _ := filepath.Glob(filepath.Join(f.root(i), "*", "run", "*.pid"))
		for _, p := range pids {
			b, _ := os.ReadFile(p)
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				continue
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains(string(cmdline), "slotapp.py") && strings.Contains(string(cmdline), f.homes[i]) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// slotRuns says whether slot of dir on host i runs: its pid file names a
// process that lives (a zombie does not).
func (f *testFleet) slotRuns(i int, dir, slot string) bool {
	b, err := os.ReadFile(filepath.Join(f.root(i), dir, "run", slot+".pid"))
	if err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// traffic asks every host for its version, over and over, until stopped,
// the way a front server on each host would: a new connection to
// current/run/app.sock each time (or to the shared port).
type traffic struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	requests int
	failures []string
	seen     map[string]bool // the answers
}

func startTraffic(t *testing.T, urls map[string]*http.Client) *traffic {
	t.Helper()
	tr := &traffic{stop: make(chan struct{}), seen: map[string]bool{}}
	for name, c := range urls {
		for range 2 {
			tr.wg.Add(1)
			go func() {
				defer tr.wg.Done()
				for {
					select {
					case <-tr.stop:
						return
					default:
					}
					resp, err := c.Get("http://app/version")
					var body []byte
					if err == nil {
						body, err = io.ReadAll(resp.Body)
						resp.Body.Close()
						if err == nil && resp.StatusCode != 200 {
							err = errors.New(resp.Status)
						}
					}
					tr.mu.Lock()
					tr.requests++
					if err != nil {
						tr.failures = append(tr.failures, name+": "+err.Error())
					} else {
						tr.seen[strings.TrimSpace(string(body))] = true
					}
					tr.mu.Unlock()
					time.Sleep(2 * time.Millisecond)
				}
			}()
		}
	}
	return tr
}

// end stops the traffic and fails the test on any failed request.
func (tr *traffic) end(t *testing.T, what string) {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	if tr.requests < 20 {
		t.Errorf("%s: only %d requests were made", what, tr.requests)
	}
	if len(tr.failures) > 0 {
		t.Errorf("%s: %d of %d requests failed, first: %s", what, len(tr.failures), tr.requests, tr.failures[0])
	}
	t.Logf("%s: %d requests, %d failed", what, tr.requests, len(tr.failures))
}

func unixClient(path string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// frontClients reach each host's app as a front server proxying to
// current/run/app.sock would.
func (f *testFleet) frontClients() map[string]*http.Client {
	m := map[string]*http.Client{}
	for i := range f.hosts {
		m[fmt.Sprintf("h%d", i+1)] = unixClient(filepath.Join(f.root(i), "current", "run", "app.sock"))
	}
	return m
}

// serving returns what host i's app answers through current.
func (f *testFleet) serving(t *testing.T, i int) string {
	t.Helper()
	resp, err := unixClient(filepath.Join(f.root(i), "current", "run", "app.sock")).Get("http://app/version")
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

func requirePython3(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is missing")
	}
}

// A deploy starts the new release's slot beside the serving one, checks
// it, points current at it, and drains the old one; a rollback starts the
// previous release's slot again. Not one request fails, and nothing
// restarts.
func TestSlotsDeployAndRollbackFailNoRequest(t *testing.T) {
	t.Parallel()
	requirePython3(t)
	f := newSlotFleet(t, 2, 0)
	fl := f.fleet()
	v1, v2 := f.tag(t, "v0.1.0"), f.tag(t, "v0.2.0")
	f.mustDeploy(t, fl, v1)
	for i := range f.hosts {
		if got := f.serving(t, i); got != v1.SHA {
			t.Fatalf("h%d serves %q after the first deploy, want %s\n%s", i+1, got, v1.SHA, f.out.String())
		}
	}

	tr := startTraffic(t, f.frontClients())
	sessions := f.sessionsUsed(func() { f.mustDeploy(t, fl, v2) })
	tr.end(t, "deploy")
	if !tr.seen[v2.SHA] {
		t.Errorf("the traffic never saw v0.2.0: %v", tr.seen)
	}
	for i := range f.hosts {
		if got := f.serving(t, i); got != v2.SHA {
			t.Errorf("h%d serves %q, want v0.2.0 %s", i+1, got, v2.SHA)
		}
		if f.slotRuns(i, "a", "a") {
			t.Errorf("h%d: the old slot a still runs after the deploy", i+1)
		}
		if !f.slotRuns(i, "b", "b") {
			t.Errorf("h%d: the new slot b does not run", i+1)
		}
	}
	f.assertAll(t, "after the deploy", "b", v2.SHA)
	// prepare, start, switch, drain; the first drain's script is new to
	// the hosts (the first deploy drained nothing): a session stores it.
	if sessions > 5 {
		t.Errorf("a slot deploy took %d sessions on a host, want at most 5: 4, and one that stores a script", sessions)
	}

	tr = startTraffic(t, f.frontClients())
	if _, err := fl.Rollback(context.Background()); err != nil {
		t.Fatalf("rollback: %v\n%s", err, f.out.String())
	}
	tr.end(t, "rollback")
	for i := range f.hosts {
		if got := f.serving(t, i); got != v1.SHA {
			t.Errorf("h%d serves %q after the rollback, want v0.1.0", i+1, got)
		}
		if f.slotRuns(i, "b", "b") {
			t.Errorf("h%d: slot b still runs after the rollback", i+1)
		}
	}
	f.assertAll(t, "after the rollback", "a", v1.SHA)

	// deploy:status shows the slots.
	for _, st := range fl.Status(context.Background(), 0) {
		var serving string
		for _, s := range st.Slots {
			if s.Dir == "a" && len(s.Running) == 1 {
				serving = s.Serving
			}
		}
		if serving != "a" || st.Err != nil {
			t.Errorf("%s: status slots %+v (err %v), want a serving and running", st.Host, st.Slots, st.Err)
		}
	}

	// A restart in place starts a.1 beside a, which then drains.
	tr = startTraffic(t, f.frontClients())
	for _, h := range f.hosts {
		if err := release.Restart(context.Background(), h, f.opts); err != nil {
			t.Fatalf("restart: %v", err)
		}
	}
	tr.end(t, "restart")
	for i := range f.hosts {
		if !f.slotRuns(i, "a", "a.1") || f.slotRuns(i, "a", "a") {
			t.Errorf("h%d: after a restart, a.1 runs %v and a runs %v; want a.1 alone", i+1, f.slotRuns(i, "a", "a.1"), f.slotRuns(i, "a", "a"))
		}
	}
}

// A slot that does not start on one host fails the deploy before any host
// switches, with its log lines; the new slots started elsewhere stop, and
// the old ones never stopped serving.
func TestSlotThatDoesNotStartSwitchesNothing(t *testing.T) {
	t.Parallel()
	requirePython3(t)
	f := newSlotFleet(t, 3, 0)
	fl := f.fleet()
	v1, v2 := f.tag(t, "v0.1.0"), f.tag(t, "v0.2.0")
	f.mustDeploy(t, fl, v1)
	os.WriteFile(filepath.Join(f.homes[1], "fail-start"), nil, 0o644)

	tr := startTraffic(t, f.frontClients())
	_, err := fl.Deploy(context.Background(), v2)
	tr.end(t, "failed deploy")
	if err == nil {
		t.Fatal("the deploy succeeded though h2's slot cannot start")
	}
	for _, want := range []string{"no host was switched", "h2: starting the new slot: slot b of b did not start", "cannot start here: fail-start is present"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	f.assertOldSlotServes(t, "after the failed start", v1)
	f.assertAll(t, "after the failed start", "a", "")
}

// A failed check after the switch moves the traffic back to the old slots
// at once, with no restart, and stops the new ones.
func TestSlotsCheckFailureMovesTrafficBack(t *testing.T) {
	t.Parallel()
	requirePython3(t)
	f := newSlotFleet(t, 2, 0)
	fl := f.fleet()
	v1, v2 := f.tag(t, "v0.1.0"), f.tag(t, "v0.2.0")
	f.mustDeploy(t, fl, v1)
	fl.Verify = func(context.Context, []release.HostResult) error { return errors.New("the version URL answers wrong") }

	tr := startTraffic(t, f.frontClients())
	_, err := fl.Deploy(context.Background(), v2)
	tr.end(t, "deploy switched back")
	if err == nil || !strings.Contains(err.Error(), "switched back") {
		t.Fatalf("deploy error = %v, want a switch back", err)
	}
	f.assertOldSlotServes(t, "after the switch back", v1)
	f.assertAll(t, "after the switch back", "a", v1.SHA)
}

// With a shared port, the new slot joins the port in the switch, and the
// old one drains once the check passed: no request to the port fails.
// The connections queued on the old slot's listener when it closes move
// to the new one only with net.ipv4.tcp_migrate_req=1 (Linux 5.14 and
// later; .ci/run sets it); without it, the kernel resets them.
func TestSlotsSharedPortFailNoRequest(t *testing.T) {
	t.Parallel()
	requirePython3(t)
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_migrate_req"); err != nil || strings.TrimSpace(string(b)) != "1" {
		fleettest.Unavailable(t, "net.ipv4.tcp_migrate_req is not 1 (sysctl -w net.ipv4.tcp_migrate_req=1): a slot that drains would reset the connections queued on its listener")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	f := newSlotFleet(t, 1, port)
	fl := f.fleet()
	v1, v2 := f.tag(t, "v0.1.0"), f.tag(t, "v0.2.0")
	f.mustDeploy(t, fl, v1)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
		}}}

	tr := startTraffic(t, map[string]*http.Client{"h1": client})
	f.mustDeploy(t, fl, v2)
	tr.end(t, "deploy on a shared port")
	if f.slotRuns(0, "a", "a") || !f.slotRuns(0, "b", "b") {
		t.Errorf("after the deploy, slot a runs %v and b %v; want b alone", f.slotRuns(0, "a", "a"), f.slotRuns(0, "b", "b"))
	}
	resp, err := client.Get("http://app/version")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := strings.TrimSpace(string(b)); got != v2.SHA {
		t.Errorf("the port answers %q, want v0.2.0", got)
	}
}

// assertOldSlotServes checks, on every host, that the new slot b no longer
// runs, and that the old slot a runs and serves v1.
func (f *testFleet) assertOldSlotServes(t *testing.T, what string, v1 release.Target) {
	t.Helper()
	for i := range f.hosts {
		if f.slotRuns(i, "b", "b") {
			t.Errorf("%s: h%d: the new slot b still runs", what, i+1)
		}
		if !f.slotRuns(i, "a", "a") {
			t.Errorf("%s: h%d: the old slot a stopped", what, i+1)
		}
		if got := f.serving(t, i); got != v1.SHA {
			t.Errorf("%s: h%d serves %q, want %s", what, i+1, got, v1.Name)
		}
	}
}
