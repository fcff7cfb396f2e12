package e2e_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/magefab/magefab/internal/e2e"
	"github.com/magefab/magefab/internal/fleettest"
)

func TestVersionCheckRollsTheFleetBack(t *testing.T) {
	t.Parallel()
	f := fleettest.Require(t, 3)
	fleettest.RequireTool(t, "/usr/bin/python3", "python3")
	// The app's port is known once the project exists.
	p := e2e.NewProjectWith(t, f, f.Hosts, "", "", nil)
	p.SetConfig(t, fmt.Sprintf(`VersionURL: "http://{{.HostName}}:%d/version", Timeouts: magetargets.Timeouts{Verify: 3000000000},`, p.Port))
	env := []string{"MAGEFAB_SKIP_TESTS=1"}
	sha1 := p.Git(t, "rev-parse", "HEAD")
	p.Tag(t, "v0.1.0")
	r := p.MustRun(t, env, "env:production", "deploy:tag", "v0.1.0")
	if !strings.Contains(r.Out, "checking that every host serves "+sha1[:7]) {
		t.Errorf("no version check in the output:\n%s", r.Out)
	}

	// v0.2.0 starts but serves the wrong commit: the fleet goes back.
	p.AddFiles(t, "serve the wrong version", map[string]string{"WRONG_VERSION": "1\n"})
	p.Tag(t, "v0.2.0")
	r = p.Run(t, env, "env:production", "deploy:tag", "v0.2.0")
	if r.Err == nil || !strings.Contains(r.Out, "every host was switched back") || !strings.Contains(r.Out, "serves \"0000000000000000000000000000000000000000\"") {
		t.Errorf("deploy of a release that fails its check: %v\n%s", r.Err, r.Out)
	}
	assertServing(t, p, "after the automatic rollback", sha1)

	// With MAGEFAB_NO_AUTO_ROLLBACK=1 the failed release stays, and says so.
	r = p.Run(t, append(env, "MAGEFAB_NO_AUTO_ROLLBACK=1"), "env:production", "deploy:tag", "v0.2.0")
	if r.Err == nil || !strings.Contains(r.Out, "automatic rollback is off") {
		t.Errorf("deploy with MAGEFAB_NO_AUTO_ROLLBACK: %v\n%s", r.Err, r.Out)
	}
	assertServing(t, p, "kept without automatic rollback", strings.Repeat("0", 40))
	p.MustRun(t, nil, "env:production", "deploy:rollback")
	assertServing(t, p, "manual rollback", sha1)
}
