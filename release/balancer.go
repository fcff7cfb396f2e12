package release

import "context"

// Balancer is a load balancer in front of the fleet, for a switch in
// batches: each batch is taken out of it while it switches and restarts,
// and put back once it serves the new release. Hosts are named as in
// Fleet.Hosts (sshx.Host.Name); an implementation maps them to what the
// balancer knows (instance ids, targets, server names).
type Balancer interface {
	// Name names the balancer in the output, e.g. `load balancer "web"`.
	Name() string
	// Out takes hosts out of service and returns once the balancer says
	// their connections drained (its own draining state, not a fixed
	// wait), or ctx ends. Taking out a host that is out is no error.
	Out(ctx context.Context, hosts []string) error
	// In puts hosts back in service and returns once the balancer
	// reports each healthy, or ctx ends.
	In(ctx context.Context, hosts []string) error
	// States reports each host's state in the balancer.
	States(ctx context.Context, hosts []string) (map[string]BalancerState, error)
}

// BalancerState is a host's state in a Balancer.
type BalancerState string

// The states of a host in a Balancer.
const (
	InService  BalancerState = "in service" // registered and healthy: gets traffic
	Draining   BalancerState = "draining"   // taken out, its connections finishing
	OutService BalancerState = "out"        // taken out, or registered but not yet healthy
	Unhealthy  BalancerState = "unhealthy"  // registered, failing the balancer's health check
	Unknown    BalancerState = "unknown"    // not registered with the balancer
)
