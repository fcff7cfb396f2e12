package magetargets

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// stopSignals stop a run that works on hosts as Ctrl-C does: mage's
// generated main catches SIGINT alone, and the default action of SIGTERM
// (a CI runner cancelling a job, systemd, kill) and SIGHUP (a closed
// terminal or SSH session) would end the process at once, leaving the
// deploy lock on every host.
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// stopGrace bounds how long a run stopped by a signal may take to stop its
// remote commands and release its locks before the process exits anyway.
// Releasing the locks takes a few seconds; a connection that hangs is
// what this bounds. Tests shorten it.
const stopGrace = 15 * time.Second

// stopper cancels a run's context when one of stopSignals arrives, so that
// the run stops its remote commands and releases its locks, as mage does
// for Ctrl-C; the target then fails with exit status 128+the signal's
// number (see signalExit). While hosts switch, holdInterrupts takes the
// signals from it and gives them back when the switch is over.
//
// SIGPIPE is caught as well while the run works: a run whose output went
// to a pipe that closed (`mage ... | tee log` in a closed terminal) would
// otherwise die at its next line of output, before it released its locks;
// caught, the write fails and the run goes on stopping.
type stopper struct {
	cancel context.CancelFunc
	say    func(format string, args ...any) // the run's progress line
	exit   func(code int)                   // os.Exit; tests replace it
	ch     chan os.Signal                   // stopSignals, while the run works
	pipe   chan os.Signal                   // SIGPIPE, drained
	done   chan struct{}                    // closed when the target ends
	grace  time.Duration                    // stopGrace; tests shorten it

	mu   sync.Mutex
	sig  syscall.Signal // the signal that stopped the run; 0 if none did
	held int            // holdInterrupts under way: the grace waits for them
}

// catchSignals makes stopSignals cancel the context it returns, and holds
// the stopper in r for holdInterrupts and end. The target calls r.end when
// it returns.
func (r *fleetRun) catchSignals(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	s := &stopper{
		cancel: cancel,
		say:    r.say,
		exit:   os.Exit,
		ch:     make(chan os.Signal, 1),
		pipe:   make(chan os.Signal, 1),
		done:   make(chan struct{}),
		grace:  stopGrace,
	}
	signal.Notify(s.ch, stopSignals...)
	signal.Notify(s.pipe, syscall.SIGPIPE)
	r.stop = s
	go s.watch()
	return ctx
}

// watch acts on the signals until the target ends: the first cancels the
// run; a second Ctrl-C exits at once, as it does in mage's own handler;
// and a run that has not stopped s.grace after the first exits anyway.
func (s *stopper) watch() {
	var grace <-chan time.Time
	for {
		select {
		case got := <-s.ch:
			sig := got.(syscall.Signal)
			s.mu.Lock()
			first := s.sig == 0
			if first {
				s.sig = sig
			}
			stopped := s.sig
			s.mu.Unlock()
			switch {
			case first:
				s.say("%s: stopping: the remote commands stop and this run's locks are released (SIGKILL would leave them until their lease expires)", signalName(sig))
				s.cancel()
				grace = time.After(s.grace)
			case sig == syscall.SIGINT:
				s.say("%s again: exiting now; a lock left behind is taken over once its lease expires (deploy:status shows the hosts)", signalName(sig))
				s.exit(128 + int(stopped))
			default:
				s.say("%s: already stopping (releasing this run's locks)", signalName(sig))
			}
		case <-s.pipe:
		case <-grace:
			s.mu.Lock()
			sig, held := s.sig, s.held
			s.mu.Unlock()
			if held > 0 {
				// Hosts are switching (or switching back): stopping
				// now would split the fleet.
				grace = time.After(s.grace)
				continue
			}
			s.say("not stopped %s after %s: exiting; a lock left behind is taken over once its lease expires (deploy:status shows the hosts)", s.grace, signalName(sig))
			s.exit(128 + int(sig))
		case <-s.done:
			return
		}
	}
}

// end is deferred by a target that made a fleetRun: the live summary, if
// any, is finished, its last frame left above the error; the signals get back
// what they did before the run (mage's handler keeps SIGINT, if it still
// has it; SIGTERM and SIGHUP stop the process at once), the run's context
// is cancelled, and if a signal stopped the run, *err (when not nil and
// without an exit status of its own, such as a split fleet's 77) is given
// exit status 128+the signal's number: 130 for Ctrl-C, 143 for SIGTERM,
// 129 for SIGHUP. A run that finished its work although a signal came
// (one held during a switch) keeps its result. Unless a signal came, the
// connections are made quiet for the process's exit (quietPools).
func (r *fleetRun) end(err *error) {
	r.finish()
	var sig syscall.Signal
	if s := r.stop; s != nil {
		signal.Stop(s.ch)
		signal.Stop(s.pipe)
		close(s.done)
		s.cancel()
		s.mu.Lock()
		sig = s.sig
		s.mu.Unlock()
	}
	if sig == 0 {
		quietPools() // an interrupted run leaves mage's grace to its cleanup
		return
	}
	if *err == nil {
		return
	}
	if _, ok := (*err).(interface{ ExitStatus() int }); ok {
		return
	}
	*err = &signalExit{sig: sig, err: *err}
}

// resume is called when a switch is over (holdInterrupts' done): the
// stopper takes the signals again, since signal.Ignore in holdInterrupts
// cleared its channel. Mage's handler does not get SIGINT back: Ctrl-C
// now stops the run through the stopper.
func (s *stopper) resume() {
	s.mu.Lock()
	s.held--
	s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	signal.Notify(s.ch, stopSignals...)
}

// signalExit is the error of a target that a signal stopped: mage exits
// with ExitStatus.
type signalExit struct {
	sig syscall.Signal
	err error
}

func (e *signalExit) Error() string {
	return fmt.Sprintf("%v (stopped by %s)", e.err, signalName(e.sig))
}
func (e *signalExit) Unwrap() error   { return e.err }
func (e *signalExit) ExitStatus() int { return 128 + int(e.sig) }

// signalName is how messages name a signal: SIGTERM.
func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT (Ctrl-C)"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}
