package haproxy_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
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
	mu   sync.Mutex
	srv  *httptest.Server
}

func (b *backend) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatalf("%s: %v", b.name, err)
	}
	b.addr = l.Addr().String()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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

// startHAProxy runs a real HAProxy in front of backends (haproxytest),
// checking them on /.
func startHAProxy(t *testing.T, backends []*backend) (string, *haproxy.Balancer) {
	t.Helper()
	var servers []haproxytest.Server
	for _, b := range backends {
		servers = append(servers, haproxytest.Server{Name: b.name, Addr: b.addr})
	}
	return haproxytest.Start(t, servers, "/")
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
	front, b := startHAProxy(t, bs)
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
		bs[victim].stop()
		time.Sleep(300 * time.Millisecond) // the app is down a while, as during a restart: it gets no request
		bs[victim].start(t)
		if err := b.In(ctx, []string{host}); err != nil {
			t.Fatalf("in: %v", err)
		}
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

// A server that never answers its health check is never reported
// healthy: In fails when its context ends, naming it.
func TestInNeverHealthy(t *testing.T) {
	bs := newBackends(t, 2)
	_, b := startHAProxy(t, bs)
	ctx := context.Background()
	if err := b.Out(ctx, []string{"web2"}); err != nil {
		t.Fatal(err)
	}
	bs[1].stop()
	// HAProxy's check sees it down: States says unhealthy
	w, cancelW := context.WithTimeout(ctx, 20*time.Second)
	defer cancelW()
	for {
		if st, _ := b.States(w, []string{"web2"}); st["web2"] == release.Unhealthy {
			break
		}
		if w.Err() != nil {
			t.Fatal("haproxy's check never saw web2 down")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := b.In(c, []string{"web2"})
	if err == nil || !strings.Contains(err.Error(), "web2") || !strings.Contains(err.Error(), "healthy") {
		t.Fatalf("In of a dead server = %v", err)
	}
	if err := b.Out(ctx, []string{"web9"}); err == nil || !strings.Contains(err.Error(), "web9") {
		t.Errorf("Out of an unknown server = %v", err)
	}
}
