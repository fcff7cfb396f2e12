package e2e_test

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptWhileWaitingForTheLock: a deploy that waits for another's
// lock stops at Ctrl-C and leaves that lock alone; while a deploy holds
// its locks, nothing in the deploy tree is world-writable.
func TestInterruptWhileWaitingForTheLock(t *testing.T) {
	t.Parallel()
	f, p, sha1 := deployedProject(t, `PackageInstallScripts: []string{"scripts/slow-install"},`, map[string]string{"scripts/slow-install": slowInstall})
	env := faultEnv
	p.AddFiles(t, "new requirements", map[string]string{"requirements.txt": "magefab-testdep==1.0\n# changed\n"})
	p.Tag(t, "v0.1.1")
	for _, h := range f.Hosts {
		markHost(t, f, h, p.Unit, "slow", "1")
	}

	holder, holderOut := p.Start(t, append(env, "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=user.name", "GIT_CONFIG_VALUE_0=holder"), "env:production", "deploy:tag", "v0.1.1")
	waitFor(t, holderOut, "installing requirements")

	root := "/var/webapps/" + p.Unit
	for h, out := range onHosts(t, f, `find `+root+` -xdev ! -type l -perm -0002 -print; ls -ld `+root+`/releases/.lock `+root+`/releases/.lock/*`) {
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasPrefix(l, "d") && !strings.HasPrefix(l, "-") {
				t.Errorf("%s: world-writable while a deploy runs: %s", h, l)
			} else if len(l) > 9 && l[8] == 'w' {
				t.Errorf("%s: lock is world-writable: %s", h, l)
			}
		}
	}

	// The lock script waits with `sleep 1`; its command line names the
	// waiter (the lock's owner) and the unit.
	before := sleeping("1", "waiter", p.Unit)
	waiter, waiterOut := p.Start(t, append(env, "MAGEFAB_LOCK_WAIT=120s", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=user.name", "GIT_CONFIG_VALUE_0=waiter"), "env:production", "deploy:tag", "v0.1.1")
	waitSleeping(t, "the waiter's lock script", before, "1", "waiter", p.Unit) // waiting for the first host's lock now
	syscall.Kill(-waiter.Process.Pid, syscall.SIGINT)
	start := time.Now()
	if err := waiter.Wait(); err == nil {
		t.Errorf("an interrupted waiting deploy succeeded:\n%s", waiterOut.String())
	}
	// Uninterrupted, the waiter would wait 120s for the lock (which the
	// holder keeps longer): a mage that stops within a third of that
	// did not wait, however loaded the machine.
	if d := time.Since(start); d > 40*time.Second {
		t.Errorf("mage took %s to stop waiting after SIGINT", d)
	}
	// The holder's locks are untouched: it is still preparing.
	for h, out := range onHosts(t, f, "cat "+root+"/releases/.lock/owner") {
		if !strings.Contains(out, "holder") {
			t.Errorf("%s: the waiting deploy's interrupt touched the holder's lock: %q", h, out)
		}
	}
	if strings.Contains(holderOut.String(), "error") {
		t.Errorf("the holder was disturbed:\n%s", holderOut.String())
	}

	syscall.Kill(-holder.Process.Pid, syscall.SIGINT)
	if err := holder.Wait(); err == nil {
		t.Errorf("the interrupted holder succeeded:\n%s", holderOut.String())
	}
	assertServing(t, p, "after both were interrupted", sha1)
	noLocks(t, f, p, "after both were interrupted")
	for _, h := range f.Hosts {
		markHost(t, f, h, p.Unit, "slow", "")
	}
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.1")
}

// TestInterruptDuringSwitchAndRestart: Ctrl-C once hosts have begun to
// switch does not stop the switch (that would split the fleet): magefab
// says so and finishes; the fleet serves the new release everywhere.
func TestInterruptDuringSwitchAndRestart(t *testing.T) {
	t.Parallel()
	f, p, _ := deployedProject(t, "", nil)
	env := faultEnv
	sha2 := p.Commit(t, "second")
	p.Tag(t, "v0.1.1")
	for _, h := range f.Hosts {
		markHost(t, f, h, p.Unit, "slow-restart", "b 4")
	}
	initd := "/etc/init.d/" + p.Unit
	before := sleeping("4", initd)
	cmd, out := p.Start(t, env, "env:production", "deploy:tag", "v0.1.1")
	waitFor(t, out, "prepared; switching")
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // the switch phase
	waitFor(t, out, "restarting")
	waitSleeping(t, "a slow restart", before, "4", initd)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // inside the restarts
	if err := cmd.Wait(); err != nil {
		t.Fatalf("a deploy interrupted during its switch failed: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "the switch finishes first") {
		t.Errorf("the interrupt was not reported:\n%s", out.String())
	}
	assertServing(t, p, "after SIGINT during the switch", sha2)
	noLocks(t, f, p, "after SIGINT during the switch")
	for _, h := range f.Hosts {
		markHost(t, f, h, p.Unit, "slow-restart", "")
	}
}

// TestHostHangsDuringTheSwitch: a host that hangs (sshd and its sessions
// SIGSTOPped) in the middle of its restart. The switch timeout fires, the
// other hosts are switched back, and when the hung host resumes it goes
// back to the previous release by itself and releases its lock.
func TestHostHangsDuringTheSwitch(t *testing.T) {
	t.Parallel()
	f, p, sha1 := deployedProject(t, `Timeouts: magetargets.Timeouts{Switch: 15000000000},`, nil)
	env := faultEnv
	sha2 := p.Commit(t, "second")
	p.Tag(t, "v0.1.1")
	victim := f.Hosts[2]
	markHost(t, f, victim, p.Unit, "slow-restart", "b 60")
	initd := "/etc/init.d/" + p.Unit
	before := sleeping("60", initd)
	cmd, out := p.Start(t, env, "env:production", "deploy:tag", "v0.1.1")
	waitFor(t, out, "prepared; switching")
	waitSleeping(t, "the victim's slow restart", before, "60", initd) // the victim is in its slow restart
	f.Ctl(t, "pause", victim)
	err := cmd.Wait()
	f.Ctl(t, "resume", victim)
	if err == nil || !strings.Contains(out.String(), "switch timed out") || !strings.Contains(out.String(), victim) {
		t.Fatalf("a host hung in its restart: %v\n%s", err, out.String())
	}
	for _, h := range f.Hosts[:2] {
		if !strings.Contains(out.String(), h+": v0.1.0 in a (the previous release: switched back)") {
			t.Errorf("%s was not switched back:\n%s", h, out.String())
		}
	}
	// Resumed, the victim's switch gets the stop that the run sent and
	// goes back to a.
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, verr := p.Version(f.Addr(t, victim))
		if verr == nil && v == sha1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s serves %q (%v) 30s after it resumed, want %s (it was deploying %s)", victim, v, verr, sha1, sha2)
		}
		time.Sleep(200 * time.Millisecond)
	}
	assertServing(t, p, "after the hung host resumed", sha1)
	noLocks(t, f, p, "after the hung host resumed")
	markHost(t, f, victim, p.Unit, "slow-restart", "")
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.1")
	assertServing(t, p, "rerun", sha2)
}
