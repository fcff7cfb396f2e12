package elb_test

import (
	"context"
	"log"
	"maps"
	"slices"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/elb"
)

// A switch in batches behind a Classic Load Balancer: the hosts and their
// instances come from the load balancer, and the Balancer takes each
// batch out and puts it back.
func ExampleClient_Balancer() {
	ctx := context.Background()
	c, err := elb.New(ctx, elb.Config{Region: "us-east-1"})
	if err != nil {
		log.Fatal(err)
	}
	instances, err := c.HostInstances(ctx, "five-production")
	if err != nil {
		log.Fatal(err)
	}
	b, err := c.Balancer("five-production", instances)
	if err != nil {
		log.Fatal(err)
	}
	var lb release.Balancer = b // e.g. release.Fleet.Rollout.Balancer
	_ = lb
}

// The target group of an Application Load Balancer as the balancer of a
// switch in batches: one host out, restarted, and back in.
func ExampleClient_TargetGroup() {
	ctx := context.Background()
	c, err := elb.New(ctx, elb.Config{Region: "us-east-1"})
	if err != nil {
		log.Fatal(err)
	}
	targets, err := c.HostTargets(ctx, "five-web")
	if err != nil {
		log.Fatal(err)
	}
	tg, err := c.TargetGroup(ctx, "five-web", targets)
	if err != nil {
		log.Fatal(err)
	}
	hosts := slices.Sorted(maps.Keys(targets))[:1]
	if err := tg.Out(ctx, hosts); err != nil { // returns once its connections drained
		log.Fatal(err)
	}
	// ... restart the app on the host ...
	if err := tg.In(ctx, hosts); err != nil { // returns once it is healthy
		log.Fatal(err)
	}
}
