package live

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTerm is a terminal of a fixed size that records what it is sent.
type fakeTerm struct {
	mu     sync.Mutex
	out    bytes.Buffer
	writes int
}

func (f *fakeTerm) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	return f.out.Write(p)
}

func (f *fakeTerm) screen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return Screen(f.out.String())
}

func (f *fakeTerm) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.String()
}

// clocked is a summary on a fake terminal whose clock and ticks the test
// moves: at advances the clock, tick makes it draw.
type clocked struct {
	*Summary
	term  *fakeTerm
	ticks chan time.Time

	mu    sync.Mutex // the drawing goroutine reads the clock too
	clock time.Time
}

func newClocked(c Config) *clocked {
	term := &fakeTerm{}
	s := &clocked{Summary: New(term, c), term: term, clock: time.Unix(1_700_000_000, 0), ticks: make(chan time.Time)}
	s.now = func() time.Time {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.clock
	}
	s.ticker = func(time.Duration) (<-chan time.Time, func()) { return s.ticks, func() {} }
	return s
}

func (s *clocked) at(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock = s.clock.Add(d)
}

// tick draws a frame through the summary's own goroutine, and returns once
// it is drawn (the second tick is taken only after the first was drawn).
func (s *clocked) tick() {
	s.ticks <- time.Time{}
	s.ticks <- time.Time{}
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFrame(t *testing.T) {
	s := newClocked(Config{Width: func() int { return 60 }})
	for _, h := range []string{"web-1", "web-2", "web-3", "web-4"} {
		s.Update(h, "prepare", Waiting, "")
	}
	s.Update("web-1", "prepare", Started, "")
	s.at(2 * time.Second)
	s.Update("web-2", "prepare", Started, "")
	s.Update("web-2", "prepare", Step, "installing requirements")
	s.at(time.Second)
	s.Update("web-3", "prepare", Started, "")
	s.Update("web-3", "prepare", Failed, "prepare: git fetch: connection refused")
	s.Update("web-1", "prepare", Step, "updating b to v1.2.0 (3f2a9c1)")
	s.at(2 * time.Second)
	s.tick()
	wantLines(t, "frame", s.term.screen(), []string{
		"prepare    0 done    2 working    1 failed    1 waiting  5s",
		"  web-1  5s  updating b to v1.2.0 (3f2a9c1)",
		"  web-2  3s  installing requirements",
		"  failed: web-3",
	})

	s.Update("web-1", "prepare", Done, "")
	s.Update("web-2", "prepare", Done, "")
	s.Update("web-4", "prepare", Started, "")
	s.Update("web-4", "prepare", Done, "")
	s.Update("", "after prepare", Started, "")
	s.at(12 * time.Second)
	s.tick()
	wantLines(t, "frame after the hosts prepared", s.term.screen(), []string{
		"prepare          3 done    0 working    1 failed  5s",
		"  failed: web-3",
		"after prepare  working 12s",
	})

	s.Update("", "after prepare", Done, "")
	s.Update("web-1", "switch", Started, "")
	s.Stop()
	wantLines(t, "final frame", s.term.screen(), []string{
		"prepare          3 done    0 working    1 failed  5s",
		"after prepare  done in 12s",
		"switch           0 done    1 working    0 failed  0s",
		"  unfinished: web-1",
		"web-3 failed in prepare: prepare: git fetch: connection refused",
	})
}

// TestWriteAbove checks that lines written while the summary shows go
// above it, whole, and that after Stop they go below it.
func TestWriteAbove(t *testing.T) {
	s := newClocked(Config{})
	fmt.Fprintf(s, "magefab | before\n")
	s.Update("h1", "prepare", Started, "")
	s.tick()
	fmt.Fprintf(s, "magefab | while the hosts prepare, a line longer than the terminal is wide, %s\n", strings.Repeat("x", 80))
	fmt.Fprintf(s, "magefab | without its newline")
	s.Update("h1", "prepare", Done, "")
	s.Stop()
	fmt.Fprintf(s, "after\n")
	wantLines(t, "screen", s.term.screen(), []string{
		"magefab | before",
		"magefab | while the hosts prepare, a line longer than the terminal is wide, " + strings.Repeat("x", 80),
		"magefab | without its newline",
		"prepare    1 done    0 working    0 failed  0s",
		"after",
	})
}

// TestNoRedrawPerEvent checks that events only change counters: frames
// are drawn at ticks, and a frame equal to the one shown is not drawn
// again.
func TestNoRedrawPerEvent(t *testing.T) {
	s := newClocked(Config{})
	for i := range 128 {
		s.Update(fmt.Sprintf("web-%03d", i), "prepare", Started, "")
		for j := range 50 {
			s.Update(fmt.Sprintf("web-%03d", i), "prepare", Step, fmt.Sprintf("step %d", j))
		}
	}
	if n := s.term.writes; n != 0 {
		t.Fatalf("%d writes before the first tick, want 0", n)
	}
	s.tick()
	s.tick()
	s.tick()
	if n := s.term.writes; n != 1 {
		t.Errorf("%d writes after three ticks with nothing new, want 1", n)
	}
	s.at(time.Second) // the times shown change
	s.tick()
	if n := s.term.writes; n != 2 {
		t.Errorf("%d writes after a second passed, want 2", n)
	}
	s.Stop()
}

// TestManyHosts checks that a frame of 128 hosts names a bounded number of
// them, fits the terminal's width and stays below its height.
func TestManyHosts(t *testing.T) {
	for _, c := range []struct {
		height, maxLines int
	}{
		{50, 2 * (1 + 3 + 1)}, // two phases, three hosts named, a failed line
		{6, 5},
	} {
		s := newClocked(Config{Width: func() int { return 72 }, Height: func() int { return c.height }})
		for i := range 128 {
			h := fmt.Sprintf("web-%03d.eu-west-1.example.com", i)
			s.Update(h, "prepare", Waiting, "")
			s.Update(h, "prepare", Started, "")
			s.Update(h, "prepare", Step, "installing requirements from requirements/production.txt and requirements/base.txt")
			s.at(10 * time.Millisecond)
		}
		for i := range 64 {
			h := fmt.Sprintf("web-%03d.eu-west-1.example.com", i)
			if i%8 == 0 {
				s.Update(h, "prepare", Failed, "no space left on device")
				continue
			}
			s.Update(h, "prepare", Done, "")
			s.Update(h, "switch", Started, "")
		}
		s.at(time.Minute)
		s.tick()
		lines := s.term.screen()
		if len(lines) > c.maxLines || len(lines) >= c.height {
			t.Errorf("height %d: %d lines, want at most %d:\n%s", c.height, len(lines), c.maxLines, strings.Join(lines, "\n"))
		}
		for _, l := range lines {
			if n := len([]rune(l)); n > 71 {
				t.Errorf("height %d: a line of %d columns on a terminal of 72: %q", c.height, n, l)
			}
		}
		if c.height == 50 {
			want := []string{
				"prepare   56 done   64 working    8 failed  1m01s",
				"  web-064.eu-west-1.example.com  1m00s  installing requirements from r…",
				"  web-065.eu-west-1.example.com  1m00s  installing requirements from r…",
				"  web-066.eu-west-1.example.com  1m00s  installing requirements from r…",
				"  failed: web-000.eu-west-1.example.com and 7 more",
				"switch     0 done   56 working    0 failed  1m00s",
				"  web-001.eu-west-1.example.com  1m00s",
				"  web-002.eu-west-1.example.com  1m00s",
				"  web-003.eu-west-1.example.com  1m00s",
			}
			wantLines(t, "frame of 128 hosts", lines, want)
		}
		s.Stop()
	}
}

func TestColor(t *testing.T) {
	for _, color := range []bool{false, true} {
		s := newClocked(Config{Color: color})
		s.Update("h1", "prepare", Started, "")
		s.Update("h2", "prepare", Started, "")
		s.Update("h1", "prepare", Done, "")
		s.Update("h2", "prepare", Failed, "broken")
		s.tick()
		s.Stop()
		out := s.term.String()
		if got := strings.Contains(out, "\x1b[32m") && strings.Contains(out, "\x1b[31m"); got != color {
			t.Errorf("Color %v: green and red in %q: %v", color, out, got)
		}
		if !color && strings.Contains(out, "m") && strings.Contains(out, "\x1b[0m") {
			t.Errorf("Color false: a style in %q", out)
		}
	}
}

// TestStopBeforeDrawing checks that a summary that never drew prints
// nothing, and passes what is written through as it is.
func TestStopBeforeDrawing(t *testing.T) {
	s := newClocked(Config{})
	s.Update("h1", "prepare", Waiting, "")
	s.Update("h1", "prepare", Step, "locking")
	fmt.Fprint(s, "one\ntwo")
	s.Stop()
	s.Stop()
	s.Update("h1", "prepare", Started, "")
	if got := s.term.String(); got != "one\ntwo" {
		t.Errorf("output %q, want what was written alone", got)
	}
}

func TestManyFailuresInFinalFrame(t *testing.T) {
	s := newClocked(Config{})
	for i := range 12 {
		s.Update(fmt.Sprint("h", i), "prepare", Started, "")
		s.Update(fmt.Sprint("h", i), "prepare", Failed, "refused\nsecond line of the error")
	}
	s.Stop()
	lines := s.term.screen()
	if got, want := lines[len(lines)-1], "and 2 more failure(s): see the error below"; got != want {
		t.Errorf("last line %q, want %q", got, want)
	}
	if got := strings.Count(strings.Join(lines, "\n"), "second line of the error"); got != 10 {
		t.Errorf("%d errors in full, want 10", got)
	}
}

func TestScreen(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"a\nb\n", []string{"a", "b"}},
		{"a\nbb\n\r\x1b[2A\x1b[Jc\n", []string{"c"}},
		{"abc\rx\n", []string{"xbc"}},
		{"abc\r\x1b[2Kx", []string{"x"}},
		{"\x1b[31mred\x1b[0m\n", []string{"red"}},
	} {
		if got := Screen(c.in); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("Screen(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
