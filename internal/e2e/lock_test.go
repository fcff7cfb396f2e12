package e2e_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/sshx"
)

// The deploy lock under fire: SIGKILL and SIGTERM to the whole mage
// process group (as a CI runner cancelling a job sends them) while it
// waits for the lock, prepares, switches while one host restarts slowly,
// and verifies; then the next deploy from this machine or from another
// one, and a deploy to a host whose deploy tree was wiped. Each case ends
// with every host serving one release, no lock left, and nothing of the
// killed run left running on a host (it could remove a later run's lock).

// lockLease is the lease of every run here: short, so that the lock of a
// dead run expires within the test.
const lockLease = 10 * time.Second

// otherMachine is the hostname of the runs from another machine.
const otherMachine = "other-runner"

func TestLockUnderSignals(t *testing.T) {
	t.Parallel()
	r := newLockRig(t)
	for _, c := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"KillWhileWaitingAndDuringPrepare", func(t *testing.T) { r.waitAndPrepare(t, syscall.SIGKILL) }},
		{"TermWhileWaitingAndDuringPrepare", func(t *testing.T) { r.waitAndPrepare(t, syscall.SIGTERM) }},
		{"KillDuringTheSwitchThenRerunThenWipedHost", r.killDuringSwitch},
		{"TermDuringTheSwitch", r.termDuringSwitch},
		{"DetachedPartRunsWhenTheNextDeployStarts", r.detachedStillRunning},
		{"KillDuringTheVerify", func(t *testing.T) { r.duringVerify(t, syscall.SIGKILL) }},
		{"TermDuringTheVerify", func(t *testing.T) { r.duringVerify(t, syscall.SIGTERM) }},
	} {
		start := time.Now()
		t.Run(c.name, func(t *testing.T) {
			r.settle(t)
			c.run(t)
			r.quiet(t, "after the case", 20*time.Second)
		})
		t.Logf("%s took %.1fs", c.name, time.Since(start).Seconds())
	}
}

// lockRig is one deployed project that the cases share: each starts from
// a fleet that serves one release, unlocked (settle).
type lockRig struct {
	f      fleettest.Fleet
	p      *e2e.Project
	here   string // this machine's hostname
	user   string // who runs the tests
	initd  string
	root   string // the releases root on each host
	verify *slowVerify
	n      int    // releases made
	last   string // the tag last made
}

func newLockRig(t *testing.T) *lockRig {
	f := fleettest.Require(t, 3)
	fleettest.RequireTool(t, "unshare", "util-linux")
	here, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if here == otherMachine {
		t.Fatalf("this machine is called %s, the name the tests give another machine", here)
	}
	v := &slowVerify{addr: map[string]string{}}
	for _, h := range f.Hosts {
		v.addr[h] = f.Addr(t, h)
	}
	srv := httptest.NewServer(v)
	t.Cleanup(func() { v.release(); srv.Close() })
	p := e2e.NewProjectWith(t, f, f.Hosts,
		fmt.Sprintf(`PackageInstallScripts: []string{"scripts/slow-install"}, VersionURL: %q,`, srv.URL+"/{{.Host}}/version"),
		"", map[string]string{"scripts/slow-install": slowInstall})
	v.p = p
	r := &lockRig{f: f, p: p, here: here, user: u.Username, initd: "/etc/init.d/" + p.Unit, root: "/var/webapps/" + p.Unit + "/releases", verify: v}

	// Every restart on a host holding <Path>/slow-any sleeps that many
	// seconds first, whatever release it starts: the switch back of an
	// interrupted switch too.
	init := e2e.InitScript(p.Unit, p.Port, e2e.AppStart, "/version", "")
	hook := "start() {\n"
	if !strings.Contains(init, hook) {
		t.Fatalf("the test app's init script has no %q", hook)
	}
	init = strings.Replace(init, hook, hook+`  if [ -e "$ROOT/slow-any" ]; then read -r anysecs <"$ROOT/slow-any"; sleep "$anysecs"; fi`+"\n", 1)
	if err := os.WriteFile(r.initd, []byte(init), 0o755); err != nil {
		t.Fatal(err)
	}

	// The restart runs under sudo with use_pty, as on Debian: a signal
	// to the switch's process group does not reach it.
	for _, h := range f.Hosts {
		out, err := onHost(t, f, h, "sudo -n -l", false)
		if err != nil || !strings.Contains(out, "use_pty") {
			t.Fatalf("%s: sudo must run with `Defaults use_pty` (the fleet's sudoers): %v\n%s", h, err, out)
		}
	}

	p.Tag(t, "v0.1.0")
	r.last = "v0.1.0"
	p.MustRun(t, r.env("setup"), "env:production", "deploy:tag", "v0.1.0")
	return r
}

// env is the environment of a run by who (the lock's owner is who@machine).
func (r *lockRig) env(who string, extra ...string) []string {
	env := []string{"MAGEFAB_SKIP_TESTS=1", "MAGEFAB_LOCK_LEASE=" + lockLease.String(),
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=user.name", "GIT_CONFIG_VALUE_0=" + who}
	return append(env, extra...)
}

// start starts mage (in its own process group) on machine ("" is this
// one); the group is killed when the test ends if it still runs.
func (r *lockRig) start(t *testing.T, machine, who string, extra []string, args ...string) (*exec.Cmd, *sshx.SyncWriter) {
	t.Helper()
	cmd, out := r.p.StartOn(t, machine, r.env(who, extra...), args...)
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return cmd, out
}

// release makes the next release, a new requirements file if
// requirements (so that the install scripts run), and tags it.
func (r *lockRig) release(t *testing.T, requirements bool) (tag, sha string) {
	t.Helper()
	r.n++
	tag = fmt.Sprintf("v0.2.%d", r.n)
	if requirements {
		sha = r.p.AddFiles(t, tag, map[string]string{"requirements.txt": "magefab-testdep==1.0\n# " + tag + "\n"})
	} else {
		sha = r.p.Commit(t, tag)
	}
	r.p.Tag(t, tag)
	r.last = tag
	return tag, sha
}

// settle brings the fleet back to one release everywhere, unlocked, with
// no host marked slow: after a case that passed, that is only the markers
// (and a wait for the lease of anything left); after one that failed, an
// unlock and a deploy.
func (r *lockRig) settle(t *testing.T) {
	t.Helper()
	r.verify.release()
	// What a failed case left is reported there (quiet, noLockLeft);
	// here it goes, so that the next case starts clean: processes of this
	// test's unit still running, and locks renamed aside.
	if _, ok := waitUntil(lockLease+10*time.Second, func() bool { return len(processesWith(r.p.Unit)) == 0 }); !ok {
		for _, l := range processesWith(r.p.Unit) {
			pid, _, _ := strings.Cut(l, ":")
			if n, err := strconv.Atoi(pid); err == nil {
				syscall.Kill(n, syscall.SIGKILL)
			}
		}
		t.Logf("killed what a case before left running on the hosts")
	}
	for _, h := range r.f.Hosts {
		d := r.hostPath(t, h, "/..")
		for _, m := range []string{"slow", "slow-restart", "slow-any"} {
			os.Remove(filepath.Join(d, m))
		}
		for _, l := range r.lockLeftovers(h) {
			if l != ".lock" {
				os.RemoveAll(r.hostPath(t, h, "/"+l))
			}
		}
	}
	_, gone := r.locksGoneWithin(t, lockLease+10*time.Second)
	uniform := true
	var first string
	for _, v := range serving(t, r.p) {
		if first == "" {
			first = v
		}
		uniform = uniform && v == first && !strings.HasPrefix(v, "error")
	}
	if gone && uniform {
		return
	}
	t.Logf("restoring the fleet (locks gone: %v, serving: %v)", gone, serving(t, r.p))
	r.p.Run(t, r.env("restore", "MAGEFAB_YES=1"), "env:production", "deploy:unlock")
	r.p.MustRun(t, r.env("restore", "MAGEFAB_LOCK_WAIT=60s"), "env:production", "deploy:tag", r.last)
}

// hostPath is path under the releases root of host as this machine sees
// it: each host's /var/webapps is a mount of its own namespace, reached
// through the root of its sshd's process.
func (r *lockRig) hostPath(t *testing.T, host, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.f.Dir, host, "pid"))
	if err != nil {
		t.Fatalf("%s: %v", host, err)
	}
	return "/proc/" + strings.TrimSpace(string(b)) + "/root" + r.root + path
}

// lockOn returns the files of the lock on host, nil when there is none.
func (r *lockRig) lockOn(t *testing.T, host string) map[string]string {
	t.Helper()
	dir := r.hostPath(t, host, "/.lock")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	l := map[string]string{}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		l[e.Name()] = strings.TrimSpace(string(b))
	}
	return l
}

// lockLeftovers lists what is left of locks on host: the lock, or a lock
// renamed aside (.lock.*).
func (r *lockRig) lockLeftovers(host string) []string {
	b, err := os.ReadFile(filepath.Join(r.f.Dir, host, "pid"))
	if err != nil {
		return []string{"unknown: " + err.Error()}
	}
	ents, _ := os.ReadDir("/proc/" + strings.TrimSpace(string(b)) + "/root" + r.root)
	var left []string
	for _, e := range ents {
		if e.Name() == ".lock" || strings.HasPrefix(e.Name(), ".lock.") {
			left = append(left, e.Name())
		}
	}
	return left
}

// locked reports whether host has a lock (not counting what lockLeftovers
// also lists).
func (r *lockRig) locked(t *testing.T, host string) bool {
	_, err := os.Stat(r.hostPath(t, host, "/.lock"))
	return err == nil
}

// locksGoneWithin waits until no host has a lock, and returns when it saw
// that, and whether it did within d.
func (r *lockRig) locksGoneWithin(t *testing.T, d time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(d)
	for {
		now := time.Now()
		left := false
		for _, h := range r.f.Hosts {
			left = left || r.locked(t, h)
		}
		if !left {
			return now, true
		}
		if now.After(deadline) {
			return now, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noLockLeft fails the test for any lock left on a host.
func (r *lockRig) noLockLeft(t *testing.T, what string) {
	t.Helper()
	for _, h := range r.f.Hosts {
		if left := r.lockLeftovers(h); len(left) > 0 {
			t.Errorf("%s: %s has %v left: %v", what, h, left, r.lockOn(t, h))
		}
	}
}

// lockedByOneRun waits until every host holds a lock of one run, and
// returns that run's id.
func (r *lockRig) lockedByOneRun(t *testing.T, what string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		id := ""
		all := true
		for _, h := range r.f.Hosts {
			l := r.lockOn(t, h)
			all = all && l["id"] != "" && (id == "" || l["id"] == id)
			id = l["id"]
		}
		if all {
			return id
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the hosts are not all locked by one run within 60s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// uniform asserts that every host serves the same release, and returns it.
func (r *lockRig) uniform(t *testing.T, what string) string {
	t.Helper()
	got := serving(t, r.p)
	v := got[r.f.Hosts[0]]
	for h, s := range got {
		if s != v || strings.HasPrefix(s, "error") {
			t.Errorf("%s: the fleet is split: %v (%s)", what, got, h)
			return ""
		}
	}
	return v
}

// runProcesses lists the processes of this machine (where the fleet's
// hosts run) that belong to the run with id: its id on their command
// line or in their environment.
func runProcesses(id string) []string {
	var found []string
	self := fmt.Sprintf("/proc/%d", os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		if dir == self {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		env, _ := os.ReadFile(filepath.Join(dir, "environ"))
		if bytes.Contains(cmd, []byte(id)) || bytes.Contains(env, []byte("MF_RUN_ID="+id+"\x00")) {
			line := strings.ReplaceAll(string(cmd), "\x00", " ")
			if len(line) > 160 {
				line = line[:160] + "…"
			}
			found = append(found, filepath.Base(dir)+": "+line)
		}
	}
	return found
}

// processesWith lists the processes of this machine (where the fleet's
// hosts run) whose command line holds every one of parts.
func processesWith(parts ...string) []string {
	var found []string
	self := fmt.Sprintf("/proc/%d", os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		line := strings.Join(procArgs(dir), " ")
		all := dir != self && line != ""
		for _, s := range parts {
			all = all && strings.Contains(line, s)
		}
		if all {
			if len(line) > 160 {
				line = line[:160] + "…"
			}
			found = append(found, filepath.Base(dir)+": "+line)
		}
	}
	return found
}

// quiet waits until no process of the project's runs is left on a host
// (at rest, no command line names the unit), and fails the test if one
// still runs after within: a part of a killed run left running can take
// or remove a later run's lock.
func (r *lockRig) quiet(t *testing.T, what string, within time.Duration) {
	t.Helper()
	if _, ok := waitUntil(within, func() bool { return len(processesWith(r.p.Unit)) == 0 }); !ok {
		t.Errorf("%s: still running on the hosts %s later:\n%s", what, within, strings.Join(processesWith(r.p.Unit), "\n"))
	}
}

// runGone waits until nothing of the run with id runs on a host any
// more: a part of a killed run left running could remove a later run's
// lock when it ends.
func runGone(t *testing.T, what, id string, within time.Duration) {
	t.Helper()
	if id == "" {
		return
	}
	deadline := time.Now().Add(within)
	for {
		left := runProcesses(id)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: the killed run %s still runs %s later:\n%s", what, id, within, strings.Join(left, "\n"))
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sleepingUnder returns the sleep processes (whatever their duration)
// that are children of a command line holding every one of parent.
func sleepingUnder(parent ...string) map[int]bool { return sleeping("", parent...) }

// newSleeps waits up to within until sleeping(secs, parent...) has a
// process not in before, and returns the new ones.
func newSleeps(t *testing.T, what string, within time.Duration, before map[int]bool, secs string, parent ...string) []int {
	t.Helper()
	var pids []int
	if _, ok := waitUntil(within, func() bool {
		pids = pids[:0]
		for pid := range sleeping(secs, parent...) {
			if !before[pid] {
				pids = append(pids, pid)
			}
		}
		return len(pids) > 0
	}); !ok {
		t.Fatalf("%s: no process ran sleep %s under a command line with %q within %s", what, secs, parent, within)
	}
	return pids
}

func alive(pids []int) bool {
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			return true
		}
	}
	return false
}

// waitUntil polls cond every 20ms for up to d, and returns how long it
// took and whether it held.
func waitUntil(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start), true
}

// mark writes a marker file under host's <Path> (see markHost), or removes
// it when content is empty.
func (r *lockRig) mark(t *testing.T, host, name, content string) {
	t.Helper()
	path := r.hostPath(t, host, "/../"+name)
	if content == "" {
		os.Remove(path)
		return
	}
	if err := os.WriteFile(path, []byte(content+"\n"), 0o644); err != nil {
		t.Fatalf("%s: %v", host, err)
	}
}

// otherDir is the release dir of host that current does not point to:
// the one a deploy prepares and switches to.
func (r *lockRig) otherDir(t *testing.T, host string) string {
	t.Helper()
	cur, err := os.Readlink(r.hostPath(t, host, "/current"))
	if err != nil {
		t.Fatalf("%s: %v", host, err)
	}
	if filepath.Base(cur) == "a" {
		return "b"
	}
	return "a"
}

// waitTakeover waits for a run's output to report a lock taken over,
// and returns when it saw that; false if the run ended first.
func waitTakeover(cmdDone <-chan struct{}, out *sshx.SyncWriter) (time.Time, bool) {
	for {
		if strings.Contains(out.String(), "took over the lock") {
			return time.Now(), true
		}
		select {
		case <-cmdDone:
			return time.Now(), strings.Contains(out.String(), "took over the lock")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// lines returns the lines of out holding s.
func lines(out, s string) string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			got = append(got, l)
		}
	}
	return strings.Join(got, "\n")
}

// waitAndPrepare: a deploy holds every lock in a slow prepare; a second
// deploy waits for the lock (from another machine for SIGKILL, from
// this one for SIGTERM) and must not take over the live holder however
// long it waits; sig stops the waiter, which leaves the holder's locks
// alone, then sig stops the holder. SIGTERM releases every lock within
// seconds; after SIGKILL the next deploy from another machine is refused
// with the holder's name and machine until the lease expires, then takes
// over.
func (r *lockRig) waitAndPrepare(t *testing.T, sig syscall.Signal) {
	f, p := r.f, r.p
	was := r.uniform(t, "before")
	tag, sha := r.release(t, true)
	for _, h := range f.Hosts {
		r.mark(t, h, "slow", "1")
	}
	before := sleeping("120", "slow-install", p.Unit)
	holder, holderOut := r.start(t, "", "holder", nil, "env:production", "deploy:tag", tag)
	waitFor(t, holderOut, "installing requirements")
	waitSleeping(t, "the holder's slow install script", before, "120", "slow-install", p.Unit)
	id := r.lockedByOneRun(t, "the holder's prepare")
	held := time.Now()

	machine := otherMachine
	if sig == syscall.SIGTERM {
		machine = ""
	}
	wBefore := sleepingUnder("waiter", p.Unit)
	waiter, waiterOut := r.start(t, machine, "waiter", []string{"MAGEFAB_LOCK_WAIT=60s"}, "env:production", "deploy:tag", tag)
	waiterDone := make(chan error, 1)
	go func() { waiterDone <- waiter.Wait() }()
	if _, ok := waitUntil(60*time.Second, func() bool {
		for pid := range sleepingUnder("waiter", p.Unit) {
			if !wBefore[pid] {
				return true
			}
		}
		return false
	}); !ok {
		t.Fatalf("the waiter never waited for the lock on a host:\n%s", waiterOut.String())
	}

	// A live holder is never taken over: its lease is renewed while it
	// works, here past its lease (once: it takes a lease's time).
	if sig == syscall.SIGKILL {
		time.Sleep(time.Until(held.Add(lockLease + 2*time.Second)))
	}
	select {
	case err := <-waiterDone:
		t.Fatalf("the waiter ended while the holder worked (%v):\n%s", err, waiterOut.String())
	default:
	}
	if strings.Contains(waiterOut.String(), "took over") {
		t.Errorf("the waiter took over a live holder's lock:\n%s", waiterOut.String())
	}
	for _, h := range f.Hosts {
		l := r.lockOn(t, h)
		if l["id"] != id {
			t.Errorf("%s: the holder's lock is gone or another's while it works: %v", h, l)
		}
		if beat, err := strconv.ParseInt(l["beat"], 10, 64); err != nil {
			t.Errorf("%s: the lock has no heartbeat (beat %q): %v", h, l["beat"], l)
		} else if silent := time.Since(time.Unix(beat, 0)); silent > lockLease {
			t.Errorf("%s: the live holder's last heartbeat was %s ago, more than the lease %s", h, silent, lockLease)
		}
		for _, field := range []string{"user", "machine", "pid", "release"} {
			if l[field] == "" {
				t.Errorf("%s: the lock does not say its holder's %s: %v", h, field, l)
			}
		}
		if l["machine"] != "" && l["machine"] != r.here {
			t.Errorf("%s: the lock names machine %q, want %q", h, l["machine"], r.here)
		}
	}

	// sig stops the waiter at once; the holder's locks stay.
	sigWaiter := time.Now()
	syscall.Kill(-waiter.Process.Pid, sig)
	select {
	case err := <-waiterDone:
		if err == nil {
			t.Errorf("the waiter stopped by %s succeeded:\n%s", sig, waiterOut.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("the waiter did not stop within 40s of %s:\n%s", sig, waiterOut.String())
	}
	t.Logf("%s to the waiting deploy: it ended after %s", sig, time.Since(sigWaiter).Round(10*time.Millisecond))
	// Its lock script on the hosts ends too: left waiting, it would take
	// the lock once the holder is gone.
	if d, ok := waitUntil(20*time.Second, func() bool { return len(processesWith("waiter", p.Unit)) == 0 }); !ok {
		t.Errorf("the waiter's lock script still waits on a host %s after %s (left, it takes the lock once it is free):\n%s",
			d.Round(time.Second), sig, strings.Join(processesWith("waiter", p.Unit), "\n"))
	}
	for _, h := range f.Hosts {
		if l := r.lockOn(t, h); l["id"] != id {
			t.Errorf("%s: the stopped waiter touched the holder's lock: %v", h, l)
		}
	}
	if strings.Contains(holderOut.String(), "error") {
		t.Errorf("the holder was disturbed:\n%s", holderOut.String())
	}

	// sig stops the holder.
	sigHolder := time.Now()
	syscall.Kill(-holder.Process.Pid, sig)
	holderDone := make(chan error, 1)
	go func() { holderDone <- holder.Wait() }()
	if sig == syscall.SIGTERM {
		gone, ok := r.locksGoneWithin(t, 20*time.Second)
		if !ok {
			t.Errorf("locks left 20s after SIGTERM to the deploy: %v %v %v", r.lockLeftovers(f.Hosts[0]), r.lockLeftovers(f.Hosts[1]), r.lockLeftovers(f.Hosts[2]))
		} else {
			t.Logf("SIGTERM during prepare: every lock released %s after the signal", gone.Sub(sigHolder).Round(10*time.Millisecond))
			if d := gone.Sub(sigHolder); d > 10*time.Second {
				t.Errorf("the locks took %s to go after SIGTERM, want a few seconds", d)
			}
		}
	}
	select {
	case err := <-holderDone:
		if err == nil {
			t.Errorf("the holder stopped by %s succeeded:\n%s", sig, holderOut.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("the holder did not stop within 40s of %s:\n%s", sig, holderOut.String())
	}
	t.Logf("%s to the deploy in prepare: mage ended after %s", sig, time.Since(sigHolder).Round(10*time.Millisecond))
	if got := r.uniform(t, sig.String()+" during prepare"); got != was {
		t.Errorf("%s during prepare: the fleet serves %s, want %s (nothing switched)", sig, got, was)
	}
	for _, h := range f.Hosts {
		r.mark(t, h, "slow", "")
	}

	if sig == syscall.SIGTERM {
		r.noLockLeft(t, "after SIGTERM during prepare")
		runGone(t, "after SIGTERM during prepare", id, 20*time.Second)
		// The next deploy from this machine goes through at once.
		res := p.RunOn(t, "", r.env("next"), "env:production", "deploy:tag", tag)
		if res.Err != nil {
			t.Fatalf("the next deploy after SIGTERM: %v\n%s", res.Err, res.Out)
		}
	} else {
		r.nextAfterKill(t, id, "holder", tag, sigHolder)
	}
	assertServing(t, p, "the next deploy", sha)
	r.noLockLeft(t, "after the next deploy")
	runGone(t, "after the next deploy", id, 20*time.Second)
}

// nextAfterKill is the next deploy of tag from another machine after the
// run id, whose owner was who on this machine, was SIGKILLed at killed: if
// a lock of it is left, a deploy that does not wait is refused naming the
// holder and its machine, and one that waits takes the lock over once its
// lease expired, saying whose it was.
func (r *lockRig) nextAfterKill(t *testing.T, id, who, tag string, killed time.Time) {
	t.Helper()
	var left []string
	for _, h := range r.f.Hosts {
		if l := r.lockOn(t, h); l["id"] == id {
			left = append(left, h)
		}
	}
	t.Logf("after SIGKILL, locks of the killed run left on %v", left)
	if len(left) > 0 {
		res := r.p.RunOn(t, otherMachine, r.env("next"), "env:production", "deploy:tag", tag)
		if time.Since(killed) < lockLease/2 {
			if res.Err == nil {
				t.Errorf("a deploy from another machine went through within the lease of a killed run's lock:\n%s", res.Out)
			}
		}
		if res.Err != nil {
			for _, want := range []string{who, r.user, r.here, "deploy:unlock"} {
				if !strings.Contains(res.Out, want) {
					t.Errorf("the refusal does not name %q:\n%s", want, res.Out)
				}
			}
		}
	}
	cmd, out := r.start(t, otherMachine, "next", []string{"MAGEFAB_LOCK_WAIT=60s"}, "env:production", "deploy:tag", tag)
	done := make(chan struct{})
	var err error
	go func() { err = cmd.Wait(); close(done) }()
	took, ok := waitTakeover(done, out)
	<-done
	if err != nil {
		t.Fatalf("the next deploy from another machine: %v\n%s", err, out.String())
	}
	if ok {
		line := lines(out.String(), "took over the lock")
		t.Logf("SIGKILLed holder to the automatic takeover: %s (lease %s): %s", took.Sub(killed).Round(10*time.Millisecond), lockLease, line)
		for _, want := range []string{r.user + "@" + r.here} {
			if !strings.Contains(line, want) {
				t.Errorf("the takeover line does not name %q: %s", want, line)
			}
		}
	} else if len(left) > 0 {
		t.Errorf("the next deploy went through a killed run's lock without saying it took it over:\n%s", out.String())
	}
}

// killDuringSwitch is the sequence of the issue: SIGKILL to the deploy
// while web2 is in an 8 s restart; the restart is stopped at once and
// web2 switched back in seconds; the same deploy rerun at once converges;
// then web2's deploy tree is wiped and the next release deploys to the
// whole fleet, its lock untouched by anything of the killed run.
func (r *lockRig) killDuringSwitch(t *testing.T) {
	f, p := r.f, r.p
	was := r.uniform(t, "before")
	tag, sha := r.release(t, false)
	slow := f.Hosts[1]
	r.mark(t, slow, "slow-restart", r.otherDir(t, slow)+" 8")
	before := sleeping("8", r.initd)
	cmd, out := r.start(t, "", "switcher", nil, "env:production", "deploy:tag", tag)
	waitFor(t, out, "prepared; switching")
	restart := newSleeps(t, slow+"'s slow restart", 90*time.Second, before, "8", r.initd)
	id := r.lockOn(t, slow)["id"]
	killed := time.Now()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()

	_, ok := waitUntil(30*time.Second, func() bool { return !alive(restart) })
	ended := time.Since(killed)
	t.Logf("SIGKILL during the switch: %s's interrupted restart ended %s after the kill", slow, ended.Round(10*time.Millisecond))
	if !ok || ended > 5*time.Second {
		t.Errorf("%s's interrupted restart ran on for %s after the kill: it was not stopped", slow, ended.Round(time.Second))
	}
	_, ok = waitUntil(30*time.Second, func() bool { return !r.locked(t, slow) })
	unlocked := time.Since(killed)
	t.Logf("SIGKILL during the switch: %s switched back and unlocked %s after the kill", slow, unlocked.Round(10*time.Millisecond))
	if !ok || unlocked > 7*time.Second {
		t.Errorf("%s was unlocked %s after the kill (ok %v): the switch back waited for the interrupted restart", slow, unlocked.Round(time.Second), ok)
	}
	if v, err := p.Version(f.Addr(t, slow)); err != nil || v != was {
		t.Errorf("%s serves %q (%v) after its interrupted switch, want the previous release %s", slow, v, err, was)
	}
	r.mark(t, slow, "slow-restart", "")

	// The same deploy again, at once, from this machine.
	res := p.RunOn(t, "", r.env("rerun", "MAGEFAB_LOCK_WAIT=60s"), "env:production", "deploy:tag", tag)
	if res.Err != nil {
		t.Fatalf("the rerun after SIGKILL during the switch: %v\n%s", res.Err, res.Out)
	}
	assertServing(t, p, "the rerun", sha)
	r.noLockLeft(t, "after the rerun")
	runGone(t, "after the rerun", id, 20*time.Second)

	// web2 is replaced: its deploy tree is gone. The next release goes to
	// every host.
	f.Ctl(t, "stop", slow)
	f.Ctl(t, "start", slow)
	tag2, sha2 := r.release(t, false)
	res = p.RunOn(t, "", r.env("after-wipe"), "env:production", "deploy:tag", tag2)
	if res.Err != nil || strings.Contains(res.Out, "no longer held") {
		t.Fatalf("the deploy after %s was wiped: %v\n%s", slow, res.Err, res.Out)
	}
	assertServing(t, p, "after the wiped host's deploy", sha2)
	r.noLockLeft(t, "after the wiped host's deploy")
}

// termDuringSwitch: SIGTERM while web2 is in an 8 s restart is held like
// Ctrl-C: the switch finishes on every host, and the locks go with it.
func (r *lockRig) termDuringSwitch(t *testing.T) {
	f, p := r.f, r.p
	tag, sha := r.release(t, false)
	slow := f.Hosts[1]
	r.mark(t, slow, "slow-restart", r.otherDir(t, slow)+" 8")
	before := sleeping("8", r.initd)
	cmd, out := r.start(t, "", "switcher", nil, "env:production", "deploy:tag", tag)
	waitFor(t, out, "prepared; switching")
	newSleeps(t, slow+"'s slow restart", 90*time.Second, before, "8", r.initd)
	termed := time.Now()
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	gone, ok := r.locksGoneWithin(t, 30*time.Second)
	if !ok {
		t.Errorf("locks left 30s after SIGTERM during the switch")
	}
	err := <-done
	t.Logf("SIGTERM during the switch: locks released %s, mage ended %s after the signal (%v)", gone.Sub(termed).Round(10*time.Millisecond), time.Since(termed).Round(10*time.Millisecond), err)
	if err == nil {
		t.Errorf("mage exited 0 after SIGTERM")
	}
	if !strings.Contains(out.String(), "the switch finishes first") {
		t.Errorf("SIGTERM during the switch was not reported as held:\n%s", out.String())
	}
	got := r.uniform(t, "after SIGTERM during the switch")
	if got != sha {
		t.Logf("after SIGTERM during the switch the fleet serves %s (the deploy's release is %s)", got, sha)
	}
	r.noLockLeft(t, "after SIGTERM during the switch")
	r.mark(t, slow, "slow-restart", "")
	// The next deploy from this machine.
	res := p.RunOn(t, "", r.env("next"), "env:production", "deploy:tag", tag)
	if res.Err != nil {
		t.Fatalf("the next deploy after SIGTERM during the switch: %v\n%s", res.Err, res.Out)
	}
	assertServing(t, p, "the next deploy", sha)
	r.noLockLeft(t, "after the next deploy")
}

// detachedStillRunning: SIGKILL during the switch while every restart on
// web2 takes 14 s, so that the detached part that switches web2 back runs
// for 14 s more, past the lease, renewing it. A deploy from another
// machine starts meanwhile: it must not take the live detached part's
// lock over, nor have its own lock touched by it; it waits and deploys.
func (r *lockRig) detachedStillRunning(t *testing.T) {
	f, p := r.f, r.p
	tag, sha := r.release(t, false)
	slow := f.Hosts[1]
	r.mark(t, slow, "slow-any", "14")
	before := sleeping("14", r.initd)
	cmd, out := r.start(t, "", "killed", nil, "env:production", "deploy:tag", tag)
	waitFor(t, out, "prepared; switching")
	first := newSleeps(t, slow+"'s slow restart", 90*time.Second, before, "14", r.initd)
	id := r.lockOn(t, slow)["id"]
	// The other hosts switch beside slow, quickly, and release the run's
	// lock at their switch's end: the kill comes once they have, so that
	// the only lock the killed run leaves is the one its detached part on
	// slow keeps. (A host killed before its switch keeps the dead run's
	// lock until the lease runs out, and the next deploy rightly takes it
	// over: that is another case, and on a busy machine it happened here.)
	for _, h := range f.Hosts {
		if h == slow {
			continue
		}
		if _, ok := waitUntil(60*time.Second, func() bool { return r.lockOn(t, h)["id"] != id }); !ok {
			t.Fatalf("%s still holds the run's lock 60s into the switch: %v", h, r.lockOn(t, h))
		}
	}
	before = sleeping("14", r.initd)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	back := newSleeps(t, slow+"'s switch back (the detached part's restart)", 30*time.Second, before, "14", r.initd)
	t.Logf("the detached part restarts %s (interrupted restart %v, still running: %v)", slow, first, alive(first))
	r.mark(t, slow, "slow-any", "")
	if l := r.lockOn(t, slow); l["id"] != id {
		t.Fatalf("%s: the detached part does not hold the killed run's lock: %v", slow, l)
	}

	started := time.Now()
	next, nextOut := r.start(t, otherMachine, "next", []string{"MAGEFAB_LOCK_WAIT=60s"}, "env:production", "deploy:tag", tag)
	if !alive(back) {
		t.Logf("the detached part's restart ended before the next deploy got going: the case did not test what it should")
	}
	done := make(chan error, 1)
	go func() { done <- next.Wait() }()
	ended, _ := waitUntil(60*time.Second, func() bool { return !alive(back) })
	t.Logf("the detached part's restart ended %s after the next deploy started", ended.Round(10*time.Millisecond))
	err := <-done
	if err != nil || strings.Contains(nextOut.String(), "no longer held") {
		t.Fatalf("the deploy started while a detached part ran: %v\n%s", err, nextOut.String())
	}
	if strings.Contains(nextOut.String(), "took over") {
		t.Errorf("the next deploy took over the lock of a live detached part:\n%s", lines(nextOut.String(), "took over"))
	}
	t.Logf("the next deploy waited for the detached part and took %s", time.Since(started).Round(10*time.Millisecond))
	assertServing(t, p, "the next deploy", sha)
	r.noLockLeft(t, "after the next deploy")
	runGone(t, "after the next deploy", id, 20*time.Second)
}

// duringVerify: sig while the new release's check waits on a slow
// version URL. The hosts have switched; SIGKILL leaves them so (and the
// next deploy from another machine goes through); SIGTERM is held like
// Ctrl-C and the check finishes.
func (r *lockRig) duringVerify(t *testing.T, sig syscall.Signal) {
	p := r.p
	tag, sha := r.release(t, false)
	asked := r.verify.hold(sha)
	cmd, out := r.start(t, "", "verifier", nil, "env:production", "deploy:tag", tag)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-asked:
	case err := <-done:
		t.Fatalf("the deploy ended before its check asked for the version: %v\n%s", err, out.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("the check never asked for the version:\n%s", out.String())
	}
	signalled := time.Now()
	syscall.Kill(-cmd.Process.Pid, sig)
	if sig == syscall.SIGTERM {
		waitFor(t, out, "the switch finishes first")
	}
	// The version URL answers now.
	r.verify.release()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("mage did not end within 60s of %s:\n%s", sig, out.String())
	}
	if err == nil {
		t.Errorf("mage exited 0 after %s", sig)
	}
	t.Logf("%s during the verify: mage ended %s after the signal", sig, time.Since(signalled).Round(10*time.Millisecond))
	got := r.uniform(t, sig.String()+" during the verify")
	t.Logf("%s during the verify: the fleet serves %s (the deploy's release is %s)", sig, got, sha)
	if _, ok := r.locksGoneWithin(t, lockLease+5*time.Second); !ok {
		r.noLockLeft(t, sig.String()+" during the verify, after the lease")
	}
	machine := ""
	if sig == syscall.SIGKILL {
		machine = otherMachine
	}
	res := p.RunOn(t, machine, r.env("next", "MAGEFAB_LOCK_WAIT=60s"), "env:production", "deploy:tag", tag)
	if res.Err != nil {
		t.Fatalf("the next deploy: %v\n%s", res.Err, res.Out)
	}
	assertServing(t, p, "the next deploy", sha)
	r.noLockLeft(t, "after the next deploy")
}

// slowVerify serves the version URL of the test app, /<host>/version,
// by asking the host; while hold is set, a request for a host that
// already serves that commit (the check after the switch, not the look
// at the live release before) waits until release.
type slowVerify struct {
	p    *e2e.Project
	addr map[string]string

	mu    sync.Mutex
	sha   string
	gate  chan struct{}
	asked chan string
}

func (v *slowVerify) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	host, _, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
	addr, ok := v.addr[host]
	if !ok || v.p == nil {
		http.NotFound(w, req)
		return
	}
	sha, err := v.p.Version(addr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	v.mu.Lock()
	gate, asked := v.gate, v.asked
	held := gate != nil && sha == v.sha
	v.mu.Unlock()
	if held {
		select {
		case asked <- host:
		default:
		}
		select {
		case <-gate:
		case <-req.Context().Done():
			return
		}
		if sha, err = v.p.Version(addr); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	fmt.Fprintln(w, sha)
}

// hold makes the check of sha wait; the channel tells each host asked.
func (v *slowVerify) hold(sha string) <-chan string {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sha, v.gate, v.asked = sha, make(chan struct{}), make(chan string, 16)
	return v.asked
}

// release lets every held request answer.
func (v *slowVerify) release() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.gate != nil {
		close(v.gate)
		v.gate = nil
	}
}
