package release

import (
	"context"
	"sync"
	"time"

	"github.com/magefab/magefab/sshx"
)

// A lock's lease is kept fresh by the script working on its host (its
// heartbeat loop), and between phases by the Fleet: leaseKeeper tracks, per
// host, the sessions of a run and whether the run holds the host's lock,
// and refreshes the lease of a held host that has had no session for a
// third of the lease (refreshLease). A run of a few seconds sends none.
type leaseKeeper struct {
	mu    sync.Mutex
	hosts map[string]*leaseHost
}

type leaseHost struct {
	h    sshx.Host
	busy int       // sessions running
	last time.Time // when the last session ended
	held bool      // this run holds the lock there
}

func (k *leaseKeeper) host(h sshx.Host) *leaseHost {
	lh := k.hosts[h.Name()]
	if lh == nil {
		lh = &leaseHost{h: h}
		k.hosts[h.Name()] = lh
	}
	return lh
}

// begin and end bracket a session on h.
func (k *leaseKeeper) begin(h sshx.Host) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.host(h).busy++
}

func (k *leaseKeeper) end(h sshx.Host) {
	k.mu.Lock()
	defer k.mu.Unlock()
	lh := k.host(h)
	lh.busy--
	lh.last = time.Now()
}

// hold records that a script took (or released) the lock on host.
func (k *leaseKeeper) hold(host string, held bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if lh := k.hosts[host]; lh != nil {
		lh.held = held
	}
}

// idle returns the held hosts with no session running and none for quiet.
func (k *leaseKeeper) idle(quiet time.Duration) []sshx.Host {
	k.mu.Lock()
	defer k.mu.Unlock()
	var hs []sshx.Host
	for _, lh := range k.hosts {
		if lh.held && lh.busy == 0 && time.Since(lh.last) >= quiet {
			hs = append(hs, lh.h)
		}
	}
	return hs
}

// keepLeases refreshes the leases of the locks this run holds while it
// runs, for the hosts it is not working on; the func it returns stops
// that. Nested calls share the first one's keeper.
func (f *Fleet) keepLeases() (stop func()) {
	o := f.Options
	if o.leases != nil {
		return func() {}
	}
	k := &leaseKeeper{hosts: map[string]*leaseHost{}}
	o.leases = k
	lease := o.lockLease()
	quiet := lease / 3
	every := max(lease/6, 500*time.Millisecond)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var each sync.WaitGroup
			for _, h := range k.idle(quiet) {
				each.Add(1)
				go func() {
					defer each.Done()
					ctx, cancel := context.WithTimeout(context.Background(), quiet)
					defer cancel()
					if err := refreshLease(ctx, h, o); err != nil {
						k.hold(h.Name(), false)
						f.say("%s: the deploy lock's lease could not be refreshed: %v", h.Name(), err)
					}
				}()
			}
			each.Wait()
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		o.leases = nil
	}
}
