package elb

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbapi "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"

	"github.com/magefab/magefab/release"
)

// deregistering is how a Classic Load Balancer describes an instance
// deregistered while connection draining lets its requests finish: it is
// still InService until they did, or the draining timeout passed.
const deregistering = "Instance deregistration currently in progress."

// Balancer is a Classic Load Balancer in front of the fleet, as a
// [release.Balancer] for a switch in batches. Out deregisters instances
// and waits until the load balancer no longer reports them: until its
// connection draining finished (at once without it). In registers them
// and waits until they are InService. A Balancer is safe for concurrent
// use; [Client.Balancer] makes one.
type Balancer struct {
	c         *Client
	lb        string
	instances map[string]string // instance ID by host
}

var _ release.Balancer = (*Balancer)(nil)

// HostInstances returns the instance ID of each host behind load balancer
// lb, by host as [Client.Hosts] names it: what [Client.Balancer] needs.
// Every running registered instance is there, in service or not.
func (c *Client) HostInstances(ctx context.Context, lb string) (map[string]string, error) {
	bs, err := c.Backends(ctx, lb)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(bs))
	for _, b := range bs {
		out[b.Host] = b.ID
	}
	return out, nil
}

// Balancer returns load balancer lb as a [release.Balancer] for the hosts
// in instances, a map from a host's name (as the fleet names it, e.g.
// from [Client.HostInstances]) to its instance ID. A host is also found
// by its name without a user, a port, case or a trailing dot. No request
// is sent.
func (c *Client) Balancer(lb string, instances map[string]string) (*Balancer, error) {
	if err := ValidateName(lb); err != nil {
		return nil, err
	}
	for host, id := range instances {
		if err := validateInstance(lb, id); err != nil {
			return nil, fmt.Errorf("%w (host %s)", err, host)
		}
	}
	return &Balancer{c: c, lb: lb, instances: maps.Clone(instances)}, nil
}

// Name names the load balancer in the output.
func (b *Balancer) Name() string { return fmt.Sprintf("load balancer %q", b.lb) }

// hostKey is the name a host is also found by: without a user, a port,
// case and a trailing dot.
func hostKey(host string) string {
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	return strings.ToLower(dnsName(host))
}

// lookupHost finds host in m, by its name or by hostKey.
func lookupHost[V any](m map[string]V, host string) (V, bool) {
	if v, ok := m[host]; ok {
		return v, true
	}
	k := hostKey(host)
	for h, v := range m {
		if hostKey(h) == k {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// ids returns the instance IDs of hosts, in their order; a host it does
// not know is an error.
func (b *Balancer) ids(hosts []string) ([]string, error) {
	ids := make([]string, len(hosts))
	for i, h := range hosts {
		id, ok := lookupHost(b.instances, h)
		if !ok {
			return nil, fmt.Errorf("elb: load balancer %q: no instance known for host %q (known: %s)", b.lb, h, strings.Join(slices.Sorted(maps.Keys(b.instances)), ", "))
		}
		ids[i] = id
	}
	return ids, nil
}

// health returns the health state of the instances ids in the load
// balancer by ID; no ids means every registered instance, those
// deregistering included.
func (b *Balancer) health(ctx context.Context, ids []string) (map[string]types.InstanceState, error) {
	in := &elbapi.DescribeInstanceHealthInput{LoadBalancerName: aws.String(b.lb)}
	for _, id := range ids {
		in.Instances = append(in.Instances, types.Instance{InstanceId: aws.String(id)})
	}
	out, err := b.c.elb.DescribeInstanceHealth(ctx, in)
	if err != nil {
		return nil, b.c.apiError(b.lb, "describe instance health", err)
	}
	m := make(map[string]types.InstanceState, len(out.InstanceStates))
	for _, s := range out.InstanceStates {
		m[aws.ToString(s.InstanceId)] = s
	}
	return m, nil
}

func instanceList(ids []string) []types.Instance {
	out := make([]types.Instance, len(ids))
	for i, id := range ids {
		out[i] = types.Instance{InstanceId: aws.String(id)}
	}
	return out
}

// Out deregisters the hosts' instances (those still registered) and waits
// until the load balancer no longer reports them: while connection
// draining lets their requests finish, they are still listed InService,
// "Instance deregistration currently in progress". A host already out is
// no error; one it does not know is.
func (b *Balancer) Out(ctx context.Context, hosts []string) error {
	ids, err := b.ids(hosts)
	if err != nil {
		return err
	}
	registered, err := b.health(ctx, nil)
	if err != nil {
		return err
	}
	var take []string
	for _, id := range ids {
		if st, ok := registered[id]; ok && aws.ToString(st.Description) != deregistering && !slices.Contains(take, id) {
			take = append(take, id)
		}
	}
	if len(take) > 0 {
		_, err := b.c.elb.DeregisterInstancesFromLoadBalancer(ctx, &elbapi.DeregisterInstancesFromLoadBalancerInput{
			LoadBalancerName: aws.String(b.lb),
			Instances:        instanceList(take),
		})
		if err != nil {
			return b.c.apiError(b.lb, "deregister "+b.named(hosts, ids, take), err)
		}
	}
	waiting := fmt.Sprintf("elb: load balancer %q: not yet drained: %s", b.lb, b.named(hosts, ids, ids))
	return b.c.poll(ctx, waiting, func() (string, error) {
		registered, err := b.health(ctx, nil)
		if err != nil {
			return "", err
		}
		var pending []string
		for i, id := range ids {
			if st, ok := registered[id]; ok {
				pending = append(pending, fmt.Sprintf("%s (%s, %s)", hosts[i], id, classicDescription(st)))
			}
		}
		if len(pending) == 0 {
			return "", nil
		}
		return fmt.Sprintf("elb: load balancer %q: not yet drained: %s", b.lb, strings.Join(pending, ", ")), nil
	})
}

// In registers the hosts' instances and waits until the load balancer
// reports each InService: until its health check passes.
func (b *Balancer) In(ctx context.Context, hosts []string) error {
	ids, err := b.ids(hosts)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	_, err = b.c.elb.RegisterInstancesWithLoadBalancer(ctx, &elbapi.RegisterInstancesWithLoadBalancerInput{
		LoadBalancerName: aws.String(b.lb),
		Instances:        instanceList(ids),
	})
	if err != nil {
		return b.c.apiError(b.lb, "register "+b.named(hosts, ids, ids), err)
	}
	waiting := fmt.Sprintf("elb: load balancer %q: not yet in service: %s", b.lb, b.named(hosts, ids, ids))
	return b.c.poll(ctx, waiting, func() (string, error) {
		health, err := b.health(ctx, ids)
		if err != nil {
			return "", err
		}
		var pending []string
		for i, id := range ids {
			st := health[id]
			if classicState(st) != release.InService {
				pending = append(pending, fmt.Sprintf("%s (%s, %s)", hosts[i], id, classicDescription(st)))
			}
		}
		if len(pending) == 0 {
			return "", nil
		}
		return fmt.Sprintf("elb: load balancer %q: not yet in service: %s", b.lb, strings.Join(pending, ", ")), nil
	})
}

// States reports each host's state in the load balancer: in service,
// draining (deregistered, connection draining in progress), out (not
// registered, or registering), unhealthy (registered, failing its health
// check), or unknown for a host the Balancer does not know.
func (b *Balancer) States(ctx context.Context, hosts []string) (map[string]release.BalancerState, error) {
	registered, err := b.health(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]release.BalancerState, len(hosts))
	for _, h := range hosts {
		id, ok := lookupHost(b.instances, h)
		if !ok {
			out[h] = release.Unknown
			continue
		}
		st, ok := registered[id]
		if !ok {
			out[h] = release.OutService
			continue
		}
		out[h] = classicState(st)
	}
	return out, nil
}

// classicState is the release.BalancerState of a registered instance.
func classicState(st types.InstanceState) release.BalancerState {
	switch aws.ToString(st.State) {
	case InService:
		if aws.ToString(st.Description) == deregistering {
			return release.Draining
		}
		return release.InService
	case "OutOfService":
		switch aws.ToString(st.ReasonCode) {
		case "ELB": // registration in progress, not yet checked
			return release.OutService
		case "Instance":
			return release.Unhealthy
		}
		if strings.Contains(aws.ToString(st.Description), "not currently registered") {
			return release.OutService
		}
		return release.Unhealthy
	}
	return release.OutService // Unknown: a transient state of the load balancer
}

// classicDescription says an instance's state for a message.
func classicDescription(st types.InstanceState) string {
	s := aws.ToString(st.State)
	if s == "" {
		s = "not reported"
	}
	if d := aws.ToString(st.Description); d != "" && d != "N/A" {
		s += ": " + strings.TrimSuffix(d, ".")
	}
	return s
}

// named lists the hosts whose instances are which, each with its
// instance ID, for a message; hosts[i] has instance ids[i].
func (b *Balancer) named(hosts, ids, which []string) string {
	var out []string
	for _, id := range which {
		if i := slices.Index(ids, id); i >= 0 {
			out = append(out, fmt.Sprintf("%s (%s)", hosts[i], id))
		}
	}
	return strings.Join(out, ", ")
}

// poll calls check until it reports nothing pending, waiting between two
// calls from pollMin, doubling up to pollMax. check returns what is still
// pending ("" when done) or an error, which ends the wait. When ctx ends
// first, the error says what was pending (waiting before the first
// check) and wraps ctx's error.
func (c *Client) poll(ctx context.Context, waiting string, check func() (string, error)) error {
	delay := c.pollMin
	last := waiting
	for {
		pending, err := check()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", last, ctx.Err())
			}
			return err
		}
		if pending == "" {
			return nil
		}
		last = pending
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w", last, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, c.pollMax)
	}
}
