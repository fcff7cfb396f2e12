package notify

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a failed notification. Its message never shows the notifier's
// secrets: URLs in it are reduced to scheme://host/… and configured keys,
// tokens and header values are masked.
type Error struct {
	Notifier string // Notifier.Name(), e.g. "slack"
	Err      error  // the cause; for built-in notifiers it holds no secret either

	reason string // Err's message, redacted when the Error was made
}

// newError wraps err, a failure of the named notifier, and redacts its
// message once, so that the secrets themselves are not kept.
func newError(notifier string, err error, secrets []string) *Error {
	err = hideURL(err)
	return &Error{Notifier: notifier, Err: err, reason: redact(err.Error(), secrets)}
}

// Error reads "notify: <notifier>: <reason>".
func (e *Error) Error() string {
	reason := e.reason
	switch {
	case reason != "":
	case e.Err != nil:
		reason = redact(e.Err.Error(), nil)
	default:
		reason = "failed"
	}
	return "notify: " + e.Notifier + ": " + reason
}

// Unwrap returns the cause, so that errors.Is(err, context.DeadlineExceeded)
// and errors.As(err, new(*StatusError)) work.
func (e *Error) Unwrap() error { return e.Err }

// StatusError is an answer with an HTTP status of 300 or more.
type StatusError struct {
	StatusCode int    // e.g. 500
	Status     string // e.g. "500 Internal Server Error"
	Body       string // the start of the response body, on one line, secrets masked
}

// Error reads "HTTP 500 Internal Server Error: <body excerpt>".
func (e *StatusError) Error() string {
	s := e.Status
	if s == "" {
		s = strconv.Itoa(e.StatusCode)
	}
	if e.Body == "" {
		return "HTTP " + s
	}
	return "HTTP " + s + ": " + e.Body
}

// maxExcerpt is how many bytes of a response body a StatusError keeps.
const maxExcerpt = 200

// excerpt returns body on one line, masked, and cut to maxExcerpt bytes
// on a character boundary. Masking comes first, so that a cut can never
// leave part of a secret behind.
func excerpt(body []byte, secrets []string) string {
	s := redact(strings.ToValidUTF8(string(body), "\uFFFD"), secrets)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxExcerpt {
		return s
	}
	cut := maxExcerpt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
