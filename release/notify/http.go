package notify

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
)

// UserAgent is the User-Agent of every request this package makes.
const UserAgent = "magefab"

// maxRead is how much of a response body is read to build a StatusError.
const maxRead = 4 << 10

// message is one POST request of a notifier.
type message struct {
	notifier    string            // Notifier.Name()
	url         string            // where to POST
	contentType string            // of body
	body        []byte            // request body
	header      map[string]string // more headers, set last
	secrets     []string          // values no error may show
}

// post sends m with a client of its own that honours ctx and follows no
// redirect (a redirected POST would either lose its body or carry the key
// elsewhere). A transport error or a status of 300 or more is returned as an
// *Error.
func post(ctx context.Context, m message) error {
	fail := func(err error) error {
		return newError(m.notifier, err, m.secrets)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url, bytes.NewReader(m.body))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Content-Type", m.contentType)
	for k, v := range m.header {
		req.Header.Set(k, v)
	}

	transport := newTransport()
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxRead))
	return fail(&StatusError{
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Body:       excerpt(body, m.secrets),
	})
}

// newTransport returns a transport with the settings of
// http.DefaultTransport (proxy from the environment, dial and TLS
// timeouts) whose connections the caller closes.
func newTransport() *http.Transport {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return &http.Transport{Proxy: http.ProxyFromEnvironment}
}

// checkURL returns an error naming field when raw is not an absolute http
// or https URL. The error never shows raw, which may hold a key.
func checkURL(field, raw string) error {
	if raw == "" {
		return errors.New(field + " is required")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New(field + " is not an absolute http or https URL")
	}
	return nil
}
