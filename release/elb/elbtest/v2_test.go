package elbtest_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/magefab/magefab/internal/testenv"
	"github.com/magefab/magefab/release/elb/elbtest"
)

// v2client returns the SDK's ELBv2 client, pointed at s.
func v2client(t *testing.T, s *elbtest.Server) *elbv2.Client {
	t.Helper()
	testenv.AWS(t, elbtest.AccessKeyID, elbtest.SecretAccessKey, "eu-west-1")
	cfg, err := config.LoadDefaultConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return elbv2.NewFromConfig(cfg, func(o *elbv2.Options) { o.BaseEndpoint = aws.String(s.URL) })
}

// eventually waits until cond holds, checking every 20ms, and fails the
// test after 30 seconds: the fakes' delays end by the clock, and a busy
// machine may look later than they do, never earlier.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func health(t *testing.T, c *elbv2.Client, arn string, ids ...string) []string {
	t.Helper()
	in := &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)}
	for _, id := range ids {
		in.Targets = append(in.Targets, types.TargetDescription{Id: aws.String(id)})
	}
	out, err := c.DescribeTargetHealth(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range out.TargetHealthDescriptions {
		s := aws.ToString(d.Target.Id) + ":" + string(d.TargetHealth.State)
		if d.TargetHealth.Reason != "" {
			s += ":" + string(d.TargetHealth.Reason)
		}
		got = append(got, s)
	}
	return got
}

// A target's life in a target group, as the SDK reads it: initial,
// healthy, draining, unused; unhealthy while it fails its health checks.
func TestServerTargetGroup(t *testing.T) {
	s := elbtest.NewServer()
	defer s.Close()
	const a, b = "i-0000000000000000a", "i-0000000000000000b"
	s.AddInstance(elbtest.Instance{ID: a})
	s.AddInstance(elbtest.Instance{ID: b})
	arn := s.AddTargetGroup(elbtest.TargetGroup{Name: "web", Port: 8080, Settle: 1, DeregistrationDelay: 2 * time.Second}, elbtest.Target{ID: a})
	c := v2client(t, s)
	ctx := t.Context()

	groups, err := c.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups.TargetGroups) != 1 || aws.ToString(groups.TargetGroups[0].TargetGroupArn) != arn ||
		aws.ToInt32(groups.TargetGroups[0].Port) != 8080 || groups.TargetGroups[0].TargetType != types.TargetTypeEnumInstance {
		t.Errorf("DescribeTargetGroups(web) = %+v", groups.TargetGroups)
	}
	_, err = c.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{"web", "nope"}})
	if _, ok := errors.AsType[*types.TargetGroupNotFoundException](err); !ok {
		t.Errorf("DescribeTargetGroups(nope): error = %v, want TargetGroupNotFound", err)
	}

	if got := health(t, c, arn); !slices.Equal(got, []string{a + ":healthy"}) {
		t.Errorf("health = %v", got)
	}
	if _, err := c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{{Id: aws.String(b)}}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{b + ":initial:Elb.RegistrationInProgress", b + ":healthy"} {
		if got := health(t, c, arn, b); !slices.Equal(got, []string{want}) {
			t.Errorf("health(b) = %v, want %s", got, want)
		}
	}
	s.SetUnhealthy(b, true)
	if got := health(t, c, arn, b); !slices.Equal(got, []string{b + ":unhealthy:Target.FailedHealthChecks"}) {
		t.Errorf("health(b) failing = %v", got)
	}
	s.SetUnhealthy(b, false)

	if _, err := c.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{{Id: aws.String(b)}}}); err != nil {
		t.Fatal(err)
	}
	if got := health(t, c, arn); !slices.Equal(got, []string{a + ":healthy", b + ":draining:Target.DeregistrationInProgress"}) {
		t.Errorf("health while b drains = %v", got)
	}
	if ts, _ := s.Targets("web"); !slices.Equal(ts, []elbtest.Target{{ID: a, Port: 8080}}) {
		t.Errorf("Targets(web) while b drains = %v", ts)
	}
	eventually(t, "b drained", func() bool { return slices.Equal(health(t, c, arn), []string{a + ":healthy"}) })
	if got := health(t, c, arn, b); !slices.Equal(got, []string{b + ":unused:Target.NotRegistered"}) {
		t.Errorf("health(b) once drained = %v", got)
	}

	_, err = c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{{Id: aws.String("i-0000000000000000c")}}})
	if _, ok := errors.AsType[*types.InvalidTargetException](err); !ok {
		t.Errorf("RegisterTargets of an unknown instance: error = %v, want InvalidTarget", err)
	}
	s.Fail("DeregisterTargets", "AccessDenied")
	_, err = c.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: []types.TargetDescription{{Id: aws.String(a)}}})
	if api, ok := errors.AsType[smithy.APIError](err); !ok || api.ErrorCode() != "AccessDenied" {
		t.Errorf("DeregisterTargets with Fail: error = %v", err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}

// A Classic load balancer with connection draining: a deregistered
// instance stays InService, "Instance deregistration currently in
// progress", for the draining time, then is gone.
func TestServerConnectionDraining(t *testing.T) {
	s := elbtest.NewServer()
	defer s.Close()
	const a, b = "i-0000000000000000a", "i-0000000000000000b"
	s.AddInstance(elbtest.Instance{ID: a, DNSName: "a.example.com"})
	s.AddInstance(elbtest.Instance{ID: b, DNSName: "b.example.com"})
	s.AddLoadBalancer("web", a, b)
	s.SetConnectionDraining("web", 2*time.Second)
	c := client(t, s)
	ctx := t.Context()
	if err := c.Deregister(ctx, "web", b); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.Registered("web"); !slices.Equal(ids, []string{a}) {
		t.Errorf("Registered(web) while b drains = %v", ids)
	}
	in, err := c.Instances(ctx, "web")
	if err != nil || len(in) != 2 || in[1].State != "InService" {
		t.Errorf("Instances(web) while b drains = %+v, %v; want b still InService", in, err)
	}
	if err := c.Deregister(ctx, "web", b); err == nil || !strings.Contains(err.Error(), "is not registered") {
		t.Errorf("Deregister of a draining instance: error = %v", err)
	}
	eventually(t, "b drained", func() bool {
		in, err = c.Instances(ctx, "web")
		return err == nil && len(in) == 1 && in[0].ID == a
	})

	// An instance whose health check never passes.
	s.SetUnhealthy(b, true)
	if err := c.Register(ctx, "web", b); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitInService(ctx, "web", b, 100*time.Millisecond); err == nil {
		t.Error("WaitInService of an instance that never passes its health check succeeded")
	}
	s.Fail("RegisterInstancesWithLoadBalancer", "AccessDenied")
	if err := c.Register(ctx, "web", a); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("Register with Fail: error = %v", err)
	}
	if err := s.Err(); err != nil {
		t.Errorf("Err() = %v", err)
	}
}
