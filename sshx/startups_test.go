package sshx_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magefab/magefab/sshx"
)

// TestMaxStartupsBoundsConnectionsBeingOpened opens connections to 12
// hosts at once (one server, a login name per host) and counts the dials
// in progress. Each dial lasts until 3 are in progress or a moment has
// passed, so that without a bound they pile up; with MaxStartups 2, never
// more than 2 may be, and every host still gets its connection.
func TestMaxStartupsBoundsConnectionsBeingOpened(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		limit   int
		wantMax func(int) bool
		want    string
	}{
		{"bounded", 2, func(n int) bool { return n >= 1 && n <= 2 }, "1 or 2"},
		{"unbounded", -1, func(n int) bool { return n >= 3 }, "at least 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu       sync.Mutex
				inflight int
				most     int
				crowded  = make(chan struct{})
				once     sync.Once
			)
			_, pool, _, _ := newHost(t, func(cfg *sshx.Config) {
				cfg.MaxStartups = c.limit
				d := &net.Dialer{}
				cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
					mu.Lock()
					inflight++
					most = max(most, inflight)
					if inflight >= 3 {
						once.Do(func() { close(crowded) })
					}
					mu.Unlock()
					select {
					case <-crowded:
					case <-time.After(100 * time.Millisecond):
					}
					conn, err := d.DialContext(ctx, network, addr)
					mu.Lock()
					inflight--
					mu.Unlock()
					return conn, err
				}
			})
			const hosts = 12
			var wg sync.WaitGroup
			var failed atomic.Int32
			for i := range hosts {
				r, err := pool.Host(fmt.Sprintf("u%d@%s", i, "sshtest"))
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					if err := r.Command(context.Background(), "true").Run(); err != nil {
						failed.Add(1)
						t.Errorf("%s: %v", r.Name(), err)
					}
				})
			}
			wg.Wait()
			conns := 0
			for _, st := range pool.Stats() {
				conns += int(st.Connections)
			}
			if conns != hosts || failed.Load() != 0 {
				t.Errorf("%d connections for %d hosts, %d commands failed", conns, hosts, failed.Load())
			}
			if !c.wantMax(most) {
				t.Errorf("at most %d dials were in progress at once, want %s", most, c.want)
			}
		})
	}
}
