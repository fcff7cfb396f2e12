package notify

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/…"},
		{"https://user:pw@example.com/x?token=abc", "https://example.com/…"},
		{"https://example.com/?token=abc", "https://example.com/…"},
		{"https://example.com", "https://example.com"},
		{"https://example.com/", "https://example.com"},
		{"http://127.0.0.1:8080/…", "http://127.0.0.1:8080/…"},
		{"not a url", redacted},
		{"://broken", redacted},
	} {
		if got := redactURL(c.in); got != c.want {
			t.Errorf("redactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	secrets := urlSecrets("https://chat.example.com/rooms/1/2-Key0123456/messages?sig=S1gnature99")
	secrets = append(secrets, "ab") // too short to mask
	in := `Post "https://chat.example.com/rooms/1/2-Key0123456/messages?sig=S1gnature99": bad key 2-Key0123456, sig S1gnature99, at ab`
	got := redact(in, secrets)
	want := `Post "https://chat.example.com/…": bad key [redacted], sig [redacted], at ab`
	if got != want {
		t.Errorf("redact() = %q, want %q", got, want)
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	secret := "Sup3rSecretTokenValue"
	// The secret straddles the cut: masking must come before cutting.
	body := strings.Repeat("x", maxExcerpt-5) + secret + "\n\ttail"
	got := excerpt([]byte(body), []string{secret})
	if strings.Contains(got, secret[:5]) {
		t.Errorf("excerpt() = %q, shows part of the secret", got)
	}
	if !strings.HasSuffix(got, "…") || len(got) > maxExcerpt+len("…") {
		t.Errorf("excerpt() = %q (%d bytes), want at most %d bytes and a final …", got, len(got), maxExcerpt)
	}
	if got := excerpt([]byte("  line one\n  line two  "), nil); got != "line one line two" {
		t.Errorf("excerpt() = %q, want %q", got, "line one line two")
	}
	// A cut never splits a character.
	got = excerpt([]byte(strings.Repeat("é", maxExcerpt)), nil)
	if !strings.HasSuffix(got, "é…") {
		t.Errorf("excerpt() ends in %q, want a whole é then …", got[len(got)-6:])
	}
}

func TestHideURL(t *testing.T) {
	t.Parallel()
	inner := &url.Error{Op: "Post", URL: "https://hooks.slack.com/services/T0/B0/XYZsecret", Err: errors.New("connection refused")}
	err := hideURL(errors.Join(errors.New("context"), inner))
	if strings.Contains(err.Error(), "XYZsecret") {
		t.Errorf("hideURL() = %q, shows the URL path", err)
	}
	if inner.URL != "https://hooks.slack.com/…" {
		t.Errorf("url.Error.URL = %q, want %q", inner.URL, "https://hooks.slack.com/…")
	}
}
