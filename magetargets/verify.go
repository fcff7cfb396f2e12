package magetargets

import (
	"context"
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

// versionURLs renders VersionURL for every host; nil when it is unset.
func (r *fleetRun) versionURLs() (map[string]string, error) {
	if r.cfg.VersionURL == "" {
		return nil, nil
	}
	tmpl, err := template.New("VersionURL").Option("missingkey=error").Parse(r.cfg.VersionURL)
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

// fetchVersion returns what a version URL answers, trimmed.
func fetchVersion(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "magefab")
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
	return strings.TrimSpace(string(b)), nil
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
	return func(ctx context.Context, _ []release.HostResult) error {
		want := sha()
		r.say("checking that every host serves %s", shortSHA(want))
		_, err := sshx.Each(ctx, r.hosts, 0, func(ctx context.Context, h sshx.Host) (struct{}, error) {
			url := urls[h.Name()]
			deadline := time.Now().Add(r.cfg.Timeouts.Verify)
			var got string
			var ferr error
			for {
				got, ferr = fetchVersion(ctx, url)
				if ferr == nil && (got == want || (len(got) >= 7 && strings.HasPrefix(want, got))) {
					return struct{}{}, nil
				}
				if time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				time.Sleep(versionPollInterval)
			}
			if ferr != nil {
				return struct{}{}, fmt.Errorf("%s does not answer after %s: %v", url, r.cfg.Timeouts.Verify, ferr)
			}
			return struct{}{}, fmt.Errorf("%s serves %q, not %s, after %s", url, got, shortSHA(want), r.cfg.Timeouts.Verify)
		})
		return err
	}
}
