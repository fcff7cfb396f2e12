package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// Notifier sends one notification about a deploy or a rollback.
type Notifier interface {
	// Name is a short lower-case name used in warnings, e.g. "slack".
	Name() string
	// Notify sends the notification; it must return when ctx is done.
	Notify(ctx context.Context, e Event) error
}

// The built-in notifiers, checked at compile time.
var (
	_ Notifier = Campfire{}
	_ Notifier = Airbrake{}
	_ Notifier = Slack{}
	_ Notifier = Webhook{}
)

// secretHolder is a notifier that knows which of its values no warning may
// show.
type secretHolder interface {
	secrets() []string
}

// Campfire posts the Message line to a Campfire room as a chatbot.
//
// URL is the chatbot's URL, which embeds its secret key. Two kinds are
// understood, told apart by the path:
//
//   - a bot URL of a Campfire server, such as
//     https://chat.example.com/rooms/1/2-AbCdEf123/messages, which takes
//     the line as a text/plain body;
//   - a Basecamp chatbot's lines URL, such as
//     https://3.basecampapi.com/195539477/integrations/KEY/buckets/1/chats/2/lines,
//     (path ending in /lines or /lines.json), which takes {"content": line}
//     as JSON.
type Campfire struct {
	URL string // chatbot URL (required; secret)
}

// Name returns "campfire".
func (Campfire) Name() string { return "campfire" }

// Notify posts Message(e) to c.URL.
func (c Campfire) Notify(ctx context.Context, e Event) error {
	if err := checkURL("URL", c.URL); err != nil {
		return newError(c.Name(), err, nil)
	}
	m := message{
		notifier:    c.Name(),
		url:         c.URL,
		contentType: "text/plain; charset=utf-8",
		body:        []byte(Message(e)),
		secrets:     c.secrets(),
	}
	if isBasecampLines(c.URL) {
		m.contentType = "application/json"
		m.body = mustJSON(map[string]string{"content": Message(e)})
	}
	return post(ctx, m)
}

func (c Campfire) secrets() []string { return urlSecrets(c.URL) }

// isBasecampLines reports whether raw is a Basecamp chatbot lines URL.
func isBasecampLines(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (strings.HasSuffix(u.Path, "/lines") || strings.HasSuffix(u.Path, "/lines.json"))
}

// DefaultAirbrakeHost is where Airbrake's API lives unless Airbrake.Host
// says otherwise.
const DefaultAirbrakeHost = "https://api.airbrake.io"

// Airbrake records the deploy with Airbrake's deploy tracking (API v4), so
// that errors can be told apart by release: it POSTs
// {Host}/api/v4/projects/{ProjectID}/deploys with the JSON fields
// environment, username, repository, revision (the commit) and version (the
// release), and the project key as "Authorization: Bearer <key>". Any
// Airbrake-compatible service (Errbit) can be set as Host.
type Airbrake struct {
	ProjectID  int64  // project id (required)
	ProjectKey string // project API key (required; secret)
	Host       string // API base URL [DefaultAirbrakeHost]
}

// Name returns "airbrake".
func (Airbrake) Name() string { return "airbrake" }

// airbrakeDeploy is the body of Airbrake's create-deploy request.
type airbrakeDeploy struct {
	Environment string `json:"environment"`
	Username    string `json:"username"`
	Repository  string `json:"repository"`
	Revision    string `json:"revision"`
	Version     string `json:"version"`
}

// Notify records e as a deploy of e.Environment. A rollback is recorded
// the same way, as a deploy of the release rolled back to.
func (a Airbrake) Notify(ctx context.Context, e Event) error {
	host := a.Host
	if host == "" {
		host = DefaultAirbrakeHost
	}
	var err error
	switch {
	case a.ProjectID <= 0:
		err = errors.New("ProjectID is required")
	case a.ProjectKey == "":
		err = errors.New("ProjectKey is required")
	default:
		err = checkURL("Host", host)
	}
	if err != nil {
		return newError(a.Name(), err, a.secrets())
	}
	return post(ctx, message{
		notifier:    a.Name(),
		url:         strings.TrimRight(host, "/") + "/api/v4/projects/" + strconv.FormatInt(a.ProjectID, 10) + "/deploys",
		contentType: "application/json",
		body: mustJSON(airbrakeDeploy{
			Environment: e.Environment,
			Username:    e.User,
			Repository:  e.Repository,
			Revision:    e.SHA,
			Version:     e.Release,
		}),
		header:  map[string]string{"Authorization": "Bearer " + a.ProjectKey},
		secrets: a.secrets(),
	})
}

func (a Airbrake) secrets() []string {
	out := []string{a.ProjectKey}
	if u, err := url.Parse(a.Host); err == nil {
		out = append(out, userSecrets(u)...)
	}
	return out
}

// Slack posts the Message line to a Slack incoming webhook as
// {"text": line}.
type Slack struct {
	WebhookURL string // https://hooks.slack.com/services/… (required; secret)
}

// Name returns "slack".
func (Slack) Name() string { return "slack" }

// Notify posts Message(e) to s.WebhookURL.
func (s Slack) Notify(ctx context.Context, e Event) error {
	if err := checkURL("WebhookURL", s.WebhookURL); err != nil {
		return newError(s.Name(), err, nil)
	}
	return post(ctx, message{
		notifier:    s.Name(),
		url:         s.WebhookURL,
		contentType: "application/json",
		body:        mustJSON(map[string]string{"text": Message(e)}),
		secrets:     s.secrets(),
	})
}

func (s Slack) secrets() []string { return urlSecrets(s.WebhookURL) }

// Webhook posts the Event as JSON to any URL, with a "message" field that
// holds Message(e):
//
//	{"kind":"deploy","user":"alice","unit":"five",...,"hosts":["web1"],"message":"alice is deploying five ..."}
type Webhook struct {
	URL     string            // where to POST (required; secret)
	Headers map[string]string // extra headers, e.g. Authorization (values secret); set after Content-Type and User-Agent
}

// Name returns "webhook".
func (Webhook) Name() string { return "webhook" }

// webhookBody is what Webhook posts.
type webhookBody struct {
	Event
	Message string `json:"message"`
}

// Notify posts e to w.URL.
func (w Webhook) Notify(ctx context.Context, e Event) error {
	if err := checkURL("URL", w.URL); err != nil {
		return newError(w.Name(), err, nil)
	}
	if e.Hosts == nil {
		e.Hosts = []string{}
	}
	return post(ctx, message{
		notifier:    w.Name(),
		url:         w.URL,
		contentType: "application/json",
		body:        mustJSON(webhookBody{Event: e, Message: Message(e)}),
		header:      w.Headers,
		secrets:     w.secrets(),
	})
}

func (w Webhook) secrets() []string {
	out := urlSecrets(w.URL)
	for _, v := range w.Headers {
		out = append(out, v)
		// "Bearer <token>" may be echoed as the bare token.
		if _, token, ok := strings.Cut(v, " "); ok {
			out = append(out, token)
		}
	}
	return out
}

// mustJSON encodes v, which is always one of this package's plain structs
// or maps of strings and so cannot fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("notify: encoding JSON: " + err.Error())
	}
	return b
}
