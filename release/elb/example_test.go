package elb_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/magefab/magefab/release/elb"
)

// The hosts of a production environment, from its load balancer.
func ExampleClient_Hosts() {
	ctx := context.Background()
	c, err := elb.New(ctx, elb.Config{Region: "us-east-1", Port: 22})
	if err != nil {
		log.Fatal(err)
	}
	hosts, err := c.Hosts(ctx, "five-production")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(hosts)
}

// A rolling restart of one host: out of the load balancer, restart, back
// in, and wait until it serves again.
func ExampleClient_Deregister() {
	ctx := context.Background()
	c, err := elb.New(ctx, elb.Config{})
	if err != nil {
		log.Fatal(err)
	}
	const lb = "five-production"
	id, err := c.InstanceForHost(ctx, lb, "ec2-54-0-0-1.compute-1.amazonaws.com:22")
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Deregister(ctx, lb, id); err != nil {
		log.Fatal(err)
	}
	// ... restart the app on the host ...
	if err := c.Register(ctx, lb, id); err != nil {
		log.Fatal(err)
	}
	if err := c.WaitInService(ctx, lb, id, 5*time.Minute); err != nil {
		log.Fatal(err)
	}
}
