package sshx

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Quiet waits for the keepalives awaiting an answer, and none starts
// while the pool is quiet; the next command lets them go again.
func TestQuietWaitsForKeepalivesInFlight(t *testing.T) {
	p, err := NewPool(Config{ConfigFile: "/dev/null", KnownHostsFile: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.ping() {
		t.Fatal("ping refused before Quiet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Quiet(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Quiet with a keepalive unanswered = %v, want it to wait until its context ends", err)
	}
	if p.ping() {
		t.Fatal("a keepalive started while the pool is quiet")
	}
	done := make(chan error, 1)
	go func() { done <- p.Quiet(context.Background()) }()
	p.pinged()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Quiet = %v after the answer, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Quiet still waits after the last keepalive was answered")
	}
	p.wake()
	if !p.ping() {
		t.Fatal("ping refused after a command woke the pool")
	}
	p.pinged()
}
