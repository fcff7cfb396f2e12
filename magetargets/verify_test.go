package magetargets

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/magefab/magefab/sshx"
)

const verifySHA = "6b4943c0c1d5e7f2a3b4c5d6e7f8091a2b3c4d5e"

// The three shapes of answer a version URL may give: a bare commit, a
// JSON string (buedafab stripped its quotes), and a JSON object.
func TestParseVersionAnswer(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body, want, err string
	}{
		{verifySHA, verifySHA, ""},
		{verifySHA + "\n", verifySHA, ""},
		{"  " + strings.ToUpper(verifySHA) + "\r\n", verifySHA, ""},
		{`"` + verifySHA + `"`, verifySHA, ""},
		{`"` + verifySHA + `"` + "\n", verifySHA, ""},
		{`"6b4943c"`, "6b4943c", ""},
		{"6b4943c", "6b4943c", ""},
		{`{"commit": "` + verifySHA + `"}`, verifySHA, ""},
		{`{"sha":"6b4943c0"}` + "\n", "6b4943c0", ""},
		{`{"version": "` + verifySHA + `", "built": "2024-05-01"}`, verifySHA, ""},
		{`{"commit": "` + verifySHA + `", "version": "v0.1.1"}`, verifySHA, ""},
		{"", "", "answered nothing, which is not a commit"},
		{"6b4943", "", `answered "6b4943", which is not a commit (7 to 40 hex digits`},
		{`"6b49"`, "", `answered "\"6b49\"", which is not a commit`},
		{"v0.1.1", "", `answered "v0.1.1", which is not a commit`},
		{"<html>Not here</html>", "", "which is not a commit"},
		{`{"version": "v0.1.1"}`, "", `answered "{\"version\": \"v0.1.1\"}", which is not a commit`},
		{`{"build": 7}`, "", `answered the JSON object "{\"build\": 7}", which has no "commit", "sha" or "version" string member`},
		{`{"commit": `, "", "which is not a JSON object"},
	} {
		got, err := parseVersionAnswer(c.body)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("parseVersionAnswer(%q) = %q, %v; want %q, error containing %q", c.body, got, err, c.want, c.err)
		}
	}
}

func TestServesCommit(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		answer string
		want   bool
	}{
		{verifySHA, true},
		{verifySHA[:7], true},
		{verifySHA[:12], true},
		{"6b4943d", false},
		{strings.Repeat("0", 40), false},
		{verifySHA[:6], false}, // too short to be a commit
		{"", false},
	} {
		if got := servesCommit(c.answer, verifySHA); got != c.want {
			t.Errorf("servesCommit(%q, %s) = %v, want %v", c.answer, verifySHA, got, c.want)
		}
	}
	if !servesCommit("6b4943c", strings.ToUpper(verifySHA)) {
		t.Error("servesCommit compares case-sensitively")
	}
}

// fetchVersion reads every shape from a real HTTP endpoint.
func TestFetchVersionShapes(t *testing.T) {
	t.Parallel()
	answers := map[string]string{
		"/bare":   verifySHA + "\n",
		"/quoted": `"` + verifySHA + `"`,
		"/json":   `{"commit":"` + verifySHA[:7] + `"}`,
		"/html":   "<h1>Welcome</h1>",
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, a)
	}))
	defer srv.Close()
	for path, want := range map[string]string{"/bare": verifySHA, "/quoted": verifySHA, "/json": verifySHA[:7]} {
		got, err := fetchVersion(t.Context(), srv.URL+path)
		if err != nil || got != want || !servesCommit(got, verifySHA) {
			t.Errorf("fetchVersion(%s) = %q, %v; want %q, serving %s", path, got, err, want, verifySHA)
		}
	}
	if _, err := fetchVersion(t.Context(), srv.URL+"/html"); err == nil || !strings.Contains(err.Error(), `answered "<h1>Welcome</h1>", which is not a commit`) {
		t.Errorf("fetchVersion(/html) error = %v", err)
	}
	if _, err := fetchVersion(t.Context(), srv.URL+"/missing"); err == nil || err.Error() != "HTTP 404" {
		t.Errorf("fetchVersion(/missing) error = %v, want HTTP 404", err)
	}
}

// A buedafab sha_url_template holds %s for the subdomain.
func TestVersionURLSubdomain(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url, deployType, want string
	}{
		{"http://%sfivebybueda.com/version/", deployProduction, "http://www.fivebybueda.com/version/"},
		{"http://%sfivebybueda.com/version/", deployDev, "http://dev.fivebybueda.com/version/"},
		{"http://%sfivebybueda.com/version/", deployStaging, "http://staging.fivebybueda.com/version/"},
		{"http://{{.Subdomain}}fivebybueda.com/version/", deployStaging, "http://staging.fivebybueda.com/version/"},
		{"http://{{.Host}}:8000/version?x=%41", deployProduction, "http://web1:8000/version?x=%41"},
	} {
		r := &fleetRun{
			cfg:   Config{Unit: "five", VersionURL: c.url},
			env:   Environment{Name: "x", DeploymentType: c.deployType},
			hosts: []sshx.Host{sshx.NewLocal("web1")},
		}
		urls, err := r.versionURLs()
		if err != nil || urls["web1"] != c.want {
			t.Errorf("VersionURL %q in %s renders %q, %v; want %q", c.url, c.deployType, urls["web1"], err, c.want)
		}
	}
}
