// Package elb finds the hosts behind a Classic Elastic Load Balancer and
// takes single instances out of it and puts them back, as buedafab's
// production environment did with its elb_add and elb_remove tasks; it
// also takes batches of hosts out of a Classic load balancer or an
// Application or Network Load Balancer's target group for a switch in
// batches.
//
// # Hosts
//
// [Client.Hosts] lists the DNS names of the running EC2 instances
// registered with the load balancer, sorted, ready to become an
// environment's hosts: every one, InService or not, as buedafab deployed
// to them, since an instance that is OutOfService for a while still runs
// the app and serves it again when its health check passes.
// [Client.Backends] says which host is which instance and whether it is
// in service; [Client.Instances] lists the instances and their health.
//
// # Rolling restarts
//
// [Client.InstanceForHost] maps a host back to its instance;
// [Client.Deregister] takes it out of the load balancer, [Client.Register]
// puts it back, and [Client.WaitInService] waits until its health check
// passes again. [Client.InstanceByDNSName] finds an instance by its DNS
// name whether or not it is registered, the way back to one that was
// taken out.
//
// # Switches in batches
//
// [Client.Balancer] makes a Classic Load Balancer a
// [github.com/magefab/magefab/release.Balancer], given the instance of
// each host ([Client.HostInstances] gives them): its Out deregisters
// instances and waits until the load balancer's connection draining
// finished, its In registers them and waits until they are InService.
// [Client.TargetGroup] does the same with the target group of an
// Application or Network Load Balancer (Elastic Load Balancing v2),
// given each host's targets ([Client.HostTargets] gives them): Out waits
// through "draining" until the targets are unused, In until they are
// healthy.
//
// # Tests
//
// Package [github.com/magefab/magefab/release/elb/elbtest] serves the ELB
// (Classic and v2) and EC2 calls of this package from an in-process
// server.
//
// # Credentials and endpoints
//
// [New] loads the AWS SDK's default configuration: credentials and region
// come from the standard chain (environment, shared config files, SSO,
// instance roles). [Config.Endpoint] points the ELB (Classic and v2) and
// the EC2 clients at another URL, for tests or AWS-compatible APIs.
//
// A Client is safe for concurrent use.
package elb
