package sshx

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
)

// HostError is the failure of one host in a fleet-wide operation. Its
// cause stays reachable with errors.As / errors.Is.
type HostError struct {
	Host string
	Err  error
}

func (e *HostError) Error() string {
	msg := e.Err.Error()
	// Most causes already name their host ("sshx: web1: ..."): say it once.
	if strings.HasPrefix(msg, "sshx: "+e.Host+":") || strings.HasPrefix(msg, "sshx: "+e.Host+" (") {
		return msg
	}
	return e.Host + ": " + msg
}

func (e *HostError) Unwrap() error { return e.Err }

// Result is what one host gave in Each.
type Result[T any] struct {
	Host    Host
	Value   T
	Err     error // nil, or the host's failure (unwrapped: not a *HostError)
	Elapsed time.Duration
}

// Each runs fn on every host, at most parallel at once (zero or less means
// all at once), and waits for all of them. Results come back in the order
// of hosts. The error, if any, is a *multierror.Error holding one
// *HostError per failed host, in host order; hosts are not stopped when
// another fails, so the error names every failure. A host whose turn comes
// after ctx is done fails with ctx's error without running fn.
func Each[T any](ctx context.Context, hosts []Host, parallel int, fn func(ctx context.Context, h Host) (T, error)) ([]Result[T], error) {
	if parallel <= 0 || parallel > len(hosts) {
		parallel = len(hosts)
	}
	results := make([]Result[T], len(hosts))
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i, h := range hosts {
		results[i].Host = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i].Err = fmt.Errorf("sshx: %s: not started: %w", h.Name(), ctx.Err())
				return
			}
			defer func() { <-sem }()
			start := time.Now()
			results[i].Value, results[i].Err = fn(ctx, h)
			results[i].Elapsed = time.Since(start)
		}()
	}
	wg.Wait()
	return results, Errors(results)
}

// Errors gathers the failures of results into one error naming each host,
// or nil when every host succeeded.
func Errors[T any](results []Result[T]) error {
	var errs *multierror.Error
	for _, r := range results {
		if r.Err != nil {
			errs = multierror.Append(errs, &HostError{Host: r.Host.Name(), Err: r.Err})
		}
	}
	if errs != nil {
		errs.ErrorFormat = formatHostErrors
	}
	return errs.ErrorOrNil()
}

func formatHostErrors(errs []error) string {
	if len(errs) == 1 {
		return errs[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d hosts failed:", len(errs))
	for _, e := range errs {
		b.WriteString("\n  " + strings.ReplaceAll(e.Error(), "\n", "\n    "))
	}
	return b.String()
}
