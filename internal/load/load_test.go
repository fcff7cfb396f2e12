package load

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func okServer(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("v1\n"))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRateHolds(t *testing.T) {
	t.Parallel()
	a, b := okServer(t), okServer(t)
	// a slow answer must not lower the rate
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	t.Cleanup(slow.Close)
	run, err := Start(context.Background(), []Target{{"a", a.URL}, {"b", b.URL}, {"slow", slow.URL}},
		Options{Rate: 100, MaxDuration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	<-run.Done()
	rep := run.Stop()
	t.Log(rep)
	// 200 requests are due over 2 s; a busy machine may send a few late,
	// never more than due.
	if rep.Requests < 140 || rep.Requests > 201 {
		t.Errorf("Requests = %d, want about 200", rep.Requests)
	}
	if rep.Failed != 0 {
		t.Errorf("Failed = %d, want 0: %v", rep.Failed, rep.Failures)
	}
	if rep.Elapsed < 2*time.Second || rep.Elapsed > 4*time.Second {
		t.Errorf("Elapsed = %s, want about 2s", rep.Elapsed)
	}
	if rep.P99 < 300*time.Millisecond {
		t.Errorf("P99 = %s, want the slow target's 300ms or more", rep.P99)
	}
	if rep.P50 <= 0 || rep.P50 > rep.P99 {
		t.Errorf("P50 = %s, P99 = %s", rep.P50, rep.P99)
	}
}

func TestMaxRequests(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(s.Close)
	run, err := Start(context.Background(), []Target{{"a", s.URL}}, Options{Rate: 200, MaxRequests: 25})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-run.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not stop after MaxRequests")
	}
	rep := run.Stop()
	if rep.Requests != 25 || n.Load() != 25 {
		t.Errorf("Requests = %d, server saw %d, want 25", rep.Requests, n.Load())
	}
}

// TestNewConnectionPerRequest: keep-alives are off, so a switch is seen
// by the next request.
func TestNewConnectionPerRequest(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	run, err := Start(context.Background(), []Target{{"a", s.URL}}, Options{Rate: 100, MaxRequests: 10})
	if err != nil {
		t.Fatal(err)
	}
	<-run.Done()
	rep := run.Stop()
	if rep.Requests != 10 || conns.Load() != 10 {
		t.Errorf("Requests = %d over %d connections, want 10 over 10", rep.Requests, conns.Load())
	}
}

// flaky fails every request (with 503) while down is set.
type flaky struct {
	mu   sync.Mutex
	down bool
}

func (f *flaky) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}
}

func TestOutage(t *testing.T) {
	t.Parallel()
	good := okServer(t)
	f := &flaky{}
	bad := httptest.NewServer(f)
	t.Cleanup(bad.Close)
	run, err := Start(context.Background(), []Target{{"web1", good.URL}, {"web2", bad.URL}},
		Options{Rate: 100, MaxDuration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// wait for successes on both targets, fail web2 for a window, then
	// wait for a success after it
	waitFor(t, run, func(r Report) bool { return r.Requests >= 20 })
	downAt := time.Now()
	f.set(true)
	waitFor(t, run, func(r Report) bool { return r.Failed >= 10 })
	f.set(false)
	upAt := time.Now()
	before := run.Snapshot().Requests
	waitFor(t, run, func(r Report) bool { return r.Requests >= before+20 })
	rep := run.Stop()
	t.Log(rep)
	window := upAt.Sub(downAt)
	if rep.Failed < 10 || rep.Failed > rep.Requests/2 {
		t.Errorf("Failed = %d of %d", rep.Failed, rep.Requests)
	}
	if rep.WorstTarget != "web2" {
		t.Errorf("WorstTarget = %q, want web2", rep.WorstTarget)
	}
	// the outage is measured between request starts: it lies within the
	// window, give or take one interval to that target (20ms) and the
	// time a request takes to reach the handler
	if rep.WorstOutage <= 0 || rep.WorstOutage > window+time.Second {
		t.Errorf("WorstOutage = %s, the server failed for %s", rep.WorstOutage, window)
	}
	if len(rep.Failures) == 0 || len(rep.Failures) > 20 {
		t.Fatalf("Failures has %d entries, want 1..20", len(rep.Failures))
	}
	for _, fl := range rep.Failures {
		if fl.Target != "web2" || fl.Status != 503 || fl.Error != "status 503" {
			t.Errorf("failure %+v, want web2 status 503", fl)
		}
	}
	for i := 1; i < len(rep.Failures); i++ {
		if rep.Failures[i].Time.Before(rep.Failures[i-1].Time) {
			t.Errorf("Failures not in the order sent: %v", rep.Failures)
		}
	}
}

// TestOutageUntilEnd: a target that never recovers is out until the end
// of the run; refused connections fail.
func TestOutageUntilEnd(t *testing.T) {
	t.Parallel()
	good := okServer(t)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // nothing listens there any more
	run, err := Start(context.Background(), []Target{{"web1", good.URL}, {"web2", gone.URL}},
		Options{Rate: 50, MaxDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	<-run.Done()
	rep := run.Stop()
	t.Log(rep)
	if rep.Failed == 0 || rep.Failed > rep.Requests/2+1 {
		t.Errorf("Failed = %d of %d, want every request to web2", rep.Failed, rep.Requests)
	}
	if rep.WorstTarget != "web2" || rep.WorstOutage < 900*time.Millisecond {
		t.Errorf("WorstOutage = %s on %q, want about the whole second on web2", rep.WorstOutage, rep.WorstTarget)
	}
	// a 404 is an answer: web1 counts as a success
	if rep.P50 <= 0 {
		t.Errorf("P50 = %s", rep.P50)
	}
}

func TestTimeoutFailsAndStopIsPrompt(t *testing.T) {
	t.Parallel()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	run, err := Start(context.Background(), []Target{{"web1", hang.URL}},
		Options{Rate: 50, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, run, func(r Report) bool { return r.Failed >= 3 })
	t0 := time.Now()
	rep := run.Stop()
	// Stop waits for the requests in flight, which end by their timeout
	if d := time.Since(t0); d > 300*time.Millisecond+5*time.Second {
		t.Errorf("Stop took %s", d)
	}
	if rep.Failed != rep.Requests || !strings.HasPrefix(rep.Failures[0].Error, "timeout") {
		t.Errorf("report %v, failures %v: want every request timed out", rep, rep.Failures)
	}
	if again := run.Stop(); again.Requests != rep.Requests {
		t.Errorf("a second Stop returned %v, want %v", again, rep)
	}
}

func TestStopIsPrompt(t *testing.T) {
	t.Parallel()
	s := okServer(t)
	run, err := Start(context.Background(), []Target{{"a", s.URL}}, Options{Rate: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, run, func(r Report) bool { return r.Requests >= 1 })
	t0 := time.Now()
	rep := run.Stop()
	// the next request is a second away: Stop does not wait for it
	if d := time.Since(t0); d > 500*time.Millisecond {
		t.Errorf("Stop took %s", d)
	}
	if rep.Requests != 1 {
		t.Errorf("Requests = %d, want 1", rep.Requests)
	}
}

func TestContextStops(t *testing.T) {
	t.Parallel()
	s := okServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	run, err := Start(ctx, []Target{{"a", s.URL}}, Options{Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, run, func(r Report) bool { return r.Requests >= 2 })
	cancel()
	select {
	case <-run.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the run did not stop when its context was canceled")
	}
	if rep := run.Stop(); rep.Failed != 0 {
		t.Errorf("Failed = %d: canceling stops sending, it does not fail requests in flight", rep.Failed)
	}
}

func TestLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080/version", true},
		{"http://127.0.3.7/", true},
		{"http://localhost:99/x", true},
		{"https://127.0.0.1/", true},
		{"http://10.0.0.1/", false},
		{"http://192.168.1.5:80/", false},
		{"http://example.com/", false},
		{"http://[::1]:80/", false},
		{"http://0.0.0.0:80/", false},
		{"ftp://127.0.0.1/", false},
		{"127.0.0.1:80", false},
	} {
		run, err := Start(context.Background(), []Target{{"h", c.url}}, Options{MaxRequests: 1})
		if got := err == nil; got != c.ok {
			t.Errorf("Start(%q) error = %v, want ok = %v", c.url, err, c.ok)
		}
		if err == nil {
			run.Stop()
		} else if !c.ok && strings.HasPrefix(c.url, "http://") && !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Start(%q) error = %q, want it to say loopback", c.url, err)
		}
	}
	if _, err := Start(context.Background(), nil, Options{}); err == nil {
		t.Error("Start with no targets: no error")
	}
}

// waitFor polls the run's snapshot until cond holds (or 30s pass).
func waitFor(t *testing.T, run *Run, cond func(Report) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond(run.Snapshot()) {
		if time.Now().After(deadline) {
			rep := run.Stop()
			t.Fatalf("condition not met in 30s: %v", rep)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReportOutage checks the outage and percentiles on made-up results.
func TestReportOutage(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	r := &Run{targets: []Target{{"web1", ""}, {"web2", ""}}, start: t0}
	ok, bad := "", "status 503"
	for i, c := range []struct {
		target, ms int
		err        string
	}{
		{0, 0, ok}, {1, 5, ok},
		{0, 10, bad}, {1, 15, ok},
		{0, 20, bad}, {1, 25, bad}, // web1 out from 10
		{0, 30, ok}, {1, 35, bad}, // web1 back at 30: 20ms
		{0, 40, ok}, {1, 45, ok}, // web2 out from 25 to 45: 20ms
		{0, 50, ok}, {1, 55, bad}, // web2 out from 55 to the end (100): 45ms
	} {
		// finished out of order: the report sorts by seq
		r.results = append([]result{{seq: i, target: c.target, start: at(c.ms), latency: time.Duration(i+1) * time.Millisecond, err: c.err}}, r.results...)
	}
	rep := r.report(at(100))
	if rep.Requests != 12 || rep.Failed != 5 {
		t.Errorf("Requests, Failed = %d, %d, want 12, 5", rep.Requests, rep.Failed)
	}
	if rep.WorstOutage != 45*time.Millisecond || rep.WorstTarget != "web2" {
		t.Errorf("WorstOutage = %s on %q, want 45ms on web2", rep.WorstOutage, rep.WorstTarget)
	}
	// successes had latencies 1,2,4,7,8,9,10,11 ms: nearest rank
	if rep.P50 != 7*time.Millisecond || rep.P99 != 11*time.Millisecond {
		t.Errorf("P50, P99 = %s, %s, want 7ms, 11ms", rep.P50, rep.P99)
	}
	if len(rep.Failures) != 5 || rep.Failures[0].Target != "web1" || !rep.Failures[0].Time.Equal(at(10)) {
		t.Errorf("Failures = %v", rep.Failures)
	}
	if rep.Elapsed != 100*time.Millisecond {
		t.Errorf("Elapsed = %s", rep.Elapsed)
	}

	// up to 30ms: web1 out from 10 to 30, web2 from 25 to the end at 30
	r.results = r.results[len(r.results)-7:] // seq 0..6
	if rep := r.report(at(30)); rep.WorstOutage != 20*time.Millisecond || rep.WorstTarget != "web1" {
		t.Errorf("seq 0..6: WorstOutage = %s on %q, want 20ms on web1", rep.WorstOutage, rep.WorstTarget)
	}
}

// On a busy machine request n+1's goroutine can take its start time
// before request n's: the report lists failures, and measures outages,
// by start time, not by send order.
func TestReportOrdersByStartTime(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	r := &Run{targets: []Target{{"web1", ""}}, start: t0}
	r.results = []result{
		{seq: 0, start: at(0), latency: time.Millisecond},
		{seq: 2, start: at(10), err: "status 502"}, // started before seq 1
		{seq: 1, start: at(12), err: "status 503"},
		{seq: 3, start: at(30), latency: time.Millisecond},
	}
	rep := r.report(at(40))
	if len(rep.Failures) != 2 || rep.Failures[0].Error != "status 502" || rep.Failures[1].Error != "status 503" {
		t.Fatalf("Failures = %v, want the 502 (started at 10ms) before the 503 (12ms)", rep.Failures)
	}
	if !rep.Failures[0].Time.Before(rep.Failures[1].Time) {
		t.Errorf("failure times out of order: %v", rep.Failures)
	}
	if rep.WorstOutage != 20*time.Millisecond {
		t.Errorf("WorstOutage = %s, want 20ms (from the first failure's start at 10ms to the next success at 30ms)", rep.WorstOutage)
	}
}
