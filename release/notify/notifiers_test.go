package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// request is what a test server received.
type request struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// newRecorder starts a server that records every request and answers with
// status and an empty body.
func newRecorder(t *testing.T, status int) (*httptest.Server, <-chan request) {
	t.Helper()
	got := make(chan request, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading request body: %v", err)
		}
		got <- request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// only returns the one request the server received.
func only(t *testing.T, got <-chan request) request {
	t.Helper()
	select {
	case r := <-got:
		select {
		case extra := <-got:
			t.Fatalf("server got a second request: %s %s", extra.Method, extra.Path)
		default:
		}
		return r
	default:
		t.Fatal("server got no request")
		return request{}
	}
}

// checkPost checks the parts every notifier request shares.
func checkPost(t *testing.T, r request, path, contentType string) {
	t.Helper()
	if r.Method != http.MethodPost {
		t.Errorf("method = %s, want POST", r.Method)
	}
	if r.Path != path {
		t.Errorf("path = %q, want %q", r.Path, path)
	}
	if got := r.Header.Get("Content-Type"); got != contentType {
		t.Errorf("Content-Type = %q, want %q", got, contentType)
	}
	if got := r.Header.Get("User-Agent"); got != "magefab" {
		t.Errorf("User-Agent = %q, want %q", got, "magefab")
	}
}

// decode unmarshals a JSON request body.
func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("request body %q is not the expected JSON: %v", body, err)
	}
	return v
}

var testEvent = Event{
	Kind:        KindDeploy,
	User:        "alice",
	Unit:        "five",
	Environment: "production",
	Branch:      "master",
	Release:     "v0.1.1",
	SHA:         "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c",
	Previous:    "v0.1.0",
	PreviousSHA: "6b4943c0000000000000000000000000000000aa",
	Repository:  "git@github.com:bueda/five.git",
	CompareURL:  "https://github.com/bueda/five/compare/v0.1.0...v0.1.1",
	Hosts:       []string{"web1", "web2"},
}

const testLine = "alice is deploying five master (v0.1.0..v0.1.1) to production https://github.com/bueda/five/compare/v0.1.0...v0.1.1"

func TestCampfireBotURL(t *testing.T) {
	t.Parallel()
	srv, got := newRecorder(t, http.StatusCreated)
	c := Campfire{URL: srv.URL + "/rooms/1/2-CampKey0123456789/messages"}
	if err := c.Notify(context.Background(), testEvent); err != nil {
		t.Fatalf("Notify() = %v", err)
	}
	r := only(t, got)
	checkPost(t, r, "/rooms/1/2-CampKey0123456789/messages", "text/plain; charset=utf-8")
	if string(r.Body) != testLine {
		t.Errorf("body = %q, want %q", r.Body, testLine)
	}
}

func TestCampfireBasecampLines(t *testing.T) {
	t.Parallel()
	srv, got := newRecorder(t, http.StatusCreated)
	path := "/195539477/integrations/BcKey0123456789abcdefXYZ/buckets/1/chats/2/lines"
	c := Campfire{URL: srv.URL + path}
	if err := c.Notify(context.Background(), testEvent); err != nil {
		t.Fatalf("Notify() = %v", err)
	}
	r := only(t, got)
	checkPost(t, r, path, "application/json")
	body := decode[map[string]string](t, r.Body)
	if want := map[string]string{"content": testLine}; !reflect.DeepEqual(body, want) {
		t.Errorf("body = %v, want %v", body, want)
	}
}

func TestAirbrake(t *testing.T) {
	t.Parallel()
	srv, got := newRecorder(t, http.StatusCreated)
	a := Airbrake{ProjectID: 12345, ProjectKey: "AirKey0123456789abcdef", Host: srv.URL + "/"}
	if err := a.Notify(context.Background(), testEvent); err != nil {
		t.Fatalf("Notify() = %v", err)
	}
	r := only(t, got)
	checkPost(t, r, "/api/v4/projects/12345/deploys", "application/json")
	if got, want := r.Header.Get("Authorization"), "Bearer AirKey0123456789abcdef"; got != want {
		t.Errorf("Authorization = %q, want %q", got, want)
	}
	if r.RawQuery != "" {
		t.Errorf("query = %q, want none (the key goes in the Authorization header)", r.RawQuery)
	}
	body := decode[map[string]string](t, r.Body)
	want := map[string]string{
		"environment": "production",
		"username":    "alice",
		"repository":  "git@github.com:bueda/five.git",
		"revision":    "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c",
		"version":     "v0.1.1",
	}
	if !reflect.DeepEqual(body, want) {
		t.Errorf("body = %v, want %v", body, want)
	}
}

func TestAirbrakeDefaultHost(t *testing.T) {
	t.Parallel()
	// Only the URL is checked: nothing is sent, the context is already done.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Airbrake{ProjectID: 7, ProjectKey: "AirKey0123456789abcdef"}.Notify(ctx, testEvent)
	if err == nil || !strings.Contains(err.Error(), `"https://api.airbrake.io/…"`) {
		t.Errorf("Notify() = %v, want a cancelled POST to https://api.airbrake.io/…", err)
	}
}

func TestSlack(t *testing.T) {
	t.Parallel()
	srv, got := newRecorder(t, http.StatusOK)
	s := Slack{WebhookURL: srv.URL + "/services/T0001/B0002/SlackT0ken0123456789"}
	if err := s.Notify(context.Background(), testEvent); err != nil {
		t.Fatalf("Notify() = %v", err)
	}
	r := only(t, got)
	checkPost(t, r, "/services/T0001/B0002/SlackT0ken0123456789", "application/json")
	body := decode[map[string]string](t, r.Body)
	if want := map[string]string{"text": testLine}; !reflect.DeepEqual(body, want) {
		t.Errorf("body = %v, want %v", body, want)
	}
}

func TestWebhook(t *testing.T) {
	t.Parallel()
	srv, got := newRecorder(t, http.StatusNoContent)
	w := Webhook{
		URL: srv.URL + "/hooks/deploy?token=QueryT0ken5555",
		Headers: map[string]string{
			"Authorization": "Bearer WhT0ken-abcdef123",
			"X-Team":        "ops",
		},
	}
	if err := w.Notify(context.Background(), testEvent); err != nil {
		t.Fatalf("Notify() = %v", err)
	}
	r := only(t, got)
	checkPost(t, r, "/hooks/deploy", "application/json")
	if r.RawQuery != "token=QueryT0ken5555" {
		t.Errorf("query = %q, want %q", r.RawQuery, "token=QueryT0ken5555")
	}
	for k, want := range w.Headers {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	type body struct {
		Event
		Message string `json:"message"`
	}
	b := decode[body](t, r.Body)
	if !reflect.DeepEqual(b.Event, testEvent) {
		t.Errorf("event = %+v, want %+v", b.Event, testEvent)
	}
	if b.Message != testLine {
		t.Errorf("message = %q, want %q", b.Message, testLine)
	}
	raw := decode[map[string]any](t, r.Body)
	for _, k := range []string{"kind", "user", "unit", "environment", "branch", "release", "sha", "previous", "previous_sha", "repository", "compare_url", "hosts", "message"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("body has no %q field: %s", k, r.Body)
		}
	}
}

func TestWebhookRollbackWithoutHosts(t *testing.T) {
	t.Parallel()
	srv, got := newRecorder(t, http.StatusOK)
	e := Event{Kind: KindRollback, User: "alice", Unit: "five", Environment: "production", Release: "v0.1.0", Previous: "v0.1.1"}
	if err := (Webhook{URL: srv.URL}).Notify(context.Background(), e); err != nil {
		t.Fatalf("Notify() = %v", err)
	}
	raw := decode[map[string]any](t, only(t, got).Body)
	if hosts, ok := raw["hosts"].([]any); !ok || len(hosts) != 0 {
		t.Errorf("hosts = %#v, want []", raw["hosts"])
	}
	if want := "alice rolled back five production to v0.1.0 (from v0.1.1)"; raw["message"] != want {
		t.Errorf("message = %q, want %q", raw["message"], want)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	const secret = "S3cretInABadURL"
	for _, c := range []struct {
		n    Notifier
		want string
	}{
		{Campfire{}, "notify: campfire: URL is required"},
		{Campfire{URL: "chat.example.com/rooms/1/" + secret}, "notify: campfire: URL is not an absolute http or https URL"},
		{Airbrake{ProjectKey: secret}, "notify: airbrake: ProjectID is required"},
		{Airbrake{ProjectID: 1}, "notify: airbrake: ProjectKey is required"},
		{Airbrake{ProjectID: 1, ProjectKey: secret, Host: "ftp://x/" + secret}, "notify: airbrake: Host is not an absolute http or https URL"},
		{Slack{}, "notify: slack: WebhookURL is required"},
		{Slack{WebhookURL: "hooks.slack.com/services/" + secret}, "notify: slack: WebhookURL is not an absolute http or https URL"},
		{Webhook{}, "notify: webhook: URL is required"},
		{Webhook{URL: "::" + secret}, "notify: webhook: URL is not an absolute http or https URL"},
	} {
		err := c.n.Notify(context.Background(), testEvent)
		if err == nil || err.Error() != c.want {
			t.Errorf("%#v.Notify() = %v, want %q", c.n, err, c.want)
		}
	}
}
