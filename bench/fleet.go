package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// defaultFleetDir is the fleet the tests use: the benchmark never starts
// or stops it.
const defaultFleetDir = "/tmp/magefab-fleet"

// fleet is a running .ci/fleet: hosts web1..webN on 127.0.0.2.., one
// sshd each, all on one port.
type fleet struct {
	script  string // .ci/fleet
	dir     string // MAGEFAB_FLEET_DIR
	port    int    // MAGEFAB_FLEET_PORT
	size    int    // hosts up
	started bool   // this run started it, so it stops it
	lock    *os.File
}

func (f *fleet) env() []string {
	return append(os.Environ(), "MAGEFAB_FLEET_DIR="+f.dir, "MAGEFAB_FLEET_PORT="+strconv.Itoa(f.port))
}

func (f *fleet) ctl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "bash", append([]string{f.script}, args...)...)
	cmd.Env = f.env()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// openFleet uses the fleet in dir if it is up with at least n hosts on
// port, and otherwise starts one with n hosts (never the tests' default
// fleet). It takes the fleet's test lock, so that tests and benchmarks
// never share hosts at once.
func openFleet(ctx context.Context, root, dir string, port, n int) (*fleet, error) {
	for try := 0; ; try++ {
		f, err := openFleetOnce(ctx, root, dir, port, n)
		if err != nil {
			return nil, err
		}
		// Another run that held the lock may have stopped the fleet we
		// found up: look again, now that nobody else uses it.
		if up, size := f.status(ctx); (up && size >= n) || try == 2 {
			return f, nil
		}
		fmt.Fprintf(os.Stderr, "bench: the fleet in %s went down while waiting for its lock\n", f.dir)
		f.close()
	}
}

func openFleetOnce(ctx context.Context, root, dir string, port, n int) (*fleet, error) {
	f := &fleet{script: filepath.Join(root, ".ci", "fleet"), dir: filepath.Clean(dir), port: port}
	if up, size := f.status(ctx); up && size >= n && f.recordedPort() == port {
		f.size = size
	} else {
		if f.dir == defaultFleetDir || port == 22 {
			return nil, fmt.Errorf("the fleet in %s (port %d) is not up with %d hosts, and the benchmark does not start or stop the tests' fleet: use -fleet-dir and -fleet-port of its own", f.dir, port, n)
		}
		fmt.Fprintf(os.Stderr, "bench: starting a fleet of %d hosts in %s, port %d\n", n, f.dir, port)
		if err := f.ctl(ctx, "up", strconv.Itoa(n)); err != nil {
			return nil, fmt.Errorf(".ci/fleet up %d: %w", n, err)
		}
		f.size, f.started = n, true
	}
	lock, err := os.OpenFile(filepath.Join(f.dir, "test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		f.close()
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		lock.Close()
		f.close()
		return nil, err
	}
	f.lock = lock
	return f, nil
}

// status says whether every host of the fleet in f.dir is up, and how many
// there are.
func (f *fleet) status(ctx context.Context) (bool, int) {
	if _, err := os.Stat(filepath.Join(f.dir, "ssh_config")); err != nil {
		return false, 0
	}
	cmd := exec.CommandContext(ctx, "bash", f.script, "status")
	cmd.Env = f.env()
	out, err := cmd.Output()
	if err != nil {
		return false, 0
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, l := range lines {
		if !strings.Contains(l, "\tup") {
			return false, len(lines)
		}
	}
	return len(lines) > 0, len(lines)
}

func (f *fleet) recordedPort() int {
	b, err := os.ReadFile(filepath.Join(f.dir, "port"))
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return p
}

// close releases the lock and stops the fleet if this run started it.
func (f *fleet) close() {
	if f.lock != nil {
		f.lock.Close()
		f.lock = nil
	}
	if f.started {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := f.ctl(ctx, "down"); err != nil {
			fmt.Fprintf(os.Stderr, "bench: .ci/fleet down: %v\n", err)
		}
		f.started = false
	}
}

func (f *fleet) sshConfig() string  { return filepath.Join(f.dir, "ssh_config") }
func (f *fleet) key() string        { return filepath.Join(f.dir, "id_ed25519") }
func (f *fleet) knownHosts() string { return filepath.Join(f.dir, "known_hosts") }

// hosts returns the aliases web1..webN.
func hosts(n int) []string {
	h := make([]string, n)
	for i := range h {
		h[i] = fmt.Sprintf("web%d", i+1)
	}
	return h
}

// addr is the address of host webI.
func addr(i int) string { return fmt.Sprintf("127.0.0.%d", i+2) }

func addrs(n int) []string {
	a := make([]string, n)
	for i := range a {
		a[i] = addr(i)
	}
	return a
}

func (f *fleet) logFile(host string) string { return filepath.Join(f.dir, host+".log") }

// marks returns the size of each host's sshd log, to count what a run adds.
func (f *fleet) marks(n int) []int64 {
	m := make([]int64, n)
	for i, h := range hosts(n) {
		if st, err := os.Stat(f.logFile(h)); err == nil {
			m[i] = st.Size()
		}
	}
	return m
}

// counts returns, per host, the SSH connections ("Accepted publickey") and
// sessions ("Starting session") logged since marks.
func (f *fleet) counts(marks []int64) (conns, sessions []int) {
	conns, sessions = make([]int, len(marks)), make([]int, len(marks))
	for i, h := range hosts(len(marks)) {
		b, err := os.ReadFile(f.logFile(h))
		if err != nil || int64(len(b)) < marks[i] {
			conns[i], sessions[i] = -1, -1
			continue
		}
		b = b[marks[i]:]
		conns[i] = bytes.Count(b, []byte("Accepted publickey"))
		sessions[i] = bytes.Count(b, []byte("Starting session"))
	}
	return conns, sessions
}

// acceptPoll is how often watchAccepts looks at the hosts' sshd logs.
const acceptPoll = 50 * time.Millisecond

// watchAccepts records when the hosts' sshd accepted each SSH connection
// ("Accepted publickey") logged after marks, in seconds since start, to
// within acceptPoll (sshd's log lines carry no time of their own). stop
// ends the watch and returns the times, sorted.
func (f *fleet) watchAccepts(marks []int64, start time.Time) (stop func() []float64) {
	done := make(chan struct{})
	result := make(chan []float64, 1)
	go func() {
		var times []float64
		read := slices.Clone(marks) // how far each log was read, to a whole line
		look := func() {
			now := time.Since(start).Seconds()
			for i, h := range hosts(len(marks)) {
				st, err := os.Stat(f.logFile(h))
				if err != nil || st.Size() <= read[i] {
					continue
				}
				lf, err := os.Open(f.logFile(h))
				if err != nil {
					continue
				}
				b := make([]byte, st.Size()-read[i])
				n, _ := lf.ReadAt(b, read[i])
				lf.Close()
				b = b[:bytes.LastIndexByte(b[:n], '\n')+1]
				read[i] += int64(len(b))
				for range bytes.Count(b, []byte("Accepted publickey")) {
					times = append(times, now)
				}
			}
		}
		t := time.NewTicker(acceptPoll)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				look()
			case <-done:
				look()
				sort.Float64s(times)
				result <- times
				return
			}
		}
	}()
	return func() []float64 {
		close(done)
		return <-result
	}
}

// onEach runs a shell command as the deploy user on hosts web1..webN at
// once, with the system ssh client, and gives check each host's trimmed
// output; it returns every host's failure, or check's error.
func (f *fleet) onEach(ctx context.Context, n int, script string, check func(out string) error) error {
	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
	)
	for _, h := range hosts(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, "ssh", "-F", f.sshConfig(), "-o", "ConnectTimeout=20", h, script)
			b, err := cmd.CombinedOutput()
			out := strings.TrimSpace(string(b))
			if err != nil {
				err = fmt.Errorf("%v: %s", err, out)
			} else if check != nil {
				err = check(out)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, h+": "+err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// hostCPU returns, per host, the CPU seconds that the host's sshd and
// everything it ran have used so far: the listener's own time plus that
// of its reaped descendants (every connection, and every command a
// session ran, once it ended). A daemon a command started (the app) is
// re-parented away and not counted.
func (f *fleet) hostCPU(n int) []float64 {
	out := make([]float64, n)
	for i, h := range hosts(n) {
		out[i] = -1
		b, err := os.ReadFile(filepath.Join(f.dir, h, "pid"))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		// after the command name: state(0) ppid ... utime(11) stime cutime cstime(14)
		if len(fields) < 15 {
			continue
		}
		ticks := 0
		for _, fld := range fields[11:15] {
			v, _ := strconv.Atoi(fld)
			ticks += v
		}
		out[i] = float64(ticks) / 100 // USER_HZ
	}
	return out
}
