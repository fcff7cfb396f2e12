package elb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2api "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/magefab/magefab/release"
)

// Target is a target of an Application or Network Load Balancer's target
// group: an instance ID (target type instance) or an IP address (target
// type ip), and the port it receives traffic on.
type Target struct {
	ID   string
	Port int32 // 0 means the target group's port
}

func (t Target) String() string { return t.ID + ":" + strconv.Itoa(int(t.Port)) }

// TargetGroup is the target group of an Application or Network Load
// Balancer (Elastic Load Balancing v2) in front of the fleet, as a
// [release.Balancer] for a switch in batches. Out deregisters the hosts'
// targets and waits until the target group reports them unused, after
// draining (its deregistration delay); In registers them and waits until
// they are healthy. A TargetGroup is safe for concurrent use;
// [Client.TargetGroup] makes one.
type TargetGroup struct {
	c       *Client
	name    string
	arn     string
	targets map[string][]Target // by host, ports filled in
}

var _ release.Balancer = (*TargetGroup)(nil)

// describeGroup finds target group tg, a name or an ARN.
func (c *Client) describeGroup(ctx context.Context, tg string) (v2types.TargetGroup, error) {
	if err := ValidateTargetGroup(tg); err != nil {
		return v2types.TargetGroup{}, err
	}
	in := &elbv2api.DescribeTargetGroupsInput{}
	if strings.HasPrefix(tg, "arn:") {
		in.TargetGroupArns = []string{tg}
	} else {
		in.Names = []string{tg}
	}
	out, err := c.elbv2.DescribeTargetGroups(ctx, in)
	if err != nil {
		return v2types.TargetGroup{}, c.groupError(tg, "describe target groups", err)
	}
	for _, g := range out.TargetGroups {
		if aws.ToString(g.TargetGroupArn) == tg || aws.ToString(g.TargetGroupName) == tg {
			return g, nil
		}
	}
	return v2types.TargetGroup{}, fmt.Errorf("elb: target group %q not found in region %s", tg, c.region)
}

// targetGroupARNRE is the ARN of a target group:
// arn:<partition>:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>.
var targetGroupARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?/[0-9a-f]{1,64}$`)

// ValidateTargetGroup reports whether tg names a target group: its name
// (1-32 letters, digits and hyphens, not starting or ending with a
// hyphen) or its ARN.
func ValidateTargetGroup(tg string) error {
	if strings.HasPrefix(tg, "arn:") {
		if !targetGroupARNRE.MatchString(tg) {
			return fmt.Errorf("elb: invalid target group ARN %q: want arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>", tg)
		}
		return nil
	}
	if !lbNameRE.MatchString(tg) {
		return fmt.Errorf("elb: invalid target group %q: give its ARN, or its name: 1-32 letters, digits and hyphens, not starting or ending with a hyphen", tg)
	}
	return nil
}

// groupError wraps err from the call op on target group tg.
func (c *Client) groupError(tg, op string, err error) error {
	if _, ok := errors.AsType[*v2types.TargetGroupNotFoundException](err); ok {
		return fmt.Errorf("elb: target group %q not found in region %s: %w", tg, c.region, err)
	}
	return fmt.Errorf("elb: target group %q: %s: %w", tg, op, err)
}

// HostTargets returns the targets registered with target group tg (its
// name or ARN) by host, as [Client.TargetGroup] takes them: for target
// type instance, the running instances named as [Client.Hosts] names
// them (public or private DNS names, with ":port" when Config.Port is
// set); for target type ip, the IP addresses (with ":port" when
// Config.Port is set). A host registered on several ports has several
// targets. A target group with no such target is an error.
func (c *Client) HostTargets(ctx context.Context, tg string) (map[string][]Target, error) {
	g, err := c.describeGroup(ctx, tg)
	if err != nil {
		return nil, err
	}
	out, err := c.elbv2.DescribeTargetHealth(ctx, &elbv2api.DescribeTargetHealthInput{TargetGroupArn: g.TargetGroupArn})
	if err != nil {
		return nil, c.groupError(tg, "describe target health", err)
	}
	var targets []Target
	for _, d := range out.TargetHealthDescriptions {
		if d.Target != nil && aws.ToString(d.Target.Id) != "" {
			targets = append(targets, Target{ID: aws.ToString(d.Target.Id), Port: aws.ToInt32(d.Target.Port)})
		}
	}
	withPort := func(name string) string {
		if c.cfg.Port != 0 {
			return net.JoinHostPort(name, strconv.Itoa(c.cfg.Port))
		}
		return name
	}
	hosts := map[string][]Target{}
	switch g.TargetType {
	case v2types.TargetTypeEnumInstance:
		var ids []string
		for _, t := range targets {
			if !slices.Contains(ids, t.ID) {
				ids = append(ids, t.ID)
			}
		}
		name := map[string]string{}
		for batch := range slices.Chunk(ids, describeBatch) {
			running, err := c.running(ctx, batch)
			if err != nil {
				return nil, c.groupError(tg, "describe instances", err)
			}
			for _, in := range running {
				id := aws.ToString(in.InstanceId)
				n := aws.ToString(in.PublicDnsName)
				if c.cfg.UsePrivate {
					n = aws.ToString(in.PrivateDnsName)
				}
				if n == "" {
					kind, hint := "public", " (set UsePrivate to use private DNS names)"
					if c.cfg.UsePrivate {
						kind, hint = "private", ""
					}
					return nil, fmt.Errorf("elb: target group %q: instance %s has no %s DNS name%s", tg, id, kind, hint)
				}
				name[id] = withPort(n)
			}
		}
		for _, t := range targets {
			if n, ok := name[t.ID]; ok {
				hosts[n] = append(hosts[n], t)
			}
		}
	case v2types.TargetTypeEnumIp:
		for _, t := range targets {
			n := withPort(t.ID)
			hosts[n] = append(hosts[n], t)
		}
	default:
		return nil, fmt.Errorf("elb: target group %q has targets of type %s, not instances or IP addresses: no hosts", tg, g.TargetType)
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("elb: target group %q in region %s has no running targets registered", tg, c.region)
	}
	return hosts, nil
}

// TargetGroup returns target group tg (its name or ARN) as a
// [release.Balancer] for the hosts in targets, a map from a host's name
// (as the fleet names it, e.g. from [Client.HostTargets]) to its targets,
// most often one. A host is also found by its name without a user, a
// port, case or a trailing dot. It looks the target group up, for its ARN
// and its port.
func (c *Client) TargetGroup(ctx context.Context, tg string, targets map[string][]Target) (*TargetGroup, error) {
	g, err := c.describeGroup(ctx, tg)
	if err != nil {
		return nil, err
	}
	b := &TargetGroup{c: c, name: aws.ToString(g.TargetGroupName), arn: aws.ToString(g.TargetGroupArn), targets: map[string][]Target{}}
	for host, ts := range targets {
		if len(ts) == 0 {
			return nil, fmt.Errorf("elb: target group %q: host %s has no target", b.name, host)
		}
		for _, t := range ts {
			if t.ID == "" {
				return nil, fmt.Errorf("elb: target group %q: host %s has a target with no ID", b.name, host)
			}
			if t.Port == 0 {
				t.Port = aws.ToInt32(g.Port)
			}
			if t.Port < 1 || t.Port > 65535 {
				return nil, fmt.Errorf("elb: target group %q: host %s: target %s has no port, and the target group none to give it", b.name, host, t.ID)
			}
			b.targets[host] = append(b.targets[host], t)
		}
	}
	return b, nil
}

// Name names the target group in the output.
func (b *TargetGroup) Name() string { return fmt.Sprintf("target group %q", b.name) }

// hostTarget is a target and the host it belongs to.
type hostTarget struct {
	host string
	Target
}

func (t hostTarget) String() string { return t.host + " (" + t.Target.String() + ")" }

// of returns the targets of hosts, in their order; a host it does not
// know is an error.
func (b *TargetGroup) of(hosts []string) ([]hostTarget, error) {
	var out []hostTarget
	for _, h := range hosts {
		ts, ok := lookupHost(b.targets, h)
		if !ok {
			return nil, fmt.Errorf("elb: target group %q: no target known for host %q (known: %s)", b.name, h, strings.Join(slices.Sorted(maps.Keys(b.targets)), ", "))
		}
		for _, t := range ts {
			out = append(out, hostTarget{h, t})
		}
	}
	return out, nil
}

func descriptions(ts []hostTarget) []v2types.TargetDescription {
	out := make([]v2types.TargetDescription, len(ts))
	for i, t := range ts {
		out[i] = v2types.TargetDescription{Id: aws.String(t.ID), Port: aws.Int32(t.Port)}
	}
	return out
}

// health returns the health of the targets ts by target. A target the
// target group does not report is missing.
func (b *TargetGroup) health(ctx context.Context, ts []hostTarget) (map[Target]v2types.TargetHealth, error) {
	out, err := b.c.elbv2.DescribeTargetHealth(ctx, &elbv2api.DescribeTargetHealthInput{
		TargetGroupArn: aws.String(b.arn),
		Targets:        descriptions(ts),
	})
	if err != nil {
		return nil, b.c.groupError(b.name, "describe target health", err)
	}
	m := map[Target]v2types.TargetHealth{}
	for _, d := range out.TargetHealthDescriptions {
		if d.Target == nil || d.TargetHealth == nil {
			continue
		}
		m[Target{ID: aws.ToString(d.Target.Id), Port: aws.ToInt32(d.Target.Port)}] = *d.TargetHealth
	}
	return m, nil
}

// registered reports whether a target in health h is registered and not
// yet deregistering.
func registered(h v2types.TargetHealth) bool {
	switch h.State {
	case v2types.TargetHealthStateEnumDraining, v2types.TargetHealthStateEnumUnhealthyDraining, "":
		return false
	case v2types.TargetHealthStateEnumUnused:
		return h.Reason != v2types.TargetHealthReasonEnumNotRegistered
	}
	return true
}

// Out deregisters the hosts' targets (those still registered) and waits
// until the target group reports each unused: not registered, once its
// draining (the deregistration delay) ended. A host already out is no
// error; one it does not know is.
func (b *TargetGroup) Out(ctx context.Context, hosts []string) error {
	ts, err := b.of(hosts)
	if err != nil || len(ts) == 0 {
		return err
	}
	health, err := b.health(ctx, ts)
	if err != nil {
		return err
	}
	var take []hostTarget
	for _, t := range ts {
		if h, ok := health[t.Target]; ok && registered(h) {
			take = append(take, t)
		}
	}
	if len(take) > 0 {
		_, err := b.c.elbv2.DeregisterTargets(ctx, &elbv2api.DeregisterTargetsInput{
			TargetGroupArn: aws.String(b.arn),
			Targets:        descriptions(take),
		})
		if err != nil {
			return b.c.groupError(b.name, "deregister "+joinTargets(take), err)
		}
	}
	return b.wait(ctx, ts, "drained", func(h v2types.TargetHealth, ok bool) bool {
		return !ok || h.State == v2types.TargetHealthStateEnumUnused
	})
}

// wait polls the health of ts until every target is done, or ctx ends
// with an error that names those that are not yet, as "not yet <what>".
func (b *TargetGroup) wait(ctx context.Context, ts []hostTarget, what string, done func(h v2types.TargetHealth, ok bool) bool) error {
	waiting := fmt.Sprintf("elb: target group %q: not yet %s: %s", b.name, what, joinTargets(ts))
	return b.c.poll(ctx, waiting, func() (string, error) {
		health, err := b.health(ctx, ts)
		if err != nil {
			return "", err
		}
		var pending []string
		for _, t := range ts {
			if h, ok := health[t.Target]; !done(h, ok) {
				pending = append(pending, t.String()+" "+describeHealth(h))
			}
		}
		if len(pending) == 0 {
			return "", nil
		}
		return fmt.Sprintf("elb: target group %q: not yet %s: %s", b.name, what, strings.Join(pending, ", ")), nil
	})
}

// In registers the hosts' targets and waits until the target group
// reports each healthy: until its health check passed.
func (b *TargetGroup) In(ctx context.Context, hosts []string) error {
	ts, err := b.of(hosts)
	if err != nil || len(ts) == 0 {
		return err
	}
	_, err = b.c.elbv2.RegisterTargets(ctx, &elbv2api.RegisterTargetsInput{
		TargetGroupArn: aws.String(b.arn),
		Targets:        descriptions(ts),
	})
	if err != nil {
		return b.c.groupError(b.name, "register "+joinTargets(ts), err)
	}
	return b.wait(ctx, ts, "healthy", func(h v2types.TargetHealth, _ bool) bool {
		return targetState(h) == release.InService
	})
}

// States reports each host's state in the target group: in service
// (healthy), draining, out (not registered, or registered and not yet
// checked or not in use), unhealthy, or unknown for a host the
// TargetGroup does not know. A host with several targets has the state
// of the one furthest from in service.
func (b *TargetGroup) States(ctx context.Context, hosts []string) (map[string]release.BalancerState, error) {
	out := make(map[string]release.BalancerState, len(hosts))
	var ts []hostTarget
	for _, h := range hosts {
		hts, ok := lookupHost(b.targets, h)
		if !ok {
			out[h] = release.Unknown
			continue
		}
		for _, t := range hts {
			ts = append(ts, hostTarget{h, t})
		}
	}
	if len(ts) == 0 {
		return out, nil
	}
	health, err := b.health(ctx, ts)
	if err != nil {
		return nil, err
	}
	rank := map[release.BalancerState]int{release.InService: 0, release.Draining: 1, release.OutService: 2, release.Unhealthy: 3}
	for _, t := range ts {
		s := targetState(health[t.Target])
		if cur, ok := out[t.host]; !ok || rank[s] > rank[cur] {
			out[t.host] = s
		}
	}
	return out, nil
}

// targetState is the release.BalancerState of a target in health h.
func targetState(h v2types.TargetHealth) release.BalancerState {
	switch h.State {
	case v2types.TargetHealthStateEnumHealthy:
		return release.InService
	case v2types.TargetHealthStateEnumUnavailable:
		if h.Reason == v2types.TargetHealthReasonEnumHealthCheckDisabled {
			return release.InService // gets traffic, unchecked
		}
		return release.Unhealthy
	case v2types.TargetHealthStateEnumDraining, v2types.TargetHealthStateEnumUnhealthyDraining:
		return release.Draining
	case v2types.TargetHealthStateEnumUnhealthy:
		return release.Unhealthy
	}
	return release.OutService // initial, unused, or not reported
}

// describeHealth says a target's health for a message.
func describeHealth(h v2types.TargetHealth) string {
	if h.State == "" {
		return "(not reported)"
	}
	s := string(h.State)
	if d := aws.ToString(h.Description); d != "" {
		s += ": " + d
	} else if h.Reason != "" {
		s += ": " + string(h.Reason)
	}
	return "(" + s + ")"
}

func joinTargets(ts []hostTarget) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}
