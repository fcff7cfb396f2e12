package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/wheel"
	"github.com/magefab/magefab/sshx"
)

// hooks records what notifiers send.
type hooks struct {
	mu   sync.Mutex
	reqs []string // "path body"
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.reqs = append(h.reqs, r.URL.Path+" "+r.Header.Get("X-Token")+" "+string(b))
	h.mu.Unlock()
}

func (h *hooks) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.reqs
	h.reqs = nil
	return out
}

func TestNotificationsAndPrivatePackagesOnTheFleet(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 3)
	fleettest.RequireTool(t, "/usr/bin/python3", "python3")

	// A private package, as a wheel in an S3 bucket.
	backend := s3mem.New()
	backend.CreateBucket("pkgs")
	whl, err := wheel.Build(t.TempDir(), "private_dep", "1.0", "FEATURE = 'private'\n")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(whl)
	if _, err := backend.PutObject("pkgs", filepath.Base(whl), map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(backend).Server())
	defer s3.Close()

	h := &hooks{}
	hookSrv := httptest.NewServer(h)
	defer hookSrv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // a notifier whose service is down

	const slackToken, headerToken, campfireToken, awsSecret = "XOXSECRET123", "hdrsecret99", "campfiresecret77", "awssecretkey55"
	config := fmt.Sprintf(`SCMWebURL: "https://git.example.com/team/app",
		PrivateRequirements: []string{"requirements/private.txt"},
		S3: magetargets.S3{Bucket: "pkgs", Region: "us-east-1", Endpoint: %q, KeyTemplate: "{{.Name}}-{{.Version}}-py3-none-any.whl"},
		Notifiers: []notify.Notifier{
			notify.Slack{WebhookURL: %q},
			notify.Webhook{URL: %q, Headers: map[string]string{"X-Token": %q}},
			notify.Campfire{URL: %q},
		},`, s3.URL, hookSrv.URL+"/services/T0/B0/"+slackToken, hookSrv.URL+"/hook", headerToken, dead.URL+"/rooms/1/2-"+campfireToken+"/messages")
	p := e2e.NewProjectWith(t, f, f.Hosts, config, "", map[string]string{"requirements/private.txt": "private_dep==1.0\n"})
	env := []string{"MAGEFAB_SKIP_TESTS=1", "AWS_ACCESS_KEY_ID=AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY=" + awsSecret,
		"AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "XDG_CACHE_HOME=" + t.TempDir()}

	p.Tag(t, "v0.1.0")
	r := p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.0")
	sha2 := p.Commit(t, "second")
	p.Tag(t, "v0.1.1")
	r2 := p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.1")
	assertServing(t, p, "deploy with private packages", sha2)
	t.Logf("first deploy %.1fs, second %.1fs\n%s\n%s", r.Took.Seconds(), r2.Took.Seconds(), r.Out, r2.Out)

	// The private package is importable from every release's virtualenv.
	for host, out := range onHosts(t, f, "/var/webapps/"+sshx.Quote(p.Unit)+"/releases/current/env/bin/python -c 'import private_dep; print(private_dep.FEATURE)'") {
		if strings.TrimSpace(out) != "private" {
			t.Errorf("%s: import private_dep: %q", host, out)
		}
	}

	sent := h.take()
	var slack, webhook []string
	for _, s := range sent {
		switch {
		case strings.HasPrefix(s, "/services/"):
			slack = append(slack, s)
		case strings.HasPrefix(s, "/hook"):
			webhook = append(webhook, s)
		}
	}
	if len(slack) != 2 || len(webhook) != 2 {
		t.Fatalf("notifications sent: %q, want one Slack and one webhook per deploy", sent)
	}
	if !strings.Contains(slack[1], "is deploying "+p.Unit+" master (v0.1.0..v0.1.1) to production https://git.example.com/team/app/compare/v0.1.0...v0.1.1") {
		t.Errorf("Slack message: %s", slack[1])
	}
	var ev map[string]any
	json.Unmarshal([]byte(webhook[1][strings.Index(webhook[1], "{"):]), &ev)
	if ev["release"] != "v0.1.1" || ev["sha"] != sha2 || ev["previous"] != "v0.1.0" || ev["environment"] != "production" || !strings.Contains(webhook[1], headerToken) {
		t.Errorf("webhook event: %s", webhook[1])
	}
	out := r.Out + r2.Out
	if !strings.Contains(out, "warning: notify: campfire") {
		t.Errorf("no warning for the notifier that is down:\n%s", out)
	}
	rb := p.MustRun(t, env, "env:production", "deploy:rollback")
	out += rb.Out
	if got := h.take(); len(got) != 2 || !strings.Contains(strings.Join(got, "\n"), "rolled back "+p.Unit+" production to v0.1.0") {
		t.Errorf("rollback notifications: %q", got)
	}
	for _, secret := range []string{slackToken, headerToken, campfireToken, awsSecret} {
		if strings.Contains(out, secret) {
			t.Errorf("the output shows the secret %q:\n%s", secret, out)
		}
	}
}
