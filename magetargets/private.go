package magetargets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/magefab/magefab/release"
	"github.com/magefab/magefab/release/pypkg"
	"github.com/magefab/magefab/sshx"
)

// privatePackages reads the PrivateRequirements files; nil when there are
// none.
func privatePackages(c Config) ([]pypkg.Package, error) {
	var all []pypkg.Package
	for _, f := range c.PrivateRequirements {
		if err := release.ValidateRelPath("PrivateRequirements", f); err != nil {
			return nil, err
		}
		pkgs, err := pypkg.ParseFile(filepath.Join(c.RootDir, f))
		if err != nil {
			return nil, err
		}
		all = append(all, pkgs...)
	}
	return all, nil
}

// fetchPrivate fetches the private packages into the user's cache and
// returns their archives and a hash of their content for the stamp.
func fetchPrivate(ctx context.Context, c Config, pkgs []pypkg.Package, log io.Writer) (archives []string, stamp string, err error) {
	if len(pkgs) == 0 {
		return nil, "", nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	f := &pypkg.Fetcher{
		CacheDir: filepath.Join(cache, "magefab", c.Unit),
		S3:       pypkg.S3Config{Bucket: c.S3.Bucket, Region: c.S3.Region, Endpoint: c.S3.Endpoint, KeyTemplate: c.S3.KeyTemplate},
		Log:      log,
	}
	archives, err = f.FetchAll(ctx, pkgs)
	if err != nil {
		return nil, "", err
	}
	h := sha256.New()
	for _, a := range archives {
		fh, err := os.Open(a)
		if err != nil {
			return nil, "", err
		}
		fmt.Fprintf(h, "%s\n", filepath.Base(a))
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return nil, "", err
		}
	}
	return archives, "private:" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// hasExtras says whether a run installs more than the requirements: the
// private packages fetched (archives) or the install scripts.
func hasExtras(c Config, archives []string) bool {
	return len(archives) > 0 || len(c.PackageInstallScripts) > 0
}

// installExtrasIn installs private packages and runs the install scripts
// (in dir, with venv as their first argument) in the virtualenv venv on a
// host that just installed its requirements. On failure venv's stamp is
// removed, so that the next run installs again.
func installExtrasIn(ctx context.Context, c Config, h sshx.Host, dir, venv string, archives, pipInstall []string) error {
	err := pypkg.Install(ctx, h, venv, archives, pipInstall)
	if err == nil && len(c.PackageInstallScripts) > 0 {
		err = pypkg.RunInstallScripts(ctx, h, dir, c.PackageInstallScripts, venv)
	}
	if err != nil {
		h.Command(context.WithoutCancel(ctx), "rm", "-f", path.Join(venv, ".magefab-stamp")).Run()
	}
	return err
}

// fetchExtras checks the install scripts and fetches the private packages
// of a run that installs into releases, as a deploy does: it returns their
// archives and puts their hash into the requirements stamp.
func (r *fleetRun) fetchExtras(ctx context.Context) (archives []string, err error) {
	pkgs, err := privatePackages(r.cfg)
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, nil
	}
	r.say("fetching %d private package(s)", len(pkgs))
	archives, r.opts.ExtraStamp, err = fetchPrivate(ctx, r.cfg, pkgs, nil)
	return archives, err
}
