package magetargets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/magefile/mage/mg"

	"github.com/magefab/magefab/release/elb"
)

// Elb holds buedafab's elb_add and elb_remove: elb:remove takes one
// instance out of the selected environment's Environment.LoadBalancer and
// elb:add puts it back, e.g. around work on that one host:
//
//	go tool mage env:production elb:remove web1.example.com
//	go tool mage env:production elb:add web1.example.com
//
// The host is a DNS name of the instance, public or private, optionally
// with :port (as the environment's hosts are listed), or its instance ID,
// e.g. i-0123456789abcdef0. Config.AWS says where the API is; credentials
// come from the AWS SDK's default chain. With MAGEFAB_DRY_RUN=1 both
// targets find the instance and change nothing.
type Elb mg.Namespace

// Remove takes one instance out of the environment's load balancer, as for a rolling restart.
func (Elb) Remove(ctx context.Context, host string) error {
	r, err := newELBRun(ctx, "elb:remove", host)
	if err != nil {
		return err
	}
	id := r.id
	if id == "" {
		if id, err = r.client.InstanceForHost(ctx, r.lb, r.host); err != nil {
			return r.fail(err)
		}
	}
	what := r.instance(id)
	if r.dry {
		r.say("would take %s out (%s=1: nothing changed)", what, DryRunVar)
		return nil
	}
	r.say("taking %s out", what)
	if err := r.client.Deregister(ctx, r.lb, id); err != nil {
		return r.fail(err)
	}
	r.say("%s is out: it gets no new requests; elb:add %s puts it back", what, r.arg)
	return nil
}

// Add puts an instance back into the environment's load balancer and waits until it is in service.
//
// The wait ends when the load balancer's health check passes, or fails
// after 10 minutes (Classic Load Balancers need up to HealthyThreshold ×
// Interval, 5 minutes with the defaults); Ctrl-C stops it.
func (Elb) Add(ctx context.Context, host string) error {
	r, err := newELBRun(ctx, "elb:add", host)
	if err != nil {
		return err
	}
	id := r.id
	if id == "" {
		// Not InstanceForHost: an instance taken out is no longer
		// registered, so look it up in EC2.
		if id, err = r.client.InstanceByDNSName(ctx, r.host); err != nil {
			return r.fail(err)
		}
	}
	what := r.instance(id)
	if r.dry {
		r.say("would put %s back in and wait until it is in service (%s=1: nothing changed)", what, DryRunVar)
		return nil
	}
	r.say("putting %s back in", what)
	if err := r.client.Register(ctx, r.lb, id); err != nil {
		return r.fail(err)
	}
	start := time.Now()
	r.say("%s is registered; waiting up to %v for it to pass the health check", what, elbWaitTimeout)
	if err := r.client.WaitInService(ctx, r.lb, id, elbWaitTimeout); err != nil {
		return r.fail(err)
	}
	r.say("%s is in service (after %.1fs)", what, time.Since(start).Seconds())
	return nil
}

// elbWaitTimeout bounds how long elb:add waits for an instance to pass the
// load balancer's health check.
const elbWaitTimeout = 10 * time.Minute

// elbRun is what an elb:* target works with, read and checked when it
// runs.
type elbRun struct {
	target string // elb:add or elb:remove
	arg    string // the host argument as given
	host   string // the DNS name (and port) the argument gives, or ""
	id     string // the instance ID the argument gives, or ""
	env    Environment
	lb     string
	dry    bool
	client *elb.Client
}

// newELBRun checks the host argument, then the configuration and the
// selected environment, and makes the client; no request is sent.
func newELBRun(ctx context.Context, target, arg string) (*elbRun, error) {
	host, id, err := parseELBHost(arg)
	if err != nil {
		return nil, fmt.Errorf("magetargets: %s: %w", target, err)
	}
	c, err := currentConfig()
	if err != nil {
		return nil, err
	}
	if err := c.validate(false); err != nil {
		return nil, err
	}
	env, err := selectedEnvironment(c)
	if err != nil {
		return nil, err
	}
	if env.LoadBalancer == "" {
		return nil, fmt.Errorf("magetargets: %s: environment %s has no load balancer: set Environments[%q].LoadBalancer in magetargets.Configure to the name of its Classic Load Balancer",
			target, env.Name, env.Name)
	}
	dry, err := DryRun()
	if err != nil {
		return nil, err
	}
	r := &elbRun{target: target, arg: arg, host: host, id: id, env: env, lb: env.LoadBalancer, dry: dry}
	r.client, err = elbClient(ctx, c)
	if err != nil {
		return nil, r.fail(err)
	}
	return r, nil
}

// fail wraps err with the target, the environment and the load balancer.
func (r *elbRun) fail(err error) error {
	return fmt.Errorf("magetargets: %s: environment %s, load balancer %q: %w", r.target, r.env.Name, r.lb, err)
}

// say prints one line about the load balancer.
func (r *elbRun) say(format string, args ...any) {
	fmt.Fprintf(stdout, "%s load balancer %q (%s): %s\n", time.Now().Format("15:04:05"), r.lb, r.env.Name, fmt.Sprintf(format, args...))
}

// instance names instance id in output, with the host it was given as.
func (r *elbRun) instance(id string) string {
	if r.host != "" {
		return fmt.Sprintf("%s (%s)", id, r.host)
	}
	return id
}

// errNoAWSRegion is what elbClient returns when no region is configured.
var errNoAWSRegion = errors.New("no AWS region: set Config.AWS.Region in magetargets.Configure, or AWS_REGION")

// elbClient returns a client for the load balancer API that Config.AWS
// describes, naming hosts with ":port" when SSH.Port is not 22.
func elbClient(ctx context.Context, c Config) (*elb.Client, error) {
	port := c.SSH.Port
	if port == defaultSSHPort {
		port = 0
	}
	client, err := elb.New(ctx, elb.Config{Region: c.AWS.Region, Endpoint: c.AWS.Endpoint, Port: port})
	if errors.Is(err, elb.ErrNoRegion) {
		return nil, errNoAWSRegion
	}
	return client, err
}

var (
	// instanceIDRE is an EC2 instance ID: "i-" and 8 or 17 hex digits.
	instanceIDRE = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)

	// dnsNameRE is a DNS name: labels of letters, digits and '-', not
	// starting or ending with '-', and an optional trailing dot.
	dnsNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

	// awsRegionRE is a region name such as us-east-1; AWS-compatible
	// APIs may use others of the same shape.
	awsRegionRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)
)

// parseELBHost reads the host argument of an elb:* target: an instance ID,
// or a DNS name with an optional :port. It returns the one it is.
func parseELBHost(arg string) (host, id string, err error) {
	if instanceIDRE.MatchString(arg) {
		return "", arg, nil
	}
	shown := arg
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	want := "give a DNS name of the instance, optionally with :port, or its instance ID, e.g. ec2-54-0-0-1.compute-1.amazonaws.com or i-0123456789abcdef0"
	if strings.HasPrefix(arg, "i-") && !strings.ContainsAny(arg, ".:") {
		return "", "", fmt.Errorf("host %q is not an instance ID (i- and 8 or 17 lower-case hex digits); %s", shown, want)
	}
	name := arg
	if strings.Contains(arg, ":") {
		h, p, err := net.SplitHostPort(arg)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil || n < 1 || n > 65535 || strings.HasPrefix(p, "+") {
			return "", "", fmt.Errorf("host %q does not end in a port 1-65535 after the ':'; %s", shown, want)
		}
		name = h
	}
	if len(name) > 254 || !dnsNameRE.MatchString(name) {
		return "", "", fmt.Errorf("host %q is not a DNS name or an instance ID; %s", shown, want)
	}
	return arg, "", nil
}

// validate checks the AWS fields, reporting into p.
func (a AWS) validate(p *problems) {
	if a.Region != "" && !awsRegionRE.MatchString(a.Region) {
		p.addf("AWS.Region", "%q is not a region name; give one such as us-east-1, or leave it empty for the AWS SDK's default (AWS_REGION)", a.Region)
	}
	if a.Endpoint != "" {
		u, err := url.Parse(a.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.addf("AWS.Endpoint", "%q is not an http(s) URL; give the base URL of an AWS-compatible API, e.g. http://127.0.0.1:4566, or leave it empty for AWS", a.Endpoint)
		}
	}
}
