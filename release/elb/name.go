package elb

import (
	"fmt"
	"regexp"
)

var (
	// lbNameRE is what AWS accepts as a Classic Load Balancer name: 1-32
	// letters, digits and hyphens, not starting or ending with a hyphen.
	lbNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$`)

	// instanceIDRE is an EC2 instance ID: "i-" and 8 or 17 hex digits.
	instanceIDRE = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)
)

// ValidateName reports whether lb is a valid Classic Load Balancer name.
func ValidateName(lb string) error {
	if !lbNameRE.MatchString(lb) {
		return fmt.Errorf("elb: invalid load balancer name %q: want 1-32 letters, digits and hyphens, not starting or ending with a hyphen", lb)
	}
	return nil
}

// validateInstance checks lb and an instance ID to be used with it.
func validateInstance(lb, instanceID string) error {
	if err := ValidateName(lb); err != nil {
		return err
	}
	if !instanceIDRE.MatchString(instanceID) {
		return fmt.Errorf("elb: load balancer %q: invalid instance ID %q: want i- and 8 or 17 hex digits", lb, instanceID)
	}
	return nil
}
