package magetargets

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/template"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
)

// VersionData is what Config.VersionURL is rendered over, once per host.
type VersionData struct {
	Subdomain      string // "www." in production, "dev." in development, "staging." in staging, "" elsewhere
	Host           string // the host as configured, e.g. web1
	HostName       string // the address it is reached at, e.g. 10.0.0.5 (from the SSH client config)
	Unit           string
	DeploymentType string
}

// versionPollInterval is the pause between two asks of a version URL.
const versionPollInterval = 250 * time.Millisecond

func subdomain(env Environment) string {
	switch env.DeploymentType {
	case deployProduction:
		return "www."
	case deployDev:
		return "dev."
	case deployStaging:
		return "staging."
	}
	return ""
}

// versionTemplate is the text/template of a VersionURL. A buedafab-style
// URL (its sha_url_template) holds %s where the subdomain goes, as in
// http://%sfivebybueda.com/version/: each %s means {{.Subdomain}}, as it
// did there. ("%s" is never a percent-escape, whose two characters after
// the '%' are hex digits.)
func versionTemplate(u string) string {
	return strings.ReplaceAll(u, "%s", "{{.Subdomain}}")
}

// versionURLs renders VersionURL for every host; nil when it is unset.
func (r *fleetRun) versionURLs() (map[string]string, error) {
	if r.cfg.VersionURL == "" {
		return nil, nil
	}
	tmpl, err := template.New("VersionURL").Option("missingkey=error").Parse(versionTemplate(r.cfg.VersionURL))
	if err != nil {
		return nil, fmt.Errorf("magetargets: Config.VersionURL: %w", err)
	}
	urls := map[string]string{}
	for _, h := range r.hosts {
		d := VersionData{Subdomain: subdomain(r.env), Host: h.Name(), HostName: h.Name(), Unit: r.cfg.Unit, DeploymentType: r.env.DeploymentType}
		if rem, ok := h.(*sshx.Remote); ok {
			d.HostName = rem.Endpoint().HostName
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, d); err != nil {
			return nil, fmt.Errorf("magetargets: Config.VersionURL: %w", err)
		}
		if !strings.HasPrefix(b.String(), "http://") && !strings.HasPrefix(b.String(), "https://") {
			return nil, fmt.Errorf("magetargets: Config.VersionURL renders to %q: want an http:// or https:// URL", b.String())
		}
		urls[h.Name()] = b.String()
	}
	return urls, nil
}

// fetchVersion returns the commit a version URL answers (see
// parseVersionAnswer).
func fetchVersion(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "magefab")
	// A new connection each time: with slots sharing a port, a kept-alive
	// one would keep asking the slot that answered first.
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return parseVersionAnswer(string(b))
}

// minSHA is the shortest abbreviation of a commit an answer may give.
const minSHA = 7

// versionFields are the members of a JSON object answer that may hold
// the commit, in the order they are looked at.
var versionFields = []string{"commit", "sha", "version"}

// parseVersionAnswer reads what a version URL answers: a commit in hex,
// bare (6b4943c...) or as a JSON string ("6b4943c...", quotes stripped as
// buedafab did), or a JSON object whose "commit", "sha" or "version"
// member is one ({"commit": "6b4943c..."}); surrounding white space and a
// trailing newline do not matter. The commit may be abbreviated to no
// fewer than 7 hex digits. It returns the commit in lower case, or an
// error that says what the answer was.
func parseVersionAnswer(body string) (string, error) {
	s := strings.TrimSpace(body)
	v := s
	switch {
	case strings.HasPrefix(s, "{"):
		var obj map[string]any
		if err := json.Unmarshal([]byte(s), &obj); err != nil {
			return "", fmt.Errorf("answered %s, which is not a JSON object", quoteAnswer(s))
		}
		found := false
		for _, k := range versionFields {
			if x, ok := obj[k].(string); ok {
				v, found = x, true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("answered the JSON object %s, which has no %q, %q or %q string member", quoteAnswer(s), versionFields[0], versionFields[1], versionFields[2])
		}
	case strings.HasPrefix(s, `"`):
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			v = strings.Trim(s, `"`)
		}
	}
	v = strings.ToLower(strings.TrimSpace(v))
	if !isHexSHA(v) {
		return "", fmt.Errorf("answered %s, which is not a commit (%d to 40 hex digits, bare, quoted, or in a JSON object's \"commit\", \"sha\" or \"version\")", quoteAnswer(s), minSHA)
	}
	return v, nil
}

// isHexSHA reports whether s is a commit id, whole or abbreviated to at
// least minSHA hex digits (64 for SHA-256 repositories).
func isHexSHA(s string) bool {
	if len(s) < minSHA || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// servesCommit reports whether a version URL's answer (as
// parseVersionAnswer returns it) is the commit want: the same id, or an
// abbreviation of it.
func servesCommit(answer, want string) bool {
	want = strings.ToLower(want)
	return answer != "" && (answer == want || (len(answer) >= minSHA && strings.HasPrefix(want, answer)))
}

// quoteAnswer shows an answer in a message, cut to a readable length.
func quoteAnswer(s string) string {
	if s == "" {
		return "nothing"
	}
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// liveVersion is the commit the first host serves before a deploy, "" if
// unknown.
func (r *fleetRun) liveVersion(ctx context.Context, urls map[string]string) string {
	if len(urls) == 0 || len(r.hosts) == 0 {
		return ""
	}
	v, err := fetchVersion(ctx, urls[r.hosts[0].Name()])
	if err != nil {
		return ""
	}
	return v
}

// verifier polls every host's version URL until it serves sha.
func (r *fleetRun) verifier(urls map[string]string, sha func() string) func(context.Context, []release.HostResult) error {
	return func(ctx context.Context, results []release.HostResult) error {
		want := sha()
		// The hosts that switched: all of them, or a rollout's stage.
		switched := map[string]bool{}
		for _, res := range results {
			switched[res.Host] = true
		}
		var hosts []sshx.Host
		var names []string
		for _, h := range r.hosts {
			if switched[h.Name()] || len(results) == 0 {
				hosts = append(hosts, h)
				names = append(names, h.Name())
			}
		}
		if len(hosts) == len(r.hosts) {
			r.say("checking that every host serves %s", shortSHA(want))
		} else {
			r.say("checking that %s serves %s", strings.Join(names, ", "), shortSHA(want))
		}
		_, err := sshx.Each(ctx, hosts, 0, func(ctx context.Context, h sshx.Host) (struct{}, error) {
			url := urls[h.Name()]
			deadline := time.Now().Add(r.cfg.Timeouts.Verify)
			var got string
			var ferr error
			for {
				got, ferr = fetchVersion(ctx, url)
				if ferr == nil && servesCommit(got, want) {
					return struct{}{}, nil
				}
				if time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				time.Sleep(versionPollInterval)
			}
			if ferr != nil {
				return struct{}{}, fmt.Errorf("%s does not answer with a commit after %s: %v", url, r.cfg.Timeouts.Verify, ferr)
			}
			return struct{}{}, fmt.Errorf("%s serves %q, not %s, after %s", url, got, shortSHA(want), r.cfg.Timeouts.Verify)
		})
		return err
	}
}
