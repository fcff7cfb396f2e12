package release_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
	"github.com/magefab/magefab/sshx/sshtest"
	"golang.org/x/crypto/ssh/agent"
)

// testFleet is n in-process SSH hosts, each with its own HOME holding the
// deploy tree, and a git repository whose bare remote they clone from.
type testFleet struct {
	repos
	homes   []string
	servers []*sshtest.Server
	config  string // the ssh_config that names the hosts
	pool    *sshx.Pool
	hosts   []sshx.Host
	out     syncBuffer
	opts    *release.Options
}

func newTestFleet(t *testing.T, n int, path string) *testFleet {
	t.Helper()
	f := &testFleet{repos: newRepos(t)}
	os.WriteFile(filepath.Join(f.clone, "requirements.txt"), []byte("# nothing to install\n"), 0o644)
	git(t, f.clone, "add", "requirements.txt")
	git(t, f.clone, "commit", "-q", "-m", "requirements")
	git(t, f.clone, "push", "-q", "origin", "master")

	var config bytes.Buffer
	for i := range n {
		home := t.TempDir()
		srv := sshtest.NewUnstartedServer()
		srv.Alias = fmt.Sprintf("h%d", i+1)
		srv.Dir = home
		// The host's script cache is in its HOME (XDG_CACHE_HOME, if this
		// machine's environment sets it, would make every host share one).
		srv.Env = append([]string{"HOME=" + home, "XDG_CACHE_HOME="}, path)
		srv.Start()
		t.Cleanup(srv.Close)
		files, err := srv.WriteClientFiles(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(files.ConfigFile)
		config.Write(b)
		f.homes = append(f.homes, home)
		f.servers = append(f.servers, srv)
	}
	f.config = filepath.Join(t.TempDir(), "ssh_config")
	os.WriteFile(f.config, config.Bytes(), 0o600)
	f.reconnect(t)
	f.opts = &release.Options{
		Layout:       release.Layout{Path: "app", ReleasesRoot: "releases", Dirs: [2]string{"a", "b"}, Current: "current", Virtualenv: "env"},
		SCM:          f.remote,
		Python:       testPython(),
		PipInstall:   []string{"pip", "install", "--no-index", "-q"},
		Requirements: []string{"requirements.txt"},
		Env:          []string{"DEPLOYMENT_TYPE=DEV"},
		Group:        "deploy",
		Restart:      `readlink "$HOME/app/releases/current" >> "$HOME/restarts"; [ ! -e "$HOME/fail-restart" ]`,
		Owner:        "tester@laptop",
		RunID:        "run-1",
		Console:      sshx.NewConsole(&f.out),
	}
	return f
}

// reconnect reaches the hosts through a new pool, as a new run of the
// deploying process does: what this process knew of them goes with the
// old one.
func (f *testFleet) reconnect(t *testing.T) {
	t.Helper()
	pool, err := sshx.NewPool(sshx.Config{ConfigFile: f.config, Agent: agent.NewKeyring().(agent.ExtendedAgent)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	f.pool, f.hosts = pool, nil
	for i := range f.servers {
		h, _ := pool.Host(fmt.Sprintf("h%d", i+1))
		f.hosts = append(f.hosts, h)
	}
}

func (f *testFleet) fleet() *release.Fleet {
	return &release.Fleet{Hosts: f.hosts, Options: f.opts, Parallel: 2, PrepareTimeout: time.Minute, SwitchTimeout: 30 * time.Second}
}

// tag commits, tags and pushes a release.
func (f *testFleet) tag(t *testing.T, name string) release.Target {
	t.Helper()
	sha := commit(t, f.clone, "release "+name)
	git(t, f.clone, "tag", "-a", "-m", name, name)
	git(t, f.clone, "push", "-q", "origin", "master", name)
	return release.Target{Name: name, SHA: sha, Tag: name}
}

func (f *testFleet) root(i int) string { return filepath.Join(f.homes[i], "app", "releases") }

// current returns where current points on host i.
func (f *testFleet) current(t *testing.T, i int) string {
	t.Helper()
	l, err := os.Readlink(filepath.Join(f.root(i), "current"))
	if err != nil {
		return ""
	}
	return l
}

func (f *testFleet) sessions() []int64 {
	var s []int64
	for _, h := range f.hosts {
		s = append(s, h.(*sshx.Remote).Stats().Sessions)
	}
	return s
}

func (f *testFleet) assertAll(t *testing.T, what string, dir, sha string) {
	t.Helper()
	for i := range f.hosts {
		if got := f.current(t, i); got != dir {
			t.Errorf("%s: h%d current -> %q, want %q", what, i+1, got, dir)
		}
		if sha != "" {
			// A release dir's HEAD is the detached commit, which the
			// scripts read without starting git.
			head, _ := os.ReadFile(filepath.Join(f.root(i), dir, ".git", "HEAD"))
			if strings.TrimSpace(string(head)) != sha {
				t.Errorf("%s: h%d %s/.git/HEAD is %q, want %s", what, i+1, dir, head, sha)
			}
		}
		if _, err := os.Stat(filepath.Join(f.root(i), ".lock")); err == nil {
			t.Errorf("%s: h%d still locked", what, i+1)
		}
	}
}

// sessionsUsed runs fn and returns the most sessions any host used.
func (f *testFleet) sessionsUsed(fn func()) int64 {
	before := f.sessions()
	fn()
	var most int64
	for i, s := range f.sessions() {
		most = max(most, s-before[i])
	}
	return most
}

func TestDeployRedeployRollback(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 3, "")
	ctx := context.Background()
	fl := f.fleet()

	v1 := f.tag(t, "v0.1.0")
	var res []release.HostResult
	var err error
	n := f.sessionsUsed(func() { res, err = fl.Deploy(ctx, v1) })
	if err != nil {
		t.Fatalf("first deploy: %v\n%s", err, f.out.String())
	}
	f.assertAll(t, "first deploy", "a", v1.SHA)
	if len(res) != 3 || res[0].Dir != "a" || res[0].Release != "v0.1.0" || !res[0].Installed {
		t.Errorf("results %+v", res)
	}
	// Prepare and switch, and for each a session that stores its
	// script, new to the host (see scriptcache.go).
	if n != 4 {
		t.Errorf("first deploy used %d sessions on a host, want 4: 2, and 2 that store the scripts", n)
	}
	for i := range f.hosts {
		for _, d := range []string{"a", "b"} {
			if _, err := os.Stat(filepath.Join(f.root(i), d, ".git")); err != nil {
				t.Errorf("h%d: %s not bootstrapped: %v", i+1, d, err)
			}
		}
	}

	v2 := f.tag(t, "v0.2.0")
	n = f.sessionsUsed(func() { _, err = fl.Deploy(ctx, v2) })
	if err != nil {
		t.Fatalf("second deploy: %v\n%s", err, f.out.String())
	}
	f.assertAll(t, "second deploy", "b", v2.SHA)
	if n != 2 {
		t.Errorf("second deploy used %d sessions on a host, want 2 (the hosts hold the scripts)", n)
	}

	// A new commit with the same requirements: the stamp in a matches.
	v3 := f.tag(t, "v0.3.0")
	n = f.sessionsUsed(func() { res, err = fl.Deploy(ctx, v3) })
	if err != nil {
		t.Fatal(err)
	}
	f.assertAll(t, "third deploy", "a", v3.SHA)
	if res[0].Installed || res[0].Reused {
		t.Errorf("third deploy: installed=%v reused=%v, want neither (stamp matches)", res[0].Installed, res[0].Reused)
	}
	if n > 4 {
		t.Errorf("deploy of a new release used %d sessions, want at most 4", n)
	}

	// The live release again: the dir is reused as it is.
	os.WriteFile(filepath.Join(f.root(0), "a", "local-change"), []byte("kept"), 0o644)
	n = f.sessionsUsed(func() { res, err = fl.Deploy(ctx, v3) })
	if err != nil {
		t.Fatal(err)
	}
	f.assertAll(t, "redeploy", "a", v3.SHA)
	if !res[0].Reused {
		t.Errorf("redeploy did not reuse the dir: %+v", res[0])
	}
	if _, err := os.Stat(filepath.Join(f.root(0), "a", "local-change")); err != nil {
		t.Errorf("redeploy reset the reused dir: %v", err)
	}
	if n > 3 {
		t.Errorf("redeploy used %d sessions, want at most 3", n)
	}

	n = f.sessionsUsed(func() { res, err = fl.Rollback(ctx) })
	if err != nil {
		t.Fatalf("rollback: %v\n%s", err, f.out.String())
	}
	f.assertAll(t, "rollback", "b", v2.SHA)
	if res[0].Release != "v0.2.0" {
		t.Errorf("rollback result %+v, want v0.2.0", res[0])
	}
	// Its check's script is new to the hosts: a session stores it.
	if n > 3 {
		t.Errorf("rollback used %d sessions, want at most 3: 2, and one that stores a script", n)
	}

	restarts, _ := os.ReadFile(filepath.Join(f.homes[0], "restarts"))
	if got, want := strings.Fields(string(restarts)), []string{"a", "b", "a", "a", "b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("restarts saw current -> %v, want %v", got, want)
	}
	log, _ := os.ReadFile(filepath.Join(f.root(0), "revisions.log"))
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "\ttester@laptop\tv0.1.0\t"+v1.SHA+"\ta\tdeploy") ||
		!strings.Contains(lines[4], "\tv0.2.0\t"+v2.SHA+"\tb\trollback") {
		t.Errorf("revisions.log:\n%s", log)
	}
	st := fl.Status(ctx, 2)
	if st[0].Err != nil || st[0].State.Current != "b" || len(st[0].LogTail) != 2 || st[0].Lock != "" {
		t.Errorf("status %+v", st[0])
	}
	if d, _ := st[0].State.Dir("a"); d.Describe != "v0.3.0" || d.Head != v3.SHA || d.Stamp == "" {
		t.Errorf("status of a: %+v", d)
	}
	f.assertOneConnection(t)
}

// assertOneConnection checks that every host was reached over one SSH
// connection for the whole test: each step opens sessions on it.
func (f *testFleet) assertOneConnection(t *testing.T) {
	t.Helper()
	for i, h := range f.hosts {
		if c := h.(*sshx.Remote).Stats().Connections; c != 1 {
			t.Errorf("h%d: %d SSH connections, want 1", i+1, c)
		}
		if c := f.servers[i].Stats().Connections; c != 1 {
			t.Errorf("h%d's server accepted %d connections, want 1", i+1, c)
		}
	}
}

func TestReinstallForcesTheInstallOnARedeploy(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	ctx := context.Background()
	// An install command that only counts its runs.
	f.opts.PipInstall = []string{"sh", "-c", `echo installed >> "$HOME/installs"`}
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	for _, c := range []struct {
		name              string
		reinstall         bool
		installed, reused bool
		installs          string
	}{
		{"first deploy", false, true, false, "installed\n"},
		{"redeploy", false, false, true, "installed\n"},
		{"redeploy with Reinstall", true, true, true, "installed\ninstalled\n"},
		{"redeploy after that", false, false, true, "installed\ninstalled\n"},
	} {
		f.opts.Reinstall = c.reinstall
		res, err := fl.Deploy(ctx, v1)
		if err != nil {
			t.Fatalf("%s: %v\n%s", c.name, err, f.out.String())
		}
		for i, r := range res {
			if r.Installed != c.installed || r.Reused != c.reused {
				t.Errorf("%s: h%d installed=%v reused=%v, want %v, %v", c.name, i+1, r.Installed, r.Reused, c.installed, c.reused)
			}
			if got := readFile(t, filepath.Join(f.homes[i], "installs")); got != c.installs {
				t.Errorf("%s: h%d installs %q, want %q", c.name, i+1, got, c.installs)
			}
		}
	}
	f.assertAll(t, "after the redeploys", "a", v1.SHA)
	f.assertOneConnection(t)
}

func TestPrepareFailureSwitchesNothing(t *testing.T) {
	t.Parallel()
	// On h2, git fetch fails.
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "git"), []byte("#!/bin/sh\nif [ \"$1\" = fetch ] && [ -e \"$HOME/break-fetch\" ]; then echo 'fatal: could not read from remote repository' >&2; exit 128; fi\nexec /usr/bin/git \"$@\"\n"), 0o755)
	f := newTestFleet(t, 3, "PATH="+bin+":"+os.Getenv("PATH"))
	ctx := context.Background()
	f.opts.Requirements = nil // no pip run: this test is about the fleet
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	os.WriteFile(filepath.Join(f.homes[1], "break-fetch"), nil, 0o644)
	v2 := f.tag(t, "v0.2.0")
	_, err := fl.Deploy(ctx, v2)
	if err == nil {
		t.Fatal("deploy succeeded with a failing fetch on h2")
	}
	for _, want := range []string{"no host was switched", "h2", "git fetch in", "failed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	var he *sshx.HostError
	if !errors.As(err, &he) || he.Host != "h2" {
		t.Errorf("errors.As HostError = %+v", he)
	}
	f.assertAll(t, "after failed prepare", "a", v1.SHA)
	// A rerun succeeds once the host is mended.
	os.Remove(filepath.Join(f.homes[1], "break-fetch"))
	if _, err := fl.Deploy(ctx, v2); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	f.assertAll(t, "rerun", "b", v2.SHA)
}

func TestCurrentPointingElsewhereIsRefused(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	ctx := context.Background()
	f.opts.Requirements = nil
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	// Someone pointed h2's current at a name that spells a command.
	pwned := filepath.Join(t.TempDir(), "pwned")
	cur := filepath.Join(f.root(1), "current")
	os.Remove(cur)
	if err := os.Symlink("a$(touch "+pwned+")", cur); err != nil {
		t.Fatal(err)
	}
	_, err := fl.Deploy(ctx, f.tag(t, "v0.2.0"))
	if err == nil || !strings.Contains(err.Error(), "not one of the release dirs") || !strings.Contains(err.Error(), "no host was switched") {
		t.Fatalf("deploy with a foreign current link: %v", err)
	}
	_, err = fl.Rollback(ctx)
	if err == nil || !strings.Contains(err.Error(), "not one of the release dirs") || !strings.Contains(err.Error(), "no host was rolled back") {
		t.Errorf("rollback with a foreign current link: %v", err)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Errorf("the link's name ran as a command")
	}
	if got := f.current(t, 0); got != "a" {
		t.Errorf("h1 switched to %s", got)
	}
	for i := range 2 {
		if _, err := os.Stat(filepath.Join(f.root(i), ".lock")); err == nil {
			t.Errorf("h%d left locked", i+1)
		}
	}
}

func TestSwitchTimeoutOnOneHostPutsEveryHostBack(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	ctx := context.Background()
	f.opts.Requirements = nil
	// h2's app hangs when it restarts with b.
	f.opts.Restart = `cur=$(readlink "$HOME/app/releases/current"); echo "$cur" >> "$HOME/restarts"; if [ -e "$HOME/hang" ] && [ "$cur" = b ]; then sleep 60; fi`
	fl := f.fleet()
	fl.SwitchTimeout = 3 * time.Second
	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	os.WriteFile(filepath.Join(f.homes[1], "hang"), nil, 0o644)
	_, err := fl.Deploy(ctx, f.tag(t, "v0.2.0"))
	if err == nil || !strings.Contains(err.Error(), "switch timed out") || !strings.Contains(err.Error(), "h1: v0.1.0 in a (the previous release: switched back)") {
		t.Fatalf("deploy with a restart hanging on h2: %v", err)
	}
	// h2 went back to a by itself when its switch was stopped, restarted
	// the app with a, and released the lock; then the run, which could not
	// know what h2 serves, switched it back again (in place).
	if !strings.Contains(err.Error(), "h2: v0.1.0 in a (the previous release: its switch failed and it was switched back)") {
		t.Errorf("error does not say h2 serves v0.1.0:\n%v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		restarts, _ := os.ReadFile(filepath.Join(f.homes[1], "restarts"))
		_, locked := os.Stat(filepath.Join(f.root(1), ".lock"))
		if f.current(t, 1) == "a" && strings.HasSuffix(string(restarts), "b\na\na\n") && locked != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h2: current -> %s, restarts %q, lock: %v", f.current(t, 1), restarts, locked == nil)
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.assertAll(t, "after the timeout", "a", v1.SHA)
	log, _ := os.ReadFile(filepath.Join(f.root(1), "revisions.log"))
	if !strings.Contains(string(log), "\tv0.1.0\t"+v1.SHA+"\ta\tswitched back: interrupted during the restart\n") {
		t.Errorf("h2's log does not tell the switch back:\n%s", log)
	}
}

func TestLockHeldRefusesAndReleasesOthers(t *testing.T) {
	t.Parallel()
	// A sleep that notes each of its runs in $HOME/sleeps: a deploy's lock
	// script sleeps while it waits for a held lock.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	f := newTestFleet(t, 3, fakeBin(t, map[string]string{"sleep": `#!/bin/sh
printf '%s\n' "$*" >> "$HOME/sleeps"
exec ` + sshx.Quote(sleep) + ` "$@"
`}))
	ctx := context.Background()
	f.opts.Requirements = nil // no pip run: this test is about the fleet
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	lock := filepath.Join(f.root(2), ".lock")
	os.Mkdir(lock, 0o755)
	os.WriteFile(filepath.Join(lock, "owner"), []byte("alice@desk deploying v0.0.9\n"), 0o644)
	v2 := f.tag(t, "v0.2.0")
	_, err = fl.Deploy(ctx, v2)
	var le *release.LockedError
	if !errors.As(err, &le) || le.Host != "h3" || le.Owner != "alice@desk deploying v0.0.9" || le.Stale {
		t.Fatalf("err = %v, want h3 locked by alice", err)
	}
	if !strings.Contains(err.Error(), "LockWait") || !strings.Contains(err.Error(), "ForceUnlock") {
		t.Errorf("message %q does not say what to do", err)
	}
	for i := range 2 {
		if _, err := os.Stat(filepath.Join(f.root(i), ".lock")); err == nil {
			t.Errorf("h%d left locked", i+1)
		}
		if f.current(t, i) != "a" {
			t.Errorf("h%d switched", i+1)
		}
	}
	if _, err := os.Stat(lock); err != nil {
		t.Errorf("alice's lock was removed: %v", err)
	}

	// The time in the lock counts, not its dir's mtime; and its
	// heartbeat counts over its time: a fresh lock is refused.
	old := time.Now().Add(-3 * time.Hour)
	os.WriteFile(filepath.Join(lock, "since"), []byte(fmt.Sprintln(time.Now().Unix())), 0o644)
	os.Chtimes(lock, old, old)
	if _, err = fl.Deploy(ctx, v2); !errors.As(err, &le) || le.Stale || time.Since(le.Since) > time.Minute {
		t.Errorf("err = %v, want a fresh lock (its since file)", err)
	}
	os.WriteFile(filepath.Join(lock, "since"), []byte(fmt.Sprintln(old.Unix())), 0o644)
	os.WriteFile(filepath.Join(lock, "beat"), []byte(fmt.Sprintln(time.Now().Unix())), 0o644)
	if _, err = fl.Deploy(ctx, v2); !errors.As(err, &le) || le.Stale || le.Since.Unix() != old.Unix() || time.Since(le.Beat) > time.Minute {
		t.Errorf("err = %v, want a fresh lock (its beat file)", err)
	}

	// A lock whose lease expired is taken over, and the run says so. A
	// lock without its heartbeat (from an older magefab, or by hand) is
	// as old as its time, and one without its time as old as its dir.
	os.Remove(filepath.Join(lock, "beat"))
	os.Remove(filepath.Join(lock, "since"))
	os.Chtimes(lock, old, old)
	if _, err = fl.Deploy(ctx, v2); err != nil {
		t.Fatalf("deploy over an expired lock: %v\n%s", err, f.out.String())
	}
	if !strings.Contains(f.out.String(), "took over the lock of alice@desk deploying v0.0.9, silent for 3h0m") {
		t.Errorf("the takeover was not said:\n%s", f.out.String())
	}
	f.assertAll(t, "after the takeover", "b", v2.SHA)
	os.Mkdir(lock, 0o755)
	os.WriteFile(filepath.Join(lock, "owner"), []byte("alice@desk deploying v0.0.9\n"), 0o644)

	// Waiting for a lock that is released meanwhile succeeds. The lock
	// goes once h3's script has begun to wait for it, however long the
	// deploy takes to get there (the wait is a minute, the lock goes at
	// once). The lock this deploy takes holds who, what and when.
	f.opts.LockWait = time.Minute
	sleeps := filepath.Join(f.homes[2], "sleeps")
	os.Remove(sleeps)
	waited := make(chan bool, 1)
	go func() {
		saw := false
		for deadline := time.Now().Add(30 * time.Second); !saw && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			b, _ := os.ReadFile(sleeps)
			saw = len(b) > 0
		}
		os.RemoveAll(lock)
		waited <- saw
	}()
	var inLock map[string]string
	fl.PerHost = func(ctx context.Context, p *release.Prepared) error {
		if p.Host.Name() == "h3" {
			inLock = map[string]string{}
			for _, name := range []string{"owner", "release", "since", "id"} {
				b, _ := os.ReadFile(filepath.Join(lock, name))
				inLock[name] = strings.TrimSpace(string(b))
			}
		}
		return nil
	}
	start := time.Now().Unix()
	if _, err := fl.Deploy(ctx, v2); err != nil {
		t.Fatalf("deploy waiting for the lock: %v", err)
	}
	if !<-waited {
		t.Errorf("h3's deploy did not wait for the lock (it ran no sleep within 30s)")
	}
	fl.PerHost = nil
	f.assertAll(t, "after waiting", "b", v2.SHA)
	if since, _ := strconv.ParseInt(inLock["since"], 10, 64); inLock["owner"] != "tester@laptop deploying v0.2.0" || inLock["release"] != "v0.2.0" ||
		inLock["id"] != "run-1" || since < start || since > time.Now().Unix() {
		t.Errorf("the lock held %q", inLock)
	}

	// ForceUnlock clears someone else's lock and says whose it was.
	os.Mkdir(lock, 0o755)
	os.WriteFile(filepath.Join(lock, "owner"), []byte("bob@ci deploying v9\n"), 0o644)
	held, err := release.ForceUnlock(ctx, f.hosts[2], f.opts)
	if err != nil || !strings.Contains(held, "bob@ci") {
		t.Errorf("ForceUnlock = %q, %v", held, err)
	}
	if _, err := os.Stat(lock); err == nil {
		t.Errorf("lock still there")
	}
}

func TestRestartFailureSwitchesTheFleetBack(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 3, "")
	ctx := context.Background()
	f.opts.Requirements = nil // no pip run: this test is about the fleet
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	// h2's app cannot start with v0.2.0.
	os.WriteFile(filepath.Join(f.homes[1], "fail-restart"), nil, 0o644)
	v2 := f.tag(t, "v0.2.0")
	_, err := fl.Deploy(ctx, v2)
	if err == nil {
		t.Fatal("deploy succeeded though h2 failed to restart")
	}
	for _, want := range []string{"every host that had switched was switched back", "h1: v0.1.0 in a (the previous release: switched back)", "h3: v0.1.0 in a (the previous release: switched back)",
		"h2: v0.1.0 in a (the previous release: its switch failed and it was switched back, but the app did not restart)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// h2's restart failed with a too (its script exited 77): it is down,
	// but on the release of the others, so the fleet is not split.
	var se *release.SwitchError
	if !errors.As(err, &se) || se.Host != "h2" || !se.Down || se.Serving != "a" {
		t.Errorf("errors.As SwitchError = %+v", se)
	}
	var split *release.SplitError
	if errors.As(err, &split) {
		t.Errorf("the fleet is on one release, yet the error is a SplitError")
	}
	f.assertAll(t, "after compensation", "a", v1.SHA)
	log, _ := os.ReadFile(filepath.Join(f.root(0), "revisions.log"))
	if !strings.Contains(string(log), "switched back: v0.2.0 failed") {
		t.Errorf("h1 log lacks the switch back:\n%s", log)
	}
	// h2 switched back by itself: its log names what a holds, v0.1.0.
	log, _ = os.ReadFile(filepath.Join(f.root(1), "revisions.log"))
	if !strings.Contains(string(log), "\tv0.1.0\t"+v1.SHA+"\ta\tswitched back: restart failed\n") {
		t.Errorf("h2 log does not say it went back to v0.1.0 in a:\n%s", log)
	}
}

func TestCancelDuringPrepareReleasesLocks(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	f.opts.PipInstall = []string{"sh", "-c", "sleep 300"}
	ctx, cancel := context.WithCancel(context.Background())
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	go func() {
		for !strings.Contains(f.outString(), "installing requirements") {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	_, err := fl.Deploy(ctx, v1)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	// Uncancelled, the install would take 300s: a deploy that stops
	// within a third of that did not wait for it, however loaded the
	// machine is (stopping and unlocking take seconds at most).
	if d := time.Since(start); d > 100*time.Second {
		t.Errorf("deploy took %s to stop", d)
	}
	for i := range f.hosts {
		if _, err := os.Stat(filepath.Join(f.root(i), ".lock")); err == nil {
			t.Errorf("h%d still locked after cancel", i+1)
		}
		if f.current(t, i) != "" {
			t.Errorf("h%d switched after cancel", i+1)
		}
	}
}

func (f *testFleet) outString() string { return f.out.String() }

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	ctx := context.Background()
	f.opts.Requirements = nil // no pip run: this test is about the fleet
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	plans, err := fl.DryRun(ctx, v1)
	if err != nil {
		t.Fatal(err)
	}
	if !plans[0].Bootstrap || plans[0].Dir != "a" {
		t.Errorf("plan %+v", plans[0])
	}
	if _, err := os.Stat(filepath.Join(f.homes[0], "app")); err == nil {
		t.Errorf("dry run created the deploy root")
	}
	f.mustDeploy(t, fl, v1)
	v2 := f.tag(t, "v0.2.0")
	plans, _ = fl.DryRun(ctx, v2)
	if plans[1].Dir != "b" || plans[1].Reuse || plans[1].Current != "a" || !strings.Contains(strings.Join(plans[1].Steps, "\n"), "git checkout -f --detach "+v2.SHA) {
		t.Errorf("plan %+v", plans[1])
	}
	f.assertAll(t, "after dry run", "a", v1.SHA)
}

// syncBuffer is a buffer the console writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testPython prefers the system interpreter: it starts faster than a
// version manager's shim.
func testPython() string {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	return "python3"
}

func TestOrphanedLockOfADeadLocalRunIsTakenOver(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	f.opts.Requirements = nil
	ctx := context.Background()
	fl := f.fleet()
	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	dead := exec.Command("true")
	dead.Run()
	host, _ := os.Hostname()
	lock := filepath.Join(f.root(1), ".lock")
	write := func(holder string) {
		os.RemoveAll(lock)
		os.Mkdir(lock, 0o755)
		os.WriteFile(filepath.Join(lock, "owner"), []byte("tester@laptop deploying v0.0.9\n"), 0o644)
		os.WriteFile(filepath.Join(lock, "id"), []byte("old-run\n"), 0o644)
		os.WriteFile(filepath.Join(lock, "holder"), []byte(holder+"\n"), 0o644)
	}
	// Held by a run of another machine, or by a live process here: refused.
	for _, holder := range []string{"elsewhere " + fmt.Sprint(dead.Process.Pid), host + " " + fmt.Sprint(os.Getppid())} {
		write(holder)
		var le *release.LockedError
		if _, err := fl.Deploy(ctx, f.tag(t, "v0.1.1-"+strings.Fields(holder)[0])); !errors.As(err, &le) {
			t.Errorf("lock held by %q: err = %v, want refused", holder, err)
		}
	}
	// Held by a process of this machine that has exited: taken over.
	write(host + " " + fmt.Sprint(dead.Process.Pid))
	v2 := f.tag(t, "v0.2.0")
	if _, err := fl.Deploy(ctx, v2); err != nil {
		t.Fatalf("deploy over an orphaned lock: %v\n%s", err, f.out.String())
	}
	f.assertAll(t, "after taking over an orphaned lock", "b", v2.SHA)
	if !strings.Contains(f.out.String(), "removed an orphaned lock") {
		t.Errorf("the takeover was not reported:\n%s", f.out.String())
	}
}

func TestRollbackRefusesAReleaseThatNeverWentLive(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	ctx := context.Background()
	f.opts.Requirements = nil
	f.opts.Restart = recordingRestart
	fl := f.fleet()
	v1, v2 := f.tag(t, "v0.1.0"), f.tag(t, "v0.2.0")
	for _, v := range []release.Target{v1, v2} {
		if _, err := fl.Deploy(ctx, v); err != nil {
			t.Fatalf("%v\n%s", err, f.out.String())
		}
	}
	refused := func(what string) {
		t.Helper()
		const want = "/a holds v0.3.0, which never went live there"
		const instead = "to go back to v0.1.0, the release live before, deploy it instead"
		_, err := fl.Rollback(ctx)
		var nl *release.NeverLiveError
		if !errors.Is(err, release.ErrNoPreviousRelease) || !strings.Contains(err.Error(), "no host was rolled back") || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), instead) {
			t.Errorf("%s: rollback: %v", what, err)
		} else if !errors.As(err, &nl) || nl.Release.Name != "v0.3.0" || nl.Before != (release.Target{Name: "v0.1.0", SHA: v1.SHA, Tag: "v0.1.0"}) {
			t.Errorf("%s: rollback: %v: NeverLiveError %+v, want v0.3.0 refused and v0.1.0 (tagged) to deploy instead", what, err, nl)
		}
		plans, err := fl.RollbackPlan(ctx)
		if err == nil || len(plans) != 2 || plans[0].Err == nil || !strings.Contains(plans[0].Err.Error(), want) {
			t.Errorf("%s: rollback dry run: %v %+v", what, err, plans)
		}
		f.assertAll(t, what, "b", v2.SHA)
	}

	// v0.3.0 is prepared in a on every host, then its migrations fail.
	v3 := f.tag(t, "v0.3.0")
	fl.AfterPrepare = func(context.Context, []*release.Prepared) error { return errors.New("migrations failed") }
	if _, err := fl.Deploy(ctx, v3); err == nil {
		t.Fatal("deploy succeeded")
	}
	fl.AfterPrepare = nil
	refused("after failed migrations")

	// v0.3.0 switches on h1, but h2's app does not restart with it: both
	// are switched back, and revisions.log tells so.
	os.WriteFile(filepath.Join(f.homes[1], "fail-restart-a"), nil, 0o644)
	if _, err := fl.Deploy(ctx, v3); err == nil {
		t.Fatal("deploy succeeded")
	}
	refused("after a failed switch")

	// Once v0.3.0 went live, rolling back from it is to v0.2.0.
	os.Remove(filepath.Join(f.homes[1], "fail-restart-a"))
	f.mustDeploy(t, fl, v3)
	if _, err := fl.Rollback(ctx); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	f.assertAll(t, "rollback", "b", v2.SHA)
	// And from v0.2.0 back to v0.3.0, which was live.
	if _, err := fl.Rollback(ctx); err != nil {
		t.Fatalf("second rollback: %v", err)
	}
	f.assertAll(t, "second rollback", "a", v3.SHA)
}
