package e2e_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/sshx"
)

// fleetState reads what matters on every host: where current points, the
// revisions log and the lock, so a test can assert that nothing changed.
func fleetState(t *testing.T, f fleettest.Fleet, unit string) map[string]string {
	t.Helper()
	pool, err := sshx.NewPool(sshx.Config{ConfigFile: f.ConfigFile})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	state := map[string]string{}
	root := "/var/webapps/" + unit + "/releases"
	for _, name := range f.Hosts {
		h, _ := pool.Host(name)
		out, err := h.Script(context.Background(), "cd "+sshx.Quote(root)+" 2>/dev/null || exit 0; readlink current; cat revisions.log; ls -a; cat .lock/owner 2>/dev/null; git -C a rev-parse HEAD; git -C b rev-parse HEAD").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", name, err, out)
		}
		state[name] = string(out)
	}
	return state
}

// serving asks every host's app for its commit.
func serving(t *testing.T, p *e2e.Project) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, h := range p.Fleet.Hosts {
		v, err := p.Version(p.Fleet.Addr(t, h))
		if err != nil {
			v = "error: " + err.Error()
		}
		got[h] = v
	}
	return got
}

func assertServing(t *testing.T, p *e2e.Project, what, sha string) {
	t.Helper()
	for h, v := range serving(t, p) {
		if v != sha {
			t.Errorf("%s: %s serves %q, want %s", what, h, v, sha)
		}
	}
}

// sessions runs fn and returns, per host, the SSH connections and sessions
// it opened, from the hosts' sshd logs. A host sent a script it does not
// hold in its script cache yet runs that phase again in one more session,
// which stores it: the bounds below allow for those, and the deploys
// that follow a first one show the counts once the hosts hold them.
func sessions(f fleettest.Fleet, fn func()) (conns, sess map[string]int) {
	marks := map[string]int64{}
	for _, h := range f.Hosts {
		marks[h] = f.LogMark(h)
	}
	fn()
	conns, sess = map[string]int{}, map[string]int{}
	for _, h := range f.Hosts {
		conns[h] = f.CountSince(h, marks[h], "Accepted publickey")
		sess[h] = f.CountSince(h, marks[h], "Starting session")
	}
	return conns, sess
}

func assertSessions(t *testing.T, what string, conns, sess map[string]int, maxSessions int) {
	t.Helper()
	for h, c := range conns {
		if c != 1 {
			t.Errorf("%s: %d SSH connections to %s, want 1", what, c, h)
		}
		if sess[h] > maxSessions || sess[h] < 1 {
			t.Errorf("%s: %d SSH sessions on %s, want 1..%d", what, sess[h], h, maxSessions)
		}
	}
	t.Logf("%s: sessions per host %v", what, sess)
}

func TestDeployOnTheFleet(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 3)
	fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	p := e2e.NewProject(t, f, f.Hosts, "")
	prod := []string{"MAGEFAB_SKIP_TESTS=1"}

	// 1. An existing tag, first deploy: bootstrap everything.
	sha1 := p.Git(t, "rev-parse", "HEAD")
	p.Tag(t, "v0.1.0")
	var r e2e.Result
	conns, sess := sessions(f, func() { r = p.MustRun(t, prod, "env:production", "deploy:tag", "v0.1.0") })
	if !strings.Contains(r.Out, "v0.1.0 is now deployed to PRODUCTION") {
		t.Errorf("output lacks the final line:\n%s", r.Out)
	}
	assertServing(t, p, "deploy:tag v0.1.0", sha1)
	assertSessions(t, "first deploy", conns, sess, 4)
	t.Logf("first deploy to %d hosts: %.1fs\n%s", len(f.Hosts), r.Took.Seconds(), r.Out)

	// 2. A new commit in production, tagged by MAGEFAB_TAG.
	sha2 := p.Commit(t, "second")
	conns, sess = sessions(f, func() {
		r = p.MustRun(t, append(prod, "MAGEFAB_TAG=v0.1.1"), "env:production", "deploy:commit", sha2[:7])
	})
	if got := p.Git(t, "ls-remote", "--tags", "origin", "v0.1.1^{}"); !strings.HasPrefix(got, sha2) {
		t.Errorf("tag v0.1.1 on the remote: %q, want %s", got, sha2)
	}
	assertServing(t, p, "deploy:commit with MAGEFAB_TAG", sha2)
	assertSessions(t, "deploy of a new release", conns, sess, 4)
	if !strings.Contains(r.Out, "v0.1.1 is now deployed to PRODUCTION") || !strings.Contains(r.Out, " b ") {
		t.Errorf("output:\n%s", r.Out)
	}

	// 3. The live release again: the dir is reused.
	conns, sess = sessions(f, func() { r = p.MustRun(t, prod, "env:production", "deploy:tag", "v0.1.1") })
	assertServing(t, p, "redeploy", sha2)
	assertSessions(t, "redeploy", conns, sess, 3)
	if !strings.Contains(r.Out, "already there") {
		t.Errorf("redeploy did not reuse the dir:\n%s", r.Out)
	}

	// 4. Rollback: two sessions, and one more where the host does not
	// hold the rollback's check script yet (the deploys before sent the
	// others; which ones a fleet host holds depends on the tests that ran
	// on it before).
	conns, sess = sessions(f, func() { r = p.MustRun(t, nil, "env:production", "deploy:rollback") })
	assertServing(t, p, "rollback", sha1)
	assertSessions(t, "rollback", conns, sess, 3)
	if !strings.Contains(r.Out, "v0.1.0 is now deployed to PRODUCTION again") {
		t.Errorf("rollback output:\n%s", r.Out)
	}

	// 5. Status.
	r = p.MustRun(t, nil, "env:production", "deploy:status")
	for _, want := range []string{"web1", "current -> a", "v0.1.1", "not locked", "rollback"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("status lacks %q:\n%s", want, r.Out)
		}
	}

	// 6. Bad input changes nothing anywhere.
	before := fleetState(t, f, p.Unit)
	os.Remove("/tmp/x")
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{prod, []string{"env:production", "deploy:tag", "1.0"}, "does not match VersionPattern"},
		{prod, []string{"env:production", "deploy:tag", "v9.9.9"}, "no tag v9.9.9"},
		{prod, []string{"env:production", "deploy:tag", "v1;touch /tmp/x"}, "invalid tag"},
		{prod, []string{"env:production", "deploy:tag", "$(id)"}, "invalid tag"},
		{prod, []string{"env:production", "deploy:commit", "$(touch /tmp/x)"}, "invalid commit"},
		{prod, []string{"env:production", "deploy:commit", "deadbeef"}, "deadbeef"},
		{append(prod, "MAGEFAB_ENV=nowhere"), []string{"deploy:tag", "v0.1.0"}, "nowhere"},
		{append(prod, "MAGEFAB_HOSTS=web1;id"), []string{"env:production", "deploy:tag", "v0.1.0"}, "MAGEFAB_HOSTS"},
		{append(prod, "MAGEFAB_TAG=v0.1.1"), []string{"env:production", "deploy:commit", sha1[:7]}, "v0.1.1"},
	} {
		r := p.Run(t, c.env, c.args...)
		if r.Err == nil || !strings.Contains(r.Out, c.want) {
			t.Errorf("mage %s (%v): err %v, output lacks %q:\n%s", strings.Join(c.args, " "), c.env, r.Err, c.want, r.Out)
		}
	}
	if _, err := os.Stat("/tmp/x"); err == nil {
		t.Errorf("/tmp/x exists: a value reached a shell")
	}
	if after := fleetState(t, f, p.Unit); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("bad input changed the fleet:\nbefore %v\nafter  %v", before, after)
	}
	assertServing(t, p, "after bad input", sha1)

	// A dry run shows the plan and changes nothing, here or there.
	sha3 := p.Commit(t, "third")
	r = p.MustRun(t, append(prod, "MAGEFAB_DRY_RUN=1", "MAGEFAB_TAG=v0.1.2"), "env:production", "deploy:commit", sha3[:7])
	for _, want := range []string{"would tag " + sha3[:7] + " as v0.1.2", "web1: current -> a; v0.1.2 would go to b", "git checkout -f --detach " + sha3} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, r.Out)
		}
	}
	if got := p.Git(t, "ls-remote", "--tags", "origin", "v0.1.2"); got != "" {
		t.Errorf("the dry run pushed a tag: %q", got)
	}
	if after := fleetState(t, f, p.Unit); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the dry run changed the fleet:\nbefore %v\nafter  %v", before, after)
	}

	// 7. A held lock: refused with the holder's name, nothing switched.
	pool, _ := sshx.NewPool(sshx.Config{ConfigFile: f.ConfigFile})
	defer pool.Close()
	web2, _ := pool.Host(f.Hosts[1])
	lock := "/var/webapps/" + p.Unit + "/releases/.lock"
	if err := web2.Script(context.Background(), "mkdir "+sshx.Quote(lock)+" && echo 'alice@desk deploying v0.0.9' > "+sshx.Quote(lock+"/owner")).Run(); err != nil {
		t.Fatal(err)
	}
	r = p.Run(t, prod, "env:production", "deploy:tag", "v0.1.1")
	if r.Err == nil || !strings.Contains(r.Out, "locked by alice@desk deploying v0.0.9") || !strings.Contains(r.Out, "no host was switched") {
		t.Errorf("deploy with a held lock: %v\n%s", r.Err, r.Out)
	}
	assertServing(t, p, "held lock", sha1)
	// The lock is fresh: without a terminal to ask on, deploy:unlock
	// refuses and says how to answer; MAGEFAB_YES=1 answers.
	r = p.Run(t, nil, "env:production", "deploy:unlock")
	if r.Err == nil || !strings.Contains(r.Out, "MAGEFAB_YES=1") {
		t.Errorf("unlock of a fresh lock without a terminal: %v\n%s", r.Err, r.Out)
	}
	r = p.MustRun(t, []string{"MAGEFAB_YES=1"}, "env:production", "deploy:unlock")
	if !strings.Contains(r.Out, "removed the lock held by alice@desk") {
		t.Errorf("unlock output:\n%s", r.Out)
	}

	// 8. A host down before the deploy: no host switches; a rerun, with
	// the host back, succeeds.
	victim := f.Hosts[2]
	f.Ctl(t, "stop", victim)
	r = p.Run(t, prod, "env:production", "deploy:tag", "v0.1.1")
	f.Ctl(t, "start", victim)
	if r.Err == nil || !strings.Contains(r.Out, victim) || !strings.Contains(r.Out, "connection refused") {
		t.Errorf("deploy with %s down: %v\n%s", victim, r.Err, r.Out)
	}
	for _, h := range f.Hosts[:2] {
		if v, _ := p.Version(f.Addr(t, h)); v != sha1 {
			t.Errorf("%s switched while %s was down: serves %s", h, victim, v)
		}
	}
	st := fleetState(t, f, p.Unit)
	for _, h := range f.Hosts[:2] {
		if strings.Contains(st[h], ".lock") {
			t.Errorf("%s left locked:\n%s", h, st[h])
		}
	}
	p.MustRun(t, prod, "env:production", "deploy:tag", "v0.1.1")
	assertServing(t, p, "rerun with every host up", sha2)
}
