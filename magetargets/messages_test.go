package magetargets

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/magefab/magefab/release"
)

// normalized is out with what changes from run to run replaced: clock
// times, durations, the host's home.
func normalized(out, home string) string {
	out = strings.ReplaceAll(out, home, "$HOME")
	out = regexp.MustCompile(`\d\d:\d\d:\d\d`).ReplaceAllString(out, "hh:mm:ss")
	out = regexp.MustCompile(`\(\d+\.\ds\)`).ReplaceAllString(out, "(N.Ns)")
	out = regexp.MustCompile(`in \d+\.\ds`).ReplaceAllString(out, "in N.Ns")
	return out
}

// wantLines fails unless every line of want is a line of got, in order.
func wantLines(t *testing.T, what, got, want string) {
	t.Helper()
	rest := got
	for _, w := range strings.Split(strings.TrimSuffix(want, "\n"), "\n") {
		i := strings.Index(rest, w+"\n")
		if i < 0 || (i > 0 && rest[i-1] != '\n') {
			t.Errorf("%s: the output lacks the line (in order)\n%s\noutput:\n%s", what, w, got)
			return
		}
		rest = rest[i+len(w)+1:]
	}
}

// deploy:status on a host where nothing was deployed reports it, and
// succeeds; once deployed, the requirements stamp is shown by 12 digits.
func TestStatusMessages(t *testing.T) {
	ctx := t.Context()
	p := newHostProject(t)
	configure(t, p.config("app"))
	t.Setenv(EnvVar, envDevelopment)
	if err := (Deploy{}).Status(ctx); err != nil {
		t.Fatalf("deploy:status before any deploy = %v, want success\n%s", err, p.out)
	}
	wantLines(t, "deploy:status before any deploy", normalized(p.out.String(), p.home), `h1
  nothing deployed yet (app/releases does not exist)
`)

	if err := (Deploy{}).Commit(ctx, p.head); err != nil {
		t.Fatalf("deploy: %v\n%s", err, p.out)
	}
	// With no TestRunner, the deploy says so.
	wantLines(t, "deploy without a TestRunner", normalized(p.out.String(), p.home),
		"magefab | hh:mm:ss no tests configured (set Config.TestRunner to run them before every deploy)\n")
	p.out.Reset()
	if err := (Deploy{}).Status(ctx); err != nil {
		t.Fatalf("deploy:status: %v\n%s", err, p.out)
	}
	stamp := regexp.MustCompile(`(?m)^  \* a    \S+ +[0-9a-f]{7}  requirements ([0-9a-f]+)$`).FindStringSubmatch(p.out.String())
	if stamp == nil || len(stamp[1]) != 12 {
		t.Errorf("deploy:status does not show the live dir with a 12-digit requirements stamp:\n%s", p.out)
	}
}

// maint:enable says what it does once ("enable maintenance mode on DEV"),
// and a settings file with no MAINTENANCE_MODE assignment to change is a
// failure that says so and leaves the file as it is.
func TestMaintenanceMessages(t *testing.T) {
	ctx := t.Context()
	p := deployedOnce(t, ctx)
	p.out.Reset()
	if err := (Maint{}).Enable(ctx); err != nil {
		t.Fatalf("maint:enable: %v\n%s", err, p.out)
	}
	out := normalized(p.out.String(), p.home)
	if strings.Contains(out, "on on") {
		t.Errorf("maint:enable printed %q:\n%s", "on on", out)
	}
	wantLines(t, "maint:enable", out, `magefab | hh:mm:ss enable maintenance mode on DEV: h1
h1      | enable maintenance mode ok (N.Ns)
enable maintenance mode: done on 1 host(s) in N.Ns
`)

	settings := filepath.Join(p.home, "app", "releases", "a", "settings.py")
	const other = "DEBUG = False\n"
	if err := os.WriteFile(settings, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	p.out.Reset()
	err := (Maint{}).Disable(ctx)
	if err == nil {
		t.Fatalf("maint:disable with no MAINTENANCE_MODE in the settings succeeded:\n%s", p.out)
	}
	wantErr := "disable maintenance mode failed: " // then the host's error
	want := "h1: " + settings + " has no MAINTENANCE_MODE assignment: MAINTENANCE_MODE was not set to False there; Config.Settings (settings.py) must assign it True or False at the start of a line, e.g. MAINTENANCE_MODE = False, in the release that is live"
	if !strings.HasPrefix(err.Error(), wantErr) || !strings.Contains(err.Error(), want) {
		t.Errorf("maint:disable error =\n%v\nwant %q ... %q", err, wantErr, want)
	}
	wantLines(t, "maint:disable", normalized(p.out.String(), p.home), "h1      | disable maintenance mode FAILED (N.Ns)\n")
	if b, _ := os.ReadFile(settings); string(b) != other {
		t.Errorf("settings.py after the failed maint:disable = %q, want it unchanged", b)
	}
}

// Before a production deploy: what goes live, the commits between what
// the hosts serve and the release, capped, with the compare link.
func TestWhatGoesLiveMessages(t *testing.T) {
	from := release.Target{Name: "v0.1.0", SHA: "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
	to := release.Target{Name: "v0.1.1", SHA: "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}
	for _, c := range []struct {
		name string
		ch   liveChange
		want string
	}{
		{"new commits", liveChange{env: "PRODUCTION", from: from, to: to, known: true,
			adds: []string{"2222222 Fix the login page", "3333333 Add the export"}, addsAll: 2,
			compare: "https://github.com/bueda/five/compare/v0.1.0...v0.1.1"}, `What goes live on PRODUCTION: v0.1.0 (1111111) -> v0.1.1 (2222222), 2 new commit(s):
  + 2222222 Fix the login page
  + 3333333 Add the export
  https://github.com/bueda/five/compare/v0.1.0...v0.1.1
`},
		{"capped, and an older release", liveChange{env: "PRODUCTION", from: from, to: release.Target{SHA: to.SHA}, known: true,
			adds: []string{"2222222 a"}, addsAll: 25, drops: []string{"4444444 b"}, dropAll: 1}, `What goes live on PRODUCTION: v0.1.0 (1111111) -> 2222222, 25 new commit(s), 1 commit(s) leave:
  + 2222222 a
  + ... and 24 more
  - 4444444 b
`},
		{"hosts differ", liveChange{env: "PRODUCTION", from: from, to: to, known: true, hosts: "the hosts differ: v0.1.0 (1111111) on web1; v0.0.9 (5555555) on web2"},
			"What goes live on PRODUCTION: v0.1.0 (1111111) (the hosts differ: v0.1.0 (1111111) on web1; v0.0.9 (5555555) on web2) -> v0.1.1 (2222222), 0 new commit(s):\n"},
		{"unknown here", liveChange{env: "PRODUCTION", from: release.Target{SHA: "6b4943c"}, to: to},
			"What goes live on PRODUCTION: 6b4943c -> v0.1.1 (2222222); this repository does not have 6b4943c (git fetch gets it), so its commits are not listed.\n"},
		{"nothing live", liveChange{env: "PRODUCTION", to: to}, "What goes live on PRODUCTION: v0.1.1 (2222222); nothing is live there yet.\n"},
		{"the same", liveChange{env: "PRODUCTION", from: to, to: to}, "What goes live on PRODUCTION: nothing new; the hosts serve v0.1.1 (2222222) already.\n"},
	} {
		var b bytes.Buffer
		c.ch.write(&b)
		if b.String() != c.want {
			t.Errorf("%s: printed\n%s\nwant\n%s", c.name, b.String(), c.want)
		}
	}
}

// whatGoesLive reads the commits from the project's repository, and the
// production dry run shows them with the compare link.
func TestWhatGoesLiveInTheDryRun(t *testing.T) {
	ctx := t.Context()
	p := newHostProject(t)
	cfg := p.config("app")
	cfg.SCMWebURL = "https://github.com/bueda/five"
	configure(t, cfg)
	t.Setenv(EnvVar, envProduction)
	t.Setenv(TagVar, "v7.0.0")
	if err := (Deploy{}).Commit(ctx, p.head); err != nil {
		t.Fatalf("first deploy: %v\n%s", err, p.out)
	}
	first := p.head
	second := p.commitFiles(t, map[string]string{"a.txt": "a\n"})
	third := p.commitFiles(t, map[string]string{"b.txt": "b\n"})
	t.Setenv(TagVar, "v7.0.1")
	t.Setenv(DryRunVar, "1")
	p.out.Reset()
	if err := (Deploy{}).Commit(ctx, third); err != nil {
		t.Fatalf("dry run: %v\n%s", err, p.out)
	}
	want := "What goes live on PRODUCTION: v7.0.0 (" + first[:7] + ") -> " + third[:7] + ", 2 new commit(s):\n" +
		"  + " + third[:7] + " "
	if !strings.Contains(p.out.String(), want) || !strings.Contains(p.out.String(), "  + "+second[:7]+" ") ||
		!strings.Contains(p.out.String(), "  https://github.com/bueda/five/compare/v7.0.0..."+third+"\n") {
		t.Errorf("the production dry run does not show what goes live (%q ...):\n%s", want, p.out)
	}
}
