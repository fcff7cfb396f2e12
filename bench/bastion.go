package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The bastion run (-bastion N): magefab deploys the trivial app of the
// scaling run to N fleet hosts that its ssh_config reaches only through
// one jump host (ProxyJump), every host at once (Parallel N). The jump
// host is an sshd of its own on 127.0.0.1, at the fleet's port, with
// OpenSSH's defaults for every limit: MaxStartups 10:30:100 (Debian's,
// which refuses a share of the connections being opened past 10 and
// every one past 100), MaxSessions, MaxAuthTries, LoginGraceTime, and
// AllowTcpForwarding yes. sshd -T checks that these are what it runs
// with.
//
// The benchmark starts that sshd itself rather than as a host of
// .ci/fleet: it differs from the fleet's hosts in exactly the settings
// under test, it needs none of their per-host mounts, and the tests'
// fleets stay as they are. It dies with the benchmark (and is stopped at
// the end by its PID).
//
// Each step (cold1, cold2, warm) must end with every host on the
// release, one SSH connection to the bastion (its sshd log), one per
// host, and nothing refused, dropped or reset in the bastion's log.

// bastionHost is the jump host's sshd.
type bastionHost struct {
	dir  string // sshd_config, host key, pid, log; the client's ssh_config and known_hosts
	addr string // 127.0.0.1:port
	log  string
	cmd  *exec.Cmd
}

// bastionSample is one step of the bastion run.
type bastionSample struct {
	sample
	// BastionConns are the SSH connections the bastion's sshd accepted
	// during the step.
	BastionConns int
	// BastionCPU is the CPU time of the bastion's sshd during the step.
	BastionCPU float64
	// BastionTrouble are the lines of the bastion's log during the step
	// that say a connection was refused, dropped, reset or failed.
	BastionTrouble []string `json:",omitempty"`
}

// bastionTrouble are what sshd logs when it throttles, refuses or loses
// connections.
var bastionTrouble = []string{
	"drop connection", "MaxStartups", "throttling", "reset", "refused", "error:", "fatal", "failed", "Timeout", "Broken pipe",
	"open failed", "administratively prohibited",
}

// startBastion starts the jump host's sshd on 127.0.0.1 at the fleet's
// port and writes a client config in which hosts web1..webN are reached
// only through it.
func startBastion(ctx context.Context, f *fleet, dir string, n int) (*bastionHost, error) {
	bh := &bastionHost{dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(f.port)), log: filepath.Join(dir, "sshd.log")}
	if c, err := net.DialTimeout("tcp", bh.addr, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("bastion: something already listens on %s", bh.addr)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key := filepath.Join(dir, "ssh_host_ed25519_key")
	if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bastion", "-f", key).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bastion: ssh-keygen: %v: %s", err, out)
	}
	// Only what it takes to run beside the fleet: every limit keeps its
	// default.
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress %s
HostKey %s
PidFile %s
LogLevel VERBOSE
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
`, bh.addr, key, filepath.Join(dir, "sshd.pid"))), 0o600); err != nil {
		return nil, err
	}
	eff, err := exec.CommandContext(ctx, "/usr/sbin/sshd", "-T", "-f", conf, "-C", "user=deploy,host=bastion,addr=127.0.0.1").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("bastion: sshd -T: %v: %s", err, eff)
	}
	for _, want := range []string{"maxstartups 10:30:100", "allowtcpforwarding yes"} {
		if !bytes.Contains(eff, []byte("\n"+want+"\n")) {
			return nil, fmt.Errorf("bastion: sshd -T does not say %q", want)
		}
	}

	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		return nil, err
	}
	fleetKH, err := os.ReadFile(f.knownHosts())
	if err != nil {
		return nil, err
	}
	kh := filepath.Join(dir, "known_hosts")
	fields := strings.Fields(string(pub))
	line := fmt.Sprintf("[127.0.0.1]:%d %s %s\n", f.port, fields[0], fields[1])
	if err := os.WriteFile(kh, append(fleetKH, line...), 0o644); err != nil {
		return nil, err
	}
	var cfg strings.Builder
	entry := func(name, host, jump string) {
		fmt.Fprintf(&cfg, "Host %s\n    HostName %s\n    Port %d\n    User deploy\n    IdentityFile %s\n    IdentitiesOnly yes\n    UserKnownHostsFile %s\n    StrictHostKeyChecking yes\n    BatchMode yes\n",
			name, host, f.port, f.key(), kh)
		if jump != "" {
			fmt.Fprintf(&cfg, "    ProxyJump %s\n", jump)
		}
		cfg.WriteString("\n")
	}
	entry("bastion", "127.0.0.1", "")
	for i, h := range hosts(n) {
		entry(h, addr(i), "bastion")
	}
	if err := os.WriteFile(bh.sshConfig(), []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}

	lf, err := os.OpenFile(bh.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	lf.Close()
	bh.cmd = exec.Command("/usr/sbin/sshd", "-D", "-f", conf, "-E", bh.log)
	bh.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := bh.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bastion: starting sshd: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			bh.stop()
		}
	}()
	for i := 0; !bh.listening(f.port); i++ {
		if i == 100 {
			return nil, fmt.Errorf("bastion: sshd does not listen on %s after 10s; see %s", bh.addr, bh.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A login to the bastion, and one through it, with OpenSSH's client.
	for _, h := range []string{"bastion", "web1"} {
		if out, err := exec.CommandContext(ctx, "ssh", "-F", bh.sshConfig(), "-o", "ConnectTimeout=10", h, "true").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("bastion: ssh -F %s %s true: %v: %s", bh.sshConfig(), h, err, out)
		}
	}
	ok = true
	return bh, nil
}

func (bh *bastionHost) sshConfig() string { return filepath.Join(bh.dir, "ssh_config") }

// listening reads /proc/net/tcp, so that waiting adds no connection to
// the bastion's log.
func (bh *bastionHost) listening(port int) bool {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true
		}
	}
	return false
}

// mark is the size of the bastion's log.
func (bh *bastionHost) mark() int64 {
	st, err := os.Stat(bh.log)
	if err != nil {
		return 0
	}
	return st.Size()
}

// since returns the connections accepted and the lines that tell of
// trouble, logged since mark.
func (bh *bastionHost) since(mark int64) (conns int, trouble []string) {
	b, err := os.ReadFile(bh.log)
	if err != nil || int64(len(b)) < mark {
		return -1, []string{"the bastion's log is gone or shorter"}
	}
	for _, l := range strings.Split(string(b[mark:]), "\n") {
		if strings.Contains(l, "Accepted publickey") {
			conns++
		}
		low := strings.ToLower(l)
		for _, t := range bastionTrouble {
			if strings.Contains(low, strings.ToLower(t)) {
				trouble = append(trouble, l)
				break
			}
		}
	}
	return conns, trouble
}

// cpu is the CPU time of the bastion's sshd and of its reaped children
// (a connection's processes, once it closed).
func (bh *bastionHost) cpu() float64 {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(bh.cmd.Process.Pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 15 {
		return -1
	}
	ticks := 0
	for _, fld := range fields[11:15] {
		v, _ := strconv.Atoi(fld)
		ticks += v
	}
	return float64(ticks) / 100 // USER_HZ
}

// stop ends the bastion's sshd (the listener this run started, by its
// PID) and waits for it.
func (bh *bastionHost) stop() {
	if bh.cmd == nil || bh.cmd.Process == nil {
		return
	}
	bh.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		bh.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		bh.cmd.Process.Kill()
		<-done
	}
	bh.cmd = nil
}

// bastionRun measures the deploy of the trivial app to o.bastion hosts
// through the bastion, writes bastion.md and bastion.json into the output
// directory, and fails if a step failed or broke a promise.
func (b *bench) bastionRun(ctx context.Context) error {
	n := b.o.bastion
	dir := filepath.Join(b.w.tmp, "bastion")
	bh, err := startBastion(ctx, b.f, filepath.Join(dir, "sshd"), n)
	if err != nil {
		return err
	}
	defer bh.stop()
	unit := "bbs" + b.w.id
	app := filepath.Join(dir, "app")
	if err := b.w.git(ctx, "", "clone", "-q", b.w.remote, app); err != nil {
		return err
	}
	sum, err := os.ReadFile(filepath.Join(b.w.src, "go.sum"))
	if err != nil {
		return err
	}
	if err := writeFiles(app, map[string]string{
		"magefile.go": trivialMagefile(unit, b.w.remote, bh.sshConfig()),
		"go.mod":      goMod("benchbastion"+b.w.id, b.w.src),
		"go.sum":      string(sum),
	}); err != nil {
		return err
	}
	wipe := func() error {
		return b.f.onEach(ctx, n, "sudo -n rm -rf /var/webapps/"+unit, nil)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := b.f.onEach(cctx, n, "sudo -n rm -rf /var/webapps/"+unit, nil); err != nil {
			fmt.Fprintf(os.Stderr, "bench: cleaning the bastion run's hosts: %v\n", err)
		}
	}()
	mage := func(ctx context.Context, args ...string) *exec.Cmd {
		return command(ctx, app, b.w.mageEnv(n, "MAGEFAB_PARALLEL="+strconv.Itoa(n)), b.w.mage, args...)
	}
	if out, err := mage(ctx, "env:production").CombinedOutput(); err != nil {
		return fmt.Errorf("compiling the bastion app's magefile: %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "bench: bastion run: %d host(s) through %s (MaxStartups 10:30:100), %d run(s)\n", n, bh.addr, b.o.runs)
	t := &tool{name: "bastion", unit: unit, patterns: magefabPatterns}
	rel := b.w.releases
	steps := []struct {
		op   string
		tag  string
		want string
	}{
		{"cold1", rel[0].Tag, rel[0].SHA},
		{"cold2", rel[1].Tag, rel[1].SHA},
		{"warm", rel[2].Tag, rel[2].SHA},
	}
	var out []bastionSample
	var broken []string
	for run := range b.o.runs {
		if err := wipe(); err != nil {
			return fmt.Errorf("cleaning the hosts: %w", err)
		}
		for _, st := range steps {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			mark, cpu0 := bh.mark(), bh.cpu()
			var got []sample
			check := func(ctx context.Context, n int) error { return b.liveCommit(ctx, n, unit, st.want) }
			ok := b.measureStep(ctx, n, run, t, st.op, mage(ctx, "env:production", "deploy:tag", st.tag), check, &got)
			bs := bastionSample{sample: got[0], BastionCPU: bh.cpu() - cpu0}
			bs.BastionConns, bs.BastionTrouble = bh.since(mark)
			out = append(out, bs)
			fmt.Fprintf(os.Stderr, "bench:        bastion: %d connection(s), cpu %.2fs, %d line(s) of trouble\n", bs.BastionConns, bs.BastionCPU, len(bs.BastionTrouble))
			for _, l := range bs.BastionTrouble {
				fmt.Fprintf(os.Stderr, "bench:          %s\n", l)
			}
			where := fmt.Sprintf("run %d %s", run+1, st.op)
			switch {
			case !ok:
				broken = append(broken, where+": "+bs.Err)
			case bs.BastionConns != 1:
				broken = append(broken, fmt.Sprintf("%s: %d connections to the bastion, want 1", where, bs.BastionConns))
			case len(bs.BastionTrouble) > 0:
				broken = append(broken, fmt.Sprintf("%s: the bastion logged trouble: %s", where, strings.Join(bs.BastionTrouble, " | ")))
			}
			for i, c := range bs.Conns {
				if c != 1 {
					broken = append(broken, fmt.Sprintf("%s: web%d logged %d connections, want 1", where, i+1, c))
					break
				}
			}
			if !ok {
				break
			}
		}
	}
	md := bastionMarkdown(n, out)
	js, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.o.out, "bastion.json"), js, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.o.out, "bastion.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	fmt.Fprintf(os.Stderr, "bench: bastion results in %s (bastion.md, bastion.json, logs/)\n", b.o.out)
	if len(broken) > 0 {
		return errors.New("the bastion run failed:\n  " + strings.Join(broken, "\n  "))
	}
	return nil
}

// bastionMarkdown is the table of the bastion run: one row per step.
func bastionMarkdown(n int, samples []bastionSample) string {
	var w strings.Builder
	fmt.Fprintf(&w, "### %d hosts through one bastion (MaxStartups 10:30:100)\n\n", n)
	w.WriteString("Every host at once (Parallel = hosts), reached only through the jump host. Connections and sessions are counted in the sshd logs; CPU and peak RSS are the deploying process's.\n\n")
	w.WriteString("| run | operation | wall | CPU | CPU per host | peak RSS | RSS per host | bastion connections | bastion CPU | connections per host | sessions per host (max) | trouble at the bastion | ok |\n")
	w.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, s := range samples {
		conns, _ := s.perHost(s.Conns)
		sess, most := s.perHost(s.Sessions)
		fmt.Fprintf(&w, "| %d | %s | %.2f s | %.2f s | %.1f ms | %.0f MB | %.0f KB | %d | %.2f s | %.2f | %.2f (%d) | %d | %v |\n",
			s.Run, s.Op, s.Wall, s.CPU, s.CPU/float64(n)*1000, s.MaxRSSMB, s.MaxRSSMB*1024/float64(n),
			s.BastionConns, s.BastionCPU, conns, sess, most, len(s.BastionTrouble), s.OK)
	}
	w.WriteString("\n")
	return w.String()
}
