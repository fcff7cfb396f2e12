package elb

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbapi "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
)

// Deregister takes instance instanceID out of load balancer lb, which
// stops sending it new requests (after connection draining, when the load
// balancer has it enabled).
func (c *Client) Deregister(ctx context.Context, lb, instanceID string) error {
	if err := validateInstance(lb, instanceID); err != nil {
		return err
	}
	_, err := c.elb.DeregisterInstancesFromLoadBalancer(ctx, &elbapi.DeregisterInstancesFromLoadBalancerInput{
		LoadBalancerName: aws.String(lb),
		Instances:        []types.Instance{{InstanceId: aws.String(instanceID)}},
	})
	if err != nil {
		return c.apiError(lb, "deregister "+instanceID, err)
	}
	return nil
}

// Register puts instance instanceID back into load balancer lb. The
// instance receives traffic once its health check passes; WaitInService
// waits for that.
func (c *Client) Register(ctx context.Context, lb, instanceID string) error {
	if err := validateInstance(lb, instanceID); err != nil {
		return err
	}
	_, err := c.elb.RegisterInstancesWithLoadBalancer(ctx, &elbapi.RegisterInstancesWithLoadBalancerInput{
		LoadBalancerName: aws.String(lb),
		Instances:        []types.Instance{{InstanceId: aws.String(instanceID)}},
	})
	if err != nil {
		return c.apiError(lb, "register "+instanceID, err)
	}
	return nil
}

// WaitInService waits until load balancer lb reports instance instanceID
// InService, checking its health with a growing delay, for at most
// timeout.
func (c *Client) WaitInService(ctx context.Context, lb, instanceID string, timeout time.Duration) error {
	if err := validateInstance(lb, instanceID); err != nil {
		return err
	}
	if timeout <= 0 {
		return fmt.Errorf("elb: load balancer %q: wait for %s: timeout %v is not positive", lb, instanceID, timeout)
	}
	w := elbapi.NewInstanceInServiceWaiter(c.elb, func(o *elbapi.InstanceInServiceWaiterOptions) {
		o.MinDelay = c.pollMin
		o.MaxDelay = c.pollMax
	})
	err := w.Wait(ctx, &elbapi.DescribeInstanceHealthInput{
		LoadBalancerName: aws.String(lb),
		Instances:        []types.Instance{{InstanceId: aws.String(instanceID)}},
	}, timeout)
	if err != nil {
		return c.apiError(lb, fmt.Sprintf("wait for %s to be InService", instanceID), err)
	}
	return nil
}
