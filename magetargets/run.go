package magetargets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/magefab/magefab/internal/live"
	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
	"github.com/magefile/mage/mg"
)

// stdout is where targets print what a user must see (mage drops log
// output without -v). Tests replace it.
var stdout io.Writer = os.Stdout

// pools keeps one sshx.Pool per SSH configuration for the whole mage
// process, so that every target on one command line shares one connection
// per host. The connections close when the process exits: mage has no
// hook at its end, so each target makes them quiet at its own (see
// quietPools).
var pools struct {
	mu sync.Mutex
	m  map[string]*sshx.Pool
}

// quietWait bounds how long a target's end waits for keepalives in flight
// to be answered (see quietPools).
const quietWait = time.Second

// quietPools makes every pool's connections quiet (sshx.Pool.Quiet) at a
// target's end, for at most quietWait: the process may exit next, and a
// keepalive's answer arriving after that would be answered with a reset,
// which a host or a bastion logs as an error. The next target's first
// command lets the keepalives go again.
func quietPools() {
	pools.mu.Lock()
	ps := make([]*sshx.Pool, 0, len(pools.m))
	for _, p := range pools.m {
		ps = append(ps, p)
	}
	pools.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), quietWait)
	defer cancel()
	for _, p := range ps {
		p.Quiet(ctx)
	}
}

func sshPool(c Config) (*sshx.Pool, error) {
	connect := c.SSH.ConnectTimeout
	if connect == 0 {
		connect = c.Timeouts.Connect
	}
	cfg := sshx.Config{
		User:                  c.SSH.User,
		Port:                  c.SSH.Port,
		ConfigFile:            c.SSH.ConfigFile,
		KnownHostsFile:        c.SSH.KnownHostsFile,
		IdentityFiles:         c.SSH.IdentityFiles,
		StrictHostKeyChecking: c.SSH.StrictHostKeyChecking,
		ConnectTimeout:        connect,
		MaxStartups:           c.SSH.MaxStartups,
	}
	key := fmt.Sprintf("%+v", cfg)
	pools.mu.Lock()
	defer pools.mu.Unlock()
	if p, ok := pools.m[key]; ok {
		return p, nil
	}
	p, err := sshx.NewPool(cfg)
	if err != nil {
		return nil, err
	}
	if pools.m == nil {
		pools.m = map[string]*sshx.Pool{}
	}
	pools.m[key] = p
	return p, nil
}

// fleetRun is everything a host-side target needs, read when it runs.
type fleetRun struct {
	cfg     Config
	env     Environment
	hosts   []sshx.Host
	console *sshx.Console
	opts    *release.Options
	fleet   *release.Fleet
	mage    string   // how the user runs a target in this environment, for the advice in errors
	stop    *stopper // cancels the run on SIGINT, SIGTERM or SIGHUP (see catchSignals)
	// live is the summary that shows the hosts' progress instead of
	// their lines (see OutputVar); nil prints the lines. The console
	// writes through it.
	live *live.Summary
}

// newFleetRun reads and checks the configuration, the environment and its
// hosts, and prepares the fleet every host-side operation shares. The
// fleet holds interrupts while its hosts switch (see holdInterrupts), and
// its errors and warnings name mage's targets and settings (see advise).
//
// The context it returns is the run's: SIGINT, SIGTERM and SIGHUP cancel
// it (see catchSignals). The target works with it, and defers r.end(&err)
// with its named error result.
func newFleetRun(ctx context.Context, forDeploy bool) (*fleetRun, context.Context, error) {
	c, err := currentConfig()
	if err != nil {
		return nil, ctx, err
	}
	if err := c.validate(forDeploy); err != nil {
		return nil, ctx, err
	}
	env, err := selectedEnvironment(c)
	if err != nil {
		return nil, ctx, err
	}
	summary, err := liveSummary(stdout)
	if err != nil {
		return nil, ctx, err
	}
	out := stdout
	var sum *live.Summary
	if summary {
		sum = newSummary(stdout)
		out = sum
	}
	fl, err := newFleet(ctx, c, env, nil, out)
	if err != nil {
		return nil, ctx, err
	}
	r := &fleetRun{cfg: c, env: env, hosts: fl.Hosts, console: fl.Options.Console, opts: fl.Options, fleet: fl, mage: mageCommand(c), live: sum}
	if sum != nil {
		fl.Options.Progress = r.progress
	}
	fl.Switching = r.holdInterrupts
	fl.Warn = func(err error) { r.say("%v", advise(err, r.mage)) }
	return r, r.catchSignals(ctx), nil
}

// liveStates are the live summary's words for the states of release's
// events.
var liveStates = [...]live.State{
	release.EventWaiting: live.Waiting,
	release.EventStarted: live.Started,
	release.EventStep:    live.Step,
	release.EventDone:    live.Done,
	release.EventFailed:  live.Failed,
}

// progress is the fleet's Options.Progress with a live summary: the
// summary shows each event, and the console drops the hosts' step lines
// from the first host's start of a phase until the summary is finished.
func (r *fleetRun) progress(e release.Event) {
	if e.State == release.EventStarted {
		r.console.SetQuiet(true)
	}
	text := e.Step
	if e.Err != nil {
		text = e.Err.Error()
	}
	r.live.Update(e.Host, e.Phase, liveStates[e.State], text)
}

// finish ends the live summary, if there is one, leaving its last frame
// on the screen: what the run prints next (its table, its error) follows
// it, and the hosts' step lines are printed again.
func (r *fleetRun) finish() {
	if r.live != nil {
		r.live.Stop()
		r.console.SetQuiet(false)
	}
}

// NewFleet returns the release.Fleet with which this package's targets
// deploy to the environment named env of cfg, for a program that deploys
// without mage: its Options are what cfg says (with Configure's defaults
// for the fields left zero), and the settings MAGEFAB_PARALLEL,
// MAGEFAB_FETCH_LIMIT, MAGEFAB_DELIVERY, MAGEFAB_LOCK_WAIT,
// MAGEFAB_LOCK_LEASE and MAGEFAB_REINSTALL apply as they do to the
// targets.
// Its progress goes to out.
//
// hosts are the hosts it works on, e.g. from the caller's own sshx.Pool.
// Nil means the environment's (MAGEFAB_HOSTS, Environment.Hosts or the
// load balancer's), reached through one sshx.Pool per SSH configuration
// that the process shares and never closes.
//
// The Fleet has none of the targets' hooks (tests, Django, celery,
// ExtraDeployTasks, the version check) and leaves the process's signal
// handling alone: a caller that exits on an interrupt should hold its
// interrupts in Fleet.Switching. Errors name the fields of cfg that are
// wrong, as the targets' do.
func NewFleet(ctx context.Context, cfg Config, env string, hosts []sshx.Host, out io.Writer) (*release.Fleet, error) {
	c := withDefaults(cfg)
	if c.RootDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("magetargets: RootDir is empty and the working directory is unknown: %w", err)
		}
		c.RootDir = wd
	}
	if err := c.validate(true); err != nil {
		return nil, err
	}
	e, ok := c.Environments[env]
	if !ok {
		return nil, unknownEnv(c, env, "NewFleet")
	}
	return newFleet(ctx, c, e.clone(), hosts, out)
}

// newFleet builds the fleet of env from c, checked and with its defaults:
// on hosts, or when nil on the environment's hosts.
func newFleet(ctx context.Context, c Config, env Environment, hosts []sshx.Host, out io.Writer) (*release.Fleet, error) {
	if hosts == nil {
		specs, err := resolveHosts(ctx, c, env)
		if err != nil {
			return nil, err
		}
		if env.isLocal() {
			hosts = []sshx.Host{sshx.NewLocal("localhost")}
		} else {
			pool, err := sshPool(c)
			if err != nil {
				return nil, err
			}
			if hosts, err = pool.Hosts(specs); err != nil {
				return nil, err
			}
		}
	}
	console := sshx.NewConsole(out)
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name()
	}
	console.Align(append(names, "magefab")...)

	restart, err := c.restartCommand()
	if err != nil {
		return nil, err
	}
	slots, err := c.slotOptions()
	if err != nil {
		return nil, err
	}
	pip, err := splitCommand("PipInstallCommand", c.PipInstallCommand)
	if err != nil {
		return nil, err
	}
	reinstall, err := Reinstall()
	if err != nil {
		return nil, err
	}
	wait, err := LockWait()
	if err != nil {
		return nil, err
	}
	lease, err := LockLease()
	if err != nil {
		return nil, err
	}
	if lease == 0 {
		lease = c.LockLease
	}
	parallel, err := Parallel()
	if err != nil {
		return nil, err
	}
	if parallel == 0 {
		parallel = c.Parallel
	}
	fetchLimit, set, err := FetchLimit()
	if err != nil {
		return nil, err
	}
	if !set {
		fetchLimit = c.FetchLimit
	}
	pushFrom, err := c.pushFrom(env)
	if err != nil {
		return nil, err
	}
	opts := &release.Options{
		Layout: release.Layout{
			Path: c.envPath(env), ReleasesRoot: c.ReleasesRoot, Dirs: [2]string{c.ReleaseDirs[0], c.ReleaseDirs[1]},
			Current: c.CurrentLink, Virtualenv: c.Virtualenv,
		},
		SCM:          c.SCM,
		Python:       c.Python,
		PipInstall:   pip,
		Requirements: c.requirements(env),
		Reinstall:    reinstall,
		Env:          []string{"DEPLOYMENT_TYPE=" + env.DeploymentType},
		Sudo:         !c.NoSudo,
		Group:        c.DeployGroup,
		Restart:      restart,
		Slots:        slots,
		LockWait:     wait,
		LockLease:    lease,
		Owner:        owner(ctx, c),
		RunID:        runID(),
		ForwardAgent: os.Getenv("SSH_AUTH_SOCK") != "",
		PushFrom:     pushFrom,
		Console:      console,
		Verbose:      mg.Verbose(),
	}
	if err := opts.Layout.Validate(); err != nil {
		return nil, err
	}
	rollout, err := c.fleetRollout(ctx, env, names, out)
	if err != nil {
		return nil, err
	}
	return &release.Fleet{
		Hosts: hosts, Options: opts, Parallel: parallel, FetchLimit: fetchLimit, Rollout: rollout,
		PrepareTimeout: c.Timeouts.Prepare, SwitchTimeout: c.Timeouts.Switch,
	}, nil
}

// pushFrom is the local repository the hosts of env get their commits
// from (release.Options.PushFrom): RootDir's when the delivery is push
// (MAGEFAB_DELIVERY, else env's, else the Config's), "" when it is pull.
func (c Config) pushFrom(env Environment) (string, error) {
	d, err := Delivery()
	if err != nil {
		return "", err
	}
	if d == "" {
		d = env.Delivery
	}
	if d == "" {
		d = c.Delivery
	}
	if d != DeliverPush {
		return "", nil
	}
	return c.RootDir, nil
}

// holdInterrupts is the fleet's Switching: from the first switch until
// every host has switched (and, on a failure, been switched back), SIGINT,
// SIGTERM and SIGHUP do not stop mage, since stopping there would split
// the fleet. Each is reported, and the switch goes on. Mage's own handler
// would cancel the targets on Ctrl-C and exit 5 seconds later, whatever
// they are doing: signal.Ignore takes the signals from it (and from every
// other handler in the process, the run's stopper included), and this
// handler alone gets them. When done is called, the run's stopper gets
// them back (see catchSignals): a signal then stops the run, Ctrl-C
// included (mage's handler does not get SIGINT back). Without a stopper,
// they get their default action back and stop the process at once.
func (r *fleetRun) holdInterrupts() (done func()) {
	if r.stop != nil {
		r.stop.mu.Lock()
		r.stop.held++
		r.stop.mu.Unlock()
	}
	sigs := stopSignals
	signal.Ignore(sigs...) // clears every channel registered by Notify
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				r.say("%s: hosts are switching, and stopping now would split the fleet: the switch finishes first (SIGKILL stops this process at once)", signalName(s))
			case <-stop:
				return
			}
		}
	}()
	return func() {
		if r.stop != nil {
			r.stop.resume() // before Stop: the signals never lose their handler
			signal.Stop(ch)
		} else {
			signal.Stop(ch)
			signal.Reset(sigs...)
		}
		close(stop)
	}
}

// advise words err, from a release operation, for the user of mage (see
// the package function advise).
func (r *fleetRun) advise(err error) error {
	return advise(err, r.mage)
}

// splitCommand splits a configured command into words. Quotes and shell
// operators are refused: every word is quoted when the command runs.
func splitCommand(field, cmd string) ([]string, error) {
	if strings.ContainsAny(cmd, "'\"`$;&|<>(){}\\*?~#\n") {
		return nil, fmt.Errorf("magetargets: Config.%s %q: give plain words separated by spaces (no quotes, variables or shell operators)", field, cmd)
	}
	words := strings.Fields(cmd)
	if len(words) == 0 {
		return nil, fmt.Errorf("magetargets: Config.%s is empty", field)
	}
	return words, nil
}

// owner says who deploys, for the lock and the log: "alice@laptop".
func owner(ctx context.Context, c Config) string {
	user := release.Git{Dir: c.RootDir}.User(ctx)
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, user+"@"+host)
}

func runID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// say prints one line of the run's own (not a host's) progress.
func (r *fleetRun) say(format string, args ...any) {
	r.console.Println("magefab", time.Now().Format("15:04:05")+" "+fmt.Sprintf(format, args...))
}

func (r *fleetRun) hostNames() string {
	names := make([]string, len(r.hosts))
	for i, h := range r.hosts {
		names[i] = h.Name()
	}
	return strings.Join(names, ", ")
}

// summary prints the final table of a deploy or rollback, below the live
// summary's last frame.
func (r *fleetRun) summary(res []release.HostResult) {
	r.finish()
	w := len("host")
	for _, h := range res {
		w = max(w, len(h.Host))
	}
	fmt.Fprintf(stdout, "\n%-*s  %-4s  %-24s  %s\n", w, "host", "dir", "release", "seconds")
	for _, h := range res {
		note := ""
		switch {
		case h.Reused:
			note = "  (already there)"
		case h.Installed:
			note = "  (requirements installed)"
		}
		fmt.Fprintf(stdout, "%-*s  %-4s  %-24s  %.1f%s\n", w, h.Host, h.Dir, h.Release, h.Elapsed.Seconds(), note)
	}
	fmt.Fprintln(stdout)
}
