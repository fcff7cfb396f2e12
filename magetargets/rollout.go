package magetargets

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/magefab/magefab/release"
)

// Rollout switches the fleet in stages instead of all at once: Canary
// hosts first, checked over Window (VersionURL, Checks times, every check
// passing), then batches of Batch hosts, each checked before the next.
// Whatever stage fails, every host that switched in any stage is switched
// back, as with the switch all at once. Zero fields keep the switch all at
// once.
//
// Canary and Batch are a host count ("2") or a share of the environment's
// hosts ("25%", rounded up, at least one host).
type Rollout struct {
	Canary string
	Batch  string
	// Window is how long the canary and each batch are checked after
	// they switched; zero means one check, at once.
	Window time.Duration
	// Checks is how many checks spread over Window must pass; zero means
	// 3 (1 without a Window).
	Checks int
}

// count reads a host count or a share of n hosts: "" is 0.
func rolloutCount(field, v string, n int) (int, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil
	}
	if p, ok := strings.CutSuffix(v, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f <= 0 || f > 100 {
			return 0, fmt.Errorf("magetargets: Config.Rollout.%s %q: give a share of the hosts between 0%% and 100%%, e.g. 25%%, or a host count", field, v)
		}
		return max(int(math.Ceil(f*float64(n)/100)), 1), nil
	}
	c, err := strconv.Atoi(v)
	if err != nil || c < 0 {
		return 0, fmt.Errorf("magetargets: Config.Rollout.%s %q: give a host count, e.g. 2, or a share of the hosts, e.g. 25%%", field, v)
	}
	return c, nil
}

// rollout is Rollout for the n hosts of a run.
func (c Config) rollout(n int) (release.Rollout, error) {
	r := c.Rollout
	canary, err := rolloutCount("Canary", r.Canary, n)
	if err != nil {
		return release.Rollout{}, err
	}
	batch, err := rolloutCount("Batch", r.Batch, n)
	if err != nil {
		return release.Rollout{}, err
	}
	if r.Window < 0 || r.Checks < 0 {
		return release.Rollout{}, fmt.Errorf("magetargets: Config.Rollout: Window (%s) and Checks (%d) cannot be negative", r.Window, r.Checks)
	}
	return release.Rollout{Canary: canary, Batch: batch, Window: r.Window, Checks: r.Checks}, nil
}

// checkRollout adds what is wrong with Rollout to p.
func (c Config) checkRollout(p *problems) {
	if _, err := c.rollout(1); err != nil {
		p.add("Rollout", err)
	}
}
