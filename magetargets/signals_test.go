package magetargets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
	"github.com/magefile/mage/mg"
)

// The variables with which TestSignalsStopTheRun runs the test binary
// again as a deploy (TestStopHelper).
const (
	stopHelperVar = "MAGETARGETS_STOP_HELPER" // the commit to deploy
	stopRemoteVar = "MAGETARGETS_STOP_REMOTE"
	stopCloneVar  = "MAGETARGETS_STOP_CLONE"
	stopPythonVar = "MAGETARGETS_STOP_PYTHON"
	stopSSHVar    = "MAGETARGETS_STOP_SSH_CONFIG"
	stopWaitVar   = "MAGETARGETS_STOP_LOCK_WAIT" // MAGEFAB_LOCK_WAIT for the deploy (TestMain unsets that)
)

// slowPython is a python3 stand-in whose `-m venv` (run by the prepare,
// under the lock) says it started, then waits a minute.
const slowPython = `#!/bin/sh
if [ "$1" = -m ] && [ "$2" = venv ]; then
  touch "$HOME/venv-started"
  exec sleep 60
fi
exit 0
`

// TestStopHelper is no test of its own: TestSignalsStopTheRun runs the
// test binary again with it, as mage would run deploy:commit, and the
// helper exits as mage's generated main does (handleError).
func TestStopHelper(t *testing.T) {
	sha := os.Getenv(stopHelperVar)
	if sha == "" {
		t.Skip("run by TestSignalsStopTheRun")
	}
	p := &hostProject{
		repos:     repos{remote: os.Getenv(stopRemoteVar), clone: os.Getenv(stopCloneVar)},
		sshConfig: os.Getenv(stopSSHVar),
		python:    os.Getenv(stopPythonVar),
	}
	Configure(p.config("app"))
	os.Setenv(EnvVar, envDevelopment)
	os.Setenv(LockWaitVar, os.Getenv(stopWaitVar))
	err := (Deploy{}).Commit(context.Background(), sha)
	if err == nil {
		os.Stdout.WriteString("deployed\n")
		os.Exit(0)
	}
	os.Stdout.WriteString("Error: " + err.Error() + "\n")
	if c, ok := err.(interface{ ExitStatus() int }); ok {
		os.Exit(c.ExitStatus())
	}
	os.Exit(1)
}

// TestSignalsStopTheRun sends SIGTERM, then in another run SIGHUP, to a
// deploy while its prepare runs a host command that waits: the deploy
// stops within seconds, releases the host's lock and exits 128+the
// signal's number, as a shell reports a process the signal ended.
func TestSignalsStopTheRun(t *testing.T) {
	for _, c := range []struct {
		sig  syscall.Signal
		name string
	}{{syscall.SIGTERM, "SIGTERM"}, {syscall.SIGHUP, "SIGHUP"}} {
		t.Run(c.name, func(t *testing.T) {
			p := newHostProject(t)
			if err := os.WriteFile(p.python, []byte(slowPython), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd, out := startDeploy(t, p)
			lock := filepath.Join(p.home, "app", "releases", ".lock")
			started := filepath.Join(p.home, "venv-started")
			deadline := time.Now().Add(30 * time.Second)
			for {
				_, errStarted := os.Stat(started)
				_, errLock := os.Stat(lock)
				if errStarted == nil && errLock == nil {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("the deploy did not reach its virtualenv under the lock in 30s:\n%s", out.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			start := time.Now()
			cmd.Process.Signal(c.sig)
			err := cmd.Wait()
			took := time.Since(start)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 128+int(c.sig) {
				t.Errorf("after %s the deploy ended with %v, want exit status %d:\n%s", c.name, err, 128+int(c.sig), out.String())
			}
			if took > 10*time.Second {
				t.Errorf("the deploy took %s to stop after %s", took, c.name)
			}
			if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the lock is still there after %s (%v):\n%s", c.name, err, out.String())
			}
			if !strings.Contains(out.String(), c.name+": stopping") {
				t.Errorf("the output does not say %s stopped the deploy:\n%s", c.name, out.String())
			}
			t.Logf("%s: stopped and unlocked in %s", c.name, took.Round(time.Millisecond))
		})
	}
}

// startDeploy runs the test binary again as a deploy:commit of p's head
// (TestStopHelper), with the settings extra.
func startDeploy(t *testing.T, p *hostProject, extra ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStopHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		stopHelperVar+"="+p.head, stopRemoteVar+"="+p.remote, stopCloneVar+"="+p.clone,
		stopPythonVar+"="+p.python, stopSSHVar+"="+p.sshConfig)
	cmd.Env = append(cmd.Env, extra...)
	out := new(syncBuffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// TestSignalWhileWaitingForTheLock sends SIGTERM to a deploy that waits
// (MAGEFAB_LOCK_WAIT) for another run's lock: it stops within seconds,
// exits 143 and leaves that lock as it was.
func TestSignalWhileWaitingForTheLock(t *testing.T) {
	ctx := context.Background()
	p := deployedOnce(t, ctx)
	now := time.Now()
	lock := writeLock(t, p, now, now)
	cmds := len(p.srv.Commands())
	cmd, out := startDeploy(t, p, stopWaitVar+"=120s")
	deadline := time.Now().Add(30 * time.Second)
	// The phase that waits for the lock: the host holds its script
	// (deployedOnce sent it), and gets its inputs.
	for !slices.ContainsFunc(p.srv.Commands()[cmds:], func(c string) bool { return strings.Contains(c, "MF_LOCK_WAIT=120") }) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the deploy did not try to take the lock in 30s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // waiting now: the lock is held
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Errorf("after SIGTERM the waiting deploy ended with %v, want exit status 143:\n%s", err, out.String())
	}
	if took > 10*time.Second {
		t.Errorf("the waiting deploy took %s to stop after SIGTERM", took)
	}
	if id, err := os.ReadFile(filepath.Join(lock, "id")); err != nil || string(id) != "0123456789abcdef\n" {
		t.Errorf("the other run's lock changed: id %q, %v\n%s", id, err, out.String())
	}
	t.Logf("stopped waiting in %s", took.Round(time.Millisecond))
}

// TestHoldInterruptsGivesSignalsBack checks that the switch holds SIGTERM
// and SIGHUP as it holds Ctrl-C (reported, the run goes on), and that once
// the switch is over the run's stopper has them again: signal.Ignore in
// holdInterrupts clears every Notify channel.
func TestHoldInterruptsGivesSignalsBack(t *testing.T) {
	var out syncBuffer
	r := &fleetRun{console: sshx.NewConsole(&out), opts: &release.Options{}, fleet: &release.Fleet{}}
	ctx := r.catchSignals(context.Background())
	exited := make(chan int, 1)
	r.stop.exit = func(code int) { exited <- code }

	done := r.holdInterrupts()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		syscall.Kill(os.Getpid(), sig)
		waitOutput(t, &out, signalName(sig)+": hosts are switching")
	}
	if ctx.Err() != nil {
		t.Fatal("a signal held during the switch cancelled the run")
	}
	done()

	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGHUP after the switch did not cancel the run")
	}
	waitOutput(t, &out, "SIGHUP: stopping")
	err := errors.New("deploy failed: context canceled")
	r.end(&err)
	if mg.ExitStatus(err) != 129 || !strings.Contains(err.Error(), "stopped by SIGHUP") {
		t.Errorf("end = %v (exit status %d), want exit status 129", err, mg.ExitStatus(err))
	}
	select {
	case code := <-exited:
		t.Errorf("the stopper exited (%d)", code)
	default:
	}
}

// TestStopKeepsOtherExitStatus checks end: a split fleet's exit status
// (77) is kept when a signal stopped the run, a run without a signal keeps
// its error, and one that succeeded although a signal came succeeds.
func TestStopKeepsOtherExitStatus(t *testing.T) {
	stopped := func() *fleetRun {
		r := &fleetRun{console: sshx.NewConsole(&bytes.Buffer{})}
		r.catchSignals(context.Background())
		r.stop.sig = syscall.SIGTERM
		return r
	}
	err := mg.Fatal(77, "THE FLEET IS SPLIT")
	stopped().end(&err)
	if mg.ExitStatus(err) != 77 {
		t.Errorf("a split fleet stopped by SIGTERM exits %d, want 77", mg.ExitStatus(err))
	}
	var none error
	stopped().end(&none)
	if none != nil {
		t.Errorf("a run that finished although SIGTERM came fails: %v", none)
	}
	plain := errors.New("failed")
	r := &fleetRun{console: sshx.NewConsole(&bytes.Buffer{})}
	r.catchSignals(context.Background())
	r.end(&plain)
	if mg.ExitStatus(plain) != 1 || plain.Error() != "failed" {
		t.Errorf("a run no signal stopped = %v (exit status %d), want its own error", plain, mg.ExitStatus(plain))
	}
}

// waitOutput waits up to 5 seconds for out to contain want.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output:\n%s", want, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer that a test reads while the code under test
// writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A run stopped by a signal exits stopGrace later, but not while hosts
// are switching (holdInterrupts): stopping there would split the fleet.
// It exits once the switch is over.
func TestGraceWaitsForASwitch(t *testing.T) {
	const grace = 50 * time.Millisecond
	exited := make(chan int, 1)
	_, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &stopper{
		cancel: cancel,
		say:    func(string, ...any) {},
		exit:   func(code int) { exited <- code },
		ch:     make(chan os.Signal, 1),
		pipe:   make(chan os.Signal, 1),
		done:   make(chan struct{}),
		grace:  grace,
		held:   1, // a switch holds the interrupts
	}
	go s.watch()
	defer close(s.done)
	s.ch <- syscall.SIGTERM
	select {
	case <-exited:
		t.Fatal("the run exited while hosts were switching")
	case <-time.After(10 * grace):
	}
	s.mu.Lock()
	s.held--
	s.mu.Unlock()
	select {
	case code := <-exited:
		if code != 128+int(syscall.SIGTERM) {
			t.Errorf("exit status %d, want %d", code, 128+int(syscall.SIGTERM))
		}
	case <-time.After(time.Minute):
		t.Fatal("the run never exited once the switch was over")
	}
}
