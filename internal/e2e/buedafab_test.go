package e2e_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/sshx"
)

// buedafabLayout sets every fleet host up the way buedafab left it: the
// release dirs a and b cloned from the project's remote and reset to the
// releases given (on the branch, as buedafab's git reset left them), a
// virtualenv made by virtualenv (Debian's python3-virtualenv) in each with
// the app's requirements installed offline, current -> cur (an absolute
// link), the app started, and nothing of magefab's.
func buedafabLayout(t *testing.T, p *e2e.Project, a, b, cur string) {
	t.Helper()
	root := "/var/webapps/" + p.Unit
	rel := root + "/releases"
	q := sshx.Quote
	script := "set -e; pids=; sudo -n mkdir -p " + q(root) + "; sudo -n chown deploy:deploy " + q(root) + "; mkdir " + q(rel) + "; cd " + q(rel) + "\n"
	for d, tag := range map[string]string{"a": a, "b": b} {
		script += fmt.Sprintf("(git clone -q %s %s && git -C %s reset -q --hard %s && virtualenv -q -p /usr/bin/python3 %s/env >/dev/null && %s/env/bin/pip install -q --no-index --find-links %s -r %s/requirements.txt) & pids=\"$pids $!\"\n",
			q(p.Remote), d, d, q(tag), d, d, q(p.Wheels), d)
	}
	script += "for p in $pids; do wait $p; done\nln -s " + q(rel+"/"+cur) + " current\nsudo -n /etc/init.d/" + p.Unit + " restart >/dev/null\n"
	var wg sync.WaitGroup
	errs := make([]error, len(p.Fleet.Hosts))
	outs := make([]string, len(p.Fleet.Hosts))
	for i, h := range p.Fleet.Hosts {
		wg.Go(func() { outs[i], errs[i] = onHost(t, p.Fleet, h, script, false) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("setting %s up as buedafab did: %v\n%s", p.Fleet.Hosts[i], err, outs[i])
		}
	}
}

// A team that deployed with buedafab switches to magefab: the first
// deploy adopts the release dirs buedafab left, and a rollback goes back
// to buedafab's release. deploy:check, before and after, changes nothing
// and names what to fix.
func TestBuedafabHostsOnTheFleet(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 3)
	fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	fleettest.RequireTool(t, "virtualenv", "python3-virtualenv")
	p := e2e.NewProjectWith(t, f, f.Hosts, "", `Crontab: "deploy/crontab"`, map[string]string{
		"deploy/crontab": "# magefab buedafab test crontab\n",
	})
	prod := []string{"MAGEFAB_SKIP_TESTS=1"}
	sha1 := p.Git(t, "rev-parse", "HEAD")
	p.Tag(t, "v0.1.0")
	sha2 := p.Commit(t, "second")
	p.Tag(t, "v0.2.0")
	buedafabLayout(t, p, "v0.1.0", "v0.2.0", "b")
	assertServing(t, p, "buedafab's deploy", sha2)

	// deploy:check: every host is ready, what a first run adopts is
	// said, and nothing changes.
	before := hostsState(t, p)
	r := p.MustRun(t, nil, "env:production", "deploy:check")
	t.Logf("deploy:check on buedafab's hosts:\n%s", r.Out)
	for _, want := range []string{"ok    sudo", "ok    crontab  deploy/crontab is in the live release b", "ok    lock", "every host of PRODUCTION is ready",
		"release dirs deployed before magefab (no revisions.log): a v0.1.0 (" + sha1[:7] + "), b v0.2.0 (" + sha2[:7] + "); the first deploy or rollback adopts them"} {
		if n := strings.Count(r.Out, want); n == 0 || (strings.HasPrefix(want, "ok") || strings.HasPrefix(want, "release")) && n != len(f.Hosts) {
			t.Errorf("deploy:check says %q %d times:\n%s", want, n, r.Out)
		}
	}
	if after := hostsState(t, p); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("deploy:check changed the fleet:\nbefore %v\nafter  %v", before, after)
	}

	// The first deploy adopts both dirs, once per host, and deploys to a.
	sha3 := p.Commit(t, "third")
	p.Tag(t, "v0.3.0")
	r = p.MustRun(t, prod, "env:production", "deploy:tag", "v0.3.0")
	t.Logf("first deploy over buedafab's dirs:\n%s", r.Out)
	adopted := "adopted the releases deployed before magefab: a: v0.1.0 (" + sha1[:7] + "), b: v0.2.0 (" + sha2[:7] + ", live)"
	if n := strings.Count(r.Out, adopted); n != len(f.Hosts) {
		t.Errorf("deploy said %q %d times, want once per host:\n%s", adopted, n, r.Out)
	}
	assertServing(t, p, "deploy:tag v0.3.0 over buedafab's dirs", sha3)

	// The rollback goes back to buedafab's release.
	r = p.MustRun(t, nil, "env:production", "deploy:rollback")
	if !strings.Contains(r.Out, "v0.2.0 is now deployed to PRODUCTION again") || strings.Contains(r.Out, "adopted") {
		t.Errorf("rollback output:\n%s", r.Out)
	}
	assertServing(t, p, "rollback to buedafab's release", sha2)
	r = p.MustRun(t, nil, "env:production", "deploy:status")
	if n := strings.Count(r.Out, "adopted by "); n != len(f.Hosts) {
		t.Errorf("status shows %d adopted log lines, want one per host:\n%s", n, r.Out)
	}

	// A crontab file gone from web2's live release: deploy:check fails,
	// names the host and the file, says what to fix, and changes nothing.
	if out, err := onHost(t, f, "web2", "rm "+sshx.Quote("/var/webapps/"+p.Unit+"/releases/b/deploy/crontab"), false); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	before = hostsState(t, p)
	r = p.Run(t, nil, "env:production", "deploy:check")
	t.Logf("deploy:check with a crontab file missing on web2:\n%s", r.Out)
	if r.Err == nil || !strings.Contains(r.Out, "1 of 3 host(s) of PRODUCTION need fixing: web2") {
		t.Errorf("deploy:check with a crontab file missing on web2: %v\n%s", r.Err, r.Out)
	}
	web2 := r.Out[strings.Index(r.Out, "\nweb2\n"):]
	if i := strings.Index(web2, "\nweb3\n"); i > 0 {
		web2 = web2[:i]
	}
	for _, want := range []string{"FAIL  crontab  crontab file deploy/crontab is missing from the live release b", "fix: add it to the repository"} {
		if !strings.Contains(web2, want) {
			t.Errorf("deploy:check's web2 lacks %q:\n%s", want, r.Out)
		}
	}
	if strings.Count(r.Out, "FAIL") != 1 {
		t.Errorf("deploy:check failed more than web2's crontab:\n%s", r.Out)
	}
	if after := hostsState(t, p); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("deploy:check changed the fleet:\nbefore %v\nafter  %v", before, after)
	}
}

// hostsState is what a check must not change on the hosts: where current
// points, revisions.log, the files of the releases root and of each
// virtualenv, the lock and each dir's commit.
func hostsState(t *testing.T, p *e2e.Project) map[string]string {
	t.Helper()
	root := sshx.Quote("/var/webapps/" + p.Unit + "/releases")
	state := map[string]string{}
	for _, h := range p.Fleet.Hosts {
		out, err := onHost(t, p.Fleet, h, "cd "+root+" 2>/dev/null || exit 0; exec 2>/dev/null; readlink current; cat revisions.log; ls -a . a/env b/env; cat .lock/owner a/env/.magefab-stamp b/env/.magefab-stamp; git -C a rev-parse HEAD; git -C b rev-parse HEAD; true", false)
		if err != nil {
			t.Fatalf("%s: %v: %s", h, err, out)
		}
		state[h] = out
	}
	return state
}
