// Package load sends a steady rate of HTTP requests to a few local
// targets and reports how many failed, the longest outage of any one
// target and the latency of the requests that succeeded. The benchmark and
// the tests use it to watch a fleet's apps while a deploy switches them.
//
// Requests go to loopback addresses only (127.0.0.0/8 or localhost): Start
// refuses any other host. Requests are sent on a fixed clock, each in its
// own goroutine, so a slow answer does not lower the rate; keep-alives are
// off, so every request opens a new connection and sees a switch as a new
// client would.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options sets a run's rate and bounds. The zero value means 200 requests
// per second, a 2 s timeout, at most 10 minutes and no request limit.
type Options struct {
	Rate        float64       // requests per second over all targets, round robin; 0 means 200
	Timeout     time.Duration // per request; 0 means 2s
	MaxDuration time.Duration // stops by itself after this; 0 means 10 minutes
	MaxRequests int           // stops by itself after this many; 0 means no limit
}

// Target is one URL to send requests to.
type Target struct {
	Name string // the host's name, e.g. web1
	URL  string // http://127.0.0.x:port/path
}

// Failure is one failed request.
type Failure struct {
	Time   time.Time // when the request was sent
	Target string    // the target's Name
	Status int       // the HTTP status, 0 if there was no answer
	Error  string    // what went wrong: "status 503", "timeout after 2s" or the transport error
}

func (f Failure) String() string {
	return f.Time.Format("15:04:05.000") + " " + f.Target + ": " + f.Error
}

// Report is what a run saw. A request failed on a transport error
// (refused, reset), on its timeout, or on an HTTP status of 500 or more; a
// 503 maintenance page counts as a failure too. Statuses below 500 (a 404
// included) are successes.
type Report struct {
	Requests, Failed int       // requests answered or failed; requests still in flight are not counted
	Failures         []Failure // the first 20 failures, in the order they were sent
	// WorstOutage is the longest run of consecutive failed requests to any
	// one target, from the start of the run's first request to the start of
	// the next successful request to that target (or the end of the run).
	WorstOutage time.Duration
	WorstTarget string        // the target of WorstOutage, "" when nothing failed
	P50, P99    time.Duration // latency of the successful requests, 0 when none
	Elapsed     time.Duration // from Start until sending stopped (or until now, for a Snapshot)
}

func (r Report) String() string {
	s := fmt.Sprintf("%d requests in %s, %d failed", r.Requests, r.Elapsed.Round(time.Millisecond), r.Failed)
	if r.WorstOutage > 0 {
		s += fmt.Sprintf(", worst outage %s (%s)", r.WorstOutage.Round(time.Millisecond), r.WorstTarget)
	}
	return s + fmt.Sprintf(", p50 %s, p99 %s", r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond))
}

// maxFailures is how many failures a Report lists.
const maxFailures = 20

// result is one finished request.
type result struct {
	seq     int // the request's number: requests are sent in this order
	target  int
	start   time.Time
	latency time.Duration
	status  int
	err     string // "" when the request succeeded
}

// Run is a run of requests started by Start. Its methods may be called
// from any goroutine.
type Run struct {
	targets []Target
	opts    Options
	client  *http.Client
	ctx     context.Context // the requests' context: not canceled by Stop

	start    time.Time
	stopOnce sync.Once
	stop     chan struct{} // closed by Stop
	done     chan struct{} // closed when the scheduler stopped sending
	inflight sync.WaitGroup

	mu      sync.Mutex
	results []result
	end     time.Time // when sending stopped; zero while it runs

	reportOnce sync.Once
	final      Report
}

// Start checks the targets and starts sending requests to them, round
// robin, at o.Rate requests per second. The run stops sending when Stop
// is called, when ctx is done, after o.MaxDuration or after o.MaxRequests
// requests, whichever comes first; requests in flight then finish (bounded
// by o.Timeout) and are counted. Stop must be called in every case: it
// returns the report.
func Start(ctx context.Context, targets []Target, o Options) (*Run, error) {
	if len(targets) == 0 {
		return nil, errors.New("load: no targets")
	}
	for _, t := range targets {
		if err := checkURL(t.URL); err != nil {
			return nil, fmt.Errorf("load: target %s: %w", t.Name, err)
		}
	}
	if o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) || o.Timeout < 0 || o.MaxDuration < 0 || o.MaxRequests < 0 {
		return nil, fmt.Errorf("load: bad options %+v", o)
	}
	if o.Rate == 0 {
		o.Rate = 200
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	if o.MaxDuration == 0 {
		o.MaxDuration = 10 * time.Minute
	}
	tr := &http.Transport{
		Proxy:              nil, // loopback only: never a proxy
		DialContext:        (&net.Dialer{Timeout: o.Timeout}).DialContext,
		DisableKeepAlives:  true, // every request opens a new connection
		DisableCompression: true,
	}
	r := &Run{
		targets: slices.Clone(targets),
		opts:    o,
		client:  &http.Client{Transport: tr, Timeout: o.Timeout},
		ctx:     context.WithoutCancel(ctx),
		start:   time.Now(),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go r.schedule(ctx)
	return r, nil
}

// checkURL accepts http and https URLs whose host is localhost or in
// 127.0.0.0/8.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: not an http or https URL", raw)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip4 := ip.To4(); ip4 != nil && ip4[0] == 127 {
			return nil
		}
	}
	return fmt.Errorf("%q: host %q is not a loopback address (127.0.0.0/8 or localhost); load is sent to loopback only", raw, host)
}

// concurrency bounds the requests in flight: as many as can time out at the
// full rate, and some more.
func (r *Run) concurrency() int {
	return int(math.Ceil(r.opts.Rate*r.opts.Timeout.Seconds())) + 64
}

// schedule sends request i at start + i/Rate. When it falls behind (a busy
// machine), it sends the late requests at once, so the count over the run
// keeps to the rate.
func (r *Run) schedule(ctx context.Context) {
	defer func() {
		r.mu.Lock()
		r.end = time.Now()
		r.mu.Unlock()
		close(r.done)
	}()
	sem := make(chan struct{}, r.concurrency())
	deadline := r.start.Add(r.opts.MaxDuration)
	interval := float64(time.Second) / r.opts.Rate
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for i := 0; r.opts.MaxRequests == 0 || i < r.opts.MaxRequests; i++ {
		due := r.start.Add(time.Duration(float64(i) * interval))
		if due.After(deadline) {
			// wait for the deadline itself, so Elapsed is MaxDuration
			due = deadline
		}
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-r.stop:
				return
			case <-ctx.Done():
				return
			}
		}
		if !due.Before(deadline) {
			return
		}
		select {
		case <-r.stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		select {
		case sem <- struct{}{}:
		case <-r.stop:
			return
		case <-ctx.Done():
			return
		}
		r.inflight.Add(1)
		go func(seq int) {
			defer func() { <-sem; r.inflight.Done() }()
			r.do(seq)
		}(i)
	}
}

// do sends request seq and records its result.
func (r *Run) do(seq int) {
	ti := seq % len(r.targets)
	res := result{seq: seq, target: ti, start: time.Now()}
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.targets[ti].URL, nil)
	if err == nil {
		var resp *http.Response
		resp, err = r.client.Do(req)
		if err == nil {
			res.status = resp.StatusCode
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
	}
	res.latency = time.Since(res.start)
	switch {
	case err != nil:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			res.err = "timeout after " + r.opts.Timeout.String()
		} else {
			res.err = err.Error()
		}
	case res.status >= 500:
		res.err = fmt.Sprintf("status %d", res.status)
	}
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
}

// Done is closed when the run stopped sending: Stop was called, ctx is
// done, or a bound was reached. Requests may still be in flight.
func (r *Run) Done() <-chan struct{} { return r.done }

// Stop stops sending, waits for the requests in flight and returns the
// report. Calling it again returns the same report.
func (r *Run) Stop() Report {
	r.stopOnce.Do(func() { close(r.stop) })
	<-r.done
	r.inflight.Wait()
	r.reportOnce.Do(func() {
		r.mu.Lock()
		end := r.end
		r.mu.Unlock()
		r.final = r.report(end)
	})
	return r.final
}

// Snapshot returns the report of the requests finished so far, without
// stopping the run.
func (r *Run) Snapshot() Report {
	r.mu.Lock()
	end := r.end
	r.mu.Unlock()
	if end.IsZero() {
		end = time.Now()
	}
	return r.report(end)
}

// report computes a Report from the results finished so far; end is the
// end of the run.
func (r *Run) report(end time.Time) Report {
	r.mu.Lock()
	results := slices.Clone(r.results)
	r.mu.Unlock()
	// In the order they were sent: by the time each one started, which
	// is taken in its own goroutine, so that on a busy machine request
	// n+1 can start a moment before request n.
	slices.SortFunc(results, func(a, b result) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		return a.seq - b.seq
	})

	rep := Report{Requests: len(results), Elapsed: end.Sub(r.start)}
	var lat []time.Duration
	outStart := make([]time.Time, len(r.targets)) // start of the current failure run per target
	outage := func(ti int, until time.Time) {
		if d := until.Sub(outStart[ti]); d > rep.WorstOutage {
			rep.WorstOutage = d
			rep.WorstTarget = r.targets[ti].Name
		}
		outStart[ti] = time.Time{}
	}
	for _, res := range results {
		if res.err == "" {
			lat = append(lat, res.latency)
			if !outStart[res.target].IsZero() {
				outage(res.target, res.start)
			}
			continue
		}
		rep.Failed++
		if len(rep.Failures) < maxFailures {
			rep.Failures = append(rep.Failures, Failure{
				Time: res.start, Target: r.targets[res.target].Name, Status: res.status, Error: res.err,
			})
		}
		if outStart[res.target].IsZero() {
			outStart[res.target] = res.start
		}
	}
	for ti, s := range outStart {
		if !s.IsZero() {
			until := end
			if until.Before(s) {
				until = s
			}
			outage(ti, until)
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		rep.P50 = percentile(lat, 50)
		rep.P99 = percentile(lat, 99)
	}
	return rep
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
