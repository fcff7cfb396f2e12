// Command bench measures deploys of one small Python web app with
// magefab, Capistrano 3 and Fabric 2 on a local fleet of real OpenSSH
// hosts (.ci/fleet), and reports medians, ratios and SSH sessions per
// host. Run it as root from the repository root:
//
//	go run ./bench -hosts 1,4,16 -runs 5
//	go tool mage bench                  # the same, flags from BENCH_FLAGS
//	BENCH_FLAGS=-smoke go tool mage bench
//
// The app is the e2e tests' app (a stdlib HTTP server answering /version
// with its commit, one wheel from a local wheelhouse, an init script); the
// three tools deploy it side by side, each under its own unit and port.
// Every (host count, run) starts from empty hosts and does, for each tool
// in turn (the order alternates between steps and runs):
//
//	cold1     first deploy of v0.1.0
//	cold2     first deploy into the second release dir: v0.2.0
//	warm      a new commit, v0.3.0, with unchanged requirements
//	redeploy  v0.3.0 again, the live release
//	rollback  the tool's own rollback
//
// and, twice per run, the floor: magefab's maint:restart, one session per
// host running the app's own restart. After each command every host's app
// is asked over HTTP for its commit. SSH connections and sessions are
// counted in the hosts' sshd logs.
//
// With -load RATE (e.g. -load 200) every deploy and rollback that replaces
// a running app (cold2, warm, redeploy, rollback) runs under a steady load
// of RATE requests per second, round robin over every host's /version
// (internal/load: a new connection per request, 2 s timeout), and each run
// measures an idle baseline (the same load, no deploy) once the apps run.
// The results get a table "Requests during a switch": requests, failed,
// worst outage of any host, p50/p99 latency, idle p99 and wall time. -load
// adds two magefab tools that switch slots (magetargets.Slots) to the
// default tools: magefab-slots (front mode: an nginx per host proxies to
// the serving slot's unix socket through current) and magefab-port (the
// slots share the app's port with SO_REUSEPORT). A request a slot tool
// fails makes the benchmark fail, after everything is measured; the
// classic tools' failed requests are only reported. -smoke includes
// every tool and -load 200.
//
// With -rolling N the benchmark compares, on every host count of -hosts, a
// classic (restart) switch all at once (magefab-allatonce) with a rolling
// one (magefab-rolling: magetargets.Rollout with Canary "1", Batch "25%",
// a health window and Rollout.HAProxy), one app behind an HAProxy on
// loopback that checks every host's /version: N deploys and N rollbacks
// each, alternating, under the load (-load, 200 unless given) sent
// through HAProxy's frontend, while HAProxy's stats socket is read for
// the hosts out of service (see rolling.go). Its table "Rolling switch
// behind a load balancer" gives failed requests, median wall times and
// their ratio, and the most hosts out at once against the rollout's limit
// (MaxOut's default, one batch). A request the rolling switch fails makes
// the benchmark fail. Without -tools, -rolling measures only this
// comparison:
//
//	go run ./bench -rolling 10 -hosts 16
//
// With -push N the benchmark compares, on N hosts, how a trivial app's
// commits reach them (push.go): every host fetching from a git server on
// loopback (pull), the same with Config.FetchLimit 8 (pull-cap), and
// Config.Delivery push, the hosts' SCM a URL where nothing listens. Its
// table gives wall time, the bytes this process sent the hosts, and the
// git server's upload-pack requests (and the most at once):
//
//	go run ./bench -hosts 1 -push 64 -runs 3
//
// With -bastion N magefab deploys a trivial app to N hosts that it
// reaches only through one jump host, an sshd with the default
// MaxStartups, every host at once; each step must end with every host on
// the release, one connection to the jump host and nothing refused or
// reset in its log (bastion.go, whose table is bastion.md):
//
//	go run ./bench -bastion 128 -runs 1
//
// The benchmark starts a fleet of its own (-fleet-dir, -fleet-port) unless
// one is up there with enough hosts, and stops it at the end if it started
// it. It never starts or stops the tests' fleet. It installs Capistrano
// and Fabric from Debian packages when they are missing, and removes what
// it put on the hosts, in /srv and in /etc/init.d.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var allOps = []string{"cold", "warm", "redeploy", "rollback"}
var allTools = []string{"magefab", "capistrano", "fabric", "magefab-slots", "magefab-port"}

// classicTools are the tools measured when -tools is not given. The slot
// tools are measured when named, or with -load.
var classicTools = []string{"magefab", "capistrano", "fabric"}

type options struct {
	hosts     []int
	runs      int
	ops       []string
	tools     []string
	scale     []int
	smoke     bool
	fleetDir  string
	fleetPort int
	keepFleet bool
	out       string
	rev       string
	from      []string // samples.json files to report the scaling run from, measuring nothing
	verbose   bool
	load      float64       // requests per second during each deploy and rollback; 0 is off
	idle      time.Duration // how long the idle baseline of the load lasts
	rolling   int           // deploys and rollbacks per tool of the rolling-switch comparison; 0 is off
	push      []int         // host counts of the delivery comparison (push.go); empty is off
	bastion   int           // hosts of the bastion run (bastion.go); 0 is off
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 253 {
			return nil, fmt.Errorf("%q is not a host count (1..253)", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func nameList(s string, known []string, what string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !slices.Contains(known, f) {
			return nil, fmt.Errorf("unknown %s %q (known: %s)", what, f, strings.Join(known, ","))
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s given", what)
	}
	return out, nil
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	hostsFlag := fs.String("hosts", "1,4,16", "host counts to measure, comma-separated")
	runs := fs.Int("runs", 5, "runs per host count (medians are reported)")
	ops := fs.String("ops", strings.Join(allOps, ","), "operations to report: cold,warm,redeploy,rollback")
	tools := fs.String("tools", "", "tools to measure: magefab,capistrano,fabric,magefab-slots,magefab-port (default: the first three, and the slot tools too with -load)")
	scale := fs.String("scale", "", "host counts for the scaling run of magefab with a trivial app, e.g. 1,16,64,128; empty skips it; without -tools, nothing else is measured")
	smoke := fs.Bool("smoke", false, "quick check: 2 hosts, one run, every tool and operation, no scaling run, a short load run (-load 200 unless given); exits non-zero if any verification fails or a slot tool fails a request")
	load := fs.Float64("load", 0, "requests per second sent, round robin over every host's app, during each deploy and rollback (e.g. 200); 0 is off")
	rolling := fs.Int("rolling", 0, "compare a restart switch all at once with a rolling one (canary 1, batches of 25%) behind a loopback HAProxy, N deploys and N rollbacks each per host count, under the load through HAProxy (-load 200 unless given); 0 is off; without -tools, nothing else is measured")
	push := fs.String("push", "", "host counts for the delivery comparison (pull, pull with FetchLimit, push) of a trivial app, e.g. 64; empty skips it; without -tools, nothing else is measured")
	bastion := fs.Int("bastion", 0, "deploy the trivial app to N hosts reached only through one jump host whose sshd has the default MaxStartups (see bastion.go); 0 is off; without -tools, nothing else is measured")
	idle := fs.Duration("load-idle", 3*time.Second, "with -load: how long the idle baseline (load with no deploy) lasts per tool and run")
	fleetDir := fs.String("fleet-dir", "/tmp/magefab-bench-fleet", "state directory of the benchmark's fleet (MAGEFAB_FLEET_DIR)")
	fleetPort := fs.Int("fleet-port", 2222, "sshd port of the benchmark's fleet (MAGEFAB_FLEET_PORT)")
	keepFleet := fs.Bool("keep-fleet", false, "leave a fleet the benchmark started running")
	out := fs.String("out", "", "directory for the logs, samples.json and results.md (default: a new directory under /tmp)")
	verbose := fs.Bool("v", false, "show every tool's output live")
	rev := fs.String("rev", "", "magefab commit to measure, exported with git archive (default: the working tree)")
	scaleFrom := fs.String("scale-from", "", "samples.json files of earlier scaling runs, comma-separated: report them together (scaling.md and scaling.svg in -out) and measure nothing")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	var from []string
	for f := range strings.SplitSeq(*scaleFrom, ",") {
		if f = strings.TrimSpace(f); f != "" {
			from = append(from, f)
		}
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	o := options{runs: *runs, smoke: *smoke, fleetDir: *fleetDir, fleetPort: *fleetPort, keepFleet: *keepFleet, out: *out, rev: *rev, verbose: *verbose, load: *load, idle: *idle, rolling: *rolling, bastion: *bastion, from: from}
	if o.load < 0 || o.load > 5000 {
		return o, fmt.Errorf("-load %g: want 0 (off) to 5000 requests per second", o.load)
	}
	if o.bastion < 0 || o.bastion > 253 {
		return o, fmt.Errorf("-bastion %d: want 0 (off) or a host count (1..253)", o.bastion)
	}
	if o.rolling < 0 {
		return o, fmt.Errorf("-rolling %d: want 0 (off) or a number of deploys and rollbacks", o.rolling)
	}
	if o.idle < 500*time.Millisecond {
		return o, fmt.Errorf("-load-idle %s: want at least 500ms", o.idle)
	}
	var err error
	if o.hosts, err = intList(*hostsFlag); err != nil {
		return o, err
	}
	if o.scale, err = intList(*scale); err != nil {
		return o, err
	}
	if o.push, err = intList(*push); err != nil {
		return o, err
	}
	if o.ops, err = nameList(*ops, allOps, "operation"); err != nil {
		return o, err
	}
	switch {
	case *tools != "":
		if o.tools, err = nameList(*tools, allTools, "tool"); err != nil {
			return o, err
		}
	case (o.rolling > 0 || len(o.scale) > 0 || len(o.push) > 0 || o.bastion > 0) && !o.smoke:
		o.tools = nil // the rolling switch or the scaling run alone
	case o.load > 0 || o.smoke:
		o.tools = allTools
	default:
		o.tools = classicTools
	}
	if o.smoke {
		o.hosts, o.runs, o.ops, o.scale, o.push = []int{2}, 1, allOps, nil, nil
		o.bastion = 0
		if *tools == "" {
			o.tools = allTools
		}
		if o.load == 0 {
			o.load = 200
		}
	}
	if o.rolling > 0 && o.load == 0 {
		o.load = 200
	}
	if len(o.hosts) == 0 || o.runs < 1 {
		return o, errors.New("need at least one host count and one run")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// moduleRoot is the magefab repository: the working directory or a parent
// of it holding magefab's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/magefab/magefab\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark from the magefab repository")
		}
		dir = parent
	}
}

// peerPackages are the Debian packages the peers need: Capistrano (with
// net-ssh's ed25519 support, the fleet's key type) and Fabric (the fab
// command is in the fabric package).
var peerPackages = []string{"capistrano", "ruby-ed25519", "ruby-bcrypt-pbkdf", "python3-fabric", "fabric", "python3-venv", "python3-pip", "git", "openssh-client"}

// frontPackages are what magefab-slots needs: nginx, the front server.
var frontPackages = []string{"nginx"}

// rollingPackages are what the rolling switch needs: the load balancer.
var rollingPackages = []string{"haproxy"}

// ensurePackages installs the missing packages with apt-get, without
// letting maintainer scripts start services.
func ensurePackages(ctx context.Context, pkgs []string) error {
	var missing []string
	for _, p := range pkgs {
		out, _ := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${db:Status-Status}", p).Output()
		if strings.TrimSpace(string(out)) != "installed" {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Fprintf(os.Stderr, "bench: installing %s\n", strings.Join(missing, " "))
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return err
		}
		defer os.Remove(policy)
	}
	for _, args := range [][]string{{"update", "-q"}, append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("apt-get %s: %w", args[0], err)
		}
	}
	return nil
}

func run(o options) error {
	if len(o.from) > 0 {
		return reportScaling(o)
	}
	if os.Geteuid() != 0 {
		return errors.New("must run as root: it starts a fleet of sshd hosts and writes /etc/init.d and /srv")
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pkgs := peerPackages
	if slices.Contains(o.tools, "magefab-slots") {
		pkgs = append(slices.Clone(pkgs), frontPackages...)
	}
	if o.rolling > 0 {
		pkgs = append(slices.Clone(pkgs), rollingPackages...)
	}
	if err := ensurePackages(ctx, pkgs); err != nil {
		return err
	}
	if o.out == "" {
		if o.out, err = os.MkdirTemp("", "magefab-bench-results-"); err != nil {
			return err
		}
	}
	logs := filepath.Join(o.out, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}

	size := slices.Max(slices.Concat(o.hosts, o.scale, o.push, []int{o.bastion}))
	f, err := openFleet(ctx, root, o.fleetDir, o.fleetPort, size)
	if err != nil {
		return err
	}
	if o.keepFleet {
		f.started = false
	}
	defer f.close()

	id := randomID()
	// Ports 9400-9899, apart from the e2e tests' 8100-8899.
	base := 9400 + int(id[0])%50*10
	units := map[string]string{"magefab": "bmf" + id, "capistrano": "bcap" + id, "fabric": "bfab" + id, "magefab-slots": "bms" + id, "magefab-port": "bmp" + id}
	w, err := newWorkspace(ctx, root, o.rev, id, units["magefab"], f.sshConfig())
	if err != nil {
		return err
	}
	defer w.cleanup()

	b := &bench{o: o, f: f, w: w, logs: logs, start: time.Now()}
	all := map[string]*tool{
		"magefab":    newMagefab(w, units["magefab"], base+1),
		"capistrano": newCapistrano(w, f, units["capistrano"], base+2),
		"fabric":     newFabric(w, f, units["fabric"], base+3),
	}
	for i, name := range []string{"magefab-slots", "magefab-port"} {
		if slices.Contains(o.tools, name) {
			if all[name], err = newSlotTool(w, f, name, units[name], base+4+i, name == "magefab-slots"); err != nil {
				return err
			}
		}
	}
	if len(o.tools) > 0 && !slices.Contains(o.tools, "magefab") {
		// The floor is magefab's maint:restart of its own app: deploy
		// it anyway, unreported.
		b.floorOnly = true
	}
	for _, name := range allTools {
		if slices.Contains(o.tools, name) || (name == "magefab" && len(o.tools) > 0) {
			t := all[name]
			write := func() error { return w.writeInit(t.unit, t.port, t.current) }
			if t.slots {
				write = func() error { return w.writeSlotInit(t.unit, t.slotPort) }
			}
			if err := write(); err != nil {
				return err
			}
			b.tools = append(b.tools, t)
		}
	}
	if o.rolling > 0 {
		// The app of the comparison on base+6, HAProxy's frontend on base+7.
		if b.roll, err = newRollingRun(w, "brl"+id, base+6, base+7); err != nil {
			return err
		}
	}
	b.maxHosts = size
	defer b.cleanupHosts()

	fmt.Fprintf(os.Stderr, "bench: hosts %v, %d run(s), tools %s, rolling %d, fleet %s port %d; logs in %s\n",
		o.hosts, o.runs, strings.Join(o.tools, ","), o.rolling, f.dir, f.port, logs)
	if len(b.tools) > 0 {
		if err := b.rounds(ctx); err != nil {
			return err
		}
	}
	if b.roll != nil {
		if err := b.rolling(ctx); err != nil {
			return err
		}
	}
	if len(o.scale) > 0 {
		if err := b.scaling(ctx); err != nil {
			return err
		}
	}
	if len(o.push) > 0 {
		if err := b.pushing(ctx); err != nil {
			return err
		}
		if len(b.tools) == 0 && b.roll == nil && len(o.scale) == 0 {
			return nil // the delivery comparison alone: push.go reported it
		}
	}
	if o.bastion > 0 {
		if err := b.bastionRun(ctx); err != nil {
			return err
		}
		if len(b.tools) == 0 && b.roll == nil && len(o.scale) == 0 && len(o.push) == 0 {
			return nil // bastion.md is its report
		}
	}
	return b.report()
}

// rounds measures every tool on every host count, o.runs times.
func (b *bench) rounds(ctx context.Context) error {
	o := b.o
	if err := b.warmup(ctx); err != nil {
		return err
	}
	for _, n := range o.hosts {
		for _, t := range b.tools {
			if err := t.configure(n); err != nil {
				return err
			}
			if t.up != nil {
				if err := t.up(ctx, n); err != nil {
					return err
				}
			}
		}
		for r := range o.runs {
			if err := b.round(ctx, n, r); err != nil {
				return err
			}
		}
	}
	return nil
}
