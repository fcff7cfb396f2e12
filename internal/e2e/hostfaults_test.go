package e2e_test

import (
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/fleettest"
	"github.com/magefab/magefab/internal/wheel"
)

// mountTmpfs mounts a tmpfs of size at dir on one fleet host only (each
// host has its own mount namespace), owned by the deploy user, and
// unmounts it when the test ends if the test did not.
func mountTmpfs(t *testing.T, f fleettest.Fleet, host, dir, size string) (unmount func()) {
	t.Helper()
	q := "'" + dir + "'"
	if out, err := onHost(t, f, host, "mkdir -p "+q+" && mount -t tmpfs -o size="+size+",mode=0775,uid=$(id -u deploy),gid=$(id -g deploy) tmpfs "+q, true); err != nil {
		t.Fatalf("%s: mounting a tmpfs at %s: %v\n%s", host, dir, err, out)
	}
	done := false
	unmount = func() {
		if !done {
			done = true
			if out, err := onHost(t, f, host, "umount "+q, true); err != nil {
				t.Errorf("%s: umount %s: %v\n%s", host, dir, err, out)
			}
		}
	}
	t.Cleanup(unmount)
	return unmount
}

// TestDiskFullDuringTheInstall: on one host the new release dir's
// virtualenv sits on a 1 MB filesystem, and the new requirements need 3 MB.
func TestDiskFullDuringTheInstall(t *testing.T) {
	t.Parallel()
	f, p, sha1 := deployedProject(t, "", nil)
	env := faultEnv

	big := "DATA = '" + strings.Repeat("0123456789abcdef", 3<<16) + "'\n" // 3 MB
	if _, err := wheel.Build(p.Wheels, "magefab-bigdep", "1.0", big); err != nil {
		t.Fatal(err)
	}
	sha2 := p.AddFiles(t, "a big requirement", map[string]string{"requirements.txt": "magefab-testdep==1.0\nmagefab-bigdep==1.0\n"})
	p.Tag(t, "v0.1.1")
	victim := f.Hosts[1]
	unmount := mountTmpfs(t, f, victim, "/var/webapps/"+p.Unit+"/releases/b/env", "1m")

	r := p.Run(t, env, "env:production", "deploy:tag", "v0.1.1")
	assertRefused(t, f, p, r, "the disk filled on "+victim, sha1, victim, "installing requirements failed", "No space left on device", "no host was switched")

	// With room again, a rerun installs (the half-done install left no
	// stamp behind) and switches the whole fleet.
	unmount()
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.1")
	assertServing(t, p, "rerun with room", sha2)
	noLocks(t, f, p, "rerun with room")
}

// TestGitFetchFailsOnOneHost: one host cannot read the repository (an
// empty filesystem is mounted over it there only).
func TestGitFetchFailsOnOneHost(t *testing.T) {
	t.Parallel()
	f, p, sha1 := deployedProject(t, "", nil)
	env := faultEnv
	sha2 := p.Commit(t, "second")
	p.Tag(t, "v0.1.1")
	victim := f.Hosts[2]
	unmount := mountTmpfs(t, f, victim, p.Remote, "1m")

	r := p.Run(t, env, "env:production", "deploy:tag", "v0.1.1")
	assertRefused(t, f, p, r, "git fetch failed on "+victim, sha1, victim, "git fetch in /var/webapps/"+p.Unit+"/releases/b failed", "no host was switched")

	unmount()
	p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.1")
	assertServing(t, p, "rerun", sha2)
}
