// Package live shows a fleet run's progress on a terminal as one summary
// redrawn in place, instead of a stream of lines per host: for each phase
// of the run, how many hosts are done, working and failed (and waiting to
// begin), with the slowest hosts still working named, their time so far
// and what they do. Lines written to the Summary (the run's own, warnings)
// are printed above it, whole.
//
// # Cost
//
// An event only updates counters under a mutex; frames are drawn by one
// goroutine at most ten times a second (Config.Interval), and a frame equal
// to the one on the screen is not written again. A frame names a bounded
// number of hosts, whatever the size of the fleet.
//
// # Terminal
//
// The summary moves the cursor up over its own lines and clears them
// (github.com/charmbracelet/x/ansi), and cuts each of its lines to the
// terminal's width so that none wraps. Whether to use it at all (a
// terminal, not CI, TERM not "dumb") and whether to colour it (NO_COLOR)
// is the caller's choice: see package tty.
package live

import (
	"io"
	"sync"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// State is what an event says of a host in a phase.
type State int

const (
	// Waiting: the host is to begin the phase, after others (a run
	// works on so many hosts at once).
	Waiting State = iota
	// Started: the host began the phase.
	Started
	// Step: the host says what it does now (the event's text). It
	// belongs to the phase the host is working in.
	Step
	// Done: the host finished the phase.
	Done
	// Failed: the host failed the phase; the event's text says why.
	Failed
)

// Config says how a Summary draws. Its zero value draws 80 columns by 24
// lines, without colour, at most ten frames a second.
type Config struct {
	// Width and Height give the terminal's size, asked before each
	// frame; nil, or a result of zero or less, means 80 columns and 24
	// lines. A frame's lines are cut to the width, and the frame is kept
	// below the height.
	Width, Height func() int
	// Color colours the counts and the failures.
	Color bool
	// Interval is the least time between two frames; zero means 100ms.
	Interval time.Duration
	// Slowest is how many working hosts are named under a phase, the
	// slowest first; zero means 3.
	Slowest int
}

// Summary draws the progress of a run's hosts on a terminal. Update tells
// it what the hosts do; Write prints lines above it; Stop draws it one
// last time and leaves it on the screen. Nothing is drawn until the first
// host begins a phase. A Summary is safe for concurrent use.
type Summary struct {
	out io.Writer
	cfg Config

	// now and ticker are time.Now and a time.Ticker; tests replace them.
	now    func() time.Time
	ticker func(d time.Duration) (tick <-chan time.Time, stop func())

	mu      sync.Mutex // guards what follows, and each write to out
	phases  []*phase   // in the order they began
	hosts   map[string]*host
	order   []*host       // hosts in the order they first appeared
	fails   []failure     // every failure, in order
	drawn   int           // lines of the summary on the screen now
	shown   []byte        // the frame on the screen now
	next    []byte        // the frame being made, reused
	buf     []byte        // the next write, reused
	live    bool          // drawing: a host began a phase, Stop was not called
	stopped bool          // Stop was called
	done    chan struct{} // closed by Stop: the drawing goroutine returns
	wg      sync.WaitGroup
}

type phase struct {
	name             string
	fleet            bool      // a phase of the whole fleet (an event without a host)
	state            State     // a fleet phase's: Started, Done or Failed
	first, last      time.Time // the first start, the last end
	waiting, working int       // hosts, by their state in this phase
	done, failed     int
	slowest          []*host // scratch of frame: the slowest working hosts
}

type host struct {
	name  string
	in    []mark    // each phase it began, with its state there
	cur   *phase    // the phase it works in, nil when none
	start time.Time // when it began cur
	note  string    // what it does now, from its last Step
}

// mark is a host's state in one phase.
type mark struct {
	p     *phase
	state State
}

type failure struct {
	host, phase, text string
}

// New returns a summary that draws on w, a terminal, as c says.
func New(w io.Writer, c Config) *Summary {
	if c.Interval <= 0 {
		c.Interval = 100 * time.Millisecond
	}
	if c.Slowest <= 0 {
		c.Slowest = 3
	}
	return &Summary{
		out: w, cfg: c, now: time.Now, hosts: map[string]*host{},
		ticker: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		},
	}
}

// Update tells the summary that host is in the state st of the phase named
// phase; text is what the host does now (Step) or why it failed (Failed).
// An empty host is the whole fleet: its phase is shown with its state and
// time alone. The first event other than Waiting or Step begins drawing.
// After Stop, Update does nothing.
func (s *Summary) Update(host, phase string, st State, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	now := s.now()
	if host == "" {
		s.fleetPhase(phase, st, text, now)
	} else {
		s.hostPhase(host, phase, st, text, now)
	}
	if !s.live && st != Waiting && st != Step {
		s.live = true
		s.start()
	}
}

func (s *Summary) fleetPhase(name string, st State, text string, now time.Time) {
	if st == Step {
		return
	}
	p := s.phase(name, true, now)
	p.state = st
	if st == Started {
		p.first = now
		return
	}
	p.last = now
	if st == Failed {
		s.fails = append(s.fails, failure{phase: name, text: text})
	}
}

func (s *Summary) hostPhase(name, phase string, st State, text string, now time.Time) {
	h := s.hosts[name]
	if h == nil {
		h = &host{name: name}
		s.hosts[name] = h
		s.order = append(s.order, h)
	}
	if st == Step {
		h.note = text
		return
	}
	p := s.phase(phase, false, now)
	if st == Started && h.cur != nil && h.cur != p {
		h.set(h.cur, Done) // began another phase: the one it was in is over
	}
	h.set(p, st)
	switch st {
	case Started:
		h.cur, h.start, h.note = p, now, ""
	case Done, Failed:
		if h.cur == p {
			h.cur = nil
		}
		p.last = now
		if st == Failed {
			s.fails = append(s.fails, failure{host: name, phase: phase, text: text})
		}
	}
}

// set puts h in state st of p, keeping p's counts.
func (h *host) set(p *phase, st State) {
	i := 0
	for i < len(h.in) && h.in[i].p != p {
		i++
	}
	if i == len(h.in) {
		h.in = append(h.in, mark{p: p, state: -1})
	}
	p.count(h.in[i].state, -1)
	p.count(st, 1)
	h.in[i].state = st
}

func (p *phase) count(st State, n int) {
	switch st {
	case Waiting:
		p.waiting += n
	case Started:
		p.working += n
	case Done:
		p.done += n
	case Failed:
		p.failed += n
	}
}

// phase returns the phase named name, begun now if it is new.
func (s *Summary) phase(name string, fleet bool, now time.Time) *phase {
	for _, p := range s.phases {
		if p.name == name && p.fleet == fleet {
			return p
		}
	}
	p := &phase{name: name, fleet: fleet, first: now}
	s.phases = append(s.phases, p)
	return p
}

// start begins drawing: a goroutine makes a frame at each tick, and draws
// it if it changed (a count, a note, or a time shown).
func (s *Summary) start() {
	tick, stop := s.ticker(s.cfg.Interval)
	s.done = make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer stop()
		for {
			select {
			case <-tick:
				s.Flush()
			case <-s.done:
				return
			}
		}
	}()
}

// Flush draws a frame now, if the summary is drawing and the frame differs
// from the one on the screen.
func (s *Summary) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live {
		return
	}
	frame := s.frame(s.next[:0])
	if string(frame) == string(s.shown) {
		s.next = frame
		return
	}
	b := s.clear(s.buf[:0])
	b = append(b, frame...)
	s.out.Write(b)
	s.show(b, frame)
}

// show records what was written: b, which drew frame.
func (s *Summary) show(b, frame []byte) {
	s.buf, s.next, s.shown, s.drawn = b, s.shown, frame, lines(frame)
}

// Write prints p above the summary: it is cleared, p is written, and the
// summary drawn again below it. A last line without its newline gets one.
// Before the summary is drawn, and after Stop, p goes to the terminal as
// it is.
func (s *Summary) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live {
		return s.out.Write(p)
	}
	b := s.clear(s.buf[:0])
	b = append(b, p...)
	if len(p) > 0 && p[len(p)-1] != '\n' {
		b = append(b, '\n')
	}
	frame := s.frame(s.next[:0])
	b = append(b, frame...)
	_, err := s.out.Write(b)
	s.show(b, frame)
	return len(p), err
}

// Stop draws the summary one last time, in full (every failure with its
// whole text), and leaves it on the screen; what is written afterwards
// goes below it. It waits for the drawing goroutine to end. Stop may be
// called more than once; a summary that never drew prints nothing.
func (s *Summary) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	if s.live {
		s.live = false
		b := s.clear(s.buf[:0])
		b = s.final(b)
		s.out.Write(b)
		s.buf, s.drawn = b, 0
		close(s.done)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// clear appends to b what takes the cursor back to where the summary on
// the screen begins, and erases it.
func (s *Summary) clear(b []byte) []byte {
	if s.drawn == 0 {
		return b
	}
	b = append(b, '\r')
	b = append(b, ansi.CursorUp(s.drawn)...)
	return append(b, ansi.EraseScreenBelow...)
}

func lines(frame []byte) int {
	n := 0
	for _, c := range frame {
		if c == '\n' {
			n++
		}
	}
	return n
}

func (s *Summary) width() int {
	if s.cfg.Width != nil {
		if w := s.cfg.Width(); w > 0 {
			return w
		}
	}
	return 80
}

func (s *Summary) height() int {
	if s.cfg.Height != nil {
		if h := s.cfg.Height(); h > 0 {
			return h
		}
	}
	return 24
}
