package magetargets

import (
	"context"
	"testing"
	"time"

	"github.com/magefab/magefab/sshx/sshtest"
)

// keepalives counts the keepalives (global requests) the servers got.
func keepalives(servers []*sshtest.Server) int {
	var n int
	for _, s := range servers {
		n += s.Stats().GlobalRequests
	}
	return n
}

// TestTargetEndsWithQuietConnections: a target's end makes its
// connections quiet, so that the process may exit with none of them
// waiting for a keepalive's answer. With a keepalive every second
// (ServerAliveInterval 1), none reaches a host in the 4 s after a deploy,
// and they go again once the next command runs on the same connections.
func TestTargetEndsWithQuietConnections(t *testing.T) {
	hosts := []string{"h1", "h2"}
	_, head, servers := fleetHosts(t, hosts, "Host *\n  ServerAliveInterval 1\n")
	out := captureOut(t)
	ctx := context.Background()
	if err := (Deploy{}).Commit(ctx, head); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	quiet := keepalives(servers)
	time.Sleep(4 * time.Second) // four intervals
	if n := keepalives(servers); n != quiet {
		t.Fatalf("%d keepalives reached the hosts after the target ended, want none", n-quiet)
	}
	// The same connections, one more command: the keepalives go again.
	c, err := currentConfig()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sshPool(c)
	if err != nil {
		t.Fatal(err)
	}
	h1, err := pool.Host("h1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.Command(ctx, "true").Run(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); keepalives(servers) == quiet; {
		if time.Now().After(deadline) {
			t.Fatal("no keepalive within 30s of the next command")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := servers[0].Stats().Connections; got != 1 {
		t.Errorf("h1 had %d connections, want the deploy's one reused", got)
	}
}
