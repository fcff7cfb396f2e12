package elb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	"github.com/aws/smithy-go"

	"github.com/magefab/magefab/internal/testenv"
	"github.com/magefab/magefab/release/elb/elbtest"
)

// awsEnv gives the SDK static credentials and a region from the
// environment and nothing else to find: no shared config files, no
// profile, no instance metadata service, no endpoint overrides.
func awsEnv(t *testing.T) {
	t.Helper()
	testenv.AWS(t, elbtest.AccessKeyID, elbtest.SecretAccessKey, "us-east-1")
}

// newServer starts an elbtest.Server that stops, and reports the
// requests it could not make sense of, when the test ends.
func newServer(t *testing.T) *elbtest.Server {
	t.Helper()
	f := elbtest.NewServer()
	t.Cleanup(func() {
		f.Close()
		if err := f.Err(); err != nil {
			t.Error(err)
		}
	})
	return f
}

// newClient returns a Client for cfg that talks to f.
func newClient(t *testing.T, f *elbtest.Server, cfg Config) *Client {
	t.Helper()
	awsEnv(t)
	cfg.Endpoint = f.URL
	c, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.pollMin, c.pollMax = time.Millisecond, 5*time.Millisecond
	return c
}

func iid(n int) string { return fmt.Sprintf("i-%017x", n) }

func publicDNS(n int) string  { return fmt.Sprintf("ec2-54-0-0-%d.compute-1.amazonaws.com", n) }
func privateDNS(n int) string { return fmt.Sprintf("ip-10-0-0-%d.ec2.internal", n) }

// newFleet returns a fake with load balancer "web" holding instances 3
// and 1 (running, listed in that order so that sorting shows) and 2
// (stopped); instance 4 runs outside any load balancer, instance 5 is
// behind "api", and load balancer "empty" has none.
func newFleet(t *testing.T) *elbtest.Server {
	f := newServer(t)
	for n := 1; n <= 5; n++ {
		state := "running"
		if n == 2 {
			state = "stopped"
		}
		f.AddInstance(elbtest.Instance{ID: iid(n), State: state, DNSName: publicDNS(n), PrivateDNSName: privateDNS(n)})
	}
	f.AddLoadBalancer("web", iid(3), iid(1), iid(2))
	f.AddLoadBalancer("api", iid(5))
	f.AddLoadBalancer("empty")
	return f
}

func params(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func healthCall(lb string) elbtest.Request {
	return elbtest.Request{Service: "elasticloadbalancing", Region: "us-east-1", Action: "DescribeInstanceHealth",
		Params: params("LoadBalancerName", lb)}
}

func describeCall(ids ...string) elbtest.Request {
	p := params("Filter.1.Name", "instance-state-name", "Filter.1.Value.1", "running")
	for i, id := range ids {
		p.Set(fmt.Sprintf("InstanceId.%d", i+1), id)
	}
	return elbtest.Request{Service: "ec2", Region: "us-east-1", Action: "DescribeInstances", Params: p}
}

func memberCall(action, lb, id string) elbtest.Request {
	return elbtest.Request{Service: "elasticloadbalancing", Region: "us-east-1", Action: action,
		Params: params("LoadBalancerName", lb, "Instances.member.1.InstanceId", id)}
}

func TestHosts(t *testing.T) {
	f := newFleet(t)
	c := newClient(t, f, Config{})
	got, err := c.Hosts(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{publicDNS(1), publicDNS(3)}; !reflect.DeepEqual(got, want) {
		t.Errorf("Hosts(web) = %q, want %q", got, want)
	}
	if d := diffCalls(f.TakeRequests(), []elbtest.Request{healthCall("web"), describeCall(iid(3), iid(1), iid(2))}); d != "" {
		t.Error(d)
	}
}

func TestHostsConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"public", Config{}, []string{publicDNS(1), publicDNS(3)}},
		{"port", Config{Port: 2222}, []string{publicDNS(1) + ":2222", publicDNS(3) + ":2222"}},
		{"private", Config{UsePrivate: true}, []string{privateDNS(1), privateDNS(3)}},
		{"private port", Config{UsePrivate: true, Port: 22}, []string{privateDNS(1) + ":22", privateDNS(3) + ":22"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, newFleet(t), tc.cfg)
			got, err := c.Hosts(t.Context(), "web")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Hosts(web) with %+v = %q, want %q", tc.cfg, got, tc.want)
			}
		})
	}
}

func TestInstances(t *testing.T) {
	f := newFleet(t)
	c := newClient(t, f, Config{})
	got, err := c.Instances(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	want := []Instance{
		{ID: iid(1), DNSName: publicDNS(1), PrivateDNSName: privateDNS(1), State: "InService"},
		{ID: iid(3), DNSName: publicDNS(3), PrivateDNSName: privateDNS(3), State: "InService"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Instances(web) =\n\t%+v\nwant (the stopped instance left out)\n\t%+v", got, want)
	}
}

func TestEmptyLoadBalancer(t *testing.T) {
	f := newFleet(t)
	c := newClient(t, f, Config{})
	in, err := c.Instances(t.Context(), "empty")
	if err != nil || len(in) != 0 {
		t.Errorf("Instances(empty) = %v, %v; want none, nil", in, err)
	}
	if d := diffCalls(f.TakeRequests(), []elbtest.Request{healthCall("empty")}); d != "" {
		t.Errorf("an empty load balancer needs no EC2 call: %s", d)
	}
	_, err = c.Hosts(t.Context(), "empty")
	if err == nil || !strings.Contains(err.Error(), `elb: load balancer "empty" in region us-east-1 has no running instances registered`) {
		t.Errorf("Hosts(empty) error = %v, want one naming the load balancer", err)
	}
}

// Every running registered instance is a host, in service or not: one
// left out while OutOfService would keep the old release and split the
// fleet when it came back.
func TestHostsOutOfService(t *testing.T) {
	f := newFleet(t)
	f.AddLoadBalancer("down", iid(2))
	f.AddLoadBalancer("settling")
	c := newClient(t, f, Config{})
	_, err := c.Hosts(t.Context(), "down")
	if err == nil || !strings.Contains(err.Error(), `elb: load balancer "down" in region us-east-1 has no running instances registered`) {
		t.Errorf("Hosts(down) with only a stopped instance: error = %v, want one naming the load balancer", err)
	}
	f.SetSettle(1)
	if err := c.Register(t.Context(), "settling", iid(4)); err != nil {
		t.Fatal(err)
	}
	got, err := c.Hosts(t.Context(), "settling")
	if err != nil || !reflect.DeepEqual(got, []string{publicDNS(4)}) {
		t.Errorf("Hosts(settling) with its one instance OutOfService = %q, %v; want %q", got, err, publicDNS(4))
	}

	if !f.SetOutOfService("web", iid(3), true) {
		t.Fatalf("SetOutOfService(web, %s) = false", iid(3))
	}
	f.TakeRequests()
	bs, err := c.Backends(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	want := []Backend{
		{Host: publicDNS(1), Instance: Instance{ID: iid(1), DNSName: publicDNS(1), PrivateDNSName: privateDNS(1), State: "InService"}},
		{Host: publicDNS(3), Instance: Instance{ID: iid(3), DNSName: publicDNS(3), PrivateDNSName: privateDNS(3), State: "OutOfService"}},
	}
	if !reflect.DeepEqual(bs, want) {
		t.Errorf("Backends(web) with %s failing its health check =\n\t%+v\nwant\n\t%+v", iid(3), bs, want)
	}
	if bs[0].InService() == false || bs[1].InService() {
		t.Errorf("InService() = %v, %v; want true, false", bs[0].InService(), bs[1].InService())
	}
	if d := diffCalls(f.TakeRequests(), []elbtest.Request{healthCall("web"), describeCall(iid(3), iid(1), iid(2))}); d != "" {
		t.Error(d)
	}
	hosts, err := c.Hosts(t.Context(), "web")
	if err != nil || !reflect.DeepEqual(hosts, []string{publicDNS(1), publicDNS(3)}) {
		t.Errorf("Hosts(web) with %s OutOfService = %q, %v; want both running instances", iid(3), hosts, err)
	}
	f.SetOutOfService("web", iid(3), false)
	if in, err := c.Instances(t.Context(), "web"); err != nil || len(in) != 2 || in[1].State != InService {
		t.Errorf("Instances(web) once %s passes again = %+v, %v", iid(3), in, err)
	}
	if f.SetOutOfService("web", iid(4), true) {
		t.Errorf("SetOutOfService(web, %s) = true for an instance web does not hold", iid(4))
	}
}

func TestHostsWithoutPublicDNS(t *testing.T) {
	f := newFleet(t)
	f.AddInstance(elbtest.Instance{ID: iid(6), State: "running", DNSName: "", PrivateDNSName: privateDNS(6)})
	f.AddLoadBalancer("vpc", iid(6))
	c := newClient(t, f, Config{})
	_, err := c.Hosts(t.Context(), "vpc")
	if err == nil || !strings.Contains(err.Error(), "instance "+iid(6)+" has no public DNS name") || !strings.Contains(err.Error(), "UsePrivate") {
		t.Errorf("Hosts(vpc) error = %v, want one naming the instance and UsePrivate", err)
	}
	c.cfg.UsePrivate = true
	got, err := c.Hosts(t.Context(), "vpc")
	if err != nil || !reflect.DeepEqual(got, []string{privateDNS(6)}) {
		t.Errorf("Hosts(vpc) with UsePrivate = %q, %v; want %q", got, err, privateDNS(6))
	}
}

func TestDeregisterRegister(t *testing.T) {
	f := newFleet(t)
	f.SetSettle(1) // one health check OutOfService after registering
	c := newClient(t, f, Config{})
	ctx := t.Context()

	if err := c.Deregister(ctx, "web", iid(3)); err != nil {
		t.Fatal(err)
	}
	if d := diffCalls(f.TakeRequests(), []elbtest.Request{memberCall("DeregisterInstancesFromLoadBalancer", "web", iid(3))}); d != "" {
		t.Error(d)
	}
	hosts, err := c.Hosts(ctx, "web")
	if err != nil || !reflect.DeepEqual(hosts, []string{publicDNS(1)}) {
		t.Errorf("Hosts(web) after Deregister(%s) = %q, %v; want only %s", iid(3), hosts, err, publicDNS(1))
	}
	f.TakeRequests()

	if err := c.Register(ctx, "web", iid(3)); err != nil {
		t.Fatal(err)
	}
	if d := diffCalls(f.TakeRequests(), []elbtest.Request{memberCall("RegisterInstancesWithLoadBalancer", "web", iid(3))}); d != "" {
		t.Error(d)
	}
	in, err := c.Instances(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 2 || in[1].ID != iid(3) || in[1].State != "OutOfService" {
		t.Errorf("Instances(web) right after Register = %+v, want %s OutOfService", in, iid(3))
	}
	hosts, err = c.Hosts(ctx, "web")
	if err != nil || !reflect.DeepEqual(hosts, []string{publicDNS(1), publicDNS(3)}) {
		t.Errorf("Hosts(web) once %s is healthy = %q, %v", iid(3), hosts, err)
	}
}

func TestWaitInService(t *testing.T) {
	f := newFleet(t)
	f.SetSettle(2)
	c := newClient(t, f, Config{})
	ctx := t.Context()
	if err := c.Register(ctx, "web", iid(4)); err != nil {
		t.Fatal(err)
	}
	f.TakeRequests()
	if err := c.WaitInService(ctx, "web", iid(4), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	calls := f.TakeRequests()
	want := elbtest.Request{Service: "elasticloadbalancing", Action: "DescribeInstanceHealth",
		Params: params("LoadBalancerName", "web", "Instances.member.1.InstanceId", iid(4))}
	if d := diffCalls(calls, []elbtest.Request{want, want, want}); d != "" {
		t.Errorf("two checks OutOfService, the third InService: %s", d)
	}

	f.SetSettle(1000)
	if err := c.Register(ctx, "api", iid(4)); err != nil {
		t.Fatal(err)
	}
	err := c.WaitInService(ctx, "api", iid(4), 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `elb: load balancer "api": wait for `+iid(4)+" to be InService") {
		t.Errorf("WaitInService on an instance that never gets healthy: error = %v", err)
	}
}

func TestLoadBalancerNotFound(t *testing.T) {
	f := newFleet(t)
	c := newClient(t, f, Config{})
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"Hosts":           func() error { _, err := c.Hosts(ctx, "nope"); return err },
		"Instances":       func() error { _, err := c.Instances(ctx, "nope"); return err },
		"InstanceForHost": func() error { _, err := c.InstanceForHost(ctx, "nope", publicDNS(1)); return err },
		"Deregister":      func() error { return c.Deregister(ctx, "nope", iid(1)) },
		"Register":        func() error { return c.Register(ctx, "nope", iid(1)) },
		"WaitInService":   func() error { return c.WaitInService(ctx, "nope", iid(1), time.Second) },
	} {
		err := call()
		if err == nil {
			t.Errorf("%s(nope) succeeded", name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, `elb: load balancer "nope" not found in region us-east-1: `) ||
			!strings.Contains(msg, "There is no ACTIVE Load Balancer named 'nope'") {
			t.Errorf("%s(nope) error = %q", name, msg)
		}
		if e, ok := errors.AsType[*types.AccessPointNotFoundException](err); !ok || e.ErrorCode() != "LoadBalancerNotFound" {
			t.Errorf("%s(nope) error does not wrap the SDK's AccessPointNotFoundException: %#v", name, err)
		}
	}
	for _, c := range f.TakeRequests() {
		if c.Service != "elasticloadbalancing" {
			t.Errorf("%s %s called for a load balancer that does not exist", c.Service, c.Action)
		}
	}
}

func TestDeregisterNotRegistered(t *testing.T) {
	c := newClient(t, newFleet(t), Config{})
	err := c.Deregister(t.Context(), "web", iid(4))
	if err == nil || !strings.HasPrefix(err.Error(), `elb: load balancer "web": deregister `+iid(4)+": ") {
		t.Fatalf("Deregister of an instance not in the load balancer: error = %v", err)
	}
	if _, ok := errors.AsType[*types.InvalidEndPointException](err); !ok {
		t.Errorf("error does not wrap the SDK's InvalidEndPointException: %#v", err)
	}
}

func TestEC2Error(t *testing.T) {
	f := newFleet(t)
	f.FailEC2("UnauthorizedOperation") // a policy that allows ELB but not ec2:DescribeInstances
	c := newClient(t, f, Config{})
	_, err := c.Hosts(t.Context(), "web")
	if err == nil {
		t.Fatal("Hosts(web) succeeded")
	}
	api, ok := errors.AsType[smithy.APIError](err)
	if !ok {
		t.Fatalf("error does not wrap an API error: %#v", err)
	}
	if api.ErrorCode() != "UnauthorizedOperation" || !strings.HasPrefix(err.Error(), `elb: load balancer "web": describe instances: `) {
		t.Errorf("Hosts(web) error = %q (code %s)", err, api.ErrorCode())
	}
}

func TestManyInstances(t *testing.T) {
	f := newServer(t)
	var ids []string
	for n := 1; n <= 150; n++ {
		f.AddInstance(elbtest.Instance{ID: iid(n), State: "running", DNSName: publicDNS(n), PrivateDNSName: privateDNS(n)})
		ids = append(ids, iid(n))
	}
	f.AddLoadBalancer("big", ids...)
	c := newClient(t, f, Config{})
	hosts, err := c.Hosts(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 150 {
		t.Errorf("Hosts(big) gave %d hosts, want 150", len(hosts))
	}
	if d := diffCalls(f.TakeRequests(), []elbtest.Request{healthCall("big"), describeCall(ids[:100]...), describeCall(ids[100:]...)}); d != "" {
		t.Error(d)
	}
}

func TestInstanceForHost(t *testing.T) {
	f := newFleet(t)
	c := newClient(t, f, Config{})
	for _, tc := range []struct {
		host, want, err string
	}{
		{publicDNS(3), iid(3), ""},
		{publicDNS(3) + ":22", iid(3), ""},
		{strings.ToUpper(publicDNS(1)) + ".", iid(1), ""},
		{privateDNS(1), iid(1), ""},
		{privateDNS(1) + ":2222", iid(1), ""},
		{publicDNS(2), "", `elb: load balancer "web": no running registered instance has DNS name "` + publicDNS(2) + `"`}, // stopped
		{publicDNS(4), "", `no running registered instance has DNS name`},                                                  // not behind web
		{":22", "", `elb: load balancer "web": empty host ":22"`},
	} {
		got, err := c.InstanceForHost(t.Context(), "web", tc.host)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("InstanceForHost(web, %q) = %q, %v; want %q", tc.host, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("InstanceForHost(web, %q) = %q, %v; want error %q", tc.host, got, err, tc.err)
		}
	}
}

func TestInvalidInputMakesNoCall(t *testing.T) {
	f := newFleet(t)
	c := newClient(t, f, Config{})
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"Hosts", func() error { _, err := c.Hosts(ctx, "-web"); return err }, `invalid load balancer name "-web"`},
		{"Instances", func() error { _, err := c.Instances(ctx, "web_1"); return err }, `invalid load balancer name "web_1"`},
		{"InstanceForHost", func() error { _, err := c.InstanceForHost(ctx, "", "h"); return err }, `invalid load balancer name ""`},
		{"Deregister lb", func() error { return c.Deregister(ctx, strings.Repeat("a", 33), iid(1)) }, "invalid load balancer name"},
		{"Deregister id", func() error { return c.Deregister(ctx, "web", "web1") }, `elb: load balancer "web": invalid instance ID "web1"`},
		{"Register id", func() error { return c.Register(ctx, "web", "i-123") }, `invalid instance ID "i-123"`},
		{"WaitInService id", func() error { return c.WaitInService(ctx, "web", "", time.Second) }, `invalid instance ID ""`},
		{"WaitInService timeout", func() error { return c.WaitInService(ctx, "web", iid(1), 0) }, "timeout 0s is not positive"},
	} {
		err := tc.call()
		if err == nil || !strings.HasPrefix(err.Error(), "elb: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.name, err, tc.want)
		}
	}
	if calls := f.TakeRequests(); len(calls) != 0 {
		t.Errorf("invalid input reached the API: %s", diffCalls(calls, nil))
	}
}

func TestRegion(t *testing.T) {
	f := newFleet(t)
	c := newClient(t, f, Config{Region: "eu-west-1"})
	if c.Region() != "eu-west-1" {
		t.Errorf("Region() = %q, want Config.Region over AWS_REGION", c.Region())
	}
	if _, err := c.Hosts(t.Context(), "web"); err != nil {
		t.Fatal(err)
	}
	for _, call := range f.TakeRequests() {
		if call.Region != "eu-west-1" {
			t.Errorf("%s %s signed for %q, want eu-west-1", call.Service, call.Action, call.Region)
		}
	}

	t.Setenv("AWS_REGION", "")
	_, err := New(t.Context(), Config{Endpoint: f.URL})
	if err == nil || !strings.Contains(err.Error(), "elb: no AWS region") {
		t.Errorf("New with no region anywhere: error = %v", err)
	}
}

func TestNewRejectsConfig(t *testing.T) {
	awsEnv(t)
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Port: -1}, "Config.Port -1 is out of range"},
		{Config{Port: 65536}, "Config.Port 65536 is out of range"},
		{Config{Endpoint: "127.0.0.1:4566"}, `Config.Endpoint "127.0.0.1:4566" is not an http(s) URL`},
		{Config{Endpoint: "ftp://127.0.0.1/"}, "is not an http(s) URL"},
	} {
		_, err := New(context.Background(), tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) error = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// diffCalls reports the differences between got and want, comparing the
// parameters only where want gives them (nil Params: any).
func diffCalls(got, want []elbtest.Request) string {
	var b strings.Builder
	if len(got) != len(want) {
		fmt.Fprintf(&b, "got %d calls, want %d:\n", len(got), len(want))
		for _, c := range got {
			fmt.Fprintf(&b, "\t%s %s %v\n", c.Service, c.Action, c.Params)
		}
		return b.String()
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Service != w.Service || g.Action != w.Action {
			fmt.Fprintf(&b, "call %d = %s %s, want %s %s\n", i, g.Service, g.Action, w.Service, w.Action)
			continue
		}
		if w.Region != "" && g.Region != w.Region {
			fmt.Fprintf(&b, "call %d %s signed for region %q, want %q\n", i, g.Action, g.Region, w.Region)
		}
		if w.Params != nil && g.Params.Encode() != w.Params.Encode() {
			fmt.Fprintf(&b, "call %d %s params\n\t%s\nwant\n\t%s\n", i, g.Action, g.Params.Encode(), w.Params.Encode())
		}
	}
	return b.String()
}

func TestInstanceByDNSName(t *testing.T) {
	f := newFleet(t)
	f.AddInstance(elbtest.Instance{ID: iid(7), DNSName: "dup.example.com", PrivateDNSName: privateDNS(7)})
	f.AddInstance(elbtest.Instance{ID: iid(8), DNSName: "dup.example.com", PrivateDNSName: privateDNS(8)})
	c := newClient(t, f, Config{})
	for _, tc := range []struct {
		host, want, err string
	}{
		{publicDNS(4), iid(4), ""}, // running, behind no load balancer
		{publicDNS(3) + ":2222", iid(3), ""},
		{strings.ToUpper(publicDNS(1)) + ".", iid(1), ""},
		{privateDNS(5), iid(5), ""},
		{publicDNS(2), "", `elb: no running instance in region us-east-1 has DNS name "` + publicDNS(2) + `"`}, // stopped
		{"dup.example.com", "", `elb: 2 running instances in region us-east-1 have DNS name "dup.example.com" (` + iid(7) + ", " + iid(8) + "); give an instance ID"},
		{":22", "", `elb: empty host ":22"`},
	} {
		got, err := c.InstanceByDNSName(t.Context(), tc.host)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("InstanceByDNSName(%q) = %q, %v; want %q", tc.host, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("InstanceByDNSName(%q) = %q, %v; want error %q", tc.host, got, err, tc.err)
		}
	}
	f.TakeRequests()
	if _, err := c.InstanceByDNSName(t.Context(), privateDNS(5)); err != nil {
		t.Fatal(err)
	}
	byName := func(filter, name string) elbtest.Request {
		return elbtest.Request{Service: "ec2", Region: "us-east-1", Action: "DescribeInstances", Params: params(
			"Filter.1.Name", "instance-state-name", "Filter.1.Value.1", "running",
			"Filter.2.Name", filter, "Filter.2.Value.1", name)}
	}
	if d := diffCalls(f.TakeRequests(), []elbtest.Request{byName("dns-name", privateDNS(5)), byName("private-dns-name", privateDNS(5))}); d != "" {
		t.Error(d)
	}
}

// TestLargeResponsesNeedNoRetry sends calls whose answers are larger than
// the HTTP client's read buffer to a server that answers at once: the
// SDK's request body must not make net/http drop the connection while the
// answer is being read (see plainBodyClient).
func TestLargeResponsesNeedNoRetry(t *testing.T) {
	f := newServer(t)
	var ids []string
	for n := 1; n <= 150; n++ {
		f.AddInstance(elbtest.Instance{ID: iid(n), DNSName: publicDNS(n), PrivateDNSName: privateDNS(n)})
		ids = append(ids, iid(n))
	}
	f.AddLoadBalancer("big", ids...)
	awsEnv(t)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	c, err := New(t.Context(), Config{Endpoint: f.URL})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := c.Hosts(t.Context(), "big"); err != nil {
			t.Fatalf("Hosts(big) with one attempt per call: %v", err)
		}
	}
}
