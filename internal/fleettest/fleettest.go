// Package fleettest gives tests the fleet of real OpenSSH hosts that
// .ci/fleet starts, and the tools they need. On a developer's machine
// without them, tests skip with the reason; under CI=true a missing fleet
// or tool fails the test instead, so CI never counts a skip as a pass.
package fleettest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Fleet describes a running fleet, from the variables `.ci/fleet env`
// prints.
type Fleet struct {
	ConfigFile     string   // MAGEFAB_FLEET: the ssh_config with aliases web1..webN
	Hosts          []string // MAGEFAB_FLEET_HOSTS: the aliases
	KeyFile        string   // MAGEFAB_FLEET_KEY: the client's private key
	KnownHostsFile string   // MAGEFAB_FLEET_KNOWN_HOSTS
	Dir            string   // MAGEFAB_FLEET_DIR: the fleet's state directory
	Script         string   // the .ci/fleet script, to stop and start hosts
}

// InCI reports whether the tests run under CI, where nothing may skip for
// want of a fleet or a tool.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips the test with reason, or fails it under CI.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true but %s", reason)
	}
	t.Skip(reason)
}

// Require returns the fleet, taking an exclusive lock on it for the rest of
// the test so that tests of different packages, which run in parallel,
// never deploy to or stop the same hosts at once. It skips (fails under CI)
// when MAGEFAB_FLEET is unset.
func Require(t testing.TB, minHosts int) Fleet {
	t.Helper()
	cfg := os.Getenv("MAGEFAB_FLEET")
	if cfg == "" {
		Unavailable(t, "MAGEFAB_FLEET is unset: start the fleet with `sudo .ci/fleet up 3` and eval \"$(.ci/fleet env)\"")
	}
	f := Fleet{
		ConfigFile:     cfg,
		Hosts:          strings.Split(os.Getenv("MAGEFAB_FLEET_HOSTS"), ","),
		KeyFile:        os.Getenv("MAGEFAB_FLEET_KEY"),
		KnownHostsFile: os.Getenv("MAGEFAB_FLEET_KNOWN_HOSTS"),
		Dir:            os.Getenv("MAGEFAB_FLEET_DIR"),
	}
	if len(f.Hosts) < minHosts || f.Hosts[0] == "" {
		Unavailable(t, "the fleet has fewer than the hosts this test needs")
	}
	if _, err := os.Stat(cfg); err != nil {
		Unavailable(t, "MAGEFAB_FLEET: "+err.Error())
	}
	f.Script = findScript()
	lock, err := os.OpenFile(filepath.Join(f.Dir, "test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("fleet lock: %v", err)
	}
	asked := time.Now()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("fleet lock: %v", err)
	}
	got := time.Now()
	t.Cleanup(func() {
		lock.Close()
		// One line per fleet test, even without -v, so that a CI log
		// shows where the fleet's time goes (the fleet tests of every
		// package take turns on this lock).
		fmt.Fprintf(os.Stderr, "fleet: %s held the fleet %.1fs (waited %.1fs)\n", t.Name(), time.Since(got).Seconds(), got.Sub(asked).Seconds())
	})
	return f
}

// Addr returns the address of a host, from the fleet's ssh_config.
func (f Fleet) Addr(t testing.TB, host string) string {
	t.Helper()
	b, err := os.ReadFile(f.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		fields := strings.Fields(l)
		switch {
		case len(fields) == 2 && fields[0] == "Host":
			in = fields[1] == host
		case in && len(fields) == 2 && fields[0] == "HostName":
			return fields[1]
		}
	}
	t.Fatalf("no HostName for %s in %s", host, f.ConfigFile)
	return ""
}

// LogMark returns the size of host's sshd log, to count what a run adds.
func (f Fleet) LogMark(host string) int64 {
	st, err := os.Stat(filepath.Join(f.Dir, host+".log"))
	if err != nil {
		return 0
	}
	return st.Size()
}

// CountSince counts the lines of host's sshd log after mark that contain
// s: "Accepted publickey" once per connection, "Starting session" once per
// session.
func (f Fleet) CountSince(host string, mark int64, s string) int {
	b, err := os.ReadFile(filepath.Join(f.Dir, host+".log"))
	if err != nil || int64(len(b)) < mark {
		return -1
	}
	return strings.Count(string(b[mark:]), s)
}

// Ctl runs `.ci/fleet ARGS...` (stop, start, pause, resume a host) and fails
// the test if it fails.
func (f Fleet) Ctl(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{f.Script}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf(".ci/fleet %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// RequireTool returns the path of a command, skipping (failing under CI)
// when it is not installed.
func RequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, name+" is not installed (Debian package "+pkg+")")
	}
	return p
}

func findScript() string {
	dir, _ := os.Getwd()
	for {
		p := filepath.Join(dir, ".ci", "fleet")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ".ci/fleet"
		}
		dir = parent
	}
}
