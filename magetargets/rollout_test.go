package magetargets

import (
	"strings"
	"testing"
	"time"
)

func TestRolloutCounts(t *testing.T) {
	for _, c := range []struct {
		canary, batch string
		n             int
		want          [2]int
		err           string
	}{
		{"", "", 16, [2]int{0, 0}, ""},
		{"1", "25%", 16, [2]int{1, 4}, ""},
		{"10%", "30%", 7, [2]int{1, 3}, ""},
		{"0.1%", "", 3, [2]int{1, 0}, ""},
		{"two", "", 4, [2]int{}, `Config.Rollout.Canary "two": give a host count`},
		{"", "150%", 4, [2]int{}, `Config.Rollout.Batch "150%": give a share of the hosts between 0% and 100%`},
		{"", "-1", 4, [2]int{}, `Config.Rollout.Batch "-1"`},
	} {
		cfg := Config{Rollout: Rollout{Canary: c.canary, Batch: c.batch}}
		if c.canary != "" || c.batch != "" {
			cfg.Rollout.Window = time.Second
		}
		r, err := cfg.rollout(c.n)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q/%q: error %v, want %q", c.canary, c.batch, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%q/%q: %v", c.canary, c.batch, err)
		case c.err == "" && (r.Canary != c.want[0] || r.Batch != c.want[1] || r.Window != cfg.Rollout.Window):
			t.Errorf("%q/%q of %d hosts: canary %d, batch %d, want %v", c.canary, c.batch, c.n, r.Canary, r.Batch, c.want)
		}
	}
}

// Bad rollout settings are refused with what to give instead.
func TestRolloutRefusesBadSettings(t *testing.T) {
	for _, c := range []struct {
		r    Rollout
		want string
	}{
		{Rollout{Window: time.Minute}, "neither Canary nor Batch is set"},
		{Rollout{Batch: "1", HAProxy: HAProxy{Socket: "/run/haproxy/admin.sock"}}, "Config.Rollout.HAProxy.Backend is empty"},
		{Rollout{Batch: "1", MaxOut: -1}, "MaxOut (-1) and BalancerTimeout"},
	} {
		_, err := Config{Rollout: c.r}.rollout(4)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.r, err, c.want)
		}
	}
	r, err := Config{Rollout: Rollout{Batch: "1", HAProxy: HAProxy{Socket: "/run/haproxy/admin.sock", Backend: "app"}}}.rollout(4)
	if err != nil || r.Balancer == nil || r.Balancer.Name() != `HAProxy backend "app"` {
		t.Errorf("an HAProxy rollout: %+v, %v", r, err)
	}
}
