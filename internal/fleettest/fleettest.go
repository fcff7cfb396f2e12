// Package fleettest gives tests the fleet of real OpenSSH hosts that
// .ci/fleet starts, and the tools they need. On a developer's machine
// without them, tests skip with the reason; under CI=true a missing fleet
// or tool fails the test instead, so CI never counts a skip as a pass.
package fleettest

import (
	"errors"
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

// FleetsVar names the state directories of the fleets tests may use,
// separated by commas, when more than one is up (.ci/run starts two): each
// fleet test takes whichever is free first. Without it, the one fleet of
// MAGEFAB_FLEET and the variables `.ci/fleet env` prints is used.
const FleetsVar = "MAGEFAB_FLEETS"

// Require returns a fleet of at least minHosts hosts, taking an exclusive
// lock on it for the rest of the test so that tests, of one package or of
// different packages running in parallel, never deploy to or stop the same
// hosts at once. With several fleets (FleetsVar), the test takes the first
// that is free. It skips (fails under CI) when no fleet is set.
func Require(t testing.TB, minHosts int) Fleet {
	t.Helper()
	fleets, err := configured()
	if err != nil {
		Unavailable(t, err.Error())
	}
	var usable []Fleet
	for _, f := range fleets {
		if len(f.Hosts) >= minHosts && f.Hosts[0] != "" {
			usable = append(usable, f)
		}
	}
	if len(usable) == 0 {
		Unavailable(t, fmt.Sprintf("no fleet has the %d hosts this test needs", minHosts))
	}
	asked := time.Now()
	f, lock, err := take(usable)
	if err != nil {
		t.Fatalf("fleet lock: %v", err)
	}
	got := time.Now()
	t.Cleanup(func() {
		lock.Close()
		// One line per fleet test, even without -v, so that a CI log
		// shows where the fleets' time goes.
		fmt.Fprintf(os.Stderr, "fleet: %s held %s %.1fs (waited %.1fs)\n", t.Name(), f.Dir, time.Since(got).Seconds(), got.Sub(asked).Seconds())
	})
	return f
}

// configured returns the fleets of FleetsVar, or the one of MAGEFAB_FLEET.
func configured() ([]Fleet, error) {
	script := findScript()
	if dirs := os.Getenv(FleetsVar); dirs != "" {
		var out []Fleet
		for _, dir := range strings.Split(dirs, ",") {
			f, err := fromDir(dir)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", FleetsVar, err)
			}
			f.Script = script
			out = append(out, f)
		}
		return out, nil
	}
	cfg := os.Getenv("MAGEFAB_FLEET")
	if cfg == "" {
		return nil, errors.New("MAGEFAB_FLEET is unset: start the fleet with `sudo .ci/fleet up 3` and eval \"$(.ci/fleet env)\"")
	}
	if _, err := os.Stat(cfg); err != nil {
		return nil, fmt.Errorf("MAGEFAB_FLEET: %v", err)
	}
	return []Fleet{{
		ConfigFile:     cfg,
		Hosts:          strings.Split(os.Getenv("MAGEFAB_FLEET_HOSTS"), ","),
		KeyFile:        os.Getenv("MAGEFAB_FLEET_KEY"),
		KnownHostsFile: os.Getenv("MAGEFAB_FLEET_KNOWN_HOSTS"),
		Dir:            os.Getenv("MAGEFAB_FLEET_DIR"),
		Script:         script,
	}}, nil
}

// fromDir reads a fleet from the state directory `.ci/fleet up` wrote.
func fromDir(dir string) (Fleet, error) {
	b, err := os.ReadFile(filepath.Join(dir, "hosts"))
	if err != nil {
		return Fleet{}, fmt.Errorf("no fleet is up in %s: %v", dir, err)
	}
	return Fleet{
		ConfigFile:     filepath.Join(dir, "ssh_config"),
		Hosts:          strings.Fields(string(b)),
		KeyFile:        filepath.Join(dir, "id_ed25519"),
		KnownHostsFile: filepath.Join(dir, "known_hosts"),
		Dir:            dir,
	}, nil
}

// take locks the test.lock of one of fleets, whichever is free first, and
// returns it with the open lock file. Each fleet's lock is asked for by a
// goroutine of its own, blocked in flock(2) until it is free: the first
// to get one wins, and the others, whenever they get theirs, give it up
// at once.
func take(fleets []Fleet) (Fleet, *os.File, error) {
	type taken struct {
		i    int
		file *os.File
		err  error
	}
	ch := make(chan taken, len(fleets))
	for i, f := range fleets {
		go func() {
			file, err := os.OpenFile(filepath.Join(f.Dir, "test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
			if err == nil {
				if err = syscall.Flock(int(file.Fd()), syscall.LOCK_EX); err != nil {
					file.Close()
				}
			}
			ch <- taken{i, file, err}
		}()
	}
	var errs []error
	for n := range fleets {
		r := <-ch
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", fleets[r.i].Dir, r.err))
			continue
		}
		go func() { // the others, as they come
			for range len(fleets) - n - 1 {
				if o := <-ch; o.err == nil {
					o.file.Close()
				}
			}
		}()
		return fleets[r.i], r.file, nil
	}
	return Fleet{}, nil, errors.Join(errs...)
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

// Port returns the port every sshd of the fleet listens on (.ci/fleet
// records it in the fleet's directory).
func (f Fleet) Port(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.Dir, "port"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
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

// Ctl runs `.ci/fleet ARGS...` (stop, start, pause, resume a host) on
// this fleet and fails the test if it fails.
func (f Fleet) Ctl(t testing.TB, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{f.Script}, args...)...)
	// The fleet's port and network are read from its state directory.
	cmd.Env = append(os.Environ(), "MAGEFAB_FLEET_DIR="+f.Dir)
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
