package elbtest_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/magefab/magefab/release/elb"
	"github.com/magefab/magefab/release/elb/elbtest"
)

// Hosts behind a load balancer, served by an elbtest.Server.
func ExampleNewServer() {
	srv := elbtest.NewServer()
	defer srv.Close()
	srv.AddInstance(elbtest.Instance{ID: "i-0000000000000000a", DNSName: "web1.example.com"})
	srv.AddInstance(elbtest.Instance{ID: "i-0000000000000000b", DNSName: "web2.example.com"})
	srv.AddInstance(elbtest.Instance{ID: "i-0000000000000000c", DNSName: "web3.example.com", State: "stopped"})
	srv.AddLoadBalancer("web", "i-0000000000000000b", "i-0000000000000000a", "i-0000000000000000c")

	// In a test, prefer t.Setenv; also point AWS_CONFIG_FILE and
	// AWS_SHARED_CREDENTIALS_FILE at files that do not exist.
	os.Setenv("AWS_ACCESS_KEY_ID", elbtest.AccessKeyID)
	os.Setenv("AWS_SECRET_ACCESS_KEY", elbtest.SecretAccessKey)
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	ctx := context.Background()
	c, err := elb.New(ctx, elb.Config{Region: "us-east-1", Endpoint: srv.URL, Port: 2222})
	if err != nil {
		log.Fatal(err)
	}
	hosts, err := c.Hosts(ctx, "web")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(hosts)
	for _, r := range srv.Requests() {
		fmt.Println(r.Service, r.Action)
	}
	// Output:
	// [web1.example.com:2222 web2.example.com:2222]
	// elasticloadbalancing DescribeInstanceHealth
	// ec2 DescribeInstances
}
