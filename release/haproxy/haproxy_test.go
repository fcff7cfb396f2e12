package haproxy_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/load"
	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/haproxy"
	"github.com/magefab/magefab/release/haproxy/haproxytest"
)

// backend is an app server on a fixed loopback port that can be stopped
// and started again, as a host's app restarts.
type backend struct {
	name string
	addr string
	// slow, when not nil, holds requests for /slow until it is closed;
	// each such request first sends on entered.
	slow, entered chan struct{}
	mu            sync.Mutex
	srv           *httptest.Server
}

func (b *backend) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatalf("%s: %v", b.name, err)
	}
	b.addr = l.Addr().String()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" && b.slow != nil {
			b.entered <- struct{}{}
			<-b.slow
		}
		fmt.Fprintf(w, "%s\n", b.name)
	}))
	s.Listener.Close()
	s.Listener = l
	s.Start()
	b.mu.Lock()
	b.srv = s
	b.mu.Unlock()
}

func (b *backend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

// options of startHAProxy.
type options struct {
	rise, fall int             // of the health checks; 0 means 2
	noCheck    map[string]bool // servers without health checks
}

// startHAProxy runs a real HAProxy in front of backends (haproxytest),
// checking them on /.
func startHAProxy(t *testing.T, backends []*backend, o options) (string, *haproxy.Balancer) {
	t.Helper()
	var servers []haproxytest.Server
	for _, b := range backends {
		servers = append(servers, haproxytest.Server{Name: b.name, Addr: b.addr, NoCheck: o.noCheck[b.name]})
	}
	return haproxytest.Start(t, servers, haproxytest.Options{Rise: o.rise, Fall: o.fall})
}

func newBackends(t *testing.T, n int) []*backend {
	var bs []*backend
	for i := range n {
		b := &backend{name: "web" + strconv.Itoa(i+1), addr: "127.0.0.1:0"}
		b.start(t)
		t.Cleanup(b.stop)
		bs = append(bs, b)
	}
	return bs
}

// A host taken out drains, restarts (its app stopped and started again on
// the same port), is put back once HAProxy's check says it is up, and
// not one request through HAProxy fails meanwhile.
func TestOutRestartInFailsNoRequest(t *testing.T) {
	bs := newBackends(t, 3)
	front, b := startHAProxy(t, bs, options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := load.Start(ctx, []load.Target{{Name: "haproxy", URL: "http://" + front + "/"}}, load.Options{Rate: 200, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, victim := range []int{0, 1} {
		host := bs[victim].name
		if err := b.Out(ctx, []string{host}); err != nil {
			t.Fatalf("out: %v", err)
		}
		st, err := b.States(ctx, []string{"web1", "web2", "web3", "nope"})
		if err != nil || st[host] != release.OutService || st["nope"] != release.Unknown {
			t.Errorf("states while %s is out: %v, %v", host, st, err)
		}
		if s, _ := haproxy.ServerStats(ctx, b, host); !s.Maint {
			t.Errorf("%s is out but not in maintenance: %s", host, s.Status)
		}
		bs[victim].stop()
		time.Sleep(300 * time.Millisecond) // the app is down a while, as during a restart: it gets no request
		bs[victim].start(t)
		if err := b.In(ctx, []string{host}); err != nil {
			t.Fatalf("in: %v", err)
		}
		if s, _ := haproxy.ServerStats(ctx, b, host); s.Status != "UP" || s.Admin != 0 {
			t.Errorf("%s is back in but %s, admin state %#x", host, s.Status, s.Admin)
		}
	}
	// Out and In of hosts that are out or in already change nothing.
	if err := b.Out(ctx, []string{"web3"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Out(ctx, []string{"web3"}); err != nil {
		t.Errorf("out of a host that is out: %v", err)
	}
	if err := b.In(ctx, []string{"web3"}); err != nil {
		t.Fatal(err)
	}
	if err := b.In(ctx, []string{"web3"}); err != nil {
		t.Errorf("in of a host that is in: %v", err)
	}
	rep := r.Stop()
	if rep.Requests < 100 || rep.Failed > 0 {
		t.Fatalf("%d requests, %d failed: %v", rep.Requests, rep.Failed, rep.Failures)
	}
	t.Logf("%d requests through haproxy while two servers restarted: %d failed, p99 %s", rep.Requests, rep.Failed, rep.P99)
	st, _ := b.States(ctx, []string{"web1", "web2", "web3"})
	for h, s := range st {
		if s != release.InService {
			t.Errorf("%s is %s at the end", h, s)
		}
	}
}

// Out waits until the server has no session left: a request in progress
// on it finishes first, while States says it drains.
func TestOutWaitsForSessions(t *testing.T) {
	bs := newBackends(t, 2)
	bs[0].slow, bs[0].entered = make(chan struct{}), make(chan struct{}, 4)
	front, b := startHAProxy(t, bs, options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Round robin: of two requests, one goes to web1 and is held there.
	answered := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := http.Get("http://" + front + "/slow")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			answered <- err
		}()
	}
	select {
	case <-bs[0].entered:
	case <-ctx.Done():
		t.Fatal("no request reached web1")
	}
	out := make(chan error, 1)
	go func() { out <- b.Out(ctx, []string{"web1"}) }()
	for {
		st, err := b.States(ctx, []string{"web1"})
		if err != nil {
			t.Fatal(err)
		}
		if st["web1"] == release.Draining {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("web1 with a session open is %s, never draining", st["web1"])
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-out:
		t.Fatalf("Out returned (%v) while web1 had a session", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(bs[0].slow)
	if err := <-out; err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-answered; err != nil {
			t.Errorf("a request through haproxy: %v", err)
		}
	}
	if st, _ := b.States(ctx, []string{"web1", "web2"}); st["web1"] != release.OutService || st["web2"] != release.InService {
		t.Errorf("states once web1 drained = %v", st)
	}

	// A session that outlasts ctx: the error names the host.
	bs[1].slow, bs[1].entered = make(chan struct{}), make(chan struct{}, 4)
	go http.Get("http://" + front + "/slow")
	<-bs[1].entered
	c, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	err := b.Out(c, []string{"web2"})
	if err == nil || !strings.Contains(err.Error(), `haproxy: backend "app": not yet drained: web2 (DRAIN, check L7OK, 1 sessions)`) {
		t.Errorf("Out of a server whose session outlasts ctx: error = %v", err)
	}
	close(bs[1].slow)
}

// A server that never answers its health check is never reported
// healthy: In fails when its context ends, naming it.
func TestInNeverHealthy(t *testing.T) {
	bs := newBackends(t, 3)
	_, b := startHAProxy(t, bs, options{})
	ctx := context.Background()
	if err := b.Out(ctx, []string{"web2"}); err != nil {
		t.Fatal(err)
	}
	bs[1].stop()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := b.In(c, []string{"web2"})
	if err == nil || !strings.Contains(err.Error(), `haproxy: backend "app": not yet healthy: web2 (DOWN`) {
		t.Fatalf("In of a dead server = %v", err)
	}
	// Left drained: out, not in service.
	if st, _ := b.States(ctx, []string{"web2"}); st["web2"] != release.OutService {
		t.Errorf("a drained server failing its check is %s, want out", st["web2"])
	}

	// A server in service whose app dies: unhealthy.
	bs[2].stop()
	w, cancelW := context.WithTimeout(ctx, 20*time.Second)
	defer cancelW()
	for {
		st, err := b.States(w, []string{"web3"})
		if err == nil && st["web3"] == release.Unhealthy {
			break
		}
		if w.Err() != nil {
			t.Fatalf("web3 down: states %v, %v; want unhealthy", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bs[1].start(t)
	if err := b.In(w, []string{"web2"}); err != nil {
		t.Errorf("In once web2 is back: %v", err)
	}
}

// A server put back after maintenance counts as healthy only once a
// check run after it left maintenance passed, even when a single check
// decides (rise 1, fall 1) and the last one before maintenance passed.
func TestInChecksAfterMaintenance(t *testing.T) {
	bs := newBackends(t, 2)
	_, b := startHAProxy(t, bs, options{rise: 1, fall: 1})
	ctx := context.Background()
	if err := b.Out(ctx, []string{"web1"}); err != nil {
		t.Fatal(err)
	}
	bs[0].stop()
	c, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := b.In(c, []string{"web1"}); err == nil || !strings.Contains(err.Error(), "not yet healthy: web1") {
		t.Fatalf("In of a server down since it was taken out = %v", err)
	}
	bs[0].start(t)
	c, cancel = context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.In(c, []string{"web1"}); err != nil {
		t.Fatal(err)
	}
}

// HAProxy refuses: an unknown server, a server without health checks, a
// socket without the admin level.
func TestRefused(t *testing.T) {
	bs := newBackends(t, 2)
	_, b := startHAProxy(t, bs, options{noCheck: map[string]bool{"web2": true}})
	ctx := context.Background()
	for name, err := range map[string]error{
		"Out": b.Out(ctx, []string{"web1", "web9"}),
		"In":  b.In(ctx, []string{"web9"}),
	} {
		if err == nil || !strings.Contains(err.Error(), `haproxy: backend "app" has no server "web9" (host web9)`) {
			t.Errorf("%s of an unknown server = %v", name, err)
		}
	}
	err := b.Out(ctx, []string{"web1", "web2"})
	if err == nil || !strings.Contains(err.Error(), `server "web2" (host web2) has no health check`) {
		t.Errorf("Out of a server without health checks = %v", err)
	}
	if st, _ := b.States(ctx, []string{"web1", "web2", "web9"}); !maps.Equal(st, map[string]release.BalancerState{"web1": release.InService, "web2": release.InService, "web9": release.Unknown}) {
		t.Errorf("states after the refused Outs = %v, want nothing taken out", st)
	}

	user := &haproxy.Balancer{Socket: filepath.Join(filepath.Dir(b.Socket), "user.sock"), Backend: "app"}
	err = user.Out(ctx, []string{"web1"})
	if err == nil || !strings.Contains(err.Error(), "haproxy: set server app/web1 state drain: ") {
		t.Errorf("Out through a socket at level user = %v", err)
	}
	t.Logf("HAProxy's answer at level user: %v", err)
	if st, _ := b.States(ctx, []string{"web1"}); st["web1"] != release.InService {
		t.Errorf("web1 after the refused Out: %s", st["web1"])
	}
	missing := &haproxy.Balancer{Socket: filepath.Join(t.TempDir(), "none.sock"), Backend: "app"}
	if _, err := missing.States(ctx, []string{"web1"}); err == nil || !strings.Contains(err.Error(), "haproxy: the stats socket: ") {
		t.Errorf("States through a socket that is not there = %v", err)
	}
}
