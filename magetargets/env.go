package magetargets

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
)

// Env selects the environment that the targets after it on the command
// line work on: mage env:production deploy:tag v1.2.3. Environments added
// through Config.Environments have no env:* target; select them with
// MAGEFAB_ENV.
type Env mg.Namespace

// Localhost selects the localhost environment (this machine, no SSH) for the targets after it.
func (Env) Localhost() error { return selectEnv(envLocalhost) }

// Development selects the development environment for the targets after it.
func (Env) Development() error { return selectEnv(envDevelopment) }

// Staging selects the staging environment for the targets after it.
func (Env) Staging() error { return selectEnv(envStaging) }

// Production selects the production environment for the targets after it.
func (Env) Production() error { return selectEnv(envProduction) }

// selectEnv records name as the environment of the targets that run after
// this one in the same mage process.
func selectEnv(name string) error {
	c, err := currentConfig()
	if err != nil {
		return err
	}
	if _, ok := c.Environments[name]; !ok {
		return unknownEnv(c, name, "env:"+name)
	}
	state.mu.Lock()
	defer state.mu.Unlock()
	state.env = name
	return nil
}

// selectedEnvironment returns the environment the targets work on: the one
// an env:* target selected, else MAGEFAB_ENV, else Config.DefaultEnvironment.
func selectedEnvironment(c Config) (Environment, error) {
	state.mu.Lock()
	name, source := state.env, "the env:* target"
	state.mu.Unlock()
	if name == "" {
		v, err := EnvName()
		if err != nil {
			return Environment{}, err
		}
		name, source = v, EnvVar
	}
	if name == "" {
		name, source = c.DefaultEnvironment, "Config.DefaultEnvironment"
	}
	if name == "" {
		return Environment{}, noEnvironment(c, commandLine())
	}
	e, ok := c.Environments[name]
	if !ok {
		return Environment{}, unknownEnv(c, name, source)
	}
	return e.clone(), nil
}

// noEnvironment is the error of a target run with no environment: it
// guesses none (production least of all), and offers the command line
// that was run (args, the targets and their arguments; nil when unknown)
// in each environment.
func noEnvironment(c Config, args []string) error {
	run := "<target>"
	if len(args) > 0 {
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = sshx.Quote(a)
		}
		run = strings.Join(quoted, " ")
	}
	var b strings.Builder
	b.WriteString("magetargets: no environment selected, and none is guessed: run it in the one you mean, e.g.")
	names := c.envNames()
	for _, n := range []string{envProduction, envStaging, envDevelopment, envLocalhost} {
		if _, ok := c.Environments[n]; ok {
			fmt.Fprintf(&b, "\n  mage env:%s %s", n, run)
		}
	}
	for _, n := range names {
		switch n {
		case envProduction, envStaging, envDevelopment, envLocalhost:
		default:
			fmt.Fprintf(&b, "\n  %s=%s mage %s", EnvVar, sshx.Quote(n), run)
		}
	}
	fmt.Fprintf(&b, "\nor set %s, or Config.DefaultEnvironment in the magefile, to one of: %s", EnvVar, strings.Join(names, ", "))
	return errors.New(b.String())
}

// commandLine returns the targets and arguments mage was run with, as the
// compiled magefile receives them after its own flags; nil when the
// process is not a magefile's (a test, or a program calling NewFleet).
// Tests replace it.
var commandLine = func() []string {
	args := os.Args[1:]
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if strings.HasPrefix(args[0], "-test.") {
			return nil
		}
		args = args[1:]
	}
	if len(args) == 0 || !strings.Contains(args[0], ":") {
		return nil
	}
	return args
}

func unknownEnv(c Config, name, source string) error {
	return fmt.Errorf("magetargets: unknown environment %s (from %s): choose one of: %s; add others with Config.Environments and select them with %s",
		shown(name), source, strings.Join(c.envNames(), ", "), EnvVar)
}

// resolveHosts returns the host specs the targets work on in e:
// MAGEFAB_HOSTS when set, else e.Hosts, else the hosts behind
// e.LoadBalancer or e.TargetGroup. A SOLO environment runs on this
// machine and has none.
func resolveHosts(ctx context.Context, c Config, e Environment) ([]string, error) {
	override, err := Hosts()
	if err != nil {
		return nil, err
	}
	switch {
	case e.isLocal():
		if override != nil {
			return nil, fmt.Errorf("magetargets: %s is set, but environment %s runs on this machine without SSH; unset %s or select another environment", HostsVar, e.Name, HostsVar)
		}
		return nil, nil
	case override != nil:
		return override, nil
	case len(e.Hosts) > 0:
		for _, h := range e.Hosts {
			if err := checkHost(h); err != nil {
				return nil, fmt.Errorf("magetargets: Environments[%q].Hosts: %w", e.Name, err)
			}
		}
		return append([]string(nil), e.Hosts...), nil
	case e.LoadBalancer != "":
		return loadBalancerHosts(ctx, c, e)
	case e.TargetGroup != "":
		return targetGroupHosts(ctx, c, e)
	}
	return nil, fmt.Errorf("magetargets: environment %s has no hosts: set Environments[%q].Hosts (or LoadBalancer, or TargetGroup) in magetargets.Configure, or %s=web1,web2",
		e.Name, e.Name, HostsVar)
}

// loadBalancerHosts returns the hosts behind e.LoadBalancer: the DNS names
// of every running instance registered with it, sorted, with ":port" when
// SSH.Port is not 22. Those that are OutOfService are hosts all the same,
// as they were for buedafab (left out, one would serve the old release
// once back in service); each is named in the output.
func loadBalancerHosts(ctx context.Context, c Config, e Environment) ([]string, error) {
	client, err := elbClient(ctx, c)
	if errors.Is(err, errNoAWSRegion) {
		return nil, fmt.Errorf("magetargets: environment %s: load balancer %q is not configured: %w; or list the hosts in Environments[%q].Hosts or %s=web1,web2",
			e.Name, e.LoadBalancer, err, e.Name, HostsVar)
	}
	if err != nil {
		return nil, fmt.Errorf("magetargets: environment %s: load balancer %q: %w", e.Name, e.LoadBalancer, err)
	}
	backends, err := client.Backends(ctx, e.LoadBalancer)
	if err != nil {
		return nil, fmt.Errorf("magetargets: environment %s: the hosts behind load balancer %q: %w", e.Name, e.LoadBalancer, err)
	}
	hosts := make([]string, 0, len(backends))
	for _, b := range backends {
		if err := checkHost(b.Host); err != nil {
			return nil, fmt.Errorf("magetargets: environment %s: load balancer %q in region %s gave a host that is not usable: %w", e.Name, e.LoadBalancer, client.Region(), err)
		}
		hosts = append(hosts, b.Host)
	}
	for _, b := range backends {
		if !b.InService() {
			fmt.Fprintf(stdout, "%s: load balancer %q (%s): %s (%s) is %s; it is one of the hosts all the same, so that it serves the same release when it is back in service\n",
				warningLabel(), e.LoadBalancer, e.Name, b.Host, b.ID, orUnknown(b.State))
		}
	}
	return hosts, nil
}

// targetGroupHosts returns the hosts behind e.TargetGroup: every running
// target registered with it, healthy or not (see loadBalancerHosts), by
// DNS name for target type instance or by IP address for type ip,
// sorted, with ":port" when SSH.Port is not 22. Those not in service are
// named in the output.
func targetGroupHosts(ctx context.Context, c Config, e Environment) ([]string, error) {
	client, err := elbClient(ctx, c)
	if errors.Is(err, errNoAWSRegion) {
		return nil, fmt.Errorf("magetargets: environment %s: target group %q is not configured: %w; or list the hosts in Environments[%q].Hosts or %s=web1,web2",
			e.Name, e.TargetGroup, err, e.Name, HostsVar)
	}
	if err != nil {
		return nil, fmt.Errorf("magetargets: environment %s: target group %q: %w", e.Name, e.TargetGroup, err)
	}
	targets, err := client.HostTargets(ctx, e.TargetGroup)
	if err != nil {
		return nil, fmt.Errorf("magetargets: environment %s: the hosts behind target group %q: %w", e.Name, e.TargetGroup, err)
	}
	hosts := slices.Sorted(maps.Keys(targets))
	for _, h := range hosts {
		if err := checkHost(h); err != nil {
			return nil, fmt.Errorf("magetargets: environment %s: target group %q in region %s gave a host that is not usable: %w", e.Name, e.TargetGroup, client.Region(), err)
		}
	}
	tg, err := client.TargetGroup(ctx, e.TargetGroup, targets)
	if err != nil {
		return nil, fmt.Errorf("magetargets: environment %s: target group %q: %w", e.Name, e.TargetGroup, err)
	}
	states, err := tg.States(ctx, hosts)
	if err != nil {
		return nil, fmt.Errorf("magetargets: environment %s: the hosts behind target group %q: %w", e.Name, e.TargetGroup, err)
	}
	for _, h := range hosts {
		if s := states[h]; s != release.InService {
			fmt.Fprintf(stdout, "%s: target group %q (%s): %s is %s; it is one of the hosts all the same, so that it serves the same release when it is back in service\n",
				warningLabel(), e.TargetGroup, e.Name, h, s)
		}
	}
	return hosts, nil
}

// orUnknown is a load balancer's health state, "Unknown" when it gave
// none.
func orUnknown(state string) string {
	if state == "" {
		return "Unknown"
	}
	return state
}

// Environment variables that set the options of the targets, the Mage
// convention for options that are not positional arguments.
const (
	// EnvVar names the environment to work on when no env:* target ran,
	// e.g. MAGEFAB_ENV=qa for an environment added in Config.Environments.
	EnvVar = "MAGEFAB_ENV"

	// HostsVar is a comma-separated list of host specs that replaces the
	// environment's hosts, e.g. MAGEFAB_HOSTS=web1,deploy@10.0.0.5:2222.
	HostsVar = "MAGEFAB_HOSTS"

	// TagVar answers "new release tag?" with its value; set alone, it also
	// answers yes to "Tag this release?". A tag that already exists on the
	// same commit is reused.
	TagVar = "MAGEFAB_TAG"

	// YesVar, set to 1, answers yes to every confirmation and accepts
	// every suggested answer.
	YesVar = "MAGEFAB_YES"

	// SkipTestsVar, set to 1, deploys without running the TestRunner.
	SkipTestsVar = "MAGEFAB_SKIP_TESTS"

	// DryRunVar, set to 1, shows what would be done and changes nothing.
	DryRunVar = "MAGEFAB_DRY_RUN"

	// ReinstallVar, set to 1, installs the requirements even when the
	// virtualenv's stamp says they are up to date.
	ReinstallVar = "MAGEFAB_REINSTALL"

	// ParallelVar is how many hosts to work on at once; it overrides
	// Config.Parallel.
	ParallelVar = "MAGEFAB_PARALLEL"

	// DeliveryVar is how a deploy's commits reach the hosts, pull or
	// push; it overrides Environment.Delivery and Config.Delivery.
	DeliveryVar = "MAGEFAB_DELIVERY"

	// FetchLimitVar is how many hosts at once download from the git
	// server or the package index; it overrides Config.FetchLimit, and
	// 0 means no limit.
	FetchLimitVar = "MAGEFAB_FETCH_LIMIT"

	// LockWaitVar is how long to wait for a held deploy lock, as a Go
	// duration such as 90s; unset means not to wait.
	LockWaitVar = "MAGEFAB_LOCK_WAIT"

	// LockLeaseVar is the lease of the deploy lock, as a Go duration such
	// as 2m: a lock whose holder has not refreshed it for this long (its
	// run died, or lost its network) is taken over by the next run. It
	// overrides Config.LockLease; at least 10s.
	LockLeaseVar = "MAGEFAB_LOCK_LEASE"

	// NoAutoRollbackVar, set to 1, keeps a release whose version check
	// failed instead of rolling the fleet back.
	NoAutoRollbackVar = "MAGEFAB_NO_AUTO_ROLLBACK"
)

// EnvName returns the value of MAGEFAB_ENV, "" when it is unset. A value
// that cannot be an environment's name is an error.
func EnvName() (string, error) {
	v := os.Getenv(EnvVar)
	if v != "" && !envNameRE.MatchString(v) {
		return "", varError(EnvVar, v, "is not an environment name; give one such as production, or a name from Config.Environments")
	}
	return v, nil
}

// Hosts returns the host specs listed in MAGEFAB_HOSTS, nil when it is
// unset. Each must parse with sshx.ParseSpec and appear once.
func Hosts() ([]string, error) {
	v := os.Getenv(HostsVar)
	if v == "" {
		return nil, nil
	}
	const hint = "give a comma-separated list of hosts, e.g. web1,deploy@10.0.0.5:2222"
	var hosts []string
	for _, h := range strings.Split(v, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, varError(HostsVar, v, "has an empty entry; "+hint)
		}
		if err := checkHost(h); err != nil {
			return nil, varError(HostsVar, v, err.Error()+"; "+hint)
		}
		for _, seen := range hosts {
			if seen == h {
				return nil, varError(HostsVar, v, fmt.Sprintf("lists %s twice", h))
			}
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// maxHostLen bounds a host spec: a user, a DNS name (at most 253 bytes)
// and a port.
const maxHostLen = 300

// checkHost checks a host spec with sshx.ParseSpec, and its length.
func checkHost(h string) error {
	if len(h) > maxHostLen {
		return fmt.Errorf("host %s is longer than %d bytes (want host, host:port, user@host:port or [ipv6]:port)", shown(h), maxHostLen)
	}
	_, err := sshx.ParseSpec(h)
	return err
}

// ReleaseTag returns the value of MAGEFAB_TAG, "" when it is unset. It is
// validated against Config.VersionPattern where it is used.
func ReleaseTag() string { return os.Getenv(TagVar) }

// Yes reports whether MAGEFAB_YES is set to 1, true or yes.
func Yes() (bool, error) { return boolVar(YesVar) }

// SkipTests reports whether MAGEFAB_SKIP_TESTS is set to 1, true or yes.
func SkipTests() (bool, error) { return boolVar(SkipTestsVar) }

// DryRun reports whether MAGEFAB_DRY_RUN is set to 1, true or yes.
func DryRun() (bool, error) { return boolVar(DryRunVar) }

// refuseDryRun fails when MAGEFAB_DRY_RUN is set: target has no preview,
// and running it would change the hosts.
func refuseDryRun(target string) error {
	dry, err := DryRun()
	if err != nil {
		return err
	}
	if dry {
		return fmt.Errorf("magetargets: %s has no dry run, and %s is set: nothing was done; unset %s to run %s (deploy:status shows the hosts without changing them)",
			target, DryRunVar, DryRunVar, target)
	}
	return nil
}

// Reinstall reports whether MAGEFAB_REINSTALL is set to 1, true or yes.
func Reinstall() (bool, error) { return boolVar(ReinstallVar) }

// NoAutoRollback reports whether MAGEFAB_NO_AUTO_ROLLBACK is set to 1, true
// or yes.
func NoAutoRollback() (bool, error) { return boolVar(NoAutoRollbackVar) }

// Parallel returns MAGEFAB_PARALLEL, a positive number, or 0 when it is
// unset.
func Parallel() (int, error) {
	v := os.Getenv(ParallelVar)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, varError(ParallelVar, v, "is not a positive number; give how many hosts to work on at once, e.g. 8")
	}
	return n, nil
}

// FetchLimit returns MAGEFAB_FETCH_LIMIT, a number of hosts (0 for no
// limit), and whether it is set.
func FetchLimit() (limit int, set bool, err error) {
	v := os.Getenv(FetchLimitVar)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false, varError(FetchLimitVar, v, "is not a number of hosts; give how many hosts may download from the git server or the package index at once, e.g. 8, or 0 for no limit")
	}
	return n, true, nil
}

// Delivery returns MAGEFAB_DELIVERY, pull or push, or "" when it is unset.
func Delivery() (string, error) {
	v := os.Getenv(DeliveryVar)
	if v != "" && v != DeliverPull && v != DeliverPush {
		return "", varError(DeliveryVar, v, "is not a delivery; give pull (the hosts fetch from SCM) or push (this machine sends them the release over SSH)")
	}
	return v, nil
}

// LockWait returns MAGEFAB_LOCK_WAIT, a Go duration, or 0 when it is unset.
func LockWait() (time.Duration, error) {
	v := os.Getenv(LockWaitVar)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, varError(LockWaitVar, v, "is not a duration; give how long to wait for a held lock, e.g. 90s or 5m")
	}
	return d, nil
}

// LockLease returns MAGEFAB_LOCK_LEASE, a Go duration of at least 10s, or
// 0 when it is unset.
func LockLease() (time.Duration, error) {
	v := os.Getenv(LockLeaseVar)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < minLockLease {
		return 0, varError(LockLeaseVar, v, "is not a lease; give how long a deploy lock stays its holder's without a heartbeat, at least "+minLockLease.String()+", e.g. 2m")
	}
	return d, nil
}

// minLockLease is the shortest lease: its holder refreshes a lock every
// quarter of the lease, to the second, so a shorter one could expire while
// its holder works.
const minLockLease = 10 * time.Second

// boolVar reads a yes/no variable: 1, true and yes mean yes; unset, 0,
// false and no mean no; in any case.
func boolVar(name string) (bool, error) {
	v := os.Getenv(name)
	switch strings.ToLower(v) {
	case "1", "true", "yes":
		return true, nil
	case "", "0", "false", "no":
		return false, nil
	}
	return false, varError(name, v, "is not a yes or no; give 1 (or true, yes) to turn it on, or unset it")
}

func varError(name, value, reason string) error {
	return fmt.Errorf("magetargets: %s=%s %s", name, shown(value), reason)
}
