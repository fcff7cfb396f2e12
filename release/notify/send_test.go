package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The secrets of fleet; none may show in a warning.
const (
	campfireKey = "2-CampKey0123456789"
	airbrakeKey = "AirKey0123456789abcdef"
	slackToken  = "SlackT0ken0123456789"
	queryToken  = "QueryT0ken5555"
	headerToken = "WhT0ken-abcdef123"
	headerValue = "Bearer " + headerToken
	apiKeyValue = "ApiKeyHeader-987654321"
)

// fleet returns one notifier of each kind, all pointed at base.
func fleet(base string) []Notifier {
	return []Notifier{
		Campfire{URL: base + "/rooms/1/" + campfireKey + "/messages"},
		Airbrake{ProjectID: 12345, ProjectKey: airbrakeKey, Host: base},
		Slack{WebhookURL: base + "/services/T0001/B0002/" + slackToken},
		Webhook{
			URL:     base + "/hooks/deploy?token=" + queryToken,
			Headers: map[string]string{"Authorization": headerValue, "X-Api-Key": apiKeyValue},
		},
	}
}

// fleetSecrets are the values that no warning about fleet may show.
var fleetSecrets = []string{campfireKey, airbrakeKey, slackToken, queryToken, headerToken, headerValue, apiKeyValue, "/services/T0001/B0002"}

// checkWarnings checks that there is one warning per notifier of fleet, in
// order, with the notifier's name and want, and no secret in any form a
// caller may print.
func checkWarnings(t *testing.T, warnings []error, want string) {
	t.Helper()
	names := []string{"campfire", "airbrake", "slack", "webhook"}
	if len(warnings) != len(names) {
		t.Fatalf("Send() = %d warnings %q, want %d", len(warnings), warnings, len(names))
	}
	for i, w := range warnings {
		msg := w.Error()
		if prefix := "notify: " + names[i] + ": "; !strings.HasPrefix(msg, prefix) {
			t.Errorf("warning %d = %q, want prefix %q", i, msg, prefix)
		}
		if !strings.Contains(msg, want) {
			t.Errorf("warning %d = %q, want it to contain %q", i, msg, want)
		}
		var ne *Error
		if !errors.As(w, &ne) || ne.Notifier != names[i] {
			t.Errorf("warning %d = %#v, want an *Error of notifier %q", i, w, names[i])
		}
		for _, printed := range []string{msg, fmt.Sprintf("%v", w), fmt.Sprintf("%+v", w), fmt.Sprintf("%#v", w), fmt.Sprint(errors.Unwrap(w))} {
			for _, s := range fleetSecrets {
				if strings.Contains(printed, s) {
					t.Errorf("warning %d shows secret %q: %s", i, s, printed)
				}
			}
		}
	}
}

func TestSendAllDelivered(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	if warnings := Send(context.Background(), fleet(srv.URL), testEvent, time.Second); warnings != nil {
		t.Fatalf("Send() = %q, want no warnings", warnings)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 4 {
		t.Errorf("server got %d requests (%q), want one per notifier", len(paths), paths)
	}
}

func TestSendServerError(t *testing.T) {
	t.Parallel()
	// The server echoes what it got, secrets included, as a careless one may.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "boom: %s %s auth=%q key=%q token=%s body=%.40s",
			r.Method, r.URL, r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.URL.Query().Get("token"), body)
	}))
	defer srv.Close()
	warnings := Send(context.Background(), fleet(srv.URL), testEvent, time.Second)
	checkWarnings(t, warnings, "HTTP 500 Internal Server Error: boom: POST")
	for _, w := range warnings {
		var se *StatusError
		if !errors.As(w, &se) || se.StatusCode != http.StatusInternalServerError {
			t.Errorf("warning %q is not a *StatusError with code 500", w)
		}
	}
}

func TestSendRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	checkWarnings(t, Send(context.Background(), fleet(srv.URL), testEvent, time.Second), "HTTP 307 Temporary Redirect")
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	checkWarnings(t, Send(context.Background(), fleet(base), testEvent, time.Second), "connection refused")
}

// blockingHandler answers nothing until the client hangs up or release is
// closed.
func blockingHandler(release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a hang-up only once the body has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(blockingHandler(release))
	defer srv.Close()
	defer close(release)

	// The server never answers: Send must give up after its timeout
	// (200ms) and grace, not wait for the server, nor fall back to
	// DefaultTimeout. A Send that did either would take DefaultTimeout
	// or longer; anything below is left to a loaded machine.
	start := time.Now()
	warnings := Send(context.Background(), fleet(srv.URL), testEvent, 200*time.Millisecond)
	if took := time.Since(start); took >= DefaultTimeout {
		t.Errorf("Send() took %s with a timeout of 200ms", took)
	}
	checkWarnings(t, warnings, "context deadline exceeded")
	for _, w := range warnings {
		if !errors.Is(w, context.DeadlineExceeded) {
			t.Errorf("warning %q is not a context.DeadlineExceeded", w)
		}
	}
}

func TestSendCancelled(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(blockingHandler(release))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	checkWarnings(t, Send(ctx, fleet(srv.URL), testEvent, time.Minute), "context canceled")
}

// funcNotifier is a Notifier made of a function.
type funcNotifier struct {
	name string
	f    func(ctx context.Context, e Event) error
}

func (n funcNotifier) Name() string                              { return n.name }
func (n funcNotifier) Notify(ctx context.Context, e Event) error { return n.f(ctx, e) }

func TestSendRunsNotifiersConcurrently(t *testing.T) {
	t.Parallel()
	// Each notifier waits until both are running: run one after the
	// other, the first would time out.
	var started sync.WaitGroup
	started.Add(2)
	both := make(chan struct{})
	go func() { started.Wait(); close(both) }()
	meet := func(ctx context.Context, _ Event) error {
		started.Done()
		select {
		case <-both:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ns := []Notifier{funcNotifier{"one", meet}, funcNotifier{"two", meet}}
	if warnings := Send(context.Background(), ns, testEvent, 5*time.Second); warnings != nil {
		t.Errorf("Send() = %q, want no warnings", warnings)
	}
}

func TestSendSurvivesBadNotifiers(t *testing.T) {
	t.Parallel()
	stuck := make(chan struct{})
	defer close(stuck)
	ns := []Notifier{
		funcNotifier{"ok", func(context.Context, Event) error { return nil }},
		nil,
		funcNotifier{"panics", func(context.Context, Event) error { panic("oops") }},
		funcNotifier{"stuck", func(context.Context, Event) error { <-stuck; return nil }},
		funcNotifier{"custom", func(context.Context, Event) error {
			return errors.New(`Post "https://chat.example.com/rooms/1/2-CustomKey777/messages": refused`)
		}},
		funcNotifier{"", func(ctx context.Context, e Event) error {
			e.Hosts[0] = "changed" // must not be seen by the others
			return errors.New("no name")
		}},
	}
	e := testEvent
	e.Hosts = []string{"web1"}
	warnings := Send(context.Background(), ns, e, 50*time.Millisecond)
	want := []string{
		"notify: panics: panic: oops",
		"notify: stuck: still running 50ms after its timeout of 50ms: context deadline exceeded",
		`notify: custom: Post "https://chat.example.com/…": refused`,
		"notify: notifier: no name",
	}
	if len(warnings) != len(want) {
		t.Fatalf("Send() = %q, want %q", warnings, want)
	}
	for i, w := range warnings {
		if w.Error() != want[i] {
			t.Errorf("warning %d = %q, want %q", i, w, want[i])
		}
	}
	if e.Hosts[0] != "web1" {
		t.Errorf("a notifier changed the caller's Hosts to %q", e.Hosts)
	}
}

func TestSendDefaultTimeout(t *testing.T) {
	t.Parallel()
	var deadline time.Duration
	n := funcNotifier{"probe", func(ctx context.Context, _ Event) error {
		d, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		deadline = time.Until(d)
		return nil
	}}
	if warnings := Send(context.Background(), []Notifier{n}, testEvent, 0); warnings != nil {
		t.Fatalf("Send() = %q", warnings)
	}
	if deadline <= DefaultTimeout-time.Second || deadline > DefaultTimeout {
		t.Errorf("notifier's deadline is %s away, want about %s", deadline, DefaultTimeout)
	}
}
