// Package haproxytest runs a real HAProxy on loopback for tests: a
// frontend in front of one backend, "app", with a health check every
// 100ms, the runtime API at level admin on the Balancer's socket and at
// level user on user.sock beside it.
package haproxytest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/haproxy"
)

// Server is a server of the backend: its name and host:port. NoCheck
// leaves it without a health check.
type Server struct {
	Name, Addr string
	NoCheck    bool
}

// Options of the backend's health check: GET Path (default /), up after
// Rise passing checks and down after Fall failing ones (default 2 each).
type Options struct {
	Path       string
	Rise, Fall int
}

// Start runs HAProxy with servers in backend "app" and waits until every
// server is up. It returns the frontend's address (127.0.0.1:port) and
// the Balancer of the backend. HAProxy is stopped, by the process the
// test started, when the test ends. Without haproxy the test skips, or
// fails under CI.
func Start(t testing.TB, servers []Server, o Options) (front string, b *haproxy.Balancer) {
	t.Helper()
	if o.Path == "" {
		o.Path = "/"
	}
	if o.Rise == 0 {
		o.Rise = 2
	}
	if o.Fall == 0 {
		o.Fall = 2
	}
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		fleettest.Unavailable(t, "haproxy is not installed (Debian: apt-get install haproxy)")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	front = l.Addr().String()
	l.Close()
	var lines strings.Builder
	for _, s := range servers {
		check := " check"
		if s.NoCheck {
			check = ""
		}
		fmt.Fprintf(&lines, "    server %s %s%s\n", s.Name, s.Addr, check)
	}
	sock := filepath.Join(dir, "admin.sock")
	cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
    stats socket %s mode 600 level user
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 0
frontend web
    bind %s
    default_backend app
backend app
    option httpchk GET %s
    default-server inter 100ms fastinter 100ms downinter 100ms fall %d rise %d
%s`, sock, filepath.Join(dir, "user.sock"), front, o.Path, o.Fall, o.Rise, lines.String())
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-q", "-f", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	b = &haproxy.Balancer{Socket: sock, Backend: "app"}
	var names []string
	for _, s := range servers {
		names = append(names, s.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		st, err := b.States(ctx, names) // fails until the socket is there
		up := 0
		for _, s := range st {
			if s == release.InService {
				up++
			}
		}
		if err == nil && up == len(names) {
			return front, b
		}
		if ctx.Err() != nil {
			t.Fatalf("haproxy: not every server came up: %v %v", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
