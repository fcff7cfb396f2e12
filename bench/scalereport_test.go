package main

import (
	"math"
	"strings"
	"testing"
)

func TestHandshakePeakCountsTheBusiestSecond(t *testing.T) {
	for _, c := range []struct {
		times []float64
		want  float64
	}{
		{nil, 0},
		{[]float64{0.1}, 1},
		{[]float64{0, 0.2, 0.9, 1.0, 1.5, 3}, 3}, // [0,1) holds 3; [0.9,1.9) holds 3
		{[]float64{0, 1, 2, 3}, 1},
	} {
		if got := handshakePeak(c.times); got != c.want {
			t.Errorf("handshakePeak(%v) = %g, want %g", c.times, got, c.want)
		}
	}
}

func TestFitLineFindsFixedAndPerHostParts(t *testing.T) {
	a, b := fitLine([]float64{1, 16, 64, 128}, []float64{0.31, 0.46, 0.94, 1.58})
	if math.Abs(a-0.30) > 1e-9 || math.Abs(b-0.01) > 1e-9 {
		t.Errorf("fitLine = %g + %g x, want 0.3 + 0.01 x", a, b)
	}
	if a, b := fitLine([]float64{16}, []float64{1}); !math.IsNaN(a) || !math.IsNaN(b) {
		t.Errorf("one point fitted as %g + %g x, want no line", a, b)
	}
}

// The plot has a line with a point per host count for each operation
// measured, in each of its three panels.
func TestScalingSVGDrawsEveryOperation(t *testing.T) {
	s := &scaleApp{runs: 1}
	for _, n := range []int{1, 16, 64} {
		for _, op := range scaleOps {
			s.samples = append(s.samples, sample{Hosts: n, Run: 1, Tool: "trivial", Op: op, OK: true, Wall: float64(n), CPU: 0.3 + 0.01*float64(n), MaxRSSMB: 25})
		}
	}
	svg := s.svg([]int{1, 16, 64})
	if got, want := strings.Count(svg, "<polyline"), 3*len(scaleOps); got != want {
		t.Errorf("%d lines, want %d", got, want)
	}
	if got, want := strings.Count(svg, "<circle"), 3*len(scaleOps)*3; got != want {
		t.Errorf("%d points, want %d", got, want)
	}
}
