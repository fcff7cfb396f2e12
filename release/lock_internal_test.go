package release

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runLockScript runs the host files under /bin/sh in a releases root of
// its own (made by the caller), with lib.sh's inputs and in, and returns
// what it printed and its exit status.
func runLockScript(t *testing.T, root string, files []string, in ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", hostScript(files...))
	cmd.Env = append(os.Environ(), "MF_ROOT="+root, "MF_SUDO=", "MF_RUN_ID=run-1", "MF_CURRENT=current", "MF_DIR0=a", "MF_DIR1=b", "MF_VENV=env",
		"MF_LOCK_LEASE=120", "MF_LOCK_USER=tester", "MF_LOCK_MACHINE=laptop", "MF_LOCK_PID=42", "MF_LOCK_JOB=")
	cmd.Env = append(cmd.Env, in...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// writeLock makes a lock in root with the files given.
func writeLock(t *testing.T, root string, files map[string]string) {
	t.Helper()
	lock := filepath.Join(root, ".lock")
	if err := os.MkdirAll(lock, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		os.WriteFile(filepath.Join(lock, name), []byte(body+"\n"), 0o644)
	}
}

func lockFile(root, name string) string {
	b, _ := os.ReadFile(filepath.Join(root, ".lock", name))
	return strings.TrimSpace(string(b))
}

// leftAside lists what a lock change left beside the lock.
func leftAside(t *testing.T, root string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(root, ".lock.*"))
	return m
}

func TestLockRemovalThatFindsAnotherIdPutsItBack(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	// The lock is this run's when unlock.sh reads it, and another run's
	// by the time it is renamed aside: an mv that swaps the lock's id just
	// before it renames the lock stands for that run.
	mv, err := exec.LookPath("mv")
	if err != nil {
		t.Skip("no mv")
	}
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "mv"), []byte(`#!/bin/sh
if [ "$1" = -T ] && [ "$2" = "$MF_ROOT/.lock" ] && [ ! -e "$MF_ROOT/swapped" ]; then
  echo run-2 > "$MF_ROOT/.lock/id"; : > "$MF_ROOT/swapped"
fi
exec `+mv+` "$@"
`), 0o755)
	writeLock(t, root, map[string]string{"id": "run-1", "owner": "tester@laptop deploying v1"})
	out, _ := runLockScript(t, root, []string{"lock", "unlock"}, "PATH="+bin+":"+os.Getenv("PATH"), "MF_STAGED=")
	if strings.Contains(out, "magefab:unlocked") {
		t.Errorf("unlock says it removed the lock:\n%s", out)
	}
	if got := lockFile(root, "id"); got != "run-2" {
		t.Errorf("the lock's id is %q, want run-2's lock kept", got)
	}
	if a := leftAside(t, root); len(a) > 0 {
		t.Errorf("left aside: %v", a)
	}
	// A plain removal of another run's lock removes nothing either, nor
	// does an orphan's removal with another id.
	writeLock(t, root, map[string]string{"id": "run-3"})
	for _, files := range [][]string{{"lock", "unlock"}, {"lock", "unlock_orphan"}} {
		runLockScript(t, root, files, "MF_STAGED=", "MF_ORPHAN_ID=run-1")
		if got := lockFile(root, "id"); got != "run-3" {
			t.Errorf("%s: the lock's id is %q, want run-3's lock kept", files[1], got)
		}
	}
}

func TestDetachedPartLeavesALockTakenMeanwhile(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeLock(t, root, map[string]string{"id": "run-1"})
	// While the detached part restarts the app, run-1's lock goes and
	// run-2 takes the lock.
	restart := fmt.Sprintf(`rm -rf %[1]s/.lock; mkdir %[1]s/.lock; echo run-2 > %[1]s/.lock/id`, root)
	out, _ := runLockScript(t, root, []string{"lock", "after", "detached"},
		"MF_RESTART="+restart, "MF_CRONTAB=", "MF_CRONTAB_USER=", "MF_STAGED=", "MF_SERVICES=",
		"MF_UNDO_DIR=a", "MF_DID_CRON=", "MF_DID_FILES=", "MF_DID_SVCS=")
	if got := lockFile(root, "id"); got != "run-2" {
		t.Errorf("the lock's id is %q, want run-2's lock kept\n%s", got, out)
	}
	// Without a new run, it releases its own lock.
	os.RemoveAll(filepath.Join(root, ".lock"))
	writeLock(t, root, map[string]string{"id": "run-1"})
	runLockScript(t, root, []string{"lock", "after", "detached"},
		"MF_RESTART=:", "MF_CRONTAB=", "MF_CRONTAB_USER=", "MF_STAGED=", "MF_SERVICES=",
		"MF_UNDO_DIR=a", "MF_DID_CRON=", "MF_DID_FILES=", "MF_DID_SVCS=")
	if _, err := os.Stat(filepath.Join(root, ".lock")); err == nil {
		t.Errorf("the detached part left its own lock")
	}
}

func TestExpiredLeaseIsTakenOverAndSaidSo(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	now := time.Now().Unix()
	alice := map[string]string{"id": "run-0", "owner": "alice@ci-7 deploying v1.2", "holder": "ci-7 123",
		"user": "alice", "machine": "ci-7", "pid": "123", "release": "v1.2", "job": "https://ci.example/jobs/9",
		"since": strconv.FormatInt(now-600, 10), "beat": strconv.FormatInt(now-192, 10)}
	writeLock(t, root, alice)
	out, status := runTakeLock(t, root, 120)
	if status != 0 {
		t.Fatalf("take_lock exited %d:\n%s", status, out)
	}
	var f []string
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "magefab:takeover\t"); ok {
			f = strings.Split(rest, "\t")
		}
	}
	if len(f) != 7 || f[0] != alice["owner"] || f[1] != "alice" || f[2] != "ci-7" || f[3] != "123" || f[4] != "v1.2" || f[6] != alice["job"] {
		t.Fatalf("takeover reply %q, in:\n%s", f, out)
	}
	if n, _ := strconv.Atoi(f[5]); n < 192 || n > 200 {
		t.Errorf("silent for %q seconds, want 192", f[5])
	}
	if line := takeoverLine(f); !strings.HasPrefix(line, "took over the lock of alice@ci-7 (pid 123, deploying v1.2, job https://ci.example/jobs/9), silent for 3m1") {
		t.Errorf("takeover line %q", line)
	}
	if got := lockFile(root, "id"); got != "run-1" || lockFile(root, "user") != "tester" || lockFile(root, "machine") != "laptop" {
		t.Errorf("the lock is %q's, want run-1's with its holder", got)
	}
	if a := leftAside(t, root); len(a) > 0 {
		t.Errorf("left aside: %v", a)
	}

	// A lock whose lease is fresh is refused, with the holder's data.
	os.RemoveAll(filepath.Join(root, ".lock"))
	alice["beat"] = strconv.FormatInt(now-60, 10)
	writeLock(t, root, alice)
	out, status = runTakeLock(t, root, 120)
	if status != exitLocked || strings.Contains(out, "takeover") {
		t.Fatalf("take_lock exited %d, want %d:\n%s", status, exitLocked, out)
	}
	var locked []string
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "magefab:locked\t"); ok {
			locked = strings.Split(rest, "\t")
		}
	}
	le := parseLocked("web1", locked, &Options{})
	if le.Owner != alice["owner"] || le.User != "alice" || le.Machine != "ci-7" || le.PID != "123" || le.Release != "v1.2" ||
		le.Job != alice["job"] || le.Since.Unix() != now-600 || le.Beat.Unix() != now-60 || le.Stale || le.Lease != DefaultLockLease ||
		le.id != "run-0" || le.holder != "ci-7 123" {
		t.Errorf("LockedError %+v from %q", le, locked)
	}
	for _, want := range []string{"alice@ci-7 deploying v1.2", "alice@ci-7", "pid 123", "job https://ci.example/jobs/9", "last heartbeat 1m"} {
		if !strings.Contains(le.Error(), want) {
			t.Errorf("%q lacks %q", le.Error(), want)
		}
	}
	if got := lockFile(root, "id"); got != "run-0" {
		t.Errorf("the lock is %q's, want alice's kept", got)
	}
}

// runTakeLock runs take_lock in root, not waiting, with the lease in
// seconds.
func runTakeLock(t *testing.T, root string, lease int) (string, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", hostScript("lock")+"take_lock\n")
	cmd.Env = append(os.Environ(), "MF_ROOT="+root, "MF_SUDO=", "MF_RUN_ID=run-1", "MF_CURRENT=current", "MF_DIR0=a", "MF_DIR1=b", "MF_VENV=env",
		"MF_LOCK_LEASE="+strconv.Itoa(lease), "MF_LOCK_USER=tester", "MF_LOCK_MACHINE=laptop", "MF_LOCK_PID=42", "MF_LOCK_JOB=",
		"MF_LOCK_OWNER=tester@laptop deploying v2", "MF_LOCK_HOLDER=laptop 42", "MF_LOCK_RELEASE=v2", "MF_LOCK_WAIT=0", "MF_LOCK_TAKEOVER=")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

func TestHolderRoundTripsIntoLockedError(t *testing.T) {
	t.Setenv("CI_JOB_URL", "")
	t.Setenv("GITHUB_SERVER_URL", "https://github.com")
	t.Setenv("GITHUB_REPOSITORY", "acme/shop")
	t.Setenv("GITHUB_RUN_ID", "77")
	h := CurrentHolder()
	if h.Job != "https://github.com/acme/shop/actions/runs/77" || h.PID != os.Getpid() || h.User == "" || h.Machine == "" {
		t.Errorf("CurrentHolder() = %+v", h)
	}
	t.Setenv("CI_JOB_URL", "https://gitlab.example/acme/shop/-/jobs/5")
	if h := CurrentHolder(); h.Job != "https://gitlab.example/acme/shop/-/jobs/5" {
		t.Errorf("CurrentHolder().Job = %q, want GitLab's", h.Job)
	}
	// What a run writes into the lock comes back in the error of a run
	// refused by it.
	root := t.TempDir()
	o := &Options{Holder: Holder{User: "bob", Machine: "build-3", PID: 4711, Job: "https://jenkins.example/job/9/"}, RunID: "run-0"}
	env := lockEnv(o)
	cmd := exec.Command("/bin/sh", "-c", hostScript("lock")+"take_lock\n")
	cmd.Env = append(append(os.Environ(), "MF_ROOT="+root, "MF_RUN_ID=run-0", "MF_LOCK_OWNER=bob@build-3 deploying v3", "MF_LOCK_HOLDER=build-3 4711",
		"MF_LOCK_RELEASE=v3", "MF_LOCK_WAIT=0", "MF_LOCK_TAKEOVER="), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, status := runTakeLock(t, root, 120)
	if status != exitLocked {
		t.Fatalf("exit %d:\n%s", status, out)
	}
	_, rest, _ := strings.Cut(strings.TrimSpace(out), "magefab:locked\t")
	le := parseLocked("web1", strings.Split(rest, "\t"), o)
	if le.User != "bob" || le.Machine != "build-3" || le.PID != "4711" || le.Job != o.Holder.Job || le.Release != "v3" ||
		le.Owner != "bob@build-3 deploying v3" || le.Stale || time.Since(le.Beat) > time.Minute {
		t.Errorf("LockedError %+v", le)
	}
}

// Locks are released within failureCleanupTimeout after a failure, and within the
// interrupt's bound once the run is interrupted: at once if it already
// was, or as soon as it is while the release goes on.
func TestCleanupContextBounds(t *testing.T) {
	t.Parallel()
	live := context.Background()
	c, cancel := cleanupContext(live)
	d, ok := c.Deadline()
	if !ok || time.Until(d) < failureCleanupTimeout-time.Second || time.Until(d) > failureCleanupTimeout {
		t.Errorf("after a failure: deadline in %v, want %v", time.Until(d), failureCleanupTimeout)
	}
	cancel()
	if c.Err() == nil {
		t.Error("cancel did not end the cleanup context")
	}

	stopped, stop := context.WithCancel(context.Background())
	stop()
	start := time.Now()
	c, cancel = cleanupContext(stopped)
	defer cancel()
	if c.Err() != nil {
		t.Fatal("an interrupted run's cleanup context is done before it started")
	}
	<-c.Done()
	if took := time.Since(start); took < interruptCleanupTimeout || took > failureCleanupTimeout/2 {
		t.Errorf("after an interrupt: the cleanup context ended after %v, want %v", took, interruptCleanupTimeout)
	}

	run, interrupt := context.WithCancel(context.Background())
	c, cancel = cleanupContext(run)
	defer cancel()
	interrupt()
	start = time.Now()
	<-c.Done()
	if took := time.Since(start); took < interruptCleanupTimeout || took > failureCleanupTimeout/2 {
		t.Errorf("interrupted during the release: the cleanup context ended %v later, want %v", took, interruptCleanupTimeout)
	}
}
