package magetargets

import (
	"context"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/sshx"
	"github.com/magefile/mage/mg"
)

// Pip holds the requirements targets: pip:setup and pip:install.
type Pip mg.Namespace

// Install reinstalls the environment's requirements into the live release on every host, then restarts.
func (Pip) Install(ctx context.Context) error {
	r, err := newFleetRun(ctx, false)
	if err != nil {
		return err
	}
	return r.eachHost(ctx, "pip install", func(ctx context.Context, h sshx.Host) error {
		return release.Reinstall(ctx, h, r.opts)
	})
}
