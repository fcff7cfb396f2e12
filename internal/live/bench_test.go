package live

import (
	"fmt"
	"io"
	"testing"
	"time"
)

// BenchmarkRun128 is what a summary costs a run of 128 hosts: each host
// waits, prepares (six steps) and switches (two steps), while frames are
// drawn ten times a second through a run of 30 seconds; the frames go to
// io.Discard. It reports the CPU time per host.
func BenchmarkRun128(b *testing.B) {
	const hosts, frames = 128, 300
	names := make([]string, hosts)
	for i := range names {
		names[i] = fmt.Sprintf("web-%03d.example.com", i)
	}
	steps := []string{"locking", "updating b to v1.2.0 (3f2a9c1)", "fetching", "creating the virtualenv", "installing requirements", "requirements installed"}
	b.ReportAllocs()
	for b.Loop() {
		clock := time.Unix(1_700_000_000, 0)
		s := New(io.Discard, Config{Width: func() int { return 120 }, Height: func() int { return 40 }})
		s.now = func() time.Time { return clock }
		s.ticker = func(time.Duration) (<-chan time.Time, func()) { return nil, func() {} }
		perFrame := hosts * 2 / frames
		frame := 0
		event := 0
		emit := func(h, phase string, st State, text string) {
			s.Update(h, phase, st, text)
			event++
			if event%max(perFrame*8, 1) == 0 && frame < frames {
				clock = clock.Add(100 * time.Millisecond)
				s.Flush()
				frame++
			}
		}
		for _, h := range names {
			emit(h, "prepare", Waiting, "")
		}
		for _, h := range names {
			emit(h, "prepare", Started, "")
			for _, st := range steps {
				emit(h, "prepare", Step, st)
			}
			emit(h, "prepare", Done, "")
		}
		for _, h := range names {
			emit(h, "switch", Waiting, "")
		}
		for _, h := range names {
			emit(h, "switch", Started, "")
			emit(h, "switch", Step, "current -> b (v1.2.0); restarting")
			emit(h, "switch", Step, "restarted")
			emit(h, "switch", Done, "")
		}
		for ; frame < frames; frame++ {
			clock = clock.Add(100 * time.Millisecond)
			s.Flush()
		}
		s.Stop()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/hosts, "ns/host")
}
