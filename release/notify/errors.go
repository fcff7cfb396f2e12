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

	secrets []string // values masked in Error()
}

// Error reads "notify: <notifier>: <reason>".
func (e *Error) Error() string {
	reason := "failed"
	if e.Err != nil {
		reason = redact(e.Err.Error(), e.secrets)
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
