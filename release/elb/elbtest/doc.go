// Package elbtest provides an in-process AWS endpoint for tests of code
// that uses Elastic Load Balancing (Classic, and the target groups of
// v2) and EC2, in the spirit of net/http/httptest. It does not need
// *testing.T.
//
// # Starting a server
//
// [NewServer] starts a server on 127.0.0.1. Point the SDK at [Server.URL]
// (for example elb.Config.Endpoint) and give it the static credentials
// [AccessKeyID] and [SecretAccessKey], for instance through the
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables; any
// region will do.
//
//	srv := elbtest.NewServer()
//	defer srv.Close()
//	srv.AddInstance(elbtest.Instance{ID: "i-0123456789abcdef0", DNSName: "web1.example.com"})
//	srv.AddLoadBalancer("web", "i-0123456789abcdef0")
//
// # What it serves
//
// The server speaks the AWS query protocol, with the XML shapes AWS
// answers with, for these actions:
//
//   - elasticloadbalancing (API version 2012-06-01): DescribeInstanceHealth,
//     RegisterInstancesWithLoadBalancer, DeregisterInstancesFromLoadBalancer;
//   - elasticloadbalancing v2 (API version 2015-12-01): DescribeTargetGroups,
//     DescribeTargetHealth, RegisterTargets, DeregisterTargets;
//   - ec2 (API version 2016-11-15): DescribeInstances, by instance IDs and
//     with the filters instance-state-name, dns-name and private-dns-name.
//
// It keeps which instances are registered with which load balancer. A
// registered instance is InService when it is running, unless
// [Server.SetSettle] makes newly registered ones answer OutOfService for
// a few health checks first, or [Server.SetOutOfService] makes one fail
// its health check while it runs. With [Server.SetConnectionDraining], a
// deregistered instance stays InService, "Instance deregistration
// currently in progress.", for the draining time before it is gone. A
// load balancer that does not exist gets LoadBalancerNotFound, as AWS
// answers; [Server.FailEC2] makes DescribeInstances fail with an error
// code of your choice.
//
// [Server.AddTargetGroup] adds a target group (targets by instance ID or
// IP address, and port). A registered target is "initial" for
// TargetGroup.Settle health checks, then "healthy"; a deregistered one is
// "draining" for TargetGroup.DeregistrationDelay, then gone ("unused",
// Target.NotRegistered, when asked for by name). A target group that does
// not exist gets TargetGroupNotFound.
//
// [Server.SetUnhealthy] makes an instance or IP address fail every health
// check, wherever it is registered, now or later: OutOfService in a
// Classic load balancer, "unhealthy" in a target group.
// [Server.Fail] makes an action answer with an error code, e.g.
// AccessDenied for a load balancer that refuses to deregister.
//
// # Checking what happened
//
// Every request is recorded as a [Request] (the service and region it was
// signed for, the action and its parameters): see [Server.Requests] and
// [Server.TakeRequests]. [Server.Registered] tells which instances a load
// balancer holds. Requests the server cannot make sense of (another
// method or path, a missing or foreign signature, an action or API
// version it does not serve) are answered with an error and reported by
// [Server.Err].
package elbtest
