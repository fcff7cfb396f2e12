package elb

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/elb/elbtest"
)

// newBalancer returns the fleet of newFleet, with connection draining of
// drain on load balancer web, and web as a Balancer for its hosts.
func newBalancer(t *testing.T, drain time.Duration) (*elbtest.Server, *Balancer) {
	t.Helper()
	f := newFleet(t)
	f.SetConnectionDraining("web", drain)
	c := newClient(t, f, Config{})
	ids, err := c.HostInstances(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{publicDNS(1): iid(1), publicDNS(3): iid(3)}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("HostInstances(web) = %v, want %v", ids, want)
	}
	b, err := c.Balancer("web", ids)
	if err != nil {
		t.Fatal(err)
	}
	f.TakeRequests()
	return f, b
}

func actions(rs []elbtest.Request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Action)
	}
	return out
}

func checkStates(t *testing.T, b release.Balancer, want map[string]release.BalancerState) {
	t.Helper()
	got, err := b.States(t.Context(), slices.Sorted(maps.Keys(want)))
	if err != nil {
		t.Fatalf("States: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("States = %v, want %v", got, want)
	}
}

// Out waits until connection draining ended, and In until the health
// check passes; a host found by another spelling of its name is the same
// host.
func TestBalancerOutIn(t *testing.T) {
	const drain = 150 * time.Millisecond
	f, b := newBalancer(t, drain)
	ctx := t.Context()
	if got := b.Name(); got != `load balancer "web"` {
		t.Errorf("Name() = %q", got)
	}
	h1, h3 := publicDNS(1), publicDNS(3)
	checkStates(t, b, map[string]release.BalancerState{h1: release.InService, h3: release.InService, "web9.example.com": release.Unknown})
	f.TakeRequests()

	start := time.Now()
	if err := b.Out(ctx, []string{h3}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < drain {
		t.Errorf("Out returned after %s, before connection draining (%s) ended", d, drain)
	}
	calls := actions(f.TakeRequests())
	if len(calls) < 3 || calls[0] != "DescribeInstanceHealth" || calls[1] != "DeregisterInstancesFromLoadBalancer" || slices.Contains(calls[2:], "DeregisterInstancesFromLoadBalancer") {
		t.Errorf("Out called %v; want the health, one deregistration, then health checks until drained", calls)
	}
	if ids, _ := f.Registered("web"); !slices.Equal(ids, []string{iid(1), iid(2)}) {
		t.Errorf("registered after Out = %v, want %s and the stopped %s", ids, iid(1), iid(2))
	}
	checkStates(t, b, map[string]release.BalancerState{h1: release.InService, h3: release.OutService})

	// Out of a host that is out: no error, nothing deregistered.
	f.TakeRequests()
	if err := b.Out(ctx, []string{h3}); err != nil {
		t.Errorf("Out of a host that is out: %v", err)
	}
	if calls := actions(f.TakeRequests()); slices.Contains(calls, "DeregisterInstancesFromLoadBalancer") {
		t.Errorf("Out of a host that is out called %v", calls)
	}

	f.SetSettle(2)
	if err := b.In(ctx, []string{"deploy@" + strings.ToUpper(h3) + ".:22"}); err != nil {
		t.Fatal(err)
	}
	calls = actions(f.TakeRequests())
	if want := []string{"RegisterInstancesWithLoadBalancer", "DescribeInstanceHealth", "DescribeInstanceHealth", "DescribeInstanceHealth"}; !slices.Equal(calls, want) {
		t.Errorf("In called %v, want %v (two checks OutOfService, the third InService)", calls, want)
	}
	checkStates(t, b, map[string]release.BalancerState{h1: release.InService, h3: release.InService})
}

// A host deregistered by someone else is draining; Out waits for the end
// of it without deregistering it again.
func TestBalancerDraining(t *testing.T) {
	f, b := newBalancer(t, 200*time.Millisecond)
	ctx := t.Context()
	h3 := publicDNS(3)
	if err := b.c.Deregister(ctx, "web", iid(3)); err != nil {
		t.Fatal(err)
	}
	checkStates(t, b, map[string]release.BalancerState{h3: release.Draining})
	f.TakeRequests()
	if err := b.Out(ctx, []string{h3}); err != nil {
		t.Fatal(err)
	}
	if calls := actions(f.TakeRequests()); slices.Contains(calls, "DeregisterInstancesFromLoadBalancer") {
		t.Errorf("Out of a draining host called %v", calls)
	}
	checkStates(t, b, map[string]release.BalancerState{h3: release.OutService})

	// Draining longer than the deploy waits: the error names the host
	// and the state it is in.
	if err := b.In(ctx, []string{h3}); err != nil {
		t.Fatal(err)
	}
	f.SetConnectionDraining("web", time.Hour)
	c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := b.Out(c, []string{h3})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), `elb: load balancer "web": not yet drained: `+h3+" ("+iid(3)+", InService: Instance deregistration currently in progress)") {
		t.Errorf("Out while draining outlasts ctx: error = %v", err)
	}
}

// The load balancer refuses to deregister: Out fails naming the host and
// the cause, and the host stays in.
func TestBalancerRefusesDeregister(t *testing.T) {
	f, b := newBalancer(t, 0)
	f.Fail("DeregisterInstancesFromLoadBalancer", "AccessDenied")
	h3 := publicDNS(3)
	err := b.Out(t.Context(), []string{h3})
	if err == nil || !strings.Contains(err.Error(), `elb: load balancer "web": deregister `+h3+" ("+iid(3)+")") || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("Out refused: error = %v", err)
	}
	checkStates(t, b, map[string]release.BalancerState{h3: release.InService})

	f.Fail("DeregisterInstancesFromLoadBalancer", "")
	f.Fail("RegisterInstancesWithLoadBalancer", "AccessDenied")
	if err := b.Out(t.Context(), []string{h3}); err != nil {
		t.Fatal(err)
	}
	err = b.In(t.Context(), []string{h3})
	if err == nil || !strings.Contains(err.Error(), `elb: load balancer "web": register `+h3+" ("+iid(3)+")") || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("In refused: error = %v", err)
	}
}

// An instance that never passes its health check: In fails when ctx
// ends, naming the host and what the load balancer says of it.
func TestBalancerNeverHealthy(t *testing.T) {
	f, b := newBalancer(t, 0)
	h1, h3 := publicDNS(1), publicDNS(3)
	if err := b.Out(t.Context(), []string{h3}); err != nil {
		t.Fatal(err)
	}
	f.SetUnhealthy(iid(3), true)
	c, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := b.In(c, []string{h1, h3})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), `elb: load balancer "web": not yet in service: `+h3+" ("+iid(3)+", OutOfService: Instance has failed at least the UnhealthyThreshold number of health checks consecutively)") ||
		strings.Contains(err.Error(), h1) {
		t.Errorf("In of an instance that never gets healthy: error = %v", err)
	}
	checkStates(t, b, map[string]release.BalancerState{h1: release.InService, h3: release.Unhealthy})

	// ctx over before the first check: the error still names the host.
	c, cancel = context.WithCancel(t.Context())
	cancel()
	err = b.In(c, []string{h3})
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), h3) {
		t.Errorf("In with ctx done: error = %v", err)
	}
}

// A host the Balancer does not know is an error before any request, and
// unknown in States.
func TestBalancerUnknownHost(t *testing.T) {
	f, b := newBalancer(t, 0)
	for name, call := range map[string]func() error{
		"Out": func() error { return b.Out(t.Context(), []string{publicDNS(1), "web9.example.com"}) },
		"In":  func() error { return b.In(t.Context(), []string{"web9.example.com"}) },
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), `elb: load balancer "web": no instance known for host "web9.example.com" (known: `+publicDNS(1)+", "+publicDNS(3)+")") {
			t.Errorf("%s of an unknown host: error = %v", name, err)
		}
	}
	if calls := f.TakeRequests(); len(calls) != 0 {
		t.Errorf("requests sent for an unknown host: %v", actions(calls))
	}
	checkStates(t, b, map[string]release.BalancerState{"web9.example.com": release.Unknown, publicDNS(2): release.Unknown})
}

func TestBalancerInvalid(t *testing.T) {
	c := newClient(t, newServer(t), Config{})
	if _, err := c.Balancer("bad_name", nil); err == nil {
		t.Error("Balancer with an invalid load balancer name succeeded")
	}
	_, err := c.Balancer("web", map[string]string{"web1": "i-nope"})
	if err == nil || !strings.Contains(err.Error(), `invalid instance ID "i-nope"`) || !strings.Contains(err.Error(), "web1") {
		t.Errorf("Balancer with an invalid instance ID: error = %v", err)
	}
	b, err := c.Balancer("nope", map[string]string{"web1": iid(1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.States(t.Context(), []string{"web1"}); err == nil || !strings.Contains(err.Error(), `elb: load balancer "nope" not found`) {
		t.Errorf("States of a load balancer that does not exist: error = %v", err)
	}
}
