package e2e_test

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/magefab/magefab/examples"
	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/load"
)

// TestExampleMagefilesRewriteForTheFleet checks the rewrite that the
// example tests deploy with: the fleet's values in, the example's servers
// out, every other line of the example's configuration kept.
func TestExampleMagefilesRewriteForTheFleet(t *testing.T) {
	t.Parallel()
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
		serverLine := regexp.MustCompile(`SCM:|Hosts:|LoadBalancer:|VersionURL:|PipRequirementsDev:|^Path:|^Port:`)
		for _, line := range strings.Split(string(src), "\n") {
			if line = flat(line); line != "" && !serverLine.MatchString(line) && !strings.Contains(got, line) {
				t.Errorf("%s: the rewrite lost %q", name, line)
			}
		}
		if facts.Unit == "" || len(facts.Requirements) == 0 || !strings.HasPrefix(facts.VersionPath, "/version") {
			t.Errorf("%s: facts %+v", name, facts)
		}
		if facts.SlotStart == "" {
			readme, _ := fs.ReadFile(fsys, "README.md")
			if start, err := e2e.ExampleStart(string(readme)); err != nil || !strings.Contains(start, `"$addr"`) || !strings.Contains(start, `"$PORT"`) || !strings.HasPrefix(start, "env DEPLOYMENT_TYPE=PRODUCTION env/bin/") {
				t.Errorf("%s: the README's start command for the init script: %q, %v", name, start, err)
			}
		} else {
			checkSlotFiles(t, name, fsys, facts, got)
		}
		for _, key := range facts.Keys {
			if !slices.Contains(checkedKeys, key) {
				t.Errorf("%s: the example sets %s, which its fleet test does not check: check that it works in examples_test.go", name, key)
			}
		}
	}
}

// checkSlotFiles checks what the fleet test of an example that runs slots
// installs: its slot init script, as FleetSlotScript changes it, and the
// nginx server block of a front mode example, as FleetNginxConf wraps it;
// and that the rewrite gave a shared port the fleet's (8123). rewritten
// is the rewritten magefile, flat.
func checkSlotFiles(t *testing.T, name string, fsys fs.FS, facts e2e.MagefileFacts, rewritten string) {
	t.Helper()
	installed, file, err := e2e.ExampleSlotScript(facts)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	b, err := fs.ReadFile(fsys, file)
	if err != nil {
		t.Errorf("%s: Slots.Start runs %s, and the example has no %s: %v", name, installed, file, err)
		return
	}
	script, err := e2e.FleetSlotScript(string(b), facts.SlotPort > 0)
	if err != nil {
		t.Errorf("%s: %s: %v", name, file, err)
		return
	}
	if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
		t.Errorf("%s: %s on the fleet does not parse: %v\n%s", name, file, err, out)
	}
	for _, want := range []string{"start", "stop", "MAGEFAB_DRAIN_TIMEOUT", "/proc/$pid/cmdline", "RUN=$DIR/run", "$RUN/$SLOT.sock", "$RUN/$SLOT.pid", "$RUN/$SLOT.log"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s: %s lacks %q", name, file, want)
		}
	}
	if facts.SlotPort > 0 {
		if !strings.Contains(rewritten, "Port: 8123,") {
			t.Errorf("%s: Slots.Port is not the fleet's port:\n%s", name, rewritten)
		}
		if !strings.Contains(script, "ADDR=$addr") || !strings.Contains(string(b), "MAGEFAB_SLOT_PORT") {
			t.Errorf("%s: %s does not listen on the host's address and the magefile's port:\n%s", name, file, script)
		}
		return
	}
	server, err := fs.ReadFile(fsys, e2e.ExampleNginx(facts.Unit))
	if err != nil {
		t.Errorf("%s: front mode, and no nginx server block: %v", name, err)
		return
	}
	conf, err := e2e.FleetNginxConf(string(server), "/var/webapps/"+facts.Unit+"/nginx", "127.0.0.2", 8123)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	for _, want := range []string{"listen 127.0.0.2:8123;", "proxy_pass http://unix:/var/webapps/" + facts.Unit + "/releases/current/run/app.sock;", "user root;"} {
		if !strings.Contains(conf, want) {
			t.Errorf("%s: the fleet's nginx configuration lacks %q:\n%s", name, want, conf)
		}
	}
}

// TestExampleStartReadsTheREADME checks how an example without slots
// tells the fleet test how its app starts on a server.
func TestExampleStartReadsTheREADME(t *testing.T) {
	t.Parallel()
	readme := "On the servers:\n\n    cd /var/webapps/five/releases/current &&\n    DEPLOYMENT_TYPE=PRODUCTION env/bin/gunicorn --bind ADDR:PORT five.wsgi\n"
	start, err := e2e.ExampleStart(readme)
	if want := `env DEPLOYMENT_TYPE=PRODUCTION env/bin/gunicorn --bind "$addr":"$PORT" five.wsgi`; err != nil || start != want {
		t.Errorf("ExampleStart = %q, %v; want %q", start, err, want)
	}
	if _, err := e2e.ExampleStart("no start line"); err == nil {
		t.Error("ExampleStart of a README without a start line: no error")
	}
}

// checkedKeys are the configuration fields whose effect the example tests
// check on the fleet, or that RewriteMagefile replaces or drops. An example that sets any other field fails
// TestExampleMagefilesRewriteForTheFleet until a test checks it too.
var checkedKeys = []string{
	"Unit", "Path", "SCM", "SCMWebURL", "PipRequirements", "PipRequirementsDev", "PipRequirementsProduction",
	"Settings", "Migrate", "TestRunner", "VersionURL", "Notifiers", "DefaultEnvironment", "Environments",
	"Environments.Hosts", "Environments.LoadBalancer", "Environments.Crontab", "Environments.Fixtures", "Slots",
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

// startLoad sends 100 requests a second, round robin, to the version
// page of the app on every fleet host.
func startLoad(t *testing.T, p *e2e.Project) *load.Run {
	t.Helper()
	var targets []load.Target
	for _, h := range p.Fleet.Hosts {
		targets = append(targets, load.Target{Name: h, URL: "http://" + p.Fleet.Addr(t, h) + ":" + strconv.Itoa(p.Port) + p.VersionPath})
	}
	r, err := load.Start(context.Background(), targets, load.Options{Rate: 100, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// exampleFlow deploys an example's first commit as v0.1.0 to production
// (its tests running first, locally, in the virtualenv pip:setup made), then
// a new commit as v0.1.1 with deploy:head, and checks what each host serves
// after each step, deploy:status, a rollback, and maintenance mode on and
// off. greeting is what the app's / answers. From the first deploy on,
// the app runs in slots under a steady load (startLoad) until maintenance
// mode is off again: the deploy, the rollback and the restarts of
// maint:enable and maint:disable must not fail a request.
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

	ld := startLoad(t, p)
	defer ld.Stop()
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
	for _, want := range []string{"current -> b", "v0.1.0", "v0.1.1", "not locked", "web3", "slots of b: running b; b holds the traffic", "slots of a: no slot running"} {
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

	rep := ld.Stop()
	t.Logf("under load from deploy:head to maint:disable: %s", rep)
	if rep.Failed > 0 {
		var l []string
		for _, f := range rep.Failures {
			l = append(l, f.String())
		}
		t.Errorf("%d of %d requests failed while the slots switched:\n%s", rep.Failed, rep.Requests, strings.Join(l, "\n"))
	}
	if least := int(rep.Elapsed.Seconds()*100) / 2; rep.Requests < least {
		t.Errorf("only %d requests in %s: want at least %d", rep.Requests, rep.Elapsed, least)
	}
	return sha1, sha2
}

// TestExampleDjangoOnTheFleet deploys examples/django, five, with its own
// configuration on the fleet: its gunicorn slots behind an nginx on every
// host (under load, with no failed request: exampleFlow), the
// migrations, the crontabs, the fixture of development and the
// notifications (to local endpoints) all doing their work.
func TestExampleDjangoOnTheFleet(t *testing.T) {
	t.Parallel()
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
// own configuration on the fleet: its slots share the app's port on every
// host (under load, with no failed request: exampleFlow).
func TestExampleTornadoOnTheFleet(t *testing.T) {
	t.Parallel()
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
