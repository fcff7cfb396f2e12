// Package haproxytest runs a real HAProxy on loopback for tests: a
// frontend in front of one backend, "app", with a health check every
// 100ms and the runtime API at level admin.
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

// Server is a server of the backend: its name and host:port.
type Server struct{ Name, Addr string }

// Start runs HAProxy with servers in backend "app", checked with GET
// check (a server is up after 2 passing checks, down after 2 failing),
// and waits until every server is up. It returns the frontend's address
// (127.0.0.1:port) and the Balancer of the backend. HAProxy is stopped,
// by the process the test started, when the test ends. Without haproxy
// the test skips, or fails under CI.
func Start(t testing.TB, servers []Server, check string) (front string, b *haproxy.Balancer) {
	t.Helper()
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
		fmt.Fprintf(&lines, "    server %s %s check\n", s.Name, s.Addr)
	}
	sock := filepath.Join(dir, "admin.sock")
	cfg := fmt.Sprintf(`global
    stats socket %s mode 600 level admin
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
    default-server inter 100ms fastinter 100ms downinter 100ms fall 2 rise 2
%s`, sock, front, check, lines.String())
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
