package e2e_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/magefab/magefab/examples"
	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
)

// TestExampleMagefilesRewriteForTheFleet checks the rewrite that the
// example tests deploy with: the fleet's values in, the example's servers
// out, every other line of the example's configuration kept.
func TestExampleMagefilesRewriteForTheFleet(t *testing.T) {
	v := e2e.FleetValues{SCM: "/srv/git/ex.git", Hosts: []string{"web1", "web2", "web3"}, SSHConfig: "/fleet/ssh_config", Wheels: "/srv/wheels", Port: 8123}
	for _, name := range examples.Names {
		fsys, err := examples.FS(name)
		if err != nil {
			t.Fatal(err)
		}
		src, _ := fs.ReadFile(fsys, "magefile.go")
		out, facts, err := e2e.RewriteMagefile(src, v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := flat(string(out))
		for _, want := range []string{
			`SCM: "/srv/git/ex.git"`, `"production": {Hosts: []string{"web1", "web2", "web3"}`,
			`SSH: magetargets.SSH{ConfigFile: "/fleet/ssh_config"}`, `PipInstallCommand: "pip install --no-index --find-links /srv/wheels"`,
			`Python: "/usr/bin/python3"`, `VersionURL: "http://{{.HostName}}:8123` + facts.VersionPath + `"`,
		} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: the rewritten magefile lacks %s:\n%s", name, want, out)
			}
		}
		for _, gone := range []string{"LoadBalancer", "git@github.com", "example.com\"", "bueda.com\"", "PipRequirementsDev"} {
			if strings.Contains(got, gone) {
				t.Errorf("%s: the rewritten magefile still has %s:\n%s", name, gone, out)
			}
		}
		// Every line of the example that names no server is still there.
		serverLine := regexp.MustCompile(`SCM:|Hosts:|LoadBalancer:|VersionURL:|PipRequirementsDev:|^Path:`)
		for _, line := range strings.Split(string(src), "\n") {
			if line = flat(line); line != "" && !serverLine.MatchString(line) && !strings.Contains(got, line) {
				t.Errorf("%s: the rewrite lost %q", name, line)
			}
		}
		if facts.Unit == "" || len(facts.Requirements) == 0 || !strings.HasPrefix(facts.VersionPath, "/version") {
			t.Errorf("%s: facts %+v", name, facts)
		}
		readme, _ := fs.ReadFile(fsys, "README.md")
		if start, err := e2e.ExampleStart(string(readme)); err != nil || !strings.Contains(start, `"$addr"`) || !strings.Contains(start, `"$PORT"`) || !strings.HasPrefix(start, "env DEPLOYMENT_TYPE=PRODUCTION env/bin/") {
			t.Errorf("%s: the README's start command for the init script: %q, %v", name, start, err)
		}
		for _, key := range facts.Keys {
			if !slices.Contains(checkedKeys, key) {
				t.Errorf("%s: the example sets %s, which its fleet test does not check: check that it works in examples_test.go", name, key)
			}
		}
	}
}

// checkedKeys are the configuration fields whose effect the example tests
// check on the fleet, or that RewriteMagefile replaces or drops. An example that sets any other field fails
// TestExampleMagefilesRewriteForTheFleet until a test checks it too.
var checkedKeys = []string{
	"Unit", "Path", "SCM", "SCMWebURL", "PipRequirements", "PipRequirementsDev", "PipRequirementsProduction",
	"Settings", "Migrate", "TestRunner", "VersionURL", "Notifiers", "DefaultEnvironment", "Environments",
	"Environments.Hosts", "Environments.LoadBalancer", "Environments.Crontab", "Environments.Fixtures",
}

// flat is s with each run of white space as one space.
func flat(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}

// get fetches a page of the app on a fleet host.
func get(t *testing.T, p *e2e.Project, host, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.Fleet.Addr(t, host) + ":" + strconv.Itoa(p.Port) + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// assertPages checks what every host answers at path.
func assertPages(t *testing.T, p *e2e.Project, what, path string, code int, body string) {
	t.Helper()
	for _, h := range p.Fleet.Hosts {
		if c, b := get(t, p, h, path); c != code || !strings.Contains(b, body) {
			t.Errorf("%s: %s%s answers %d %q, want %d with %q", what, h, path, c, b, code, body)
		}
	}
}

// exampleFlow deploys an example's first commit as v0.1.0 to production
// (its tests running first, locally, in the virtualenv pip:setup made), then
// a new commit as v0.1.1 with deploy:head, and checks what each host serves
// after each step, deploy:status, a rollback, and maintenance mode on and
// off. greeting is what the app's / answers.
func exampleFlow(t *testing.T, p *e2e.Project, env []string, greeting string) (sha1, sha2 string) {
	t.Helper()
	r := p.MustRun(t, env, "pip:setup")
	t.Logf("pip:setup: %.1fs", r.Took.Seconds())

	sha1 = p.Git(t, "rev-parse", "HEAD")
	p.Tag(t, "v0.1.0")
	r = p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.0")
	for _, want := range []string{"Ran 3 tests", "OK", "v0.1.0 is now deployed to PRODUCTION"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("deploy:tag v0.1.0 output lacks %q:\n%s", want, r.Out)
		}
	}
	t.Logf("first deploy (tests, bootstrap, virtualenvs) to %d hosts: %.1fs", len(p.Fleet.Hosts), r.Took.Seconds())
	assertServing(t, p, "deploy:tag v0.1.0", sha1)
	assertPages(t, p, "deploy:tag v0.1.0", "/", 200, greeting+" ("+sha1[:7]+")")

	sha2 = p.Commit(t, "second")
	r = p.MustRun(t, append(env, "MAGEFAB_SKIP_TESTS=1", "MAGEFAB_TAG=v0.1.1"), "env:production", "deploy:head")
	if !strings.Contains(r.Out, "v0.1.1 is now deployed to PRODUCTION") {
		t.Errorf("deploy:head output:\n%s", r.Out)
	}
	if got := p.Git(t, "ls-remote", "--tags", "origin", "v0.1.1^{}"); !strings.HasPrefix(got, sha2) {
		t.Errorf("tag v0.1.1 on the remote: %q, want %s", got, sha2)
	}
	t.Logf("deploy:head v0.1.1: %.1fs", r.Took.Seconds())
	assertServing(t, p, "deploy:head v0.1.1", sha2)
	assertPages(t, p, "deploy:head v0.1.1", "/", 200, greeting+" ("+sha2[:7]+")")

	r = p.MustRun(t, env, "env:production", "deploy:status")
	for _, want := range []string{"current -> b", "v0.1.0", "v0.1.1", "not locked", "web3"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("deploy:status lacks %q:\n%s", want, r.Out)
		}
	}

	r = p.MustRun(t, env, "env:production", "deploy:rollback")
	if !strings.Contains(r.Out, "v0.1.0 is now deployed to PRODUCTION again") {
		t.Errorf("deploy:rollback output:\n%s", r.Out)
	}
	assertServing(t, p, "deploy:rollback", sha1)

	for _, c := range []struct {
		target string
		code   int
		body   string
	}{{"maint:enable", 503, "down for maintenance"}, {"maint:disable", 200, greeting}} {
		r = p.MustRun(t, env, "env:production", c.target)
		if strings.Contains(r.Out, "warning") {
			t.Errorf("%s warns:\n%s", c.target, r.Out)
		}
		assertPages(t, p, c.target, "/", c.code, c.body)
		assertServing(t, p, c.target, sha1)
	}
	return sha1, sha2
}

// TestExampleDjangoOnTheFleet deploys examples/django, five, with its own
// configuration on the fleet: gunicorn serving it on every host, the
// migrations, the crontabs, the fixture of development and the
// notifications (to local endpoints) all doing their work.
func TestExampleDjangoOnTheFleet(t *testing.T) {
	f := fleettest.Require(t, 3)
	p := e2e.NewExample(t, f, "django")
	h := &hooks{}
	srv := httptest.NewServer(h)
	defer srv.Close()
	env := []string{"AIRBRAKE_HOST=" + srv.URL, "AIRBRAKE_PROJECT_KEY=ak-secret-1", "CAMPFIRE_CHATBOT_URL=" + srv.URL + "/rooms/1/2-cf-secret/messages"}
	start := time.Now()
	sha1, sha2 := exampleFlow(t, p, env, "five says hello")

	// Each deploy and the rollback told Airbrake and Campfire.
	sent := strings.Join(h.take(), "\n")
	for _, want := range []string{
		`/api/v4/projects/1/deploys  {"environment":"production"`, `"revision":"` + sha1 + `","version":"v0.1.0"`, `"revision":"` + sha2 + `","version":"v0.1.1"`,
		"/rooms/1/2-cf-secret/messages", "is deploying five master (v0.1.0..v0.1.1) to production https://github.com/bueda/five/compare/v0.1.0...v0.1.1", "rolled back five production to v0.1.0",
	} {
		if !strings.Contains(sent, want) {
			t.Errorf("notifications lack %q:\n%s", want, sent)
		}
	}

	// The migrations ran, once, on the first host: its database is up to
	// date, and the crontab's job (clearsessions) works against it.
	live := "cd /var/webapps/five/releases/current && "
	if out, err := onHost(t, f, "web1", live+"DEPLOYMENT_TYPE=PRODUCTION env/bin/python manage.py migrate --check", false); err != nil {
		t.Errorf("web1: manage.py migrate --check: %v\n%s", err, out)
	}
	crontab := readExample(t, "django", "scripts/crontab/production")
	for _, host := range f.Hosts {
		if out, err := onHost(t, f, host, "crontab -l -u deploy", true); err != nil || out != crontab {
			t.Errorf("%s: crontab -l -u deploy = %q (%v), want %q", host, out, err, crontab)
		}
	}
	for _, job := range cronJobs(crontab) {
		if out, err := onHost(t, f, "web1", job, false); err != nil {
			t.Errorf("web1: the production crontab's job %q: %v\n%s", job, err, out)
		}
	}

	// The development server, web1 here: the fixture dev is loaded and the
	// development crontab installed.
	r := p.MustRun(t, append(env, "MAGEFAB_SKIP_TESTS=1"), "env:development", "deploy:head")
	if !strings.Contains(r.Out, "is now deployed to DEV") {
		t.Errorf("env:development deploy:head output:\n%s", r.Out)
	}
	if v, err := p.Version(f.Addr(t, "web1")); err != nil || v != sha2 {
		t.Errorf("web1 serves %q (%v) after the development deploy, want %s", v, err, sha2)
	}
	if out, err := onHost(t, f, "web1", live+"DEPLOYMENT_TYPE=DEV env/bin/python manage.py dumpdata auth.user", false); err != nil || !strings.Contains(out, `"username": "dev"`) {
		t.Errorf("web1: the fixture dev is not loaded: %v\n%s", err, out)
	}
	if out, _ := onHost(t, f, "web1", "crontab -l -u deploy", true); out != readExample(t, "django", "scripts/crontab/development") {
		t.Errorf("web1: crontab after the development deploy:\n%s", out)
	}
	t.Logf("the Django example on %d hosts: %.1fs", len(f.Hosts), time.Since(start).Seconds())
}

// TestExampleTornadoOnTheFleet deploys examples/tornado, hello, with its
// own configuration on the fleet.
func TestExampleTornadoOnTheFleet(t *testing.T) {
	f := fleettest.Require(t, 3)
	p := e2e.NewExample(t, f, "tornado")
	start := time.Now()
	exampleFlow(t, p, nil, "hello from Tornado")

	// With no env:* target, DefaultEnvironment (development: one host).
	r := p.MustRun(t, nil, "deploy:status")
	if !strings.Contains(r.Out, "web1") || strings.Contains(r.Out, "web2") {
		t.Errorf("deploy:status in the default environment:\n%s", r.Out)
	}
	t.Logf("the Tornado example on %d hosts: %.1fs", len(f.Hosts), time.Since(start).Seconds())
}

func readExample(t *testing.T, name, file string) string {
	t.Helper()
	fsys, err := examples.FS(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cronJobs returns the jobs of a crontab as shell commands, each with the
// crontab's variables set, as cron runs them.
func cronJobs(crontab string) []string {
	var vars, jobs []string
	for _, line := range strings.Split(crontab, "\n") {
		line = strings.TrimSpace(line)
		f := strings.Fields(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case len(f) == 1 && strings.Contains(line, "="):
			vars = append(vars, "export "+line+";")
		case len(f) > 5:
			jobs = append(jobs, strings.Join(vars, " ")+" "+strings.Join(f[5:], " "))
		}
	}
	return jobs
}
