package elb

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	v2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/elb/elbtest"
)

// newTargetGroup returns the fleet of newFleet with target group web-tg
// (port 8080) holding instances 1 and 3, and web-tg as a Balancer for
// its hosts.
func newTargetGroup(t *testing.T, tg elbtest.TargetGroup) (*elbtest.Server, *TargetGroup) {
	t.Helper()
	f := newFleet(t)
	tg.Name, tg.Port = "web-tg", 8080
	f.AddTargetGroup(tg, elbtest.Target{ID: iid(1)}, elbtest.Target{ID: iid(3)})
	c := newClient(t, f, Config{})
	targets, err := c.HostTargets(t.Context(), "web-tg")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Target{publicDNS(1): {{iid(1), 8080}}, publicDNS(3): {{iid(3), 8080}}}
	if !reflect.DeepEqual(targets, want) {
		t.Fatalf("HostTargets(web-tg) = %v, want %v", targets, want)
	}
	b, err := c.TargetGroup(t.Context(), "web-tg", targets)
	if err != nil {
		t.Fatal(err)
	}
	f.TakeRequests()
	return f, b
}

func TestTargetGroupOutIn(t *testing.T) {
	const delay = 2 * time.Second
	f, b := newTargetGroup(t, elbtest.TargetGroup{DeregistrationDelay: delay})
	ctx := t.Context()
	if got := b.Name(); got != `target group "web-tg"` {
		t.Errorf("Name() = %q", got)
	}
	h1, h3 := publicDNS(1), publicDNS(3)
	checkStates(t, b, map[string]release.BalancerState{h1: release.InService, h3: release.InService, "web9.example.com": release.Unknown})
	f.TakeRequests()

	// Out waits through draining, where States says so.
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- b.Out(ctx, []string{h3}) }()
	sawDraining := false
	for !sawDraining && time.Since(start) < delay {
		st, err := b.States(ctx, []string{h3})
		if err != nil {
			t.Fatal(err)
		}
		sawDraining = st[h3] == release.Draining
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < delay {
		t.Errorf("Out returned after %s, before the deregistration delay (%s) ended", d, delay)
	}
	if !sawDraining {
		t.Error("States never said draining during the deregistration delay")
	}
	var calls []string
	for _, r := range f.TakeRequests() {
		calls = append(calls, r.Action)
		if r.Action == "DeregisterTargets" {
			want := params("TargetGroupArn", r.Params.Get("TargetGroupArn"), "Targets.member.1.Id", iid(3), "Targets.member.1.Port", "8080")
			if r.Params.Encode() != want.Encode() || !strings.HasPrefix(r.Params.Get("TargetGroupArn"), "arn:aws:elasticloadbalancing:") {
				t.Errorf("DeregisterTargets params %v, want %v", r.Params, want)
			}
		}
	}
	if n := strings.Count(strings.Join(calls, " "), "DeregisterTargets"); n != 1 {
		t.Errorf("Out called %v; want one DeregisterTargets", calls)
	}
	if ts, _ := f.Targets("web-tg"); !reflect.DeepEqual(ts, []elbtest.Target{{ID: iid(1), Port: 8080}}) {
		t.Errorf("targets after Out = %v", ts)
	}
	checkStates(t, b, map[string]release.BalancerState{h1: release.InService, h3: release.OutService})

	// Out of a host that is out: no error, nothing deregistered.
	f.TakeRequests()
	if err := b.Out(ctx, []string{h3}); err != nil {
		t.Errorf("Out of a host that is out: %v", err)
	}
	if calls := actions(f.TakeRequests()); slices.Contains(calls, "DeregisterTargets") {
		t.Errorf("Out of a host that is out called %v", calls)
	}

	// In: registered, "initial" for two checks, then healthy.
	f.AddTargetGroup(elbtest.TargetGroup{Name: "web-tg", Port: 8080, Settle: 2}, elbtest.Target{ID: iid(1)})
	f.TakeRequests()
	if err := b.In(ctx, []string{"deploy@" + h3 + ":22"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"RegisterTargets", "DescribeTargetHealth", "DescribeTargetHealth", "DescribeTargetHealth"}
	if got := actions(f.TakeRequests()); !slices.Equal(got, want) {
		t.Errorf("In called %v, want %v (two checks initial, the third healthy)", got, want)
	}
	checkStates(t, b, map[string]release.BalancerState{h1: release.InService, h3: release.InService})
}

// Targets by IP address, on a port of their own; a target group found by
// its ARN.
func TestTargetGroupIP(t *testing.T) {
	f := newServer(t)
	arn := f.AddTargetGroup(elbtest.TargetGroup{Name: "ip-tg", TargetType: "ip", Port: 80},
		elbtest.Target{ID: "10.0.0.1", Port: 8000}, elbtest.Target{ID: "10.0.0.2", Port: 8000}, elbtest.Target{ID: "10.0.0.2", Port: 8001})
	c := newClient(t, f, Config{Port: 22})
	targets, err := c.HostTargets(t.Context(), arn)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Target{"10.0.0.1:22": {{"10.0.0.1", 8000}}, "10.0.0.2:22": {{"10.0.0.2", 8000}, {"10.0.0.2", 8001}}}
	if !reflect.DeepEqual(targets, want) {
		t.Fatalf("HostTargets(%s) = %v, want %v", arn, targets, want)
	}
	b, err := c.TargetGroup(t.Context(), arn, targets)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Out(t.Context(), []string{"10.0.0.2:22"}); err != nil {
		t.Fatal(err)
	}
	if ts, _ := f.Targets("ip-tg"); !reflect.DeepEqual(ts, []elbtest.Target{{ID: "10.0.0.1", Port: 8000}}) {
		t.Errorf("targets after Out of both ports of 10.0.0.2 = %v", ts)
	}
	checkStates(t, b, map[string]release.BalancerState{"10.0.0.1:22": release.InService, "10.0.0.2:22": release.OutService})
	// 10.0.0.2 without the port is the same host; both its targets are
	// registered again, and In waits until both are healthy.
	f.SetUnhealthy("10.0.0.2", true)
	c2, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err = b.In(c2, []string{"10.0.0.2"})
	if err == nil || !strings.Contains(err.Error(), "not yet healthy: 10.0.0.2 (10.0.0.2:8000) (unhealthy: Health checks failed), 10.0.0.2 (10.0.0.2:8001) (unhealthy") {
		t.Errorf("In of an unhealthy host: error = %v", err)
	}
	f.SetUnhealthy("10.0.0.2", false)
	if err := b.In(t.Context(), []string{"10.0.0.2"}); err != nil {
		t.Fatal(err)
	}
	checkStates(t, b, map[string]release.BalancerState{"10.0.0.1:22": release.InService, "10.0.0.2:22": release.InService})
}

// The target group refuses to deregister, a target never gets healthy, a
// host is unknown, a target group does not exist.
func TestTargetGroupFailures(t *testing.T) {
	f, b := newTargetGroup(t, elbtest.TargetGroup{})
	ctx := t.Context()
	h1, h3 := publicDNS(1), publicDNS(3)

	f.Fail("DeregisterTargets", "AccessDenied")
	err := b.Out(ctx, []string{h3})
	if err == nil || !strings.Contains(err.Error(), `elb: target group "web-tg": deregister `+h3+" ("+iid(3)+":8080)") || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("Out refused: error = %v", err)
	}
	checkStates(t, b, map[string]release.BalancerState{h3: release.InService})
	f.Fail("DeregisterTargets", "")

	if err := b.Out(ctx, []string{h3}); err != nil {
		t.Fatal(err)
	}
	f.SetUnhealthy(iid(3), true)
	c, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = b.In(c, []string{h1, h3})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), `elb: target group "web-tg": not yet healthy: `+h3+" ("+iid(3)+":8080) (unhealthy: Health checks failed)") ||
		strings.Contains(err.Error(), h1) {
		t.Errorf("In of a target that never gets healthy: error = %v", err)
	}
	checkStates(t, b, map[string]release.BalancerState{h1: release.InService, h3: release.Unhealthy})

	f.TakeRequests()
	for name, call := range map[string]func() error{
		"Out": func() error { return b.Out(ctx, []string{"web9.example.com"}) },
		"In":  func() error { return b.In(ctx, []string{h1, "web9.example.com"}) },
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), `elb: target group "web-tg": no target known for host "web9.example.com" (known: `+h1+", "+h3+")") {
			t.Errorf("%s of an unknown host: error = %v", name, err)
		}
	}
	if calls := f.TakeRequests(); len(calls) != 0 {
		t.Errorf("requests sent for an unknown host: %v", actions(calls))
	}

	for _, tg := range []string{"nope", "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/nope/0123456789abcdef"} {
		_, err = b.c.TargetGroup(ctx, tg, nil)
		if err == nil || !strings.Contains(err.Error(), `elb: target group "`+tg+`" not found in region us-east-1`) {
			t.Errorf("TargetGroup(%s): error = %v", tg, err)
		}
		if _, ok := errors.AsType[*v2types.TargetGroupNotFoundException](err); !ok {
			t.Errorf("TargetGroup(%s): error does not wrap the SDK's TargetGroupNotFoundException: %#v", tg, err)
		}
	}
	if _, err := b.c.TargetGroup(ctx, "bad_name", nil); err == nil || !strings.Contains(err.Error(), `invalid target group "bad_name"`) {
		t.Errorf("TargetGroup(bad_name): error = %v", err)
	}
}

// Draining longer than the deploy waits: the error names the host.
func TestTargetGroupDrainOutlastsContext(t *testing.T) {
	_, b := newTargetGroup(t, elbtest.TargetGroup{DeregistrationDelay: time.Hour})
	h3 := publicDNS(3)
	c, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := b.Out(c, []string{h3})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), `elb: target group "web-tg": not yet drained: `+h3+" ("+iid(3)+":8080) (draining: Target deregistration is in progress)") {
		t.Errorf("Out while draining outlasts ctx: error = %v", err)
	}
}

func TestHostTargetsErrors(t *testing.T) {
	f := newFleet(t)
	f.AddTargetGroup(elbtest.TargetGroup{Name: "empty"})
	f.AddTargetGroup(elbtest.TargetGroup{Name: "stopped"}, elbtest.Target{ID: iid(2)})
	f.AddInstance(elbtest.Instance{ID: iid(6), PrivateDNSName: privateDNS(6)})
	f.AddTargetGroup(elbtest.TargetGroup{Name: "vpc"}, elbtest.Target{ID: iid(6)})
	c := newClient(t, f, Config{})
	for tg, want := range map[string]string{
		"empty":   `elb: target group "empty" in region us-east-1 has no running targets registered`,
		"stopped": `elb: target group "stopped" in region us-east-1 has no running targets registered`,
		"vpc":     `elb: target group "vpc": instance ` + iid(6) + ` has no public DNS name (set UsePrivate to use private DNS names)`,
	} {
		if _, err := c.HostTargets(t.Context(), tg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("HostTargets(%s): error = %v, want %q", tg, err, want)
		}
	}
	c = newClient(t, f, Config{UsePrivate: true})
	if got, err := c.HostTargets(t.Context(), "vpc"); err != nil || !reflect.DeepEqual(got, map[string][]Target{privateDNS(6): {{iid(6), 80}}}) {
		t.Errorf("HostTargets(vpc) with UsePrivate = %v, %v", got, err)
	}
}
