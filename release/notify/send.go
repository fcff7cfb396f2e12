package notify

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// DefaultTimeout bounds each notifier when Send is given no timeout.
const DefaultTimeout = 10 * time.Second

// maxGrace is the longest Send waits, past the timeout, for a notifier
// that does not honour its context.
const maxGrace = 2 * time.Second

// Send runs every notifier at once, each under a context that ends after
// timeout (DefaultTimeout when timeout <= 0), and waits for them. It
// returns one *Error per failed notifier, in the order of notifiers, for
// the caller to print as warnings; nil when all succeeded. A notifier that
// panics, or that ignores its context and is still running a short grace
// period after the timeout, counts as failed: Send itself never blocks a
// deploy for long and never panics. nil entries in notifiers are skipped.
//
// No returned error shows a secret (see Error).
func Send(ctx context.Context, notifiers []Notifier, e Event, timeout time.Duration) []error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	names := make([]string, len(notifiers))
	results := make([]chan error, len(notifiers))
	for i, n := range notifiers {
		results[i] = make(chan error, 1)
		if n == nil {
			results[i] <- nil
			continue
		}
		names[i] = nameOf(n)
		ev := e
		ev.Hosts = slices.Clone(e.Hosts)
		go func() { results[i] <- notifyOne(ctx, n, names[i], ev, timeout) }()
	}

	// The wait ignores a cancelled ctx, which the notifiers see and report
	// themselves; it ends a grace period after their own deadline.
	wait, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout+min(timeout, maxGrace))
	defer cancel()
	var warnings []error
	for i, result := range results {
		done, err := await(wait, result)
		if !done {
			err = newError(names[i], fmt.Errorf("still running %s after its timeout of %s: %w",
				min(timeout, maxGrace), timeout, context.DeadlineExceeded), nil)
		}
		if err != nil {
			warnings = append(warnings, err)
		}
	}
	return warnings
}

// await returns the result of one notifier, or done == false when wait
// ends first. A result that is already there wins over an ended wait.
func await(wait context.Context, result <-chan error) (done bool, err error) {
	select {
	case err := <-result:
		return true, err
	default:
	}
	select {
	case err := <-result:
		return true, err
	case <-wait.Done():
		return false, nil
	}
}

// notifyOne runs one notifier under its timeout and turns whatever goes
// wrong, a panic included, into an *Error.
func notifyOne(ctx context.Context, n Notifier, name string, e Event, timeout time.Duration) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = newError(name, fmt.Errorf("panic: %v", r), secretsOf(n))
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err = n.Notify(ctx, e)
	if err == nil {
		return nil
	}
	if ne, ok := err.(*Error); ok && ne.Notifier == name {
		return ne // a built-in notifier's error, already redacted
	}
	return newError(name, err, secretsOf(n))
}

// nameOf returns n.Name(), or "notifier" when that is empty or panics.
func nameOf(n Notifier) (name string) {
	defer func() {
		if recover() != nil {
			name = "notifier"
		}
	}()
	if name = n.Name(); name == "" {
		name = "notifier"
	}
	return name
}

// secretsOf returns the values that no warning about n may show.
func secretsOf(n Notifier) (out []string) {
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	if s, ok := n.(secretHolder); ok {
		return s.secrets()
	}
	return nil
}
