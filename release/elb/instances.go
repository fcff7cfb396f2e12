package elb

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbapi "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
)

// describeBatch is how many instance IDs go into one DescribeInstances call.
const describeBatch = 100

// Instances returns the running EC2 instances registered with load
// balancer lb and their health state in it, sorted by ID. Instances that
// are stopped, stopping or pending are left out.
func (c *Client) Instances(ctx context.Context, lb string) ([]Instance, error) {
	if err := ValidateName(lb); err != nil {
		return nil, err
	}
	health, err := c.elb.DescribeInstanceHealth(ctx, &elbapi.DescribeInstanceHealthInput{
		LoadBalancerName: aws.String(lb),
	})
	if err != nil {
		return nil, c.apiError(lb, "describe instance health", err)
	}
	state := make(map[string]string, len(health.InstanceStates))
	ids := make([]string, 0, len(health.InstanceStates))
	for _, s := range health.InstanceStates {
		id := aws.ToString(s.InstanceId)
		if id == "" {
			continue
		}
		if _, dup := state[id]; !dup {
			ids = append(ids, id)
		}
		state[id] = aws.ToString(s.State)
	}
	var out []Instance
	for batch := range slices.Chunk(ids, describeBatch) {
		running, err := c.running(ctx, batch)
		if err != nil {
			return nil, c.apiError(lb, "describe instances", err)
		}
		for _, in := range running {
			id := aws.ToString(in.InstanceId)
			st, ok := state[id]
			if !ok {
				continue
			}
			out = append(out, Instance{
				ID:             id,
				DNSName:        aws.ToString(in.PublicDnsName),
				PrivateDNSName: aws.ToString(in.PrivateDnsName),
				State:          st,
			})
		}
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// running returns those of the instances ids that are running and match
// the filters; no ids means any instance.
func (c *Client) running(ctx context.Context, ids []string, filters ...ec2types.Filter) ([]ec2types.Instance, error) {
	p := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{
		InstanceIds: ids,
		Filters: append([]ec2types.Filter{{
			Name:   aws.String("instance-state-name"),
			Values: []string{string(ec2types.InstanceStateNameRunning)},
		}}, filters...),
	})
	var out []ec2types.Instance
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				// The filter already asks for running instances; an
				// AWS-compatible API that ignores filters must not
				// widen the fleet.
				if in.State != nil && in.State.Name != ec2types.InstanceStateNameRunning {
					continue
				}
				out = append(out, in)
			}
		}
	}
	return out, nil
}

// Backend is a running instance registered with a load balancer and the
// host it is reached at.
type Backend struct {
	Host string // its DNS name as Hosts gives it, with ":port" when Config.Port is set
	Instance
}

// InService reports whether the load balancer sends the instance traffic.
func (b Backend) InService() bool { return b.State == InService }

// Backends returns the running instances registered with load balancer lb
// and the host each is reached at (see Hosts), sorted by host, whatever
// their health: one that is OutOfService (failing its health check,
// still registering) runs the app all the same, and keeps it when it
// comes back. A load balancer with no running instance registered is an
// error, and so is an instance without the kind of DNS name asked for.
func (c *Client) Backends(ctx context.Context, lb string) ([]Backend, error) {
	all, err := c.Instances(ctx, lb)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("elb: load balancer %q in region %s has no running instances registered", lb, c.region)
	}
	out := make([]Backend, 0, len(all))
	for _, in := range all {
		name := in.DNSName
		if c.cfg.UsePrivate {
			name = in.PrivateDNSName
		}
		if name == "" {
			kind, hint := "public", " (set UsePrivate to use private DNS names)"
			if c.cfg.UsePrivate {
				kind, hint = "private", ""
			}
			return nil, fmt.Errorf("elb: load balancer %q: instance %s has no %s DNS name%s", lb, in.ID, kind, hint)
		}
		if c.cfg.Port != 0 {
			name = net.JoinHostPort(name, strconv.Itoa(c.cfg.Port))
		}
		out = append(out, Backend{Host: name, Instance: in})
	}
	slices.SortFunc(out, func(a, b Backend) int { return strings.Compare(a.Host, b.Host) })
	return out, nil
}

// Hosts returns the hosts behind load balancer lb: the DNS names of every
// running instance registered with it (private ones when
// Config.UsePrivate is set), InService or not, with ":port" when
// Config.Port is set, sorted. A deploy goes to all of them, as buedafab's
// did: an instance left out while it is OutOfService would serve the old
// release once it is back in service. Backends says which are in service.
// A load balancer with no running instance registered is an error, and so
// is an instance without the kind of DNS name asked for.
func (c *Client) Hosts(ctx context.Context, lb string) ([]string, error) {
	bs, err := c.Backends(ctx, lb)
	if err != nil {
		return nil, err
	}
	hosts := make([]string, len(bs))
	for i, b := range bs {
		hosts[i] = b.Host
	}
	return hosts, nil
}

// InstanceForHost returns the ID of the running instance registered with
// load balancer lb whose public or private DNS name is host. A ":port"
// suffix on host is ignored, and so is case and a trailing dot.
func (c *Client) InstanceForHost(ctx context.Context, lb, host string) (string, error) {
	if err := ValidateName(lb); err != nil {
		return "", err
	}
	name := dnsName(host)
	if name == "" {
		return "", fmt.Errorf("elb: load balancer %q: empty host %q", lb, host)
	}
	all, err := c.Instances(ctx, lb)
	if err != nil {
		return "", err
	}
	for _, in := range all {
		if (in.DNSName != "" && strings.EqualFold(name, in.DNSName)) ||
			(in.PrivateDNSName != "" && strings.EqualFold(name, in.PrivateDNSName)) {
			return in.ID, nil
		}
	}
	return "", fmt.Errorf("elb: load balancer %q: no running registered instance has DNS name %q", lb, name)
}

// dnsName is host without a ":port" suffix and a trailing dot.
func dnsName(host string) string {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	return strings.TrimSuffix(name, ".")
}
