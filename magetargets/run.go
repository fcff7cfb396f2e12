package magetargets

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
	"github.com/magefile/mage/mg"
)

// stdout is where targets print what a user must see (mage drops log
// output without -v). Tests replace it.
var stdout io.Writer = os.Stdout

// pools keeps one sshx.Pool per SSH configuration for the whole mage
// process, so that every target on one command line shares one connection
// per host. The connections close when the process exits.
var pools struct {
	mu sync.Mutex
	m  map[string]*sshx.Pool
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
}

// newFleetRun reads and checks the configuration, the environment and its
// hosts, and prepares the options every host-side operation shares.
func newFleetRun(ctx context.Context, forDeploy bool) (*fleetRun, error) {
	c, err := currentConfig()
	if err != nil {
		return nil, err
	}
	if err := c.validate(forDeploy); err != nil {
		return nil, err
	}
	env, err := selectedEnvironment(c)
	if err != nil {
		return nil, err
	}
	r := &fleetRun{cfg: c, env: env, console: sshx.NewConsole(stdout)}
	specs, err := resolveHosts(ctx, c, env)
	if err != nil {
		return nil, err
	}
	if env.isLocal() {
		r.hosts = []sshx.Host{sshx.NewLocal("localhost")}
	} else {
		pool, err := sshPool(c)
		if err != nil {
			return nil, err
		}
		if r.hosts, err = pool.Hosts(specs); err != nil {
			return nil, err
		}
	}
	names := make([]string, len(r.hosts))
	for i, h := range r.hosts {
		names[i] = h.Name()
	}
	r.console.Align(append(names, "magefab")...)

	restart, err := c.restartCommand()
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
	parallel, err := Parallel()
	if err != nil {
		return nil, err
	}
	if parallel == 0 {
		parallel = c.Parallel
	}
	r.opts = &release.Options{
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
		LockWait:     wait,
		Owner:        owner(ctx, c),
		RunID:        runID(),
		Mage:         mageCommand(c),
		ForwardAgent: os.Getenv("SSH_AUTH_SOCK") != "",
		Console:      r.console,
		Verbose:      mg.Verbose(),
	}
	if err := r.opts.Layout.Validate(); err != nil {
		return nil, err
	}
	r.fleet = &release.Fleet{
		Hosts: r.hosts, Options: r.opts, Parallel: parallel,
		PrepareTimeout: c.Timeouts.Prepare, SwitchTimeout: c.Timeouts.Switch,
		HoldInterrupts: true,
	}
	return r, nil
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

// summary prints the final table of a deploy or rollback.
func (r *fleetRun) summary(res []release.HostResult) {
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
