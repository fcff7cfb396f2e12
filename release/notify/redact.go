package notify

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// redacted replaces a secret in a message.
const redacted = "[redacted]"

// minSecretLen is the shortest configured value that is masked inside
// messages: masking shorter ones would garble ordinary text ("status 401")
// and protect nothing.
const minSecretLen = 4

// urlPattern finds URLs inside free text, such as an error message or a
// response body.
var urlPattern = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s\"'<>`]+")

// redactURL reduces a URL to scheme://host/…: the path, query and user
// information of a chatbot or webhook URL often hold its key.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return redacted
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		s += "/…"
	}
	return s
}

// redact returns s with every URL reduced by redactURL and every secret of
// at least minSecretLen bytes masked, longest first so that a secret that
// contains another one is masked whole.
func redact(s string, secrets []string) string {
	s = urlPattern.ReplaceAllStringFunc(s, redactURL)
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, secret := range secrets {
		if len(secret) >= minSecretLen {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}

// urlSecrets lists the parts of a secret URL that must not show in a
// message, in the forms they may take there: the whole URL, its path
// (escaped and not), its query and each query value, its user information,
// and each path segment that looks like a key.
func urlSecrets(raw string) []string {
	out := []string{raw}
	u, err := url.Parse(raw)
	if err != nil {
		return out
	}
	out = append(out, u.EscapedPath(), u.Path, u.RawQuery, u.Fragment)
	out = append(out, userSecrets(u)...)
	for _, values := range u.Query() {
		out = append(out, values...)
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if looksLikeKey(seg) {
			out = append(out, seg, url.PathEscape(seg))
		}
	}
	return out
}

// userSecrets lists the user name and password of a URL that has a
// password.
func userSecrets(u *url.URL) []string {
	if p, ok := u.User.Password(); ok {
		return []string{p, u.User.Username()}
	}
	return nil
}

// looksLikeKey reports whether a path segment may be a key: at least 8
// bytes holding a digit or an upper-case letter ("B0123ABCD", not
// "services").
func looksLikeKey(seg string) bool {
	return len(seg) >= 8 && strings.ContainsFunc(seg, func(r rune) bool {
		return (r >= '0' && r <= '9') || (r >= 'A' && r <= 'Z')
	})
}

// hideURL reduces the URL held by a *url.Error in err's chain, the form in
// which net/http reports a failed request ("Post \"https://…\": …").
func hideURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		ue.URL = redactURL(ue.URL)
	}
	return err
}
