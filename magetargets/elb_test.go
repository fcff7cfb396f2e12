package magetargets

import (
	"bytes"
	"context"
	"fmt"
	"github.com/magefab/magefab/internal/testenv"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/magefab/magefab/release/elb/elbtest"
)

// awsTestEnv gives the AWS SDK the elbtest credentials and a region from
// the environment and nothing else to find: no shared config files, no
// profile, no instance metadata service, no endpoint overrides. With
// Config.AWS.Endpoint set to an elbtest.Server, every request stays on
// loopback.
func awsTestEnv(t *testing.T) {
	t.Helper()
	testenv.AWS(t, elbtest.AccessKeyID, elbtest.SecretAccessKey, "us-east-1")
}

func instanceID(n int) string { return fmt.Sprintf("i-%017x", n) }

func ec2Name(n int) string { return fmt.Sprintf("ec2-54-0-0-%d.compute-1.amazonaws.com", n) }

// elbFleet starts an elbtest.Server, stopped when the test ends, with load
// balancer "web" holding instances 3 and 1 (running) and 2 (stopped);
// instance 4 runs behind no load balancer, and load balancer "api" holds
// instance 4's neighbour 5.
func elbFleet(t *testing.T) *elbtest.Server {
	t.Helper()
	awsTestEnv(t)
	srv := elbtest.NewServer()
	t.Cleanup(func() {
		srv.Close()
		if err := srv.Err(); err != nil {
			t.Error(err)
		}
	})
	for n := 1; n <= 5; n++ {
		in := elbtest.Instance{ID: instanceID(n), DNSName: ec2Name(n), PrivateDNSName: fmt.Sprintf("ip-10-0-0-%d.ec2.internal", n)}
		if n == 2 {
			in.State = "stopped"
		}
		srv.AddInstance(in)
	}
	srv.AddLoadBalancer("web", instanceID(3), instanceID(1), instanceID(2))
	srv.AddLoadBalancer("api", instanceID(5))
	return srv
}

// elbConfigure configures the targets with production behind load
// balancer lb of srv and selects production; tweak may change the Config
// first. It returns the configuration the targets read and what they
// print.
func elbConfigure(t *testing.T, srv *elbtest.Server, lb string, tweak func(*Config)) (Config, *bytes.Buffer) {
	t.Helper()
	c := Config{
		Unit:         "five",
		AWS:          AWS{Endpoint: srv.URL},
		Environments: map[string]Environment{"production": {LoadBalancer: lb}},
	}
	if tweak != nil {
		tweak(&c)
	}
	got := configure(t, c)
	t.Setenv(EnvVar, "production")
	var out bytes.Buffer
	old := stdout
	stdout = &out
	t.Cleanup(func() { stdout = old })
	return got, &out
}

// actions lists the service and action of each request.
func actions(reqs []elbtest.Request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Service+" "+r.Action)
	}
	return out
}

func registered(t *testing.T, srv *elbtest.Server, lb string) []string {
	t.Helper()
	ids, ok := srv.Registered(lb)
	if !ok {
		t.Fatalf("load balancer %s is gone", lb)
	}
	return ids
}

const (
	health     = "elasticloadbalancing DescribeInstanceHealth"
	describe   = "ec2 DescribeInstances"
	register   = "elasticloadbalancing RegisterInstancesWithLoadBalancer"
	deregister = "elasticloadbalancing DeregisterInstancesFromLoadBalancer"
)

func TestLoadBalancerHosts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tweak  func(*Config)
		region string
		want   []string
	}{
		{"default port", nil, "us-east-1", []string{ec2Name(1), ec2Name(3)}},
		{"SSH.Port 2222", func(c *Config) { c.SSH.Port = 2222 }, "us-east-1", []string{ec2Name(1) + ":2222", ec2Name(3) + ":2222"}},
		{"AWS.Region", func(c *Config) { c.AWS.Region = "eu-west-1" }, "eu-west-1", []string{ec2Name(1), ec2Name(3)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := elbFleet(t)
			c, _ := elbConfigure(t, srv, "web", tc.tweak)
			got, err := resolveHosts(t.Context(), c, c.Environments["production"])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("resolveHosts(production) = %q, want the InService instances %q", got, tc.want)
			}
			reqs := srv.TakeRequests()
			if a := actions(reqs); !slices.Equal(a, []string{health, describe}) {
				t.Errorf("requests = %q", a)
			}
			for _, r := range reqs {
				if r.Region != tc.region {
					t.Errorf("%s signed for region %q, want %q", r.Action, r.Region, tc.region)
				}
			}
		})
	}
}

func TestLoadBalancerHostsOverridden(t *testing.T) {
	srv := elbFleet(t)
	c, _ := elbConfigure(t, srv, "web", nil)
	t.Setenv(HostsVar, "web9,web8:2222")
	got, err := resolveHosts(t.Context(), c, c.Environments["production"])
	if err != nil || !slices.Equal(got, []string{"web9", "web8:2222"}) {
		t.Errorf("resolveHosts(production) with %s set = %q, %v; want its hosts", HostsVar, got, err)
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Errorf("%s set, yet the load balancer was asked: %q", HostsVar, actions(reqs))
	}
}

func TestLoadBalancerHostsErrors(t *testing.T) {
	t.Run("unknown load balancer", func(t *testing.T) {
		srv := elbFleet(t)
		c, _ := elbConfigure(t, srv, "nope", nil)
		_, err := resolveHosts(t.Context(), c, c.Environments["production"])
		for _, want := range []string{"magetargets: environment production", `load balancer "nope"`, "not found in region us-east-1"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("resolveHosts with an unknown load balancer: error = %v, want it to contain %q", err, want)
			}
		}
	})
	t.Run("no region", func(t *testing.T) {
		srv := elbFleet(t)
		t.Setenv("AWS_REGION", "")
		c, _ := elbConfigure(t, srv, "web", nil)
		_, err := resolveHosts(t.Context(), c, c.Environments["production"])
		for _, want := range []string{`environment production: load balancer "web" is not configured`, "Config.AWS.Region", `Environments["production"].Hosts`} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("resolveHosts with no region: error = %v, want it to contain %q", err, want)
			}
		}
		if reqs := srv.Requests(); len(reqs) != 0 {
			t.Errorf("requests without a region: %q", actions(reqs))
		}
	})
	t.Run("none in service", func(t *testing.T) {
		srv := elbFleet(t)
		srv.AddLoadBalancer("down", instanceID(2))
		c, _ := elbConfigure(t, srv, "down", nil)
		_, err := resolveHosts(t.Context(), c, c.Environments["production"])
		if err == nil || !strings.Contains(err.Error(), `environment production: the hosts behind load balancer "down"`) ||
			!strings.Contains(err.Error(), "no running instances registered") {
			t.Errorf("resolveHosts with only a stopped instance: error = %v", err)
		}
	})
}

func TestElbRemoveAdd(t *testing.T) {
	srv := elbFleet(t)
	_, out := elbConfigure(t, srv, "web", nil)
	ctx := t.Context()

	if err := (Elb{}).Remove(ctx, ec2Name(3)); err != nil {
		t.Fatal(err)
	}
	if got := registered(t, srv, "web"); !slices.Equal(got, []string{instanceID(1), instanceID(2)}) {
		t.Errorf("registered after elb:remove %s = %q", ec2Name(3), got)
	}
	reqs := srv.TakeRequests()
	if a := actions(reqs); !slices.Equal(a, []string{health, describe, deregister}) {
		t.Errorf("elb:remove requests = %q", a)
	} else if p := reqs[2].Params; p.Get("LoadBalancerName") != "web" || p.Get("Instances.member.1.InstanceId") != instanceID(3) {
		t.Errorf("elb:remove deregistered %v", p)
	}
	for _, want := range []string{
		fmt.Sprintf(`load balancer "web" (production): taking %s (%s) out`, instanceID(3), ec2Name(3)),
		fmt.Sprintf("%s (%s) is out: it gets no new requests; elb:add %s puts it back", instanceID(3), ec2Name(3), ec2Name(3)),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("elb:remove printed\n%s\nwant a line with %q", out, want)
		}
	}
	hosts, err := resolveHosts(ctx, mustConfig(t), mustConfig(t).Environments["production"])
	if err != nil || !slices.Equal(hosts, []string{ec2Name(1)}) {
		t.Errorf("hosts after elb:remove = %q, %v; want only %s", hosts, err, ec2Name(1))
	}
	srv.TakeRequests()
	out.Reset()

	// Back in by its name with the port, as the environment lists it.
	if err := (Elb{}).Add(ctx, ec2Name(3)+":22"); err != nil {
		t.Fatal(err)
	}
	if got := registered(t, srv, "web"); !slices.Equal(got, []string{instanceID(1), instanceID(2), instanceID(3)}) {
		t.Errorf("registered after elb:add %s = %q", ec2Name(3), got)
	}
	reqs = srv.TakeRequests()
	if a := actions(reqs); !slices.Equal(a, []string{describe, register, health}) {
		t.Errorf("elb:add requests = %q", a)
	} else {
		if p := reqs[0].Params; p.Get("Filter.2.Name") != "dns-name" || p.Get("Filter.2.Value.1") != ec2Name(3) {
			t.Errorf("elb:add looked the instance up with %v", p)
		}
		if p := reqs[1].Params; p.Get("LoadBalancerName") != "web" || p.Get("Instances.member.1.InstanceId") != instanceID(3) {
			t.Errorf("elb:add registered %v", p)
		}
	}
	for _, want := range []string{
		fmt.Sprintf(`load balancer "web" (production): putting %s (%s:22) back in`, instanceID(3), ec2Name(3)),
		"is registered; waiting up to 10m0s for it to pass the health check",
		fmt.Sprintf("%s (%s:22) is in service (after ", instanceID(3), ec2Name(3)),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("elb:add printed\n%s\nwant a line with %q", out, want)
		}
	}

	// By instance ID.
	if err := (Elb{}).Remove(ctx, instanceID(1)); err != nil {
		t.Fatal(err)
	}
	if got := registered(t, srv, "web"); slices.Contains(got, instanceID(1)) {
		t.Errorf("registered after elb:remove %s = %q", instanceID(1), got)
	}
	if a := actions(srv.TakeRequests()); !slices.Equal(a, []string{deregister}) {
		t.Errorf("elb:remove by instance ID: requests = %q, want only the deregistration", a)
	}
	if err := (Elb{}).Add(ctx, instanceID(1)); err != nil {
		t.Fatal(err)
	}
	if got := registered(t, srv, "web"); !slices.Contains(got, instanceID(1)) {
		t.Errorf("registered after elb:add %s = %q", instanceID(1), got)
	}
	if a := actions(srv.TakeRequests()); !slices.Equal(a, []string{register, health}) {
		t.Errorf("elb:add by instance ID: requests = %q", a)
	}
}

func mustConfig(t *testing.T) Config {
	t.Helper()
	c, err := currentConfig()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestElbDryRun(t *testing.T) {
	srv := elbFleet(t)
	_, out := elbConfigure(t, srv, "web", nil)
	t.Setenv(DryRunVar, "1")
	if err := (Elb{}).Remove(t.Context(), ec2Name(1)); err != nil {
		t.Fatal(err)
	}
	if err := (Elb{}).Add(t.Context(), ec2Name(4)); err != nil {
		t.Fatal(err)
	}
	if got := registered(t, srv, "web"); !slices.Equal(got, []string{instanceID(3), instanceID(1), instanceID(2)}) {
		t.Errorf("registered after a dry run = %q, want it unchanged", got)
	}
	for _, r := range srv.Requests() {
		if r.Action != "DescribeInstanceHealth" && r.Action != "DescribeInstances" {
			t.Errorf("a dry run sent %s %s", r.Service, r.Action)
		}
	}
	if !strings.Contains(out.String(), "would take "+instanceID(1)) || !strings.Contains(out.String(), "would put "+instanceID(4)) {
		t.Errorf("dry run printed\n%s", out)
	}
}

func TestElbErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(Elb, context.Context, string) error
		lb     string // production's LoadBalancer
		host   string
		want   []string
		sent   []string // requests expected before the error
	}{
		{"remove unknown load balancer", Elb.Remove, "nope", ec2Name(1),
			[]string{`magetargets: elb:remove: environment production, load balancer "nope": `, "not found in region us-east-1"}, []string{health}},
		{"add unknown load balancer", Elb.Add, "nope", instanceID(4),
			[]string{`magetargets: elb:add: environment production, load balancer "nope": `, "not found in region us-east-1"}, []string{register}},
		{"remove a host not behind it", Elb.Remove, "web", ec2Name(4),
			[]string{`load balancer "web"`, `no running registered instance has DNS name "` + ec2Name(4) + `"`}, []string{health, describe}},
		{"remove an instance not behind it", Elb.Remove, "web", instanceID(4),
			[]string{`load balancer "web"`, "deregister " + instanceID(4), "is not registered with the load balancer"}, []string{deregister}},
		{"add an unknown host", Elb.Add, "web", "web1.example.com",
			[]string{`magetargets: elb:add: environment production, load balancer "web": `, `no running instance in region us-east-1 has DNS name "web1.example.com"`}, []string{describe, describe}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := elbFleet(t)
			elbConfigure(t, srv, tc.lb, nil)
			err := tc.target(Elb{}, t.Context(), tc.host)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error = %v, want it to contain %q", err, w)
				}
			}
			if a := actions(srv.Requests()); !slices.Equal(a, tc.sent) {
				t.Errorf("requests = %q, want %q", a, tc.sent)
			}
		})
	}
}

func TestElbNeedsLoadBalancer(t *testing.T) {
	srv := elbFleet(t)
	_, out := elbConfigure(t, srv, "web", nil)
	t.Setenv(EnvVar, "staging")
	for name, target := range map[string]func(Elb, context.Context, string) error{"elb:remove": Elb.Remove, "elb:add": Elb.Add} {
		err := target(Elb{}, t.Context(), ec2Name(1))
		want := "magetargets: " + name + `: environment staging has no load balancer: set Environments["staging"].LoadBalancer`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s in an environment without LoadBalancer: error = %v, want %q", name, err, want)
		}
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Errorf("requests = %q, want none", actions(reqs))
	}
	if out.Len() != 0 {
		t.Errorf("printed %q, want nothing", out)
	}
}

func TestElbBadHost(t *testing.T) {
	srv := elbFleet(t)
	_, out := elbConfigure(t, srv, "web", nil)
	for _, host := range []string{
		"$(id)", "-x", "", " ", "web1;id", "web1 web2", "`id`", "web1\n", "-web1.example.com",
		"i-123", "i-0123456789ABCDEF0", "web1:", "web1:0", "web1:65536", "web1:+22", "web1:ssh",
		"deploy@web1", "[::1]:22", "web_1.example.com", strings.Repeat("a", 64) + ".example.com",
	} {
		for name, target := range map[string]func(Elb, context.Context, string) error{"elb:remove": Elb.Remove, "elb:add": Elb.Add} {
			err := target(Elb{}, t.Context(), host)
			want := fmt.Sprintf("magetargets: %s: host %q is not", name, host)
			if host == "web1:" || strings.HasPrefix(host, "web1:") {
				want = fmt.Sprintf("magetargets: %s: host %q does not end in a port", name, host)
			}
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "i-0123456789abcdef0") {
				t.Errorf("%s %q: error = %v, want %q and an example", name, host, err, want)
			}
		}
	}
	if reqs := srv.Requests(); len(reqs) != 0 {
		t.Errorf("bad hosts reached the API: %q", actions(reqs))
	}
	if out.Len() != 0 {
		t.Errorf("printed %q, want nothing", out)
	}
}

func TestParseELBHost(t *testing.T) {
	for _, tc := range []struct{ arg, host, id string }{
		{"i-0123456789abcdef0", "", "i-0123456789abcdef0"},
		{"i-01234567", "", "i-01234567"},
		{ec2Name(1), ec2Name(1), ""},
		{ec2Name(1) + ":2222", ec2Name(1) + ":2222", ""},
		{"ip-10-0-0-1.ec2.internal.", "ip-10-0-0-1.ec2.internal.", ""},
		{"web1", "web1", ""},
		{"10.0.0.5:22", "10.0.0.5:22", ""},
	} {
		host, id, err := parseELBHost(tc.arg)
		if err != nil || host != tc.host || id != tc.id {
			t.Errorf("parseELBHost(%q) = %q, %q, %v; want %q, %q", tc.arg, host, id, err, tc.host, tc.id)
		}
	}
}

func TestAWSConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		aws  AWS
		want string
	}{
		{AWS{Region: "us-east-1", Endpoint: "https://elb.example.com:8443/"}, ""},
		{AWS{Region: "US East"}, `Config.AWS.Region: "US East" is not a region name`},
		{AWS{Region: "-us-east-1"}, `Config.AWS.Region: "-us-east-1" is not a region name`},
		{AWS{Endpoint: "127.0.0.1:4566"}, `Config.AWS.Endpoint: "127.0.0.1:4566" is not an http(s) URL`},
		{AWS{Endpoint: "ftp://127.0.0.1/"}, `Config.AWS.Endpoint: "ftp://127.0.0.1/" is not an http(s) URL`},
	} {
		c := withDefaults(Config{Unit: "five", AWS: tc.aws})
		err := c.validate(false)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("validate with %+v: %v", tc.aws, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("validate with %+v: error = %v, want %q", tc.aws, err, tc.want)
		}
	}
}

// TestElbTargets checks what mage needs of the Elb namespace: value
// receivers only, and targets that take a context and the host.
func TestElbTargets(t *testing.T) {
	t.Parallel()
	value, pointer := reflect.TypeFor[Elb](), reflect.TypeFor[*Elb]()
	if value.NumMethod() != pointer.NumMethod() {
		t.Errorf("Elb has %d methods with value receivers and %d in all, want none with a pointer receiver", value.NumMethod(), pointer.NumMethod())
	}
	var names []string
	for m := range value.Methods() {
		names = append(names, m.Name)
		if got := m.Type.String(); got != "func(magetargets.Elb, context.Context, string) error" {
			t.Errorf("Elb.%s has type %s", m.Name, got)
		}
	}
	if want := []string{"Add", "Remove"}; !slices.Equal(names, want) {
		t.Errorf("Elb methods = %q, want %q", names, want)
	}
}

// An instance that fails its health check runs all the same: it is one
// of the hosts (left out, it would serve the old release once back in
// service), and the output names it.
func TestLoadBalancerHostsOutOfService(t *testing.T) {
	srv := elbFleet(t)
	srv.SetOutOfService("web", instanceID(3), true)
	c, out := elbConfigure(t, srv, "web", nil)
	got, err := resolveHosts(t.Context(), c, c.Environments["production"])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ec2Name(1), ec2Name(3)}; !slices.Equal(got, want) {
		t.Errorf("resolveHosts(production) with %s OutOfService = %q, want every running registered instance %q", instanceID(3), got, want)
	}
	want := fmt.Sprintf("warning: load balancer \"web\" (production): %s (%s) is OutOfService; it is one of the hosts all the same, so that it serves the same release when it is back in service\n",
		ec2Name(3), instanceID(3))
	if out.String() != want {
		t.Errorf("resolveHosts printed\n%q\nwant\n%q", out.String(), want)
	}
	out.Reset()
	srv.SetOutOfService("web", instanceID(3), false)
	if _, err := resolveHosts(t.Context(), c, c.Environments["production"]); err != nil || out.Len() != 0 {
		t.Errorf("resolveHosts with every instance in service: %v, printed %q", err, out)
	}
}
