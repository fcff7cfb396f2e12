package magetargets

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/haproxy"
)

// Rollout switches the fleet in stages instead of all at once: Canary
// hosts first, checked over Window (VersionURL, Checks times, every check
// passing), then batches of Batch hosts, each checked before the next.
// Whatever stage fails, every host that switched in any stage is switched
// back, as with the switch all at once. Zero fields keep the switch all at
// once.
//
// Canary and Batch are a host count ("2") or a share of the environment's
// hosts ("25%", rounded up, at least one host).
//
// # Load balancers
//
// A staged rollout goes through the load balancer in front of the
// hosts: the environment's Environment.LoadBalancer (a Classic Load
// Balancer) or Environment.TargetGroup (an Application or Network Load
// Balancer's target group), or HAProxy. Each stage is taken out of it
// and waits until its connections drained, switches, is checked
// directly, and is put back and waited healthy before the next stage
// goes; never more than MaxOut hosts are out, nor the last hosts in
// service. If a stage fails, the stages before it are switched back
// through the load balancer as they went forward. Every host of the run
// must be behind it: one that is not is an error, one that is out of
// service is named. A rollout with neither Canary nor Batch switches
// every host at once, and leaves the environment's load balancer alone;
// HAProxy, which is there for the rollout only, needs Canary or Batch.
// HAProxy and an environment's load balancer cannot both be used: a
// rollout goes through one. A run on one host does not take it out of
// the load balancer (that would leave it no host in service), and says
// so.
type Rollout struct {
	Canary string
	Batch  string
	// Window is how long the canary and each batch are checked after
	// they switched; zero means one check, at once.
	Window time.Duration
	// Checks is how many checks spread over Window must pass; zero means
	// 3 (1 without a Window).
	Checks int

	// HAProxy, when its Socket is set, is the load balancer in front of
	// the hosts: each stage is drained out of its backend before it
	// switches, and made ready again once HAProxy's own health check
	// passes. Canary or Batch must then be set, and leave hosts in
	// service.
	HAProxy HAProxy
	// MaxOut bounds how many hosts are out of the load balancer at once;
	// zero means the largest stage.
	MaxOut int
	// BalancerTimeout bounds each wait for the load balancer (drained,
	// healthy); zero means 5m.
	BalancerTimeout time.Duration
}

// HAProxy is an HAProxy backend whose servers are the hosts, reached
// through HAProxy's runtime API.
type HAProxy struct {
	// Socket is the stats socket at level admin: a path on this machine,
	// or host:port (stats socket ipv4@10.0.0.2:9999 level admin).
	Socket string
	// Backend is the backend whose servers are the hosts.
	Backend string
	// Servers maps a host, as the environment names it, to its server in
	// Backend; a host not in it is the server of the same name.
	Servers map[string]string
}

// count reads a host count or a share of n hosts: "" is 0.
func rolloutCount(field, v string, n int) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f > 100 {
			return 0, fmt.Errorf("magetargets: Config.Rollout.%s %q: give a share of the hosts between 0%% and 100%%, e.g. 25%%, or a host count", field, v)
		}
		return max(int(math.Ceil(f*float64(n)/100)), 1), nil
	}
	c, err := strconv.Atoi(v)
	if err != nil || c < 0 {
		return 0, fmt.Errorf("magetargets: Config.Rollout.%s %q: give a host count, e.g. 2, or a share of the hosts, e.g. 25%%", field, v)
	}
	return c, nil
}

// rollout is Rollout for the n hosts of a run.
func (c Config) rollout(n int) (release.Rollout, error) {
	r := c.Rollout
	canary, err := rolloutCount("Canary", r.Canary, n)
	if err != nil {
		return release.Rollout{}, err
	}
	batch, err := rolloutCount("Batch", r.Batch, n)
	if err != nil {
		return release.Rollout{}, err
	}
	if r.Window < 0 || r.Checks < 0 {
		return release.Rollout{}, fmt.Errorf("magetargets: Config.Rollout: Window (%s) and Checks (%d) cannot be negative", r.Window, r.Checks)
	}
	out := release.Rollout{Canary: canary, Batch: batch, Window: r.Window, Checks: r.Checks, MaxOut: r.MaxOut, BalancerTimeout: r.BalancerTimeout}
	if h := r.HAProxy; h.Socket != "" {
		if h.Backend == "" {
			return release.Rollout{}, fmt.Errorf("magetargets: Config.Rollout.HAProxy.Backend is empty: give the backend whose servers are the hosts")
		}
		out.Balancer = &haproxy.Balancer{Socket: h.Socket, Backend: h.Backend, Servers: h.Servers}
	}
	if h := r.HAProxy; h.Socket != "" && canary == 0 && batch == 0 {
		return release.Rollout{}, fmt.Errorf("magetargets: Config.Rollout.HAProxy is set, and neither Canary nor Batch: a switch through HAProxy goes in batches, each taken out while the others serve; set Batch (e.g. \"1\" or \"25%%\"), or empty HAProxy.Socket to switch every host at once")
	}
	if (r.Window > 0 || r.Checks > 0) && canary == 0 && batch == 0 {
		return release.Rollout{}, fmt.Errorf("magetargets: Config.Rollout: Window and Checks check a canary or batches, and neither Canary nor Batch is set: give one (e.g. Canary: \"1\"), or leave Window and Checks zero")
	}
	if r.MaxOut < 0 || r.BalancerTimeout < 0 {
		return release.Rollout{}, fmt.Errorf("magetargets: Config.Rollout: MaxOut (%d) and BalancerTimeout (%s) cannot be negative", r.MaxOut, r.BalancerTimeout)
	}
	return out, nil
}

// fleetRollout is Rollout for a run on hosts (by name) in env. A staged
// rollout goes through env's LoadBalancer or TargetGroup (see Rollout);
// what it finds out of service there is said on out. It asks the load
// balancer API which instances or targets the hosts are, and their
// states; it changes nothing.
func (c Config) fleetRollout(ctx context.Context, env Environment, hosts []string, out io.Writer) (release.Rollout, error) {
	r, err := c.rollout(len(hosts))
	if err != nil || (r.Canary == 0 && r.Batch == 0) {
		return r, err
	}
	field, lb := "LoadBalancer", env.LoadBalancer
	if lb == "" {
		field, lb = "TargetGroup", env.TargetGroup
	}
	if lb == "" {
		return r, nil
	}
	what := fmt.Sprintf("Environments[%q].%s %q", env.Name, field, lb)
	if r.Balancer != nil {
		return release.Rollout{}, fmt.Errorf("magetargets: environment %s has %s, and Config.Rollout.HAProxy is set too: a rollout goes through one load balancer; empty Config.Rollout.HAProxy.Socket to go through %s, or list the hosts in Environments[%q].Hosts and empty its %s to go through HAProxy",
			env.Name, what, lb, env.Name, field)
	}
	if len(hosts) < 2 {
		fmt.Fprintf(out, "%s: environment %s: the one host switches without being taken out of %s (%s): taking it out would leave no host in service\n",
			warningLabel(), env.Name, lb, field)
		return r, nil
	}
	b, err := envBalancer(ctx, c, field, lb)
	if err != nil {
		return release.Rollout{}, fmt.Errorf("magetargets: environment %s: a staged rollout goes through %s: %w", env.Name, what, err)
	}
	states, err := b.States(ctx, hosts)
	if err != nil {
		return release.Rollout{}, fmt.Errorf("magetargets: environment %s: a staged rollout goes through %s: %w", env.Name, b.Name(), err)
	}
	var missing []string
	for _, h := range hosts {
		switch s := states[h]; s {
		case release.InService:
		case release.Unknown:
			missing = append(missing, h)
		default:
			fmt.Fprintf(out, "%s: environment %s: %s is %s in %s; its stage waits until it is in service after the switch (up to the balancer timeout), and fails if it never is\n",
				warningLabel(), env.Name, h, s, b.Name())
		}
	}
	if len(missing) > 0 {
		return release.Rollout{}, fmt.Errorf("magetargets: environment %s: %s: not behind %s, which a staged rollout takes each host out of and puts back in: register it with %s, or deploy only to the hosts behind it (leave Environments[%q].Hosts and %s empty), or set neither Config.Rollout.Canary nor Batch to switch every host at once",
			env.Name, strings.Join(missing, ", "), b.Name(), b.Name(), env.Name, HostsVar)
	}
	r.Balancer = b
	return r, nil
}

// envBalancer is the load balancer lb, named in the environment's field
// LoadBalancer or TargetGroup, as a release.Balancer for the hosts
// registered with it.
func envBalancer(ctx context.Context, c Config, field, lb string) (release.Balancer, error) {
	client, err := elbClient(ctx, c)
	if err != nil {
		return nil, err
	}
	if field == "LoadBalancer" {
		ids, err := client.HostInstances(ctx, lb)
		if err != nil {
			return nil, err
		}
		return client.Balancer(lb, ids)
	}
	targets, err := client.HostTargets(ctx, lb)
	if err != nil {
		return nil, err
	}
	return client.TargetGroup(ctx, lb, targets)
}

// checkRollout adds what is wrong with Rollout to p.
func (c Config) checkRollout(p *problems) {
	if _, err := c.rollout(1); err != nil {
		p.add("Rollout", err)
	}
}

// balancerStates says, for deploy:status, each host's state in the
// rollout's load balancer; nil without one, or when it cannot be read
// (then said once).
func (r *fleetRun) balancerStates(ctx context.Context) map[string]string {
	b := r.fleet.Rollout.Balancer
	if b == nil {
		return nil
	}
	var names []string
	for _, h := range r.hosts {
		names = append(names, h.Name())
	}
	st, err := b.States(ctx, names)
	if err != nil {
		r.say("%s: cannot read the hosts' states: %v", b.Name(), err)
		return nil
	}
	out := map[string]string{}
	for h, s := range st {
		out[h] = string(s)
	}
	return out
}
