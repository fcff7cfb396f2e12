package main

import (
	"slices"
	"strings"
	"testing"
)

func TestRollingFlags(t *testing.T) {
	for _, c := range []struct {
		args    []string
		rolling int
		load    float64
		tools   []string
	}{
		{[]string{"-rolling", "10"}, 10, 200, nil},
		{[]string{"-rolling", "3", "-load", "100"}, 3, 100, nil},
		{[]string{"-rolling", "2", "-tools", "magefab"}, 2, 200, []string{"magefab"}},
		{[]string{"-smoke"}, 0, 200, allTools},
	} {
		o, err := parseFlags(c.args)
		if err != nil {
			t.Errorf("parseFlags(%q): %v", c.args, err)
			continue
		}
		if o.rolling != c.rolling || o.load != c.load || !slices.Equal(o.tools, c.tools) {
			t.Errorf("parseFlags(%q) = rolling %d, load %g, tools %v, want %d, %g, %v", c.args, o.rolling, o.load, o.tools, c.rolling, c.load, c.tools)
		}
	}
	if _, err := parseFlags([]string{"-rolling", "-1"}); err == nil {
		t.Error("parseFlags(-rolling -1): no error")
	}
}

func TestRollingStages(t *testing.T) {
	for _, c := range []struct{ n, batch, stages, limit int }{
		{1, 1, 1, 1},
		{2, 1, 2, 1},
		{3, 1, 3, 1},
		{4, 1, 4, 1},
		{8, 2, 5, 2},
		{16, 4, 5, 4},
		{17, 5, 5, 5},
	} {
		if b, s, l := rollingBatchSize(c.n), rollingStages(c.n), rollingLimit(c.n); b != c.batch || s != c.stages || l != c.limit {
			t.Errorf("%d hosts: batch %d, stages %d, limit %d, want %d, %d, %d", c.n, b, s, l, c.batch, c.stages, c.limit)
		}
	}
}

func TestRollingTable(t *testing.T) {
	st := func(tool, op string, run, failed, out int, wall float64) sample {
		s := sample{Hosts: 16, Run: run, Tool: tool, Op: op, OK: true, Wall: wall,
			Markers: map[string][2]float64{"prepared; switching": {2, 2}, "is now deployed": {wall - 1, wall - 1}}}
		if op != "restart" {
			s.Load = &loadStats{Requests: 3000, Failed: failed, P50: 2, P99: 20}
			s.LoadBefore = &loadStats{Requests: 1000, Failed: failed / 2}
			s.Out = &outStats{Hosts: 16, MaxOut: out}
		}
		return s
	}
	b := &bench{o: options{load: 200, hosts: []int{16}, rolling: 2}, roll: &rollingRun{samples: []sample{
		st(allAtOnceTool, "restart", 1, 0, 0, 2), st(allAtOnceTool, "restart", 2, 0, 0, 2),
		st(allAtOnceTool, "deploy", 1, 300, 16, 10), st(allAtOnceTool, "deploy", 2, 200, 16, 12),
		st(allAtOnceTool, "rollback", 1, 300, 16, 8), st(allAtOnceTool, "rollback", 2, 200, 16, 8),
		st(rollingTool, "deploy", 1, 0, 4, 20), st(rollingTool, "deploy", 2, 0, 4, 24),
		st(rollingTool, "rollback", 1, 0, 4, 30), st(rollingTool, "rollback", 2, 0, 5, 30),
	}}}
	var w strings.Builder
	b.rollingTable(&w)
	got := w.String()
	for _, want := range []string{
		"| 16 | magefab-allatonce | deploy | 2 | 6000 | 500 | 250 of 2000 | 0.000 s | 2.00 ms | 20.00 ms | 11.00 s | 16 (100%) | – |",
		"| 16 | magefab-rolling | rollback | 2 | 6000 | 0 | 0 of 2000 | 0.000 s | 2.00 ms | 20.00 ms | 30.00 s | 5 (31%) | 4 (25%) |",
		"| 16 | maint:restart | restart (4 host(s)) | 2 |",
		"| magefab-rolling: failed requests over 4 deploys and rollbacks, 16 hosts | 0 of 12000 | 0 of ≥ 10000 | yes |",
		"| … of which from the switch on (0 of 4000 failed before it, every host in service) | 0 of 8000 | 0 of ≥ 10000 | **no** (fewer than 10000 requests) |",
		// 11 + 4 restarts of 2 s + 5 windows of 1 s
		"| deploy wall, 16 hosts: batches (all at once 11.00 s; ratio 2.00×), restart = maint:restart of a batch | 22.00 s | 24.00 s | yes |",
		"| rollback wall, 16 hosts: batches (all at once 8.00 s; ratio 3.75×), restart = maint:restart of a batch | 30.00 s | 21.00 s | **no** |",
		"| 16 | magefab-allatonce | restart phase of the deploy (16 hosts) | 2 | | | | | | | 8.00 s | | |",
		// 11 + 4 restart phases of 8 s + 5 windows
		"| deploy wall, 16 hosts: batches, restart = the all-at-once deploy's restart phase (8.00 s) | 22.00 s | 48.00 s | yes |",
		"| share of the fleet out of service at any look, 16 hosts, batches (all at once: 100%) | 31% | 25% (4 hosts) | **no** |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks %q:\n%s", want, got)
		}
	}
}
