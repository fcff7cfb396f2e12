package e2e_test

import (
	"os"
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

// slowInstall is a package install script that takes 2 minutes on a host that
// holds the file <Path>/slow: a long prepare to interrupt.
const slowInstall = `#!/bin/sh
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -e "$here/../../slow" ]; then sleep 120; fi
`

// markHost writes content to <Path>/name on host, or removes the file when
// content is empty: "slow" makes the install script slow there, and
// "fail-restart" holding a release dir's name makes the app fail to start
// from that dir.
func markHost(t *testing.T, f fleettest.Fleet, host, unit, name, content string) {
	t.Helper()
	path := sshx.Quote("/var/webapps/" + unit + "/" + name)
	script := "printf '%s\\n' " + sshx.Quote(content) + " > " + path
	if content == "" {
		script = "rm -f " + path
	}
	if out, err := onHost(t, f, host, script, true); err != nil {
		t.Fatalf("%s: %s: %v %s", host, script, err, out)
	}
}

// faultEnv is the environment of the fault tests' mage runs.
var faultEnv = []string{"MAGEFAB_SKIP_TESTS=1"}

// deployedProject makes a test app project on a 3-host fleet (extraConfig
// and files as for e2e.NewProjectWith) and deploys its first commit as
// v0.1.0 to production; it returns the fleet, the project and that commit.
func deployedProject(t *testing.T, extraConfig string, files map[string]string) (fleettest.Fleet, *e2e.Project, string) {
	t.Helper()
	f := fleettest.Require(t, 3)
	p := e2e.NewProjectWith(t, f, f.Hosts, extraConfig, "", files)
	sha1 := p.Git(t, "rev-parse", "HEAD")
	p.Tag(t, "v0.1.0")
	p.MustRun(t, faultEnv, "env:production", "deploy:tag", "v0.1.0")
	return f, p, sha1
}

// assertRefused checks a deploy that failed on one host: it failed, its
// output holds each of wants, every host still serves sha and no lock is
// left.
func assertRefused(t *testing.T, f fleettest.Fleet, p *e2e.Project, r e2e.Result, what, sha string, wants ...string) {
	t.Helper()
	if r.Err == nil {
		t.Fatalf("%s: the deploy succeeded:\n%s", what, r.Out)
	}
	for _, want := range wants {
		if !strings.Contains(r.Out, want) {
			t.Errorf("%s: output lacks %q:\n%s", what, want, r.Out)
		}
	}
	assertServing(t, p, what, sha)
	noLocks(t, f, p, what)
}

func noLocks(t *testing.T, f fleettest.Fleet, p *e2e.Project, what string) {
	t.Helper()
	for h, out := range onHosts(t, f, "ls -a /var/webapps/"+p.Unit+"/releases 2>/dev/null") {
		if strings.Contains(out, ".lock") {
			t.Errorf("%s: %s left locked", what, h)
		}
	}
}

func TestConcurrentDeploysOneProceeds(t *testing.T) {
	t.Parallel()
	f, p, sha1 := deployedProject(t, "", nil)
	env := faultEnv
	sha2 := p.Commit(t, "second")
	p.Tag(t, "v0.1.1")

	race := func(extra []string) [2]e2e.Result {
		var res [2]e2e.Result
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = p.Run(t, append(env, extra...), "env:production", "deploy:tag", []string{"v0.1.0", "v0.1.1"}[i])
			}()
		}
		wg.Wait()
		return res
	}
	res := race(nil)
	ok := 0
	for _, r := range res {
		if r.Err == nil {
			ok++
		} else if !strings.Contains(r.Out, "locked by") || !strings.Contains(r.Out, "no host was switched") {
			t.Errorf("the refused deploy does not say who holds the lock:\n%s", r.Out)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of two simultaneous deploys proceeded, want exactly one:\n%s\n----\n%s", ok, res[0].Out, res[1].Out)
	}
	want := sha1
	if res[1].Err == nil {
		want = sha2
	}
	assertServing(t, p, "after two simultaneous deploys", want)
	noLocks(t, f, p, "after two simultaneous deploys")

	// With MAGEFAB_LOCK_WAIT the second waits, then deploys too.
	res = race([]string{"MAGEFAB_LOCK_WAIT=120s"})
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("with MAGEFAB_LOCK_WAIT both must succeed:\n%s\n----\n%s", res[0].Out, res[1].Out)
	}
	served := serving(t, p)
	first := served[f.Hosts[0]]
	for h, v := range served {
		if v != first || (v != sha1 && v != sha2) {
			t.Errorf("%s serves %s, %s serves %s: the fleet is split", h, v, f.Hosts[0], first)
		}
	}
	noLocks(t, f, p, "after waiting deploys")
}

func TestInterruptDuringPrepare(t *testing.T) {
	t.Parallel()
	f, p, sha1 := deployedProject(t, `PackageInstallScripts: []string{"scripts/slow-install"},`, map[string]string{"scripts/slow-install": slowInstall})
	env := faultEnv
	p.AddFiles(t, "new requirements", map[string]string{"requirements.txt": "magefab-testdep==1.0\n# changed\n"})
	p.Tag(t, "v0.1.1")
	for _, h := range f.Hosts {
		markHost(t, f, h, p.Unit, "slow", "1")
	}
	before := sleeping("120", "slow-install", p.Unit)
	cmd, out := p.Start(t, env, "env:production", "deploy:tag", "v0.1.1")
	waitFor(t, out, "installing requirements")
	waitSleeping(t, "the slow install script", before, "120", "slow-install", p.Unit)
	// Ctrl-C at a terminal signals the whole foreground process group.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	start := time.Now()
	err := cmd.Wait()
	if err == nil {
		t.Errorf("an interrupted deploy succeeded:\n%s", out.String())
	}
	// The install script sleeps for 120s: a mage that stops within a
	// third of that did not wait for it, however loaded the machine
	// (stopping the commands and unlocking take seconds).
	if d := time.Since(start); d > 40*time.Second {
		t.Errorf("mage took %s to stop after SIGINT", d)
	}
	assertServing(t, p, "after SIGINT during prepare", sha1)
	noLocks(t, f, p, "after SIGINT during prepare")
	for _, h := range f.Hosts {
		markHost(t, f, h, p.Unit, "slow", "")
	}
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.1")
	noLocks(t, f, p, "after the rerun")
}

func TestRestartFailureOnOneHostSwitchesTheFleetBack(t *testing.T) {
	t.Parallel()
	f, p, sha1 := deployedProject(t, "", nil)
	env := faultEnv
	p.Commit(t, "second")
	p.Tag(t, "v0.1.1")
	markHost(t, f, f.Hosts[1], p.Unit, "fail-restart", "b")
	r := p.Run(t, env, "env:production", "deploy:tag", "v0.1.1")
	if r.Err == nil || !strings.Contains(r.Out, "every host that had switched was switched back") {
		t.Errorf("restart failing on %s:\n%s", f.Hosts[1], r.Out)
	}
	for _, want := range []string{f.Hosts[0] + ": v0.1.0 in a (the previous release: switched back)", f.Hosts[1] + ": v0.1.0 in a (the previous release: its switch failed and it was switched back)"} {
		if !strings.Contains(r.Out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.Out)
		}
	}
	assertServing(t, p, "after compensation", sha1)
	noLocks(t, f, p, "after compensation")
	markHost(t, f, f.Hosts[1], p.Unit, "fail-restart", "")
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.1")
}

func TestHostFaultsDuringPrepare(t *testing.T) {
	t.Parallel()
	f, p, sha1 := deployedProject(t, `PackageInstallScripts: []string{"scripts/slow-install"}, Timeouts: magetargets.Timeouts{Connect: 3000000000, Prepare: 45000000000},`, map[string]string{"scripts/slow-install": slowInstall})
	env := faultEnv
	victim := f.Hosts[2]

	// 1. A host that hangs (its sshd stopped with SIGSTOP) before the
	// deploy: the connect timeout fires, nobody switches.
	p.AddFiles(t, "change 1", map[string]string{"requirements.txt": "magefab-testdep==1.0\n# 1\n"})
	p.Tag(t, "v0.1.1")
	f.Ctl(t, "pause", victim)
	r := p.Run(t, env, "env:production", "deploy:tag", "v0.1.1")
	f.Ctl(t, "resume", victim)
	if r.Err == nil || !strings.Contains(r.Out, victim) || !strings.Contains(r.Out, "no SSH handshake within 3s") {
		t.Errorf("hung host: %v\n%s", r.Err, r.Out)
	}
	assertServing(t, p, "hung host", sha1)
	noLocks(t, f, p, "hung host")

	// 2. A host that hangs during prepare: the prepare timeout fires,
	// nobody switches. The hung host cannot be unlocked while it hangs;
	// the next run sees that the lock's process is gone and takes it over.
	markHost(t, f, victim, p.Unit, "slow", "1")
	before := sleeping("120", "slow-install", p.Unit)
	cmd, out := p.Start(t, env, "env:production", "deploy:tag", "v0.1.1")
	waitFor(t, out, "installing requirements")
	waitSleeping(t, "the victim's slow install script", before, "120", "slow-install", p.Unit)
	f.Ctl(t, "pause", victim)
	err := cmd.Wait()
	f.Ctl(t, "resume", victim)
	if err == nil || !strings.Contains(out.String(), "prepare timed out") || !strings.Contains(out.String(), victim) {
		t.Errorf("host hung in prepare: %v\n%s", err, out.String())
	}
	assertServing(t, p, "host hung in prepare", sha1)
	markHost(t, f, victim, p.Unit, "slow", "")
	r = p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.1")
	noLocks(t, f, p, "rerun after a hung host")

	// 3. A host whose sshd dies during prepare.
	p.AddFiles(t, "change 2", map[string]string{"requirements.txt": "magefab-testdep==1.0\n# 2\n"})
	p.Tag(t, "v0.1.2")
	markHost(t, f, victim, p.Unit, "slow", "1")
	before = sleeping("120", "slow-install", p.Unit)
	cmd, out = p.Start(t, env, "env:production", "deploy:tag", "v0.1.2")
	waitFor(t, out, "installing requirements")
	waitSleeping(t, "the victim's slow install script", before, "120", "slow-install", p.Unit)
	f.Ctl(t, "stop", victim)
	err = cmd.Wait()
	if err == nil || !strings.Contains(out.String(), victim) || !strings.Contains(out.String(), "no host was switched") {
		t.Errorf("sshd killed during prepare: %v\n%s", err, out.String())
	}
	sha2 := p.Git(t, "rev-parse", "v0.1.1^{commit}")
	for _, h := range f.Hosts[:2] {
		if v, _ := p.Version(f.Addr(t, h)); v != sha2 {
			t.Errorf("%s switched while %s died: %s", h, victim, v)
		}
	}
	noLocks(t, f, p, "sshd killed during prepare")
	f.Ctl(t, "start", victim) // a fresh host: its deploy tree is gone
	// A rerun succeeds, and bootstraps the fresh host.
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.2")
	assertServing(t, p, "rerun after sshd died", p.Git(t, "rev-parse", "v0.1.2^{commit}"))
	noLocks(t, f, p, "rerun after faults")
}

// sleeping returns the processes of this machine that run `sleep secs`
// (any sleep, for secs "") as the child of a command line holding every
// one of parent. The
// fleet's hosts run here, each in a mount namespace of its own but all
// in this machine's process table, so a host's scripts show here: a slow
// install script or app restart sleeping, a lock script waiting.
func sleeping(secs string, parent ...string) map[int]bool {
	found := map[int]bool{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		argv := procArgs(dir)
		if len(argv) < 1 || filepath.Base(argv[0]) != "sleep" || secs != "" && (len(argv) != 2 || argv[1] != secs) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		i := strings.LastIndexByte(string(stat), ')')
		if err != nil || i < 0 {
			continue
		}
		// After the command's name: the state, then the parent's pid.
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		line := strings.Join(procArgs(filepath.Join("/proc", fields[1])), " ")
		all := line != ""
		for _, s := range parent {
			all = all && strings.Contains(line, s)
		}
		if pid, err := strconv.Atoi(filepath.Base(dir)); all && err == nil {
			found[pid] = true
		}
	}
	return found
}

// procArgs returns the arguments of the process whose /proc dir is dir.
func procArgs(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// waitSleeping waits until a process that is not in before (taken with
// sleeping before the run started) runs `sleep secs` as the child of a
// command line holding every one of parent: the event itself, rather
// than a pause that a loaded machine may outrun.
func waitSleeping(t *testing.T, what string, before map[int]bool, secs string, parent ...string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		for pid := range sleeping(secs, parent...) {
			if !before[pid] {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no process ran sleep %s under a command line with %q within 90s", what, secs, parent)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor waits until a running mage has printed want.
func waitFor(t *testing.T, out *sshx.SyncWriter, want string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("mage never printed %q:\n%s", want, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
