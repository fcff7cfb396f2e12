package elbtest_test

import (
	"github.com/magefab/magefab/internal/testenv"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/magefab/magefab/release/elb"
	"github.com/magefab/magefab/release/elb/elbtest"
)

// client returns an elb.Client that talks to s with the test credentials
// and nothing else to find (no config files, no instance metadata).
func client(t *testing.T, s *elbtest.Server) *elb.Client {
	t.Helper()
	testenv.AWS(t, elbtest.AccessKeyID, elbtest.SecretAccessKey, "eu-west-1")
	c, err := elb.New(t.Context(), elb.Config{Endpoint: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServerState(t *testing.T) {
	s := elbtest.NewServer()
	defer s.Close()
	const a, b = "i-0000000000000000a", "i-0000000000000000b"
	s.AddInstance(elbtest.Instance{ID: a, DNSName: "a.example.com"})
	s.AddInstance(elbtest.Instance{ID: b, DNSName: "b.example.com", State: "stopped"})
	s.AddLoadBalancer("web", a)
	if ids, ok := s.Registered("web"); !ok || !slices.Equal(ids, []string{a}) {
		t.Errorf("Registered(web) = %q, %v; want [%s], true", ids, ok, a)
	}
	if ids, ok := s.Registered("nope"); ok || ids != nil {
		t.Errorf("Registered(nope) = %q, %v; want nil, false", ids, ok)
	}

	c := client(t, s)
	ctx := t.Context()
	s.AddInstance(elbtest.Instance{ID: b, DNSName: "b.example.com"}) // started
	if err := c.Register(ctx, "web", b); err != nil {
		t.Fatal(err)
	}
	if err := c.Deregister(ctx, "web", a); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.Registered("web"); !slices.Equal(ids, []string{b}) {
		t.Errorf("Registered(web) after Register(b), Deregister(a) = %q, want [%s]", ids, b)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Action != "RegisterInstancesWithLoadBalancer" || reqs[1].Action != "DeregisterInstancesFromLoadBalancer" {
		t.Fatalf("Requests() = %+v", reqs)
	}
	if r := reqs[0]; r.Service != "elasticloadbalancing" || r.Region != "eu-west-1" ||
		r.Params.Encode() != (url.Values{"LoadBalancerName": {"web"}, "Instances.member.1.InstanceId": {b}}).Encode() {
		t.Errorf("Requests()[0] = %+v", r)
	}
	reqs[0].Params.Set("LoadBalancerName", "changed")
	if got := s.TakeRequests(); len(got) != 2 || got[0].Params.Get("LoadBalancerName") != "web" {
		t.Errorf("TakeRequests() = %+v; want the two requests, unchanged by the caller of Requests", got)
	}
	if got := s.Requests(); len(got) != 0 {
		t.Errorf("Requests() after TakeRequests = %+v, want none", got)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

func TestServerSettleAndFaults(t *testing.T) {
	s := elbtest.NewServer()
	defer s.Close()
	const a = "i-0000000000000000a"
	s.AddInstance(elbtest.Instance{ID: a, DNSName: "a.example.com"})
	s.AddLoadBalancer("web")
	c := client(t, s)
	ctx := t.Context()
	s.SetSettle(1)
	if err := c.Register(ctx, "web", a); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"OutOfService", "InService"} {
		in, err := c.Instances(ctx, "web")
		if err != nil || len(in) != 1 || in[0].State != want {
			t.Errorf("health check %d: Instances(web) = %+v, %v; want %s", i+1, in, err, want)
		}
	}
	s.FailEC2("UnauthorizedOperation")
	if _, err := c.Hosts(ctx, "web"); err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Errorf("Hosts with FailEC2: error = %v", err)
	}
	s.FailEC2("")
	if _, err := c.Hosts(ctx, "web"); err != nil {
		t.Errorf("Hosts after FailEC2(\"\"): %v", err)
	}
}

func TestServerErr(t *testing.T) {
	s := elbtest.NewServer()
	defer s.Close()
	resp, err := http.Get(s.URL + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.PostForm(s.URL+"/", url.Values{"Action": {"DescribeInstanceHealth"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned request: status %d, want 403", resp.StatusCode)
	}
	err = s.Err()
	if err == nil || !strings.Contains(err.Error(), "elbtest: GET /other, want POST /") || !strings.Contains(err.Error(), "is not a SigV4 signature") {
		t.Errorf("Err() = %v, want both bad requests reported", err)
	}
	if got := s.Requests(); len(got) != 0 {
		t.Errorf("Requests() = %+v; requests that were not understood are not recorded", got)
	}
}
