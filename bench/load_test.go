package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/load"
)

func TestLoadFlags(t *testing.T) {
	for _, c := range []struct {
		args  []string
		load  float64
		tools []string
	}{
		{nil, 0, classicTools},
		{[]string{"-load", "200"}, 200, allTools},
		{[]string{"-load", "50", "-tools", "magefab,magefab-port"}, 50, []string{"magefab", "magefab-port"}},
		{[]string{"-smoke"}, 200, allTools},
		{[]string{"-smoke", "-load", "100"}, 100, allTools},
	} {
		o, err := parseFlags(c.args)
		if err != nil {
			t.Errorf("parseFlags(%q): %v", c.args, err)
			continue
		}
		if o.load != c.load || !slices.Equal(o.tools, c.tools) {
			t.Errorf("parseFlags(%q) = load %g, tools %v, want %g, %v", c.args, o.load, o.tools, c.load, c.tools)
		}
	}
	for _, args := range [][]string{{"-load", "-1"}, {"-load", "200", "-load-idle", "10ms"}, {"-tools", "magefab-slot"}} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

// TestSlotToolFailsOnFailedRequests: a failed request is a failure of the
// benchmark for a slot tool, and only reported for a classic one.
func TestSlotToolFailsOnFailedRequests(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	for _, slots := range []bool{false, true} {
		b := &bench{o: options{load: 100}}
		run, err := load.Start(context.Background(), []load.Target{{Name: "web1", URL: down.URL}}, load.Options{Rate: 100, MaxRequests: 5})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-run.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("the load did not stop")
		}
		var s sample
		b.stopLoad(2, 0, &tool{name: "x", slots: slots}, "warm", run, &s)
		if s.Load == nil || s.Load.Requests != 5 || s.Load.Failed != 5 || len(s.Load.Failures) != 5 {
			t.Fatalf("slots %v: load %+v, want 5 requests, 5 failed", slots, s.Load)
		}
		if got := len(b.loadFailures) > 0; got != slots {
			t.Errorf("slots %v: loadFailures = %q", slots, b.loadFailures)
		}
		if slots && !strings.Contains(b.loadFailures[0], "5 of 5 requests failed") {
			t.Errorf("loadFailures[0] = %q", b.loadFailures[0])
		}
	}
}

func TestLoadTable(t *testing.T) {
	st := func(tool, op string, failed int, p99, wall float64) sample {
		return sample{Hosts: 2, Run: 1, Tool: tool, Op: op, OK: true, Wall: wall,
			Load: &loadStats{Requests: 100, Failed: failed, P50: 1, P99: p99}}
	}
	b := &bench{o: options{load: 200, idle: 3 * time.Second, hosts: []int{2}, tools: []string{"magefab", "magefab-slots", "magefab-port"}}, samples: []sample{
		st("magefab", "idle", 0, 10, 3), st("magefab", "warm", 12, 1000, 4),
		st("magefab-slots", "idle", 0, 10, 3), st("magefab-slots", "warm", 0, 15, 3),
	}}
	var w strings.Builder
	b.loadTable(&w)
	got := w.String()
	for _, want := range []string{
		"| magefab | 2 | warm | 100 | 12 | 0.000 s | 1.00 ms | 1000.00 ms | 10.00 ms | 4.00 s |",
		"| magefab-slots: failed requests, every deploy and rollback | 0 of 100 | 0 | yes |",
		"| magefab-slots: p99 during a step / idle p99, 2 hosts (worst op) | 1.50× | 2× | yes |",
		"| magefab-slots: warm wall / classic magefab's, 2 hosts | 0.75× | 1× | yes |",
		"| magefab-port: failed requests, every deploy and rollback | – | 0 | not measured |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks %q:\n%s", want, got)
		}
	}
}
