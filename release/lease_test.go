package release_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/release"
)

func TestLiveHolderIsNeverTakenOver(t *testing.T) {
	t.Parallel()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	// git fetch takes 5 seconds on h1 while $HOME/slow-fetch exists: a
	// phase that works longer than the lease.
	f := newTestFleet(t, 2, fakeBin(t, map[string]string{"git": `#!/bin/sh
if [ "$1" = fetch ] && [ -e "$HOME/slow-fetch" ]; then sleep 5; fi
exec ` + gitPath + ` "$@"
`}))
	f.opts.Requirements = nil
	f.opts.LockLease = 3 * time.Second
	fl := f.fleet()
	f.mustDeploy(t, fl, f.tag(t, "v0.1.0"))
	os.WriteFile(filepath.Join(f.homes[0], "slow-fetch"), nil, 0o644)
	// Then, past the phase, the run works 5 seconds more on h1 between
	// phases: the run refreshes the lease.
	inPerHost := make(chan struct{})
	fl.PerHost = func(ctx context.Context, p *release.Prepared) error {
		if p.Host.Name() == "h1" {
			close(inPerHost)
			time.Sleep(5 * time.Second)
		}
		return nil
	}
	v2 := f.tag(t, "v0.2.0")
	// The second run's options are copied before the first run starts:
	// a running Fleet keeps its state in its Options.
	other := *f.opts
	other.RunID, other.Owner, other.Console = "run-2", "bob@desk", nil
	other.Holder = release.Holder{User: "bob", Machine: "desk", PID: 1}
	second := &release.Fleet{Hosts: f.hosts[:1], Options: &other}
	done := make(chan error, 1)
	go func() {
		_, err := fl.Deploy(context.Background(), v2)
		done <- err
	}()
	try := func(when string) {
		var le *release.LockedError
		_, err := second.Deploy(context.Background(), v2)
		if !errors.As(err, &le) || le.Stale {
			t.Errorf("%s: a second run got %v, want refused by a fresh lock", when, err)
		}
	}
	// 4 seconds into the fetch, a second run is refused.
	for lock := filepath.Join(f.root(0), ".lock"); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(lock); err == nil {
			break
		}
	}
	time.Sleep(4 * time.Second)
	try("during a phase longer than the lease")
	<-inPerHost
	time.Sleep(4 * time.Second)
	try("between phases, longer than the lease")
	if err := <-done; err != nil {
		t.Fatalf("the first run: %v\n%s", err, f.out.String())
	}
	f.assertAll(t, "after the slow deploy", "b", v2.SHA)
	if strings.Contains(f.out.String(), "took over") {
		t.Errorf("a lock was taken over:\n%s", f.out.String())
	}
}

// gone reports whether process pid has exited (or is a zombie).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) != nil
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] == 'Z'
	}
	return false
}

func TestInterruptedRestartIsEndedAtOnce(t *testing.T) {
	t.Parallel()
	f := newTestFleet(t, 2, "")
	f.opts.Requirements = nil
	// With b, the restart runs a sleep of a minute (its pid in
	// $HOME/sleep-pid).
	f.opts.Restart = `cur=$(readlink "$HOME/app/releases/current"); echo "$cur" >> "$HOME/restarts"
if [ "$cur" = b ] && [ -e "$HOME/hang" ]; then sleep 60 & echo $! > "$HOME/sleep-pid"; wait; fi`
	fl := f.fleet()
	fl.SwitchTimeout = 3 * time.Second
	v1 := f.tag(t, "v0.1.0")
	f.mustDeploy(t, fl, v1)
	os.WriteFile(filepath.Join(f.homes[1], "hang"), nil, 0o644)
	if _, err := fl.Deploy(context.Background(), f.tag(t, "v0.2.0")); err == nil || !strings.Contains(err.Error(), "switch timed out") {
		t.Fatalf("err = %v", err)
	}
	// h2 is back on a, unlocked, well before the restart's 60 s sleep
	// would have ended (a third of it, which a busy machine manages), and
	// the restart's sleep is gone.
	start := time.Now()
	f.waitUnlocked(t, 1)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("h2 was unlocked %s after the run ended, want within seconds", d.Round(time.Second))
	}
	f.assertAll(t, "after the interrupted restart", "a", v1.SHA)
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(f.homes[1], "sleep-pid"))))
	if err != nil {
		t.Fatalf("the restart ran no sleep: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the interrupted restart's sleep (pid %d) still runs", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// a, b (ended), then a going back by itself (and again as the run
	// switched the host back).
	if got := readFile(t, filepath.Join(f.homes[1], "restarts")); !strings.HasPrefix(got, "a\nb\na\n") {
		t.Errorf("h2 restarts = %q, want a, b, a", got)
	}
}
