package e2e_test

import (
	"context"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/sshx"
)

// managePy is a Django-shaped manage.py that records its calls (with
// DEPLOYMENT_TYPE) in <Path>/manage.log and fails "migrate" when the release
// holds a file named FAIL_MIGRATE that is not empty.
const managePy = `#!/usr/bin/env python3
import os, sys
here = os.path.dirname(os.path.abspath(__file__))
log = os.path.join(here, "..", "..", "manage.log")
with open(log, "a") as f:
    f.write(" ".join(sys.argv[1:]) + " DEPLOYMENT_TYPE=" + os.environ.get("DEPLOYMENT_TYPE", "") + "\n")
flag = os.path.join(here, "FAIL_MIGRATE")
if sys.argv[1:2] == ["migrate"] and os.path.exists(flag) and open(flag).read().strip():
    sys.exit("django.db.utils.OperationalError: no such table: five_widget")
`

const settingsPy = "DEBUG = False\nMAINTENANCE_MODE = False\nSECRET = 'x'\n"

// onHost runs a script on one fleet host as the deploy user (as root with
// sudo) and returns its output.
func onHost(t *testing.T, f fleettest.Fleet, host, script string, sudo bool) (string, error) {
	t.Helper()
	pool, err := sshx.NewPool(sshx.Config{ConfigFile: f.ConfigFile})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	h, err := pool.Host(host)
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Script(context.Background(), script)
	cmd.Sudo = sudo
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// onHosts runs a script as root on every fleet host and returns the output
// per host.
func onHosts(t *testing.T, f fleettest.Fleet, script string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range f.Hosts {
		out[name], _ = onHost(t, f, name, script, true)
	}
	return out
}

func TestPythonSideOnTheFleet(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 3)
	fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	p := e2e.NewProjectWith(t, f, f.Hosts, `Migrate: true, Fixtures: []string{"initial"}, Celeryd: "deploy/celeryd",`, `Crontab: "deploy/crontab"`, map[string]string{
		"manage.py":      managePy,
		"settings.py":    settingsPy,
		"deploy/crontab": "# magefab test crontab\n*/5 * * * * true\n",
		"deploy/celeryd": celerydTemplate,
	})
	env := []string{"MAGEFAB_SKIP_TESTS=1"}
	root := "/var/webapps/" + p.Unit
	celeryInit := "/etc/init.d/celeryd-" + p.Unit + "_PRODUCTION"
	t.Cleanup(func() {
		onHost(t, f, f.Hosts[0], "rm -f "+sshx.Quote(celeryInit)+" "+sshx.Quote("/etc/init.d/.celeryd-"+p.Unit+"_PRODUCTION")+".magefab-*", true)
	})
	celeryLog := "cat " + sshx.Quote(root+"/celery.log") + " 2>/dev/null || true"
	sha1 := p.Git(t, "rev-parse", "HEAD")
	p.Tag(t, "v0.1.0")
	r := p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.0")
	assertServing(t, p, "deploy with Django extras", sha1)

	// manage.py ran once, on the first host, with DEPLOYMENT_TYPE.
	logs := onHosts(t, f, "cat "+sshx.Quote(root+"/manage.log")+" 2>/dev/null || true")
	if want := "migrate --noinput DEPLOYMENT_TYPE=PRODUCTION\nloaddata initial DEPLOYMENT_TYPE=PRODUCTION\n"; logs["web1"] != want {
		t.Errorf("web1 manage.log = %q, want %q\n%s", logs["web1"], want, r.Out)
	}
	for _, h := range f.Hosts[1:] {
		if logs[h] != "" {
			t.Errorf("%s ran manage.py too: %q", h, logs[h])
		}
	}
	// The crontab of the environment is installed for the deploy user.
	for h, out := range onHosts(t, f, "crontab -l -u deploy") {
		if !strings.Contains(out, "magefab test crontab") {
			t.Errorf("%s: crontab -l -u deploy = %q", h, out)
		}
	}
	// The celery init script is in place, executable, and was restarted
	// once on every host, after the switch (current already the release).
	for h, out := range onHosts(t, f, "test -x "+sshx.Quote(celeryInit)+" && echo executable") {
		if strings.TrimSpace(out) != "executable" {
			t.Errorf("%s: %s is not an executable file: %q", h, celeryInit, out)
		}
	}
	for h, out := range onHosts(t, f, celeryLog) {
		if want := "restart " + sha1 + "\n"; out != want {
			t.Errorf("%s: celery.log = %q, want %q", h, out, want)
		}
	}

	// Maintenance mode on and off: only that assignment changes.
	settings := root + "/releases/current/settings.py"
	p.MustRun(t, nil, "env:production", "maint:enable")
	for h, out := range onHosts(t, f, "cat "+sshx.Quote(settings)) {
		if out != strings.Replace(settingsPy, "MAINTENANCE_MODE = False", "MAINTENANCE_MODE = True", 1) {
			t.Errorf("%s settings after maint:enable:\n%s", h, out)
		}
	}
	assertServing(t, p, "maint:enable restarted", sha1)
	// A redeploy of the live release keeps the flag (the dir is reused).
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.0")
	for h, out := range onHosts(t, f, "grep MAINTENANCE_MODE "+sshx.Quote(settings)) {
		if strings.TrimSpace(out) != "MAINTENANCE_MODE = True" {
			t.Errorf("%s: redeploy lost the maintenance flag: %q", h, out)
		}
	}
	p.MustRun(t, nil, "env:production", "maint:disable")
	for h, out := range onHosts(t, f, "cat "+sshx.Quote(settings)) {
		if out != settingsPy {
			t.Errorf("%s settings after maint:disable:\n%s", h, out)
		}
	}
	// A host without the settings file: a failure that names it.
	pool, _ := sshx.NewPool(sshx.Config{ConfigFile: f.ConfigFile})
	defer pool.Close()
	web2, _ := pool.Host("web2")
	web2.Command(context.Background(), "rm", settings).Run()
	r = p.Run(t, nil, "env:production", "maint:enable")
	if r.Err == nil || !strings.Contains(r.Out, "web2: "+strings.Replace(settings, "current", "a", 1)+" does not exist: MAINTENANCE_MODE was not set to True there") {
		t.Errorf("maint:enable without settings on web2: %v\n%s", r.Err, r.Out)
	}

	// pip:install reinstalls into the live release, one session per host
	// (and one more where the host does not hold its script yet).
	conns, sess := sessions(f, func() { r = p.MustRun(t, nil, "env:production", "pip:install") })
	assertSessions(t, "pip:install", conns, sess, 2)
	if strings.Count(r.Out, "installing requirements") != 3 {
		t.Errorf("pip:install output:\n%s", r.Out)
	}
	assertServing(t, p, "pip:install restarted", sha1)

	// maint:restart: one session per host, once the host holds the
	// restart's script (the first may store it, in one more).
	p.MustRun(t, nil, "env:production", "maint:restart")
	conns, sess = sessions(f, func() { p.MustRun(t, nil, "env:production", "maint:restart") })
	assertSessions(t, "maint:restart", conns, sess, 1)

	// A failing migration stops the deploy before any host switches.
	p.AddFiles(t, "break migrations", map[string]string{"FAIL_MIGRATE": "yes\n"})
	p.Tag(t, "v0.2.0")
	r = p.Run(t, env, "env:production", "deploy:tag", "v0.2.0")
	if r.Err == nil || !strings.Contains(r.Out, "manage.py migrate failed") || !strings.Contains(r.Out, "no host was switched") || !strings.Contains(r.Out, "web1") {
		t.Errorf("failing migration: %v\n%s", r.Err, r.Out)
	}
	assertServing(t, p, "after a failed migration", sha1)
	for h, out := range onHosts(t, f, "ls -a "+sshx.Quote(root+"/releases")) {
		if strings.Contains(out, ".lock") {
			t.Errorf("%s left locked", h)
		}
	}
	// ... and leaves celery alone (restarted by the deploy and the
	// redeploy only).
	for h, out := range onHosts(t, f, celeryLog) {
		if want := strings.Repeat("restart "+sha1+"\n", 2); out != want {
			t.Errorf("%s: celery.log after the failed migration = %q, want %q", h, out, want)
		}
	}

	// The crontab follows the release: a new one with v0.3.0, the old one
	// again after a rollback; celery restarts after each switch.
	sha3 := p.AddFiles(t, "mend migrations, new crontab", map[string]string{
		"FAIL_MIGRATE":   "",
		"deploy/crontab": "# magefab test crontab v0.3.0\n*/7 * * * * true\n",
	})
	p.Tag(t, "v0.3.0")
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.3.0")
	assertServing(t, p, "v0.3.0", sha3)
	for h, out := range onHosts(t, f, "crontab -l -u deploy") {
		if !strings.Contains(out, "magefab test crontab v0.3.0") {
			t.Errorf("%s: crontab after v0.3.0 = %q", h, out)
		}
	}
	p.MustRun(t, nil, "env:production", "deploy:rollback")
	assertServing(t, p, "rollback to v0.1.0", sha1)
	for h, out := range onHosts(t, f, "crontab -l -u deploy") {
		if !strings.Contains(out, "magefab test crontab\n") || strings.Contains(out, "v0.3.0") {
			t.Errorf("%s: crontab after the rollback = %q, want v0.1.0's", h, out)
		}
	}
	for h, out := range onHosts(t, f, celeryLog) {
		if want := strings.Repeat("restart "+sha1+"\n", 2) + "restart " + sha3 + "\nrestart " + sha1 + "\n"; out != want {
			t.Errorf("%s: celery.log = %q, want %q", h, out, want)
		}
	}
}

// celerydTemplate is a celeryd init script template: on restart it records,
// in <Path>/celery.log on its own host, the commit the live release holds.
const celerydTemplate = `#!/bin/sh
# celeryd for {{.Unit}} in {{.Environment.DeploymentType}}{{if .Beat}}, with celerybeat{{end}}
case "$1" in
restart)
	read -r head <{{.Current}}/.git/HEAD && echo "restart $head" >>{{.Path}}/celery.log ;;
esac
`
