package live

import (
	"strconv"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/magefab/magefab/internal/tty"
)

// A frame is a line per phase, in the order the phases began:
//
//	prepare      97 done  16 working   2 failed  13 waiting  41s
//	  web-017  41s  installing requirements
//	  web-099  38s  updating b to v1.2.0 (3f2a9c1)
//	  failed: web-003, web-044
//	switch        0 done   0 working   0 failed 115 waiting
//	verify       working 2s
//
// Under a phase with working hosts, the slowest are named with their time
// in the phase and what they do now; under a phase with failures, the hosts
// that failed. Every line is cut to the terminal's width, and the frame is
// kept below its height: hosts named under a phase go first, then phases
// from the top.

// frame appends the live frame to b.
func (s *Summary) frame(b []byte) []byte {
	now := s.now()
	width := s.width() - 1 // a line that fills the last column wraps on some terminals
	budget := s.height() - 1
	s.pickSlowest()
	lines := 0
	for _, p := range s.phases {
		lines += 1 + len(p.slowest)
		if p.failed > 0 {
			lines++
		}
	}
	// Too tall: fewer hosts named, the last phase's first.
	for i := len(s.phases) - 1; i >= 0 && lines > budget; i-- {
		p := s.phases[i]
		for len(p.slowest) > 0 && lines > budget {
			p.slowest = p.slowest[:len(p.slowest)-1]
			lines--
		}
	}
	skip := 0
	for lines > budget && skip < len(s.phases)-1 {
		p := s.phases[skip]
		lines--
		if p.failed > 0 {
			lines--
		}
		skip++
	}
	nameWidth := s.nameWidth()
	var line []byte
	for _, p := range s.phases[skip:] {
		line = s.phaseLine(line[:0], p, nameWidth, now)
		b = appendCut(b, line, width)
		for _, h := range p.slowest {
			line = append(line[:0], "  "...)
			line = append(line, h.name...)
			line = append(line, "  "...)
			line = appendDuration(line, now.Sub(h.start))
			if h.note != "" {
				line = append(line, "  "...)
				line = append(line, h.note...)
			}
			b = appendCut(b, line, width)
		}
		if p.failed > 0 {
			line = s.failedLine(line[:0], p, width)
			b = appendCut(b, line, width)
		}
	}
	return b
}

// final appends the last frame to b: every phase, the hosts still at work
// in it when the run ended, and every failure with its whole text.
func (s *Summary) final(b []byte) []byte {
	now := s.now()
	width := s.width() - 1
	nameWidth := s.nameWidth()
	var line []byte
	for _, p := range s.phases {
		line = s.phaseLine(line[:0], p, nameWidth, now)
		b = appendCut(b, line, width)
		if p.working > 0 {
			line = append(line[:0], "  unfinished:"...)
			line = s.appendHosts(line, p, Started, width)
			b = appendCut(b, line, width)
		}
	}
	const most = 10
	for i, f := range s.fails {
		if i == most {
			b = append(b, "and "...)
			b = strconv.AppendInt(b, int64(len(s.fails)-most), 10)
			b = append(b, " more failure(s): see the error below\n"...)
			break
		}
		line = line[:0]
		if f.host != "" {
			line = append(line, f.host...)
			line = append(line, " failed in "...)
			line = append(line, f.phase...)
		} else {
			line = append(line, f.phase...)
			line = append(line, " failed"...)
		}
		line = append(line, ": "...)
		line = append(line, f.text...)
		b = append(b, tty.Paint(s.cfg.Color, tty.Red, string(line))...)
		b = append(b, '\n')
	}
	return b
}

// phaseLine appends p's counts (a fleet phase: its state) and time.
func (s *Summary) phaseLine(b []byte, p *phase, nameWidth int, now time.Time) []byte {
	b = append(b, p.name...)
	for i := len(p.name); i < nameWidth+2; i++ {
		b = append(b, ' ')
	}
	end := p.last
	if p.fleet {
		switch p.state {
		case Started:
			b, end = append(b, "working "...), now
		case Done:
			b = s.paint(b, tty.Green, "done in ")
		case Failed:
			b = s.paint(b, tty.Red, "failed after ")
		}
		return appendDuration(b, end.Sub(p.first))
	}
	b = s.count(b, p.done, " done  ", tty.Green)
	b = s.count(b, p.working, " working  ", "")
	b = s.count(b, p.failed, " failed", tty.Red)
	if p.waiting > 0 {
		b = append(b, "  "...)
		b = s.count(b, p.waiting, " waiting", "")
	}
	if p.working > 0 || p.waiting > 0 {
		end = now
	}
	b = append(b, "  "...)
	return appendDuration(b, end.Sub(p.first))
}

// count appends n, padded to 3 digits, and what it counts; coloured in
// code when n is not zero.
func (s *Summary) count(b []byte, n int, what, code string) []byte {
	var num [24]byte
	d := strconv.AppendInt(num[:0], int64(n), 10)
	for i := len(d); i < 3; i++ {
		b = append(b, ' ')
	}
	if n == 0 || code == "" || !s.cfg.Color {
		b = append(b, d...)
		return append(b, what...)
	}
	return s.paint(b, code, string(d)+what)
}

func (s *Summary) paint(b []byte, code, text string) []byte {
	return append(b, tty.Paint(s.cfg.Color, code, text)...)
}

// failedLine appends the names of the hosts that failed p.
func (s *Summary) failedLine(b []byte, p *phase, width int) []byte {
	b = append(b, "  failed:"...)
	return s.appendHosts(b, p, Failed, width)
}

// appendHosts appends the names of the hosts in state st of p, as many as
// fit in width, then how many more there are.
func (s *Summary) appendHosts(b []byte, p *phase, st State, width int) []byte {
	n := 0
	for _, h := range s.order {
		if h.state(p) == st {
			n++
		}
	}
	i := 0
	for _, h := range s.order {
		if h.state(p) != st {
			continue
		}
		more := n - i - 1
		room := width - len(b) - len(h.name) - 2
		if more > 0 {
			room -= len(" and 000 more")
		}
		if room < 0 {
			b = append(b, " and "...)
			b = strconv.AppendInt(b, int64(n-i), 10)
			return append(b, " more"...)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ' ')
		b = append(b, h.name...)
		i++
	}
	return b
}

// state is h's state in p; -1 if it never was in p.
func (h *host) state(p *phase) State {
	for _, m := range h.in {
		if m.p == p {
			return m.state
		}
	}
	return -1
}

// pickSlowest sets each phase's slowest working hosts: those in it the
// longest, up to Config.Slowest.
func (s *Summary) pickSlowest() {
	for _, p := range s.phases {
		p.slowest = p.slowest[:0]
	}
	for _, h := range s.order {
		p := h.cur
		if p == nil {
			continue
		}
		i := len(p.slowest)
		for i > 0 && h.start.Before(p.slowest[i-1].start) {
			i--
		}
		if i >= s.cfg.Slowest {
			continue
		}
		if len(p.slowest) < s.cfg.Slowest {
			p.slowest = append(p.slowest, nil)
		}
		copy(p.slowest[i+1:], p.slowest[i:])
		p.slowest[i] = h
	}
}

func (s *Summary) nameWidth() int {
	w := 0
	for _, p := range s.phases {
		w = max(w, len(p.name))
	}
	return w
}

// appendCut appends line, cut to width columns, and a newline.
func appendCut(b, line []byte, width int) []byte {
	if len(line) > width && ansi.StringWidth(string(line)) > width {
		return append(append(b, ansi.Truncate(string(line), width, "…")...), '\n')
	}
	return append(append(b, line...), '\n')
}

// appendDuration appends d in whole seconds: "41s", "3m05s", "1h02m".
func appendDuration(b []byte, d time.Duration) []byte {
	sec := int64(d / time.Second)
	if sec < 0 {
		sec = 0
	}
	switch {
	case sec < 60:
		b = strconv.AppendInt(b, sec, 10)
		return append(b, 's')
	case sec < 3600:
		b = strconv.AppendInt(b, sec/60, 10)
		b = append(b, 'm')
		return append(append2(b, sec%60), 's')
	default:
		b = strconv.AppendInt(b, sec/3600, 10)
		b = append(b, 'h')
		return append(append2(b, sec/60%60), 'm')
	}
}

// append2 appends n (0 to 59) in two digits.
func append2(b []byte, n int64) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}
