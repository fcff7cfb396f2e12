package elb

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// InstanceByDNSName returns the ID of the running EC2 instance whose
// public or private DNS name is host, whether or not it is registered
// with a load balancer: the way back to an instance that Deregister took
// out. A ":port" suffix on host is ignored, and so is case and a trailing
// dot. No such instance, or more than one, is an error.
func (c *Client) InstanceByDNSName(ctx context.Context, host string) (string, error) {
	name := strings.ToLower(dnsName(host))
	if name == "" {
		return "", fmt.Errorf("elb: empty host %q", host)
	}
	for _, filter := range []string{"dns-name", "private-dns-name"} {
		found, err := c.running(ctx, nil, ec2types.Filter{Name: aws.String(filter), Values: []string{name}})
		if err != nil {
			return "", fmt.Errorf("elb: find the instance named %q in region %s: %w", name, c.region, err)
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			return aws.ToString(found[0].InstanceId), nil
		}
		ids := make([]string, len(found))
		for i, in := range found {
			ids[i] = aws.ToString(in.InstanceId)
		}
		return "", fmt.Errorf("elb: %d running instances in region %s have DNS name %q (%s); give an instance ID", len(ids), c.region, name, strings.Join(ids, ", "))
	}
	return "", fmt.Errorf("elb: no running instance in region %s has DNS name %q", c.region, name)
}
